"""Building blocks of the TRM/HRM network: weightless RMSNorm, SwiGLU, RoPE attention, the MLP token mixer.

As in the official code (SamsungSAILMontreal/TinyRecursiveModels, layers.py): no biases, LeCun truncated-
normal init, post-norm blocks. Each fast piece has a plain reference beside it that the tests compare it
against: attention (torch SDPA / `attention_reference`, explicit softmax), RoPE (a signed sine table /
`Rotary.reference`, rotate-half) and RMSNorm (`F.rms_norm` / `rms_norm_reference`); `fast=False` on a
Block selects the references. Under `torch.inference_mode` (the no-grad recursion cycles) SwiGLU and the residual
adds write into buffers they own instead of allocating new ones; with autograd on they run out of place.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Attention",
    "Block",
    "MLPMixer",
    "ReasoningModule",
    "Rotary",
    "SwiGLU",
    "attention_reference",
    "rms_norm",
    "rms_norm_reference",
    "swiglu_inner_size",
    "trunc_normal_",
]

# std of a standard normal truncated at +-2: scaling by its inverse makes the truncated std equal `std`
_TRUNC2_STD = 0.8796256610342398


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """Normal init truncated at +-2 sigma whose std after truncation is `std` (JAX-style, as the official code)."""
    scaled = std / _TRUNC2_STD
    with torch.no_grad():
        return nn.init.trunc_normal_(tensor, mean=0.0, std=scaled, a=-2 * scaled, b=2 * scaled)


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm without a weight, computed in float32 over the last axis: `F.rms_norm` (one fused kernel on CUDA),
    and on CPU with autograd `_CpuRMSNorm`, whose backward makes three passes over memory (torch's composite
    backward makes several more)."""
    if x.device.type == "cpu" and torch.is_grad_enabled() and not torch.compiler.is_compiling():
        return _CpuRMSNorm.apply(x.float(), eps).to(x.dtype)
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


class _CpuRMSNorm(torch.autograd.Function):
    """y = x * r with r = 1 / sqrt(mean(x^2) + eps) per row; saves y and r, and dx = r * (g - y * mean(g * y))."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:
        # one reduction pass (vector_norm) and one multiply; no x^2 buffer
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        r = torch.rsqrt(norm.square_().div_(x.shape[-1]).add_(eps))
        y = x * r
        ctx.save_for_backward(y, r)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        y, r = ctx.saved_tensors
        mean = torch.linalg.vecdot(grad, y, dim=-1).unsqueeze(-1).div_(y.shape[-1])  # mean(g * y) per row
        return torch.addcmul(grad, y, mean, value=-1.0).mul_(r), None


def rms_norm_reference(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) in float32, written out as in the official code."""
    dtype = x.dtype
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def swiglu_inner_size(hidden: int, expansion: float, multiple: int) -> int:
    """round(expansion * 2/3 * hidden), rounded up to a multiple of `multiple` (256 in the paper)."""
    inner = round(expansion * hidden * 2 / 3)
    return -(-inner // multiple) * multiple


class Linear(nn.Linear):
    """Linear layer with LeCun truncated-normal init (sigma = 1/sqrt(fan_in)), no bias by default."""

    def __init__(self, fan_in: int, fan_out: int, bias: bool = False) -> None:
        super().__init__(fan_in, fan_out, bias=bias)
        trunc_normal_(self.weight, std=1.0 / math.sqrt(fan_in))
        if bias:
            nn.init.zeros_(self.bias)


class SwiGLU(nn.Module):
    """W_down(silu(W_gate h) * W_up h), gate and up fused in one matmul; `fast=False` is the plain autograd."""

    def __init__(self, hidden: int, expansion: float, multiple: int = 256, fast: bool = True) -> None:
        super().__init__()
        inner = swiglu_inner_size(hidden, expansion, multiple)
        self.gate_up = Linear(hidden, 2 * inner)
        self.down = Linear(inner, hidden)
        self.fast = fast

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gate_up = self.gate_up(h)
        if self.fast and _may_write_in_place():  # nothing is saved for backward: gate in place, one buffer not three
            gate, up = gate_up.chunk(2, dim=-1)
            return self.down(F.silu(gate, inplace=True).mul_(up))
        if self.fast and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            return self.down(_SiluGate.apply(gate_up))
        gate, up = gate_up.chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class _SiluGate(torch.autograd.Function):
    """silu(gate) * up from the fused gate-and-up output. Saves that output only (autograd would also keep
    silu(gate)) and writes both halves of the gradient straight into one buffer (autograd concatenates them)."""

    @staticmethod
    def forward(ctx, gate_up: torch.Tensor) -> torch.Tensor:
        gate, up = gate_up.chunk(2, dim=-1)
        ctx.save_for_backward(gate_up)
        return F.silu(gate).mul_(up)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (gate_up,) = ctx.saved_tensors
        gate, up = gate_up.chunk(2, dim=-1)
        grad_gate_up = torch.empty_like(gate_up)
        grad_gate, grad_up = grad_gate_up.chunk(2, dim=-1)
        torch.mul(F.silu(gate), grad, out=grad_up)  # d/d up = silu(gate)
        torch.ops.aten.silu_backward.grad_input(grad * up, gate, grad_input=grad_gate)  # d/d gate: silu'(gate) up
        return grad_gate_up


class Rotary(nn.Module):
    """RoPE tables (theta = 10000) for positions 0..seq_len-1, rotate-half convention."""

    def __init__(self, head_dim: int, seq_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        freqs = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)  # (S, hd/2)
        emb = torch.cat([freqs, freqs], dim=-1)  # (S, hd)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        # rotate_half(x) * sin = swap_halves(x) * [-sin, sin]: the sign lives in the table, not in a neg per call
        half = head_dim // 2
        self.register_buffer("signed_sin", torch.cat([-emb[:, :half].sin(), emb[:, half:].sin()], -1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (..., S, hd), e.g. q and k stacked as (2, B, heads, S, hd)
        half = x.shape[-1] // 2
        swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)
        return x * self.cos.to(x.dtype) + swapped * self.signed_sin.to(x.dtype)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """x * cos + rotate_half(x) * sin, written as in the official code."""
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * self.cos.to(x.dtype) + rotated * self.sin.to(x.dtype)


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Plain non-causal softmax attention in float32: (B, h, S, hd) x3 -> (B, h, S, hd)."""
    scores = q.float() @ k.float().transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, h, S, S)
    return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)


class Attention(nn.Module):
    """Non-causal multi-head self-attention with fused QKV and RoPE; `fast=False` uses the references
    (explicit softmax, RoPE as the official code writes it)."""

    def __init__(self, hidden: int, heads: int, seq_len: int, fast: bool = True) -> None:
        super().__init__()
        assert hidden % heads == 0, "hidden size must be divisible by the number of heads"
        self.heads, self.head_dim, self.fast = heads, hidden // heads, fast
        self.qkv = Linear(hidden, 3 * hidden)
        self.out = Linear(hidden, hidden)
        self.rotary = Rotary(self.head_dim, seq_len)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, seq, hidden = h.shape
        qkv = self.qkv(h).view(batch, seq, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.fast:
            q, k = self.rotary(qkv[:2])  # one rotation of q and k together: (2, B, heads, S, hd)
            y = F.scaled_dot_product_attention(q, k, qkv[2], is_causal=False)
        else:
            q, k = self.rotary.reference(qkv[0]), self.rotary.reference(qkv[1])  # (B, heads, S, hd)
            y = attention_reference(q, k, qkv[2])
        return self.out(y.transpose(1, 2).reshape(batch, seq, hidden))


class MLPMixer(nn.Module):
    """TRM-MLP token mixer: SwiGLU over the position axis (size seq_len); residual + norm over positions."""

    def __init__(self, seq_len: int, expansion: float, multiple: int, eps: float, fast: bool = True) -> None:
        super().__init__()
        self.mlp = SwiGLU(seq_len, expansion, multiple, fast)
        self.eps, self.fast = eps, fast
        self.norm = rms_norm if fast else rms_norm_reference

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # the residual and norm happen here, over positions, so Block skips its own for this mixer
        t = h.transpose(1, 2)  # (B, D, S)
        t = self.norm(_residual(t, self.mlp(t), self.fast), self.eps)
        return t.transpose(1, 2)  # (B, S, D)


class Block(nn.Module):
    """Post-norm block: h = norm(h + mixer(h)); h = norm(h + SwiGLU(h)); `fast=False` uses the references."""

    def __init__(
        self, hidden: int, heads: int, seq_len: int, mixer: str, expansion: float, multiple: int, eps: float,
        fast: bool = True,
    ) -> None:
        super().__init__()
        if mixer == "attention":
            self.mixer: nn.Module = Attention(hidden, heads, seq_len, fast)
        elif mixer == "mlp":
            self.mixer = MLPMixer(seq_len, expansion, multiple, eps, fast)
        else:
            raise ValueError(f"mixer must be 'attention' or 'mlp', got {mixer!r}")
        self.mixer_kind = mixer
        self.mlp = SwiGLU(hidden, expansion, multiple, fast)
        self.eps, self.fast = eps, fast
        self.norm = rms_norm if fast else rms_norm_reference

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.mixer(h) if self.mixer_kind == "mlp" else self.norm(_residual(h, self.mixer(h), self.fast), self.eps)
        return self.norm(_residual(h, self.mlp(h), self.fast), self.eps)


def _residual(h: torch.Tensor, out: torch.Tensor, fast: bool) -> torch.Tensor:
    """h + out; on the fast path in inference mode added into `out` (a fresh sublayer output nothing else holds)."""
    return out.add_(h) if fast and _may_write_in_place() else h + out


def _may_write_in_place() -> bool:
    """Eager inference mode: no autograd to save inputs for. Compiled code fuses these ops itself; the compiling
    check comes first so that dynamo never traces the inference-mode query (that broke the graph, and the pieces
    then failed to compile)."""
    return not torch.compiler.is_compiling() and torch.is_inference_mode_enabled()


class ReasoningModule(nn.Module):
    """The network `net(h, injection)`: add the injection, then run the blocks."""

    def __init__(self, blocks: list[Block]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, h: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        h = h + injection
        for block in self.blocks:
            h = block(h)
        return h
