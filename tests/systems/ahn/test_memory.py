"""AHN memory: the chunked recurrences against their token-by-token references (values, state, every gradient),
the references against the spec's formulas, and the module's parameters, init, gates, decode and size."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reasonlab.errors import UserError
from reasonlab.systems.ahn.memory import (
    AHNMemory,
    ahn_parameter_count,
    delta_rule_chunked,
    delta_rule_reference,
    mamba2_chunked,
    mamba2_reference,
)

KINDS = ["deltanet", "gdn", "mamba2"]
LENGTHS = [1, 7, 63, 65, 130]
CHUNKS = [16, 64]


def _heads(gen: torch.Generator, B: int, H: int, N: int, d: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.randn(B, H, N, d, generator=gen, dtype=dtype)


def _delta_inputs(N: int, gated: bool, dtype: torch.dtype = torch.float64, seed: int = 0) -> dict:
    """Leaf tensors for the delta rule: unit keys, beta in (0, 1), log decays in [-1.6, 0] (GDN's init range)."""
    gen = torch.Generator().manual_seed(seed)
    B, H, dk, dv = 2, 3, 8, 5  # dk != dv catches a transposed state
    inputs = {
        "q": _heads(gen, B, H, N, dk, dtype),
        "k": F.normalize(_heads(gen, B, H, N, dk, dtype), dim=-1),
        "v": _heads(gen, B, H, N, dv, dtype),
        "beta": torch.rand(B, H, N, generator=gen, dtype=dtype),
        "log_decay": -1.6 * torch.rand(B, H, N, generator=gen, dtype=dtype) if gated else None,
        "state": torch.randn(B, H, dk, dv, generator=gen, dtype=dtype),
    }
    return {name: None if x is None else x.requires_grad_() for name, x in inputs.items()}


def _mamba2_inputs(N: int, dtype: torch.dtype = torch.float64, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    B, H, dk, dv = 2, 3, 8, 5
    inputs = {
        "q": F.normalize(_heads(gen, B, H, N, dk, dtype), dim=-1),
        "k": F.normalize(_heads(gen, B, H, N, dk, dtype), dim=-1),
        "v": _heads(gen, B, H, N, dv, dtype),
        "dt": F.softplus(torch.randn(B, H, N, generator=gen, dtype=dtype) - 1),
        "a_log": torch.arange(1, H + 1, dtype=dtype).log(),  # Mamba2's init
        "state": torch.randn(B, H, dk, dv, generator=gen, dtype=dtype),
    }
    return {name: x.requires_grad_() for name, x in inputs.items()}


def _run_with_grads(fn, inputs: dict) -> dict[str, torch.Tensor]:
    """Outputs, final state and the gradient of a random mix of both w.r.t. every input."""
    o, S = fn(**inputs)
    gen = torch.Generator().manual_seed(1)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    loss = loss + (S * torch.randn(S.shape, generator=gen, dtype=S.dtype)).sum()
    leaves = {name: x for name, x in inputs.items() if x is not None}
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return {"outputs": o, "state": S} | {f"grad {name}": g for name, g in zip(leaves, grads, strict=True)}


def _assert_all_close(ours: dict, reference: dict, atol: float, rtol: float = 0.0) -> None:
    assert ours.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(ours[name], reference[name], atol=atol, rtol=rtol, msg=lambda m, n=name: f"{n}: {m}")


def test_delta_rule_reference_is_the_spec_recurrence() -> None:
    """S_i = exp(g_i) (I - beta_i k_i k_i^T) S_{i-1} + beta_i k_i v_i^T with literal matrices; inclusive readout."""
    x = {name: t.detach() for name, t in _delta_inputs(3, gated=True).items()}
    S = x["state"]
    eye = torch.eye(8, dtype=S.dtype)
    expected = []
    for i in range(3):
        k, v, b, g = x["k"][:, :, i], x["v"][:, :, i], x["beta"][:, :, i, None, None], x["log_decay"][:, :, i]
        transition = g.exp()[..., None, None] * (eye - b * k[..., :, None] * k[..., None, :])
        S = transition @ S + b * k[..., :, None] * v[..., None, :]
        expected.append(0.5 * (S.transpose(-1, -2) @ x["q"][:, :, i, :, None])[..., 0])
    o, final = delta_rule_reference(**x, scale=0.5)
    torch.testing.assert_close(o, torch.stack(expected, dim=2), atol=1e-12, rtol=0)
    torch.testing.assert_close(final, S, atol=1e-12, rtol=0)
    # default scale is dh^-1/2, and no decay is DeltaNet (g = 0)
    o_default, _ = delta_rule_reference(**x)
    torch.testing.assert_close(o_default, o * 2 / math.sqrt(8), atol=1e-12, rtol=0)
    o_plain, _ = delta_rule_reference(**(x | {"log_decay": torch.zeros_like(x["beta"])}))
    assert torch.equal(delta_rule_reference(**(x | {"log_decay": None}))[0], o_plain)


def test_mamba2_reference_is_the_spec_recurrence() -> None:
    """S_i = exp(dt_i A) S_{i-1} + dt_i k_i v_i^T, A = -exp(a_log) per head, o_i = S_i^T q_i (no scale)."""
    x = {name: t.detach() for name, t in _mamba2_inputs(3).items()}
    S = x["state"]
    A = -x["a_log"].exp()[:, None, None]
    expected = []
    for i in range(3):
        dt = x["dt"][:, :, i, None, None]
        S = (dt * A).exp() * S + dt * x["k"][:, :, i, :, None] * x["v"][:, :, i, None, :]
        expected.append((S.transpose(-1, -2) @ x["q"][:, :, i, :, None])[..., 0])
    o, final = mamba2_reference(**x)
    torch.testing.assert_close(o, torch.stack(expected, dim=2), atol=1e-12, rtol=0)
    torch.testing.assert_close(final, S, atol=1e-12, rtol=0)


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("gated", [False, True], ids=["deltanet", "gdn"])
def test_delta_rule_chunked_matches_reference(gated: bool, length: int, chunk_size: int) -> None:
    inputs = _delta_inputs(length, gated)
    reference = _run_with_grads(delta_rule_reference, inputs)
    ours = _run_with_grads(lambda **x: delta_rule_chunked(**x, chunk_size=chunk_size), inputs)
    assert len(ours) == (8 if gated else 7)
    _assert_all_close(ours, reference, atol=1e-10)


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("length", LENGTHS)
def test_mamba2_chunked_matches_reference(length: int, chunk_size: int) -> None:
    inputs = _mamba2_inputs(length)
    reference = _run_with_grads(mamba2_reference, inputs)
    ours = _run_with_grads(lambda **x: mamba2_chunked(**x, chunk_size=chunk_size), inputs)
    _assert_all_close(ours, reference, atol=1e-10)


def test_chunked_matches_reference_in_float32_with_strong_decay() -> None:
    """float32, 130 tokens, chunks of 64 and decays up to exp(-16) per token: within 1e-5 (absolute + relative)."""
    delta = _delta_inputs(130, gated=True, dtype=torch.float32)
    with torch.no_grad():
        delta["log_decay"].mul_(10.0)
    mamba = _mamba2_inputs(130, dtype=torch.float32)
    with torch.no_grad():
        mamba["a_log"].add_(1.0)
    for reference_fn, chunked_fn, inputs in ((delta_rule_reference, delta_rule_chunked, delta),
                                             (mamba2_reference, mamba2_chunked, mamba)):
        reference = _run_with_grads(reference_fn, inputs)
        ours = _run_with_grads(lambda fn=chunked_fn, **x: fn(**x, chunk_size=64), inputs)
        assert all(t.dtype == torch.float32 for t in ours.values())
        _assert_all_close(ours, reference, atol=1e-5, rtol=1e-5)


def test_low_precision_inputs_compute_in_float32() -> None:
    x = {name: t.detach().bfloat16() for name, t in _delta_inputs(9, gated=True).items()}
    o, S = delta_rule_chunked(**x, chunk_size=4)
    reference = delta_rule_reference(**{name: t.float() for name, t in x.items()})
    assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
    torch.testing.assert_close(S, reference[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fn", [delta_rule_reference, delta_rule_chunked])
def test_deltanet_with_beta_one_recalls_orthonormal_keys_and_overwrites(fn) -> None:
    gen = torch.Generator().manual_seed(3)
    dh = 8
    keys = torch.linalg.qr(torch.randn(dh, dh, generator=gen, dtype=torch.float64))[0].T  # orthonormal rows
    values = torch.randn(dh, dh, generator=gen, dtype=torch.float64)
    # store all 8 pairs, then write key 0 again with a new value: the delta rule replaces, it does not add
    new_value = torch.randn(dh, generator=gen, dtype=torch.float64)
    k = torch.cat([keys, keys[:1]])[None, None]  # (1, 1, 9, dh)
    v = torch.cat([values, new_value[None]])[None, None]
    beta = torch.ones(1, 1, 9, dtype=torch.float64)
    o, S = fn(k.clone(), k, v, beta, scale=1.0)
    torch.testing.assert_close(o[0, 0, :8], values, atol=1e-12, rtol=0)  # each read right after its write
    recalled = keys @ S[0, 0]  # read every key from the final state
    torch.testing.assert_close(recalled[1:], values[1:], atol=1e-12, rtol=0)
    torch.testing.assert_close(recalled[0], new_value, atol=1e-12, rtol=0)


def _memory_inputs(memory: AHNMemory, N: int, d_model: int, seed: int = 0, dtype=torch.float32) -> dict:
    gen = torch.Generator().manual_seed(seed)
    B, H, dh = 2, memory.n_heads, memory.head_dim
    heads = [torch.randn(B, H, N, dh, generator=gen, dtype=dtype) for _ in range(3)]
    hidden = [F.rms_norm(torch.randn(B, N, d_model, generator=gen, dtype=dtype), (d_model,)) for _ in range(2)]
    return dict(zip(["q", "k", "v", "x_evicted", "x_query"], heads + hidden, strict=True))


def _nonzero_output_init(memory: AHNMemory, seed: int = 0) -> AHNMemory:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        memory.out_proj.copy_(torch.randn(memory.out_proj.shape, generator=gen) / memory.head_dim**0.5)
    return memory


EXPECTED_PARAMETERS = {
    "deltanet": {"beta_proj.weight": (3, 16), "gate_proj.weight": (3, 16), "norm_weight": (4,),
                 "out_proj": (3, 4, 4)},
    "gdn": {"beta_proj.weight": (3, 16), "gate_proj.weight": (3, 16), "norm_weight": (4,), "out_proj": (3, 4, 4),
            "decay_proj.weight": (3, 16), "a_log": (3,), "dt_bias": (3,)},
    "mamba2": {"dt_proj.weight": (3, 16), "dt_proj.bias": (3,), "dt_bias": (3,), "a_log": (3,),
               "gate_proj.weight": (3, 16), "gate_proj.bias": (3,), "norm_weight": (12,), "out_proj": (3, 4, 4)},
}


@pytest.mark.parametrize("kind", KINDS)
def test_memory_has_exactly_the_spec_parameters_and_counts_them(kind: str) -> None:
    memory = AHNMemory(kind, d_model=16, n_heads=3, head_dim=4)
    shapes = {name: tuple(p.shape) for name, p in memory.named_parameters()}
    assert shapes == EXPECTED_PARAMETERS[kind]
    actual = sum(p.numel() for p in memory.parameters())
    assert ahn_parameter_count(kind, 1, 16, 3, 4) == actual
    # the spec's formula counts matrices only; the difference is exactly the norm weight, biases, a_log, dt_bias
    vectors = sum(p.numel() for p in memory.parameters() if p.dim() == 1)
    assert ahn_parameter_count(kind, 1, 16, 3, 4, include_vectors=False) == actual - vectors
    spec_formula = {"deltanet": 2 * 16 * 3 + 3 * 16, "gdn": 3 * 16 * 3 + 3 * 16, "mamba2": 2 * 16 * 3 + 3 * 16}
    assert ahn_parameter_count(kind, 5, 16, 3, 4, include_vectors=False) == 5 * spec_formula[kind]


# (n_layers, d_model, n_heads) of Qwen2.5 3B / 7B / 14B (dh = 128) and the spec's millions: mamba2, deltanet, gdn
SPEC_SIZES = [((36, 2048, 16), (11.9, 11.8, 13.0)), ((28, 3584, 28), (18.6, 18.5, 21.3)),
              ((48, 5120, 40), (51.4, 51.1, 61.0))]


@pytest.mark.parametrize(("shape", "millions"), SPEC_SIZES, ids=["3B", "7B", "14B"])
def test_parameter_counts_reproduce_the_spec(shape: tuple[int, int, int], millions: tuple[float, ...]) -> None:
    counts = [ahn_parameter_count(kind, *shape, head_dim=128) for kind in ("mamba2", "deltanet", "gdn")]
    assert tuple(round(c / 1e6, 1) for c in counts) == millions
    # matrices alone miss mamba2's H*dh norm weight (3B: 11.8M, not 11.9M) and 14B GDN's vectors (60.9M)
    if shape[0] == 36:
        assert ahn_parameter_count("deltanet", *shape, head_dim=128, include_vectors=False) == 36 * (
            2 * 2048 * 16 + 16 * 128**2)
        assert ahn_parameter_count("gdn", *shape, head_dim=128, include_vectors=False) == 36 * (
            3 * 2048 * 16 + 16 * 128**2)
        assert round(ahn_parameter_count("mamba2", *shape, head_dim=128, include_vectors=False) / 1e6, 1) == 11.8


@pytest.mark.parametrize("kind", KINDS)
def test_zero_initialised_memory_adds_exactly_nothing(kind: str) -> None:
    memory = AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8)
    m, state = memory(**_memory_inputs(memory, N=21, d_model=16))
    assert m.shape == (2, 21, 12)
    assert torch.equal(m, torch.zeros_like(m))
    assert state.abs().sum() > 0  # the memory is written, only its output starts at zero


@pytest.mark.parametrize("kind", KINDS)
def test_output_is_nonzero_and_trains_every_own_parameter(kind: str) -> None:
    memory = _nonzero_output_init(AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8))
    inputs = _memory_inputs(memory, N=21, d_model=16)
    m, _ = memory(**inputs)
    assert m.abs().min() > 0
    (m * torch.randn(m.shape, generator=torch.Generator().manual_seed(5))).sum().backward()
    without_gradient = [name for name, p in memory.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert without_gradient == []
    assert all(not x.requires_grad for x in inputs.values())


def _spec_output(memory: AHNMemory, q, k, v, x_evicted, x_query) -> torch.Tensor:
    """The spec's AHN written out: gates from x_evicted, recurrence on unit q/k, gated norm from x_query, out_proj."""
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    softplus, silu, H = F.softplus, F.silu, memory.n_heads
    if memory.kind == "mamba2":
        dt = softplus(x_evicted @ memory.dt_proj.weight.T + memory.dt_proj.bias + memory.dt_bias).transpose(1, 2)
        o, _ = mamba2_reference(q, k, v, dt, memory.a_log)
        gate = silu(x_query @ memory.gate_proj.weight.T + memory.gate_proj.bias)  # (B, N, H)
        y = torch.cat([o[:, h] * gate[..., h, None] for h in range(H)], dim=-1)  # (B, N, H*dh)
        y = y / (y.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * memory.norm_weight
        heads = y.split(memory.head_dim, dim=-1)
    else:
        beta = torch.sigmoid(x_evicted @ memory.beta_proj.weight.T).transpose(1, 2)
        g = None
        if memory.kind == "gdn":
            dt = softplus(x_evicted @ memory.decay_proj.weight.T + memory.dt_bias)
            g = (-memory.a_log.exp() * dt).transpose(1, 2)
        o, _ = delta_rule_reference(q, k, v, beta, g, scale=memory.head_dim**-0.5)
        gate = silu(x_query @ memory.gate_proj.weight.T)
        normed = o / (o.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * memory.norm_weight  # (B, H, N, dh)
        heads = [normed[:, h] * gate[..., h, None] for h in range(H)]
    return torch.cat([heads[h] @ memory.out_proj[h] for h in range(H)], dim=-1)


@pytest.mark.parametrize("kind", KINDS)
def test_module_computes_the_spec_memory(kind: str) -> None:
    memory = _nonzero_output_init(AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8)).double()
    with torch.no_grad():
        memory.norm_weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(2))
    x = _memory_inputs(memory, N=19, d_model=16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(memory(**x)[0], _spec_output(memory, **x), atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_whole_sequence_equals_pieces_equals_decode_steps(kind: str) -> None:
    memory = _nonzero_output_init(AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8)).double()
    x = _memory_inputs(memory, N=37, d_model=16, dtype=torch.float64)
    whole, whole_state = memory(**x)
    reference, reference_state = memory(**x, chunked=False)
    torch.testing.assert_close(reference, whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(reference_state, whole_state, atol=1e-12, rtol=0)

    pieces, state = [], None
    for start, stop in ((0, 10), (10, 11), (11, 37)):
        m, state = memory(**{name: t[:, :, start:stop] if t.dim() == 4 else t[:, start:stop]
                             for name, t in x.items()}, state=state)
        pieces.append(m)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(state, whole_state, atol=1e-12, rtol=0)

    # decode: gates cached when each token arrived, one step per evicted token
    gates = memory.write_gates(x["x_evicted"])
    steps, state = [], None
    for i in range(37):
        m, state = memory.step(x["q"][:, :, i], x["k"][:, :, i], x["v"][:, :, i], gates[:, :, i],
                               x["x_query"][:, i], state)
        steps.append(m)
    torch.testing.assert_close(torch.stack(steps, dim=1), whole, atol=1e-12, rtol=0)
    torch.testing.assert_close(state, whole_state, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_writes_leave_the_state_as_if_those_tokens_were_never_there(kind: str) -> None:
    memory = _nonzero_output_init(AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8)).double()
    x = _memory_inputs(memory, N=21, d_model=16, dtype=torch.float64)
    keep = torch.ones(2, 21, dtype=torch.bool)
    keep[:, [0, 5, 6, 20]] = False
    _, masked_state = memory(**x, write_mask=keep)
    kept = keep[0].nonzero().flatten()
    _, kept_state = memory(**{name: t[:, :, kept] if t.dim() == 4 else t[:, kept] for name, t in x.items()})
    torch.testing.assert_close(masked_state, kept_state, atol=1e-12, rtol=0)
    _, full_state = memory(**x)
    assert not torch.allclose(full_state, kept_state)


@pytest.mark.parametrize("kind", KINDS)
def test_state_size_does_not_grow_with_length(kind: str) -> None:
    memory = AHNMemory(kind, d_model=16, n_heads=3, head_dim=4)
    shapes = {memory(**_memory_inputs(memory, N=N, d_model=16))[1].shape for N in (1, 5, 70)}
    assert shapes == {torch.Size([2, 3, 4, 4])}


@pytest.mark.parametrize("kind", KINDS)
def test_queries_and_keys_are_l2_normalised_inside(kind: str) -> None:
    memory = _nonzero_output_init(AHNMemory(kind, d_model=16, n_heads=3, head_dim=4, chunk_size=8))
    x = _memory_inputs(memory, N=12, d_model=16)
    gen = torch.Generator().manual_seed(7)
    scaled = x | {name: x[name] * (0.1 + 5 * torch.rand(2, 3, 12, 1, generator=gen)) for name in ("q", "k")}
    torch.testing.assert_close(memory(**scaled)[0], memory(**x)[0], atol=1e-5, rtol=1e-5)


def test_write_gates_are_in_range_and_initialised_as_the_spec() -> None:
    torch.manual_seed(0)
    H = 64
    x = F.rms_norm(torch.randn(2, 50, 32), (32,))
    deltanet, gdn, mamba2 = (AHNMemory(kind, d_model=32, n_heads=H, head_dim=4) for kind in KINDS)

    beta = deltanet.write_gates(x)
    assert beta.shape == (2, H, 50, 1) and beta.dtype == torch.float32
    assert beta.min() > 0 and beta.max() < 1

    gates = gdn.write_gates(x)
    assert gates.shape == (2, H, 50, 2)
    assert gates[..., 0].min() > 0 and gates[..., 0].max() < 1 and gates[..., 1].max() <= 0
    A, dt = gdn.a_log.exp(), F.softplus(gdn.dt_bias)
    assert A.min() > 0 and A.max() <= 16 and A.max() > 8  # U(0, 16)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001  # log-uniform in [1e-3, 0.1]
    assert dt.median() < 0.02  # log-uniform: median 1e-2 (uniform would give 0.05)
    # g = -exp(A_log) softplus(W_a x + dt_bias): with x = 0 it is -A dt
    torch.testing.assert_close(gdn.write_gates(torch.zeros(1, 1, 32))[0, :, 0, 1], -A * dt)

    dt = mamba2.write_gates(x)
    assert dt.shape == (2, H, 50, 1) and dt.min() > 0
    torch.testing.assert_close(mamba2.a_log.exp(), torch.arange(1.0, H + 1))
    assert torch.equal(mamba2.dt_bias, torch.ones(H))


def test_bad_kind_shapes_and_chunk_size_are_user_errors() -> None:
    with pytest.raises(UserError, match="kind 'gla' is unknown"):
        AHNMemory("gla", d_model=16, n_heads=3, head_dim=4)
    with pytest.raises(UserError, match="kind 'gla' is unknown"):
        ahn_parameter_count("gla", 1, 16, 3, 4)
    with pytest.raises(UserError, match="chunk_size=0"):
        AHNMemory("gdn", d_model=16, n_heads=3, head_dim=4, chunk_size=0)
    memory = AHNMemory("gdn", d_model=16, n_heads=3, head_dim=4)
    x = _memory_inputs(memory, N=5, d_model=16)
    with pytest.raises(UserError, match=r"k has shape \(2, 3, 4, 4\)"):
        memory(**(x | {"k": x["k"][:, :, :4]}))
    with pytest.raises(UserError, match="x_query has shape"):
        memory(**(x | {"x_query": x["x_query"][:, :3]}))
