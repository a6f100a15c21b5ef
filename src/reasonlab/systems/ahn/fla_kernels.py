"""Optional GPU fast path: flash-linear-attention's Triton chunk kernels (fla, `pip install fla-core`) behind
the conventions of `delta_rule_chunked` and `mamba2_chunked` in memory.py, so the two are interchangeable.

fla takes time-major tensors (B, T, H, d) where memory.py takes (B, H, N, d); its state is (B, H, dk, dv) like
ours. Its `chunk_gated_delta_rule` is our recurrence exactly: decay by exp(g), then the delta-rule write, then
the read o_t = scale * S_t^T q_t (inclusive), with g a natural-log decay and beta already in (0, 1).
DeltaNet runs it with g = 0, because fla's own `chunk_delta_rule` refuses float32 inputs. Mamba2's SSD is
fla's `chunk_simple_gla` (S_t = exp(g_t) S_{t-1} + k_t v_t^T, o_t = scale * S_t^T q_t) with g = dt A, v scaled
by dt and scale 1. The kernels need a CUDA device, float32 / bfloat16 / float16 and head dims up to 256.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch

from reasonlab.errors import UserError

__all__ = ["fla_delta_rule", "fla_mamba2", "fla_ready", "fla_refuses_backward", "from_fla_layout",
           "to_fla_layout"]

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class FlaKernels(NamedTuple):
    gated_delta_rule: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    simple_gla: Callable[..., tuple[torch.Tensor, torch.Tensor]]


@functools.cache
def _fla_kernels() -> FlaKernels | None:
    """fla's chunk kernels, or None when fla (or triton under it) does not import; tried once per process."""
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
        from fla.ops.simple_gla import chunk_simple_gla
    except Exception:  # a broken optional backend (no triton, no driver) means "use the torch path"
        return None
    return FlaKernels(chunk_gated_delta_rule, chunk_simple_gla)


def fla_ready(x: torch.Tensor) -> bool:
    """True when x is a CUDA tensor of a dtype fla's kernels take and fla imports (tried once per process), and,
    where gradients will flow, fla runs its backward on this GPU (see `fla_refuses_backward`)."""
    if not (x.is_cuda and x.dtype in KERNEL_DTYPES and _fla_kernels() is not None):
        return False
    return not (torch.is_grad_enabled() and fla_refuses_backward(x.device))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("+")[0].split(".")[:3] if part.isdigit())


@functools.cache
def fla_refuses_backward(device: torch.device) -> bool:
    """fla refuses its gated chunk backward on Hopper (compute capability 9) under Triton 3.4 to 3.7.0, which
    compute it wrongly there (fla issue 640); training then takes the torch path, inference keeps fla's kernels.
    Seen on a lent H200 with Triton 3.6.0 (benchmarks/RESULTS.md, AHN)."""
    try:
        import triton
    except ImportError:
        return False
    major, _ = torch.cuda.get_device_capability(device)
    return major == 9 and (3, 4) <= _version(triton.__version__) < (3, 7, 1)


def to_fla_layout(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, ...) -> fla's time-major (B, N, H, ...)."""
    return x.transpose(1, 2)


def from_fla_layout(x: torch.Tensor) -> torch.Tensor:
    """fla's (B, N, H, ...) -> (B, H, N, ...)."""
    return x.transpose(1, 2)


def _kernels_for(q: torch.Tensor) -> FlaKernels:
    kernels = _fla_kernels() if fla_ready(q) else None
    installed = _fla_kernels() is not None and q.is_cuda and q.dtype in KERNEL_DTYPES
    if kernels is None and installed and torch.is_grad_enabled() and fla_refuses_backward(q.device):
        raise UserError(f"fla refuses its backward on {torch.cuda.get_device_name(q.device)} under this Triton "
                        "(Hopper needs Triton >= 3.7.1): call it under torch.no_grad(), upgrade Triton, or use the "
                        "torch path")
    if kernels is None:
        raise UserError(f"the fla fast path got a {q.dtype} tensor on {q.device}: it needs CUDA float32, "
                        "bfloat16 or float16 tensors and `pip install fla-core`; check fla_ready(q) first, "
                        "else use the torch path")
    return kernels


def _fla_state(state: torch.Tensor | None) -> torch.Tensor | None:
    # fla keeps the carried state in float32 and its (B, H, dk, dv) layout is ours
    return None if state is None else state.float()


def fla_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_decay: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`delta_rule_chunked` on fla's kernel: q, k (B, H, N, dk) L2-normalised, v (B, H, N, dv), beta and
    log_decay (B, H, N), state (B, H, dk, dv) or None: (outputs (B, H, N, dv) in q's dtype, float32 state)."""
    kernel = _kernels_for(q).gated_delta_rule
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    g = torch.zeros_like(beta, dtype=torch.float32) if log_decay is None else log_decay.float()
    o, final_state = kernel(
        to_fla_layout(q),
        to_fla_layout(k.to(q.dtype)),
        to_fla_layout(v.to(q.dtype)),
        g=to_fla_layout(g),
        beta=to_fla_layout(beta.to(q.dtype)),
        scale=scale,
        initial_state=_fla_state(state),
        output_final_state=True,
        use_qk_l2norm_in_kernel=False,  # the caller normalised q and k
    )
    return from_fla_layout(o).to(q.dtype), final_state


def fla_mamba2(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dt: torch.Tensor,
    a_log: torch.Tensor,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`mamba2_chunked` on fla's simple-GLA kernel: dt (B, H, N) > 0, a_log (H); shapes and returns as
    `fla_delta_rule` (outputs in q's dtype, final state in float32)."""
    kernel = _kernels_for(q).simple_gla
    dt = dt.float()
    g = dt * -a_log.float().exp()[:, None]  # (B, H, N) log decay dt * A
    written = (dt[..., None] * v.float()).to(q.dtype)  # dt_i v_i: the dt of the write dt_i k_i v_i^T
    o, final_state = kernel(
        to_fla_layout(q),
        to_fla_layout(k.to(q.dtype)),
        to_fla_layout(written),
        g=to_fla_layout(g),
        scale=1.0,
        initial_state=_fla_state(state),
        output_final_state=True,
    )
    return from_fla_layout(o).to(q.dtype), final_state
