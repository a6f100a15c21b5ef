"""AHN memory (spec section 1): DeltaNet, GatedDeltaNet and Mamba2 recurrences over the evicted tokens.

Each recurrence has a token-by-token reference (the definition) and a chunked form (what trains), tested against it
on values, final state and every gradient. Shapes: q, k (B, H, N, dk), v (B, H, N, dv), gates (B, H, N), state
(B, H, dk, dv) or None for zeros. Step i first writes (k_i, v_i) and then reads with q_i (inclusive readout):

    DeltaNet / GDN: S_i = exp(g_i) (I - beta_i k_i k_i^T) S_{i-1} + beta_i k_i v_i^T,  o_i = scale * S_i^T q_i
    Mamba2 (SSD):   S_i = exp(dt_i A) S_{i-1} + dt_i k_i v_i^T,                      o_i = S_i^T q_i

The chunked forms follow flash-linear-attention's chunk (gated) delta rule (WY / UT transform: a unit lower
triangular solve inside each chunk) and Mamba2's segment-sum SSD, written in plain torch. Gates, state and
arithmetic are float32 (float64 stays float64); outputs come back in q's dtype, the state in the compute dtype.

`AHNMemory` is one layer's memory: the write gates from the evicted tokens' normed hidden states, the recurrence
on the base layer's post-RoPE q/k (L2-normalised here) and v, the gated output norm, and a zero-initialised
per-head output linear, so a fresh student equals sinks + sliding-window attention.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from reasonlab.errors import UserError
from reasonlab.systems.ahn.fla_kernels import fla_delta_rule, fla_mamba2, fla_ready

__all__ = [
    "AHNMemory",
    "ahn_parameter_count",
    "delta_rule_chunked",
    "delta_rule_reference",
    "mamba2_chunked",
    "mamba2_reference",
]

MemoryKind = Literal["deltanet", "gdn", "mamba2"]
KINDS: tuple[str, ...] = ("deltanet", "gdn", "mamba2")
NORM_EPS = 1e-5


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32, or float64 when the input already is."""
    return torch.promote_types(x.dtype, torch.float32)


def _initial_state(state: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    B, H, _, dk = k.shape
    if state is None:
        return k.new_zeros(B, H, dk, v.shape[-1])
    return state.to(k.dtype)


def delta_rule_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_decay: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Gated) delta rule, one token at a time: (outputs (B, H, N, dv), final state (B, H, dk, dv))."""
    out_dtype, dtype = q.dtype, _compute_dtype(q)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q, k, v, beta = (x.to(dtype) for x in (q, k, v, beta))
    g = torch.zeros_like(beta) if log_decay is None else log_decay.to(dtype)
    S = _initial_state(state, k, v)  # (B, H, dk, dv)
    outputs = []
    for i in range(q.shape[2]):
        k_i, v_i, q_i = k[:, :, i], v[:, :, i], q[:, :, i]  # (B, H, d)
        # exp(g) (I - beta k k^T) S + beta k v^T, written as a correction of the decayed state
        decayed = g[:, :, i, None, None].exp() * S
        recalled = torch.einsum("bhk,bhkv->bhv", k_i, decayed)  # what the memory returns for k_i
        S = decayed + beta[:, :, i, None, None] * torch.einsum("bhk,bhv->bhkv", k_i, v_i - recalled)
        outputs.append(scale * torch.einsum("bhkv,bhk->bhv", S, q_i))
    return torch.stack(outputs, dim=2).to(out_dtype), S


def mamba2_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dt: torch.Tensor,
    a_log: torch.Tensor,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mamba2 (B = k, C = q, x = v, no D skip), one token at a time: (outputs (B, H, N, dv), final state)."""
    out_dtype, dtype = q.dtype, _compute_dtype(q)
    q, k, v, dt = (x.to(dtype) for x in (q, k, v, dt))
    A = -a_log.to(dtype).exp()[:, None, None]  # (H, 1, 1)
    S = _initial_state(state, k, v)
    outputs = []
    for i in range(q.shape[2]):
        dt_i = dt[:, :, i, None, None]  # (B, H, 1, 1)
        S = (dt_i * A).exp() * S + dt_i * torch.einsum("bhk,bhv->bhkv", k[:, :, i], v[:, :, i])
        outputs.append(torch.einsum("bhkv,bhk->bhv", S, q[:, :, i]))
    return torch.stack(outputs, dim=2).to(out_dtype), S


def _chunks(x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, H, N, ...) -> (B, H, n_chunks, chunk_size, ...), zero-padded at the end (a zero token leaves S alone)."""
    B, H, N = x.shape[:3]
    n_chunks = -(-N // chunk_size)
    pad = [0, 0] * (x.dim() - 3) + [0, n_chunks * chunk_size - N]
    return F.pad(x, pad).reshape(B, H, n_chunks, chunk_size, *x.shape[3:])


def _decay_matrix(g: torch.Tensor) -> torch.Tensor:
    """exp(g_{j+1} + ... + g_t) for j <= t, else 0: (..., C) log decays -> (..., C, C).

    The segment sums are summed directly, not taken as differences of cumulative sums, which lose float32
    precision once the decay accumulated in a chunk is large (Mamba2's segsum)."""
    C = g.shape[-1]
    later = torch.ones(C, C, dtype=torch.bool, device=g.device).tril(-1)  # [i, j]: i > j
    segment = g[..., :, None].expand(*g.shape, C).masked_fill(~later, 0.0).cumsum(-2)  # [t, j]: sum_{j<i<=t} g_i
    return segment.masked_fill(later.T, float("-inf")).exp()


def _scan_chunks(
    q: torch.Tensor,
    k: torch.Tensor,
    G: torch.Tensor,
    decay: torch.Tensor,
    values: torch.Tensor,
    state: torch.Tensor,
    state_correction: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carry the state across chunks, with S_t = Gamma_t S_0 + sum_{j<=t} (Gamma_t / Gamma_j) k_j u_j^T inside one.

    q, k (B, H, n, C, dk); G, the cumulative log decay in the chunk (B, H, n, C); values (B, H, n, C, dv).
    The written vectors are u = values - state_correction @ S_0 (the delta rule's part that depends on S_0)."""
    attention = (q @ k.transpose(-1, -2)) * decay  # (B, H, n, C, C), inclusive
    from_start = G.exp()[..., None]  # (B, H, n, C, 1)
    to_end = k * decay[..., -1, :, None]  # (B, H, n, C, dk): k_j decayed to the end of its chunk
    chunk_decay = G[..., -1].exp()[..., None, None]  # (B, H, n, 1, 1)
    S = state
    outputs = []
    for c in range(q.shape[2]):
        u = values[:, :, c] if state_correction is None else values[:, :, c] - state_correction[:, :, c] @ S
        outputs.append(from_start[:, :, c] * (q[:, :, c] @ S) + attention[:, :, c] @ u)  # (B, H, C, dv)
        S = chunk_decay[:, :, c] * S + to_end[:, :, c].transpose(-1, -2) @ u
    return torch.stack(outputs, dim=2).flatten(2, 3), S


def _check_chunk_size(chunk_size: int) -> None:
    if chunk_size < 1:
        raise UserError(f"chunk_size={chunk_size} must be a positive number of tokens: use e.g. 64")


def delta_rule_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    log_decay: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    scale: float | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`delta_rule_reference` in chunks: a triangular solve per chunk (WY form), the state carried between."""
    _check_chunk_size(chunk_size)
    out_dtype, dtype, N = q.dtype, _compute_dtype(q), q.shape[2]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    g = torch.zeros_like(beta, dtype=dtype) if log_decay is None else log_decay.to(dtype)
    q, k, v, beta, g = (_chunks(x.to(dtype), chunk_size) for x in (q.to(dtype) * scale, k, v, beta, g))
    G = g.cumsum(-1)  # (B, H, n, C)
    decay = _decay_matrix(g)
    # u_t = beta_t (v_t - Gamma_t k_t^T S_0 - sum_{j<t} (Gamma_t / Gamma_j) (k_t . k_j) u_j): a unit lower
    # triangular system (I + diag(beta) A) u = beta v - beta Gamma k S_0, solved for both right-hand sides at once
    A = ((k @ k.transpose(-1, -2)) * decay).tril(-1)
    system = torch.eye(chunk_size, dtype=dtype, device=q.device) + beta[..., None] * A
    rhs = torch.cat([beta[..., None] * v, (beta * G.exp())[..., None] * k], dim=-1)
    solved = torch.linalg.solve_triangular(system, rhs, upper=False, unitriangular=True)
    values, correction = solved.split([v.shape[-1], k.shape[-1]], dim=-1)
    o, S = _scan_chunks(q, k, G, decay, values, _initial_state(state, k[:, :, 0], v[:, :, 0]), correction)
    return o[:, :, :N].to(out_dtype), S


def mamba2_chunked(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    dt: torch.Tensor,
    a_log: torch.Tensor,
    state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`mamba2_reference` in chunks (SSD): the segment-sum decay matrix inside a chunk, the state between."""
    _check_chunk_size(chunk_size)
    out_dtype, dtype, N = q.dtype, _compute_dtype(q), q.shape[2]
    dt = dt.to(dtype)
    g = dt * -a_log.to(dtype).exp()[:, None]  # (B, H, N) log decay dt * A
    q, k, values, g = (_chunks(x.to(dtype), chunk_size) for x in (q, k, dt[..., None] * v.to(dtype), g))
    G = g.cumsum(-1)
    o, S = _scan_chunks(q, k, G, _decay_matrix(g), values, _initial_state(state, k[:, :, 0], values[:, :, 0]))
    return o[:, :, :N].to(out_dtype), S


def _softplus_inverse(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + NORM_EPS) * weight


class AHNMemory(nn.Module):
    """One layer's AHN: write gates from the evicted tokens, a recurrent state, a gated readout for the query tokens.

    Parameters (d = d_model, H heads of dh; spec section 1):
      deltanet: beta_proj (d -> H), gate_proj (d -> H), norm_weight (dh, the RMSNorm_dh gamma shared by heads),
                out_proj (H, dh, dh) zeros
      gdn:      deltanet's plus decay_proj (d -> H), a_log (H) = log U(0, 16), dt_bias (H) = softplus^-1(dt),
                dt log-uniform in [1e-3, 0.1] floored at 1e-4
      mamba2:   dt_proj (d -> H, with bias), dt_bias (H) = 1, a_log (H) = log(1..H), gate_proj (d -> H, with bias),
                norm_weight (H * dh), out_proj (H, dh, dh) zeros
    The projections have no bias unless stated and nn.Linear's default init; out_proj[h] maps head h's dh inputs to
    its dh outputs.
    """

    def __init__(self, kind: MemoryKind, d_model: int, n_heads: int, head_dim: int, chunk_size: int = 64) -> None:
        super().__init__()
        if kind not in KINDS:
            raise UserError(f"AHN memory kind {kind!r} is unknown: use one of {', '.join(KINDS)}")
        _check_chunk_size(chunk_size)
        self.kind, self.n_heads, self.head_dim, self.chunk_size = kind, n_heads, head_dim, chunk_size
        H = n_heads
        if kind == "mamba2":
            self.dt_proj = nn.Linear(d_model, H)
            self.dt_bias = nn.Parameter(torch.ones(H))
            self.a_log = nn.Parameter(torch.arange(1, H + 1, dtype=torch.float32).log())
            self.gate_proj = nn.Linear(d_model, H)
            self.norm_weight = nn.Parameter(torch.ones(H * head_dim))
        else:
            self.beta_proj = nn.Linear(d_model, H, bias=False)
            self.gate_proj = nn.Linear(d_model, H, bias=False)
            self.norm_weight = nn.Parameter(torch.ones(head_dim))
        if kind == "gdn":
            self.decay_proj = nn.Linear(d_model, H, bias=False)
            self.a_log = nn.Parameter(torch.empty(H).uniform_(0, 16).log())
            dt = torch.empty(H).uniform_(math.log(1e-3), math.log(0.1)).exp().clamp(min=1e-4)
            self.dt_bias = nn.Parameter(_softplus_inverse(dt))
        # zero: a fresh memory adds nothing, so the student starts as sinks + sliding-window attention
        self.out_proj = nn.Parameter(torch.zeros(H, head_dim, head_dim))

    @property
    def n_gates(self) -> int:
        """Write-gate scalars per head and token: beta (deltanet), beta and log decay (gdn), dt (mamba2)."""
        return 2 if self.kind == "gdn" else 1

    def write_gates(self, x: torch.Tensor) -> torch.Tensor:
        """Gates (B, H, N, n_gates) from normed hidden states x (B, N, d); computable when a token arrives, so a
        decoder caches them and uses them when the token leaves the window."""
        if self.kind == "mamba2":
            dt = F.softplus(self._fp32(self.dt_proj(x)) + self.dt_bias)  # (B, N, H), > 0
            gates = [dt]
        else:
            gates = [self._fp32(self.beta_proj(x)).sigmoid()]  # beta in (0, 1)
        if self.kind == "gdn":
            dt = F.softplus(self._fp32(self.decay_proj(x)) + self.dt_bias)
            gates.append(-self.a_log.to(dt.dtype).exp() * dt)  # log decay g <= 0
        return torch.stack(gates, dim=-1).transpose(1, 2)  # (B, H, N, n_gates)

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        x_evicted: torch.Tensor,
        x_query: torch.Tensor,
        state: torch.Tensor | None = None,
        chunked: bool = True,
        write_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the N evicted tokens (k, v (B, H, N, dh), normed hidden x_evicted (B, N, d)) and read after each
        with the N query tokens (q (B, H, N, dh), x_query (B, N, d)): (m (B, N, H * dh), state (B, H, dh, dh)).
        `write_mask` (B, N) bool: False steps write nothing (their gates are zeroed: no decay, no write), e.g.
        padding or sink columns of a batch."""
        self._check_shapes(q, k, v, x_evicted, x_query)
        gates = self.write_gates(x_evicted)
        if write_mask is not None:
            gates = gates * write_mask[:, None, :, None]
        o, state = self._recur(q, k, v, gates, state, chunked)
        return self._read_out(o, x_query), state

    def step(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        gates: torch.Tensor,
        x_query: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One decode step: q, k, v (B, H, dh), the evicted token's cached gates (B, H, n_gates), x_query (B, d):
        (m (B, H * dh), state); equals `forward` on the concatenated sequence."""
        o, state = self._recur(q[:, :, None], k[:, :, None], v[:, :, None], gates[:, :, None], state, chunked=False)
        return self._read_out(o, x_query[:, None])[:, 0], state

    def _recur(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        gates: torch.Tensor,
        state: torch.Tensor | None,
        chunked: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q, k = F.normalize(self._fp32(q), dim=-1), F.normalize(self._fp32(k), dim=-1)
        v = self._fp32(v)
        if self.kind == "mamba2":
            if chunked and fla_ready(q):  # flash-linear-attention's fused kernel (CUDA, fla-core installed)
                return fla_mamba2(q, k, v, gates[..., 0], self.a_log, state)
            if chunked:
                return mamba2_chunked(q, k, v, gates[..., 0], self.a_log, state, self.chunk_size)
            return mamba2_reference(q, k, v, gates[..., 0], self.a_log, state)
        log_decay = gates[..., 1] if self.kind == "gdn" else None
        if chunked and fla_ready(q):
            return fla_delta_rule(q, k, v, gates[..., 0], log_decay, state)
        if chunked:
            return delta_rule_chunked(q, k, v, gates[..., 0], log_decay, state, chunk_size=self.chunk_size)
        return delta_rule_reference(q, k, v, gates[..., 0], log_decay, state)

    def _read_out(self, o: torch.Tensor, x_query: torch.Tensor) -> torch.Tensor:
        """o (B, H, N, dh) -> m (B, N, H * dh): gated RMSNorm, then the per-head output linear."""
        B, H, N, dh = o.shape
        gate = F.silu(self._fp32(self.gate_proj(x_query))).transpose(1, 2)[..., None]  # (B, H, N, 1)
        if self.kind == "mamba2":
            # RMSNorm over all H * dh channels of the gated output
            gated = (o * gate).transpose(1, 2).reshape(B, N, H * dh)
            h = _rms_norm(gated, self.norm_weight.to(o.dtype)).view(B, N, H, dh)
        else:
            h = (_rms_norm(o, self.norm_weight.to(o.dtype)) * gate).transpose(1, 2)  # (B, N, H, dh)
        m = torch.einsum("bnhi,hij->bnhj", h, self.out_proj.to(h.dtype))
        return m.reshape(B, N, H * dh).to(x_query.dtype)

    @staticmethod
    def _fp32(x: torch.Tensor) -> torch.Tensor:
        return x.to(_compute_dtype(x))

    def _check_shapes(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, x_evicted: torch.Tensor,
                      x_query: torch.Tensor) -> None:
        B, N = q.shape[0], q.shape[2]
        for name, tensor in (("q", q), ("k", k), ("v", v)):
            if tuple(tensor.shape) != (B, self.n_heads, N, self.head_dim):
                raise UserError(f"AHN memory {name} has shape {tuple(tensor.shape)}: expected (B, H, N, dh) = "
                                f"({B}, {self.n_heads}, {N}, {self.head_dim})")
        for name, tensor in (("x_evicted", x_evicted), ("x_query", x_query)):
            if tuple(tensor.shape[:2]) != (B, N):
                raise UserError(f"AHN memory {name} has shape {tuple(tensor.shape)}: expected (B, N, d) with "
                                f"B, N = {B}, {N}")


def ahn_parameter_count(kind: MemoryKind, n_layers: int, d_model: int, n_heads: int, head_dim: int,
                        include_vectors: bool = True) -> int:
    """Trainable parameters of one AHNMemory per layer: matrices (d -> H projections and the H dh x dh output
    linear) plus, if `include_vectors`, the norm weight, biases, a_log and dt_bias (exactly the module's count).

    Matrices only give the spec's formulas: deltanet 2dH + H dh^2, gdn 3dH + H dh^2, mamba2 2dH + H dh^2 per layer.
    Vectors add dh (deltanet), dh + 2H (gdn), H dh + 4H (mamba2)."""
    if kind not in KINDS:
        raise UserError(f"AHN memory kind {kind!r} is unknown: use one of {', '.join(KINDS)}")
    d, H, dh = d_model, n_heads, head_dim
    projections = {"deltanet": 2, "gdn": 3, "mamba2": 2}[kind]
    vectors = {"deltanet": dh, "gdn": dh + 2 * H, "mamba2": H * dh + 4 * H}[kind]
    return n_layers * (projections * d * H + H * dh * dh + (vectors if include_vectors else 0))
