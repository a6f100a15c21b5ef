"""The fla fast path: on CPU, the argument translation through fakes that follow fla's documented kernel
contract; on a GPU with fla, the real kernels against memory.py's references (values, state, gradients)."""

from __future__ import annotations

import sys
from functools import partial
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from reasonlab.errors import UserError
from reasonlab.systems.ahn import fla_kernels
from reasonlab.systems.ahn.fla_kernels import (
    FlaKernels,
    fla_delta_rule,
    fla_mamba2,
    fla_ready,
    fla_refuses_backward,
    from_fla_layout,
    to_fla_layout,
)
from reasonlab.systems.ahn.memory import (
    delta_rule_chunked,
    delta_rule_reference,
    mamba2_chunked,
    mamba2_reference,
)

KINDS = ["deltanet", "gdn", "mamba2"]


def _inputs(kind: str, N: int, dk: int, dv: int, dtype: torch.dtype, device: str, with_state: bool) -> dict:
    """Leaves in memory.py's layout: unit q and k (as AHNMemory feeds them), beta in (0, 1), log decays in
    GDN's init range [-1.6, 0], Mamba2's dt > 0, a_log = log(1..H); a float32 state, as AHNMemory carries."""
    gen = torch.Generator().manual_seed(0)
    B, H = 2, 3

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    x = {"q": F.normalize(randn(B, H, N, dk), dim=-1), "k": F.normalize(randn(B, H, N, dk), dim=-1),
         "v": randn(B, H, N, dv)}
    if kind == "mamba2":
        x |= {"dt": F.softplus(randn(B, H, N) - 1), "a_log": torch.arange(1, H + 1).float().log()}
    else:
        x |= {"beta": randn(B, H, N).sigmoid(), "log_decay": -1.6 * torch.rand(B, H, N, generator=gen)}
    x = {name: t.to(device, dtype) for name, t in x.items()}
    if kind == "deltanet":
        x["log_decay"] = None
    x["state"] = randn(B, H, dk, dv).to(device) if with_state else None
    return {name: None if t is None else t.requires_grad_() for name, t in x.items()}


def _run(fn, inputs: dict) -> dict[str, torch.Tensor]:
    """Outputs, final state, and the gradient of a fixed random mix of both w.r.t. every input."""
    o, S = fn(**inputs)
    gen = torch.Generator().manual_seed(1)
    loss = (o.float() * torch.randn(o.shape, generator=gen).to(o.device)).sum()
    loss = loss + (S.float() * torch.randn(S.shape, generator=gen).to(S.device)).sum()
    leaves = {name: x for name, x in inputs.items() if x is not None}
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {"outputs": o, "state": S} | {f"grad {name}": g for name, g in zip(leaves, grads, strict=True)}


def _references(kind: str) -> tuple:
    if kind == "mamba2":
        return fla_mamba2, mamba2_reference, mamba2_chunked
    return fla_delta_rule, delta_rule_reference, delta_rule_chunked


# fakes of fla's two kernels, written from its documented contract (time-major (B, T, H, d) inputs, a float32
# state (B, H, K, V), g a natural-log decay, inclusive readout, outputs in q's dtype), so the wrappers'
# translation is checked without a GPU


def _fake_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state,
                           use_qk_l2norm_in_kernel):
    B, T, H, K = q.shape
    assert g.shape == beta.shape == (B, T, H) and g.dtype == torch.float32 and output_final_state
    out_dtype, (q, k, v, beta) = q.dtype, (x.float() for x in (q, k, v, beta))
    if use_qk_l2norm_in_kernel:
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    S = q.new_zeros(B, H, K, v.shape[-1]) if initial_state is None else initial_state
    outputs = []
    for t in range(T):
        S = g[:, t, :, None, None].exp() * S
        error = v[:, t] - torch.einsum("bhk,bhkv->bhv", k[:, t], S)
        S = S + torch.einsum("bhk,bhv->bhkv", k[:, t], beta[:, t, :, None] * error)
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    return torch.stack(outputs, dim=1).to(out_dtype), S


def _fake_simple_gla(q, k, v, g, scale, initial_state, output_final_state):
    B, T, H, K = q.shape
    assert g.shape == (B, T, H) and output_final_state
    out_dtype, (q, k, v) = q.dtype, (x.float() for x in (q, k, v))
    S = q.new_zeros(B, H, K, v.shape[-1]) if initial_state is None else initial_state
    outputs = []
    for t in range(T):
        S = g[:, t, :, None, None].exp() * S + torch.einsum("bhk,bhv->bhkv", k[:, t], v[:, t])
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    return torch.stack(outputs, dim=1).to(out_dtype), S


FAKE_KERNELS = FlaKernels(_fake_gated_delta_rule, _fake_simple_gla)


def test_fla_ready_is_false_off_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not fla_ready(torch.zeros(1))
    # even with fla importable, a CPU tensor never takes the fast path
    monkeypatch.setattr(fla_kernels, "_fla_kernels", lambda: FAKE_KERNELS)
    assert not fla_ready(torch.zeros(1)) and not fla_ready(torch.zeros(1, dtype=torch.bfloat16))


@pytest.mark.parametrize(("capability", "triton_version", "refused"), [
    ((9, 0), "3.6.0", True), ((9, 0), "3.7.0", True), ((9, 0), "3.4.0", True), ((9, 0), "3.7.0+git1234", True),
    ((9, 0), "3.7.1", False), ((9, 0), "3.10.0", False), ((9, 0), "3.3.1", False), ((8, 0), "3.6.0", False)])
def test_fla_backward_is_refused_only_on_hopper_under_the_triton_versions_fla_names(
        capability: tuple[int, int], triton_version: str, refused: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "triton", SimpleNamespace(__version__=triton_version))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    fla_refuses_backward.cache_clear()
    try:
        assert fla_refuses_backward(torch.device("cuda", 0)) is refused
    finally:
        fla_refuses_backward.cache_clear()


def test_training_takes_the_torch_path_where_fla_refuses_its_backward(monkeypatch: pytest.MonkeyPatch) -> None:
    """fla_ready says no under autograd where fla would refuse the backward, and yes under no_grad."""
    cuda_like = SimpleNamespace(is_cuda=True, dtype=torch.float32, device=torch.device("cuda", 0))
    monkeypatch.setattr(fla_kernels, "_fla_kernels", lambda: FAKE_KERNELS)
    monkeypatch.setattr(fla_kernels, "fla_refuses_backward", lambda device: True)
    assert not fla_kernels.fla_ready(cuda_like)
    with torch.no_grad():
        assert fla_kernels.fla_ready(cuda_like)
    monkeypatch.setattr(fla_kernels, "fla_refuses_backward", lambda device: False)
    assert fla_kernels.fla_ready(cuda_like)


def test_layout_helpers_swap_heads_and_time_and_round_trip() -> None:
    x = torch.randn(2, 3, 5, 4)  # (B, H, N, d)
    fla = to_fla_layout(x)
    assert fla.shape == (2, 5, 3, 4) and fla[1, 4, 2].equal(x[1, 2, 4])
    assert from_fla_layout(fla).equal(x)
    gates = torch.randn(2, 3, 5)  # (B, H, N)
    assert to_fla_layout(gates).shape == (2, 5, 3) and from_fla_layout(to_fla_layout(gates)).equal(gates)


@pytest.mark.parametrize("kind", KINDS)
def test_fast_path_refuses_tensors_fla_cannot_take(kind: str) -> None:
    fast, _, _ = _references(kind)
    with pytest.raises(UserError, match="fla_ready"):
        fast(**_inputs(kind, 3, 4, 4, torch.float32, "cpu", with_state=False))


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("kind", KINDS)
def test_wrappers_translate_our_conventions_into_fla_kernels(kind: str, with_state: bool,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Through fakes of the fla kernels: layout, gates, the DeltaNet g = 0, Mamba2's dt-scaled write, the
    state and the scale all reach the kernel as fla defines them, so values and every gradient match."""
    monkeypatch.setattr(fla_kernels, "fla_ready", lambda x: True)
    monkeypatch.setattr(fla_kernels, "_fla_kernels", lambda: FAKE_KERNELS)
    fast, reference, _ = _references(kind)
    inputs = _inputs(kind, 7, 4, 5, torch.float32, "cpu", with_state)  # dk != dv: a transposed state fails
    # q off the unit sphere: a kernel-side L2 norm would change the outputs
    inputs["q"] = (2 * inputs["q"]).detach().requires_grad_()
    scales = [{}] if kind == "mamba2" else [{}, {"scale": 0.3}]  # the default dk^-1/2 and a given one
    for scale in scales:
        ours, expected = _run(partial(fast, **scale), inputs), _run(partial(reference, **scale), inputs)
        assert ours.keys() == expected.keys()
        for name in expected:
            torch.testing.assert_close(ours[name], expected[name], atol=1e-5, rtol=1e-5,
                                       msg=lambda m, n=name: f"{n}: {m}")


needs_fla_gpu = pytest.mark.skipif(  # decided without autograd: fla_ready's backward rule is tested on its own
    not torch.cuda.is_available() or fla_kernels._fla_kernels() is None,
    reason="needs a CUDA device and flash-linear-attention (pip install fla-core)",
)
# relative RMS error ||ours - reference|| / ||reference||; float32 allows for Triton's default tf32 dots
TOLERANCES = {torch.float32: (2e-3, 5e-3), torch.bfloat16: (2e-2, 5e-2)}  # (values and state, gradients)


def _relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.double() - reference.double()).norm() / reference.double().norm().clamp(min=1e-12)).item()


@pytest.mark.gpu
@needs_fla_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("length", [1, 63, 130])
@pytest.mark.parametrize("kind", KINDS)
def test_fla_forward_matches_the_references(kind: str, length: int, with_state: bool, dtype: torch.dtype) -> None:
    """Values and final state alone (what prefill and decode use), on any Triton fla runs on."""
    fast, reference, chunked = _references(kind)
    inputs = _inputs(kind, length, 64, 64, dtype, "cuda", with_state)
    values_tol, _ = TOLERANCES[dtype]
    with torch.no_grad():
        (o, S), (o_ref, S_ref), (o_chunked, S_chunked) = (fn(**inputs) for fn in (fast, reference, chunked))
    assert o.dtype == dtype and S.dtype == torch.float32
    for ours, expected in ((o, o_ref), (S, S_ref), (o, o_chunked), (S, S_chunked)):
        assert _relative_error(ours, expected) < values_tol



@pytest.mark.gpu
@needs_fla_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("length", [1, 63, 130])
@pytest.mark.parametrize("kind", KINDS)
def test_fla_kernels_match_the_references(kind: str, length: int, with_state: bool,
                                          dtype: torch.dtype) -> None:
    fast, reference, chunked = _references(kind)
    inputs = _inputs(kind, length, 64, 64, dtype, "cuda", with_state)
    if fla_refuses_backward(inputs["q"].device):
        pytest.skip("fla refuses its gated backward on Hopper under Triton 3.4 - 3.7.0 (fla issue 640)")
    ours, expected = _run(fast, inputs), _run(reference, inputs)
    assert ours["outputs"].dtype == dtype and ours["state"].dtype == torch.float32
    values_tol, grads_tol = TOLERANCES[dtype]
    for name in expected:
        tol = grads_tol if name.startswith("grad") else values_tol
        assert _relative_error(ours[name], expected[name]) < tol, name
    with torch.no_grad():
        o, S = chunked(**inputs)
    assert _relative_error(ours["outputs"], o) < values_tol and _relative_error(ours["state"], S) < values_tol
