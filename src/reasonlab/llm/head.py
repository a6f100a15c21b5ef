"""The log-probability of each target token through a large output head, one block of the vocabulary at a time.

`log_softmax(softcap(hidden @ weight.T) / scale)[target]` for each row of `hidden`, without the (rows x vocabulary)
logits ever existing whole. Gemma's head has 262,144 rows: 480 completion tokens (an SFT step of 8 pitches) make
480 MB of float32 logits, and their log-softmax, its gradient and the casts between them about 3 GB more, every
step. Allocations that large come from fresh pages of the system (glibc maps anything above 32 MB on its own), and a
one-thread step spent 40% of its time in the kernel faulting them in. Here the forward pass keeps a running
log-sum-exp over blocks of the vocabulary and picks each target's logit from its block; the backward pass
recomputes each block's logits, turns them into the gradient of the block (softmax minus the one-hot target) and
multiplies it back through that block of the weight. One more pass of the head's matrix multiply, blocks of a few
MB instead of GBs. Only for a head no gradient reaches (frozen, as under LoRA).

    values = token_logprobs(hidden, head.weight, targets)            # (N,), differentiable in hidden
    # the same numbers as the whole-vocabulary reference:
    reference = F.log_softmax(F.linear(hidden, head.weight).float(), -1).gather(-1, targets[:, None])[:, 0]
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["BLOCK_BYTES", "token_logprobs"]

BLOCK_BYTES = 16 * 2**20  # float32 logits of one block: 16 MB, under glibc's largest mmap threshold (32 MB)
_MIN_BLOCK = 1024


def block_rows(rows: int, vocabulary: int) -> int:
    """Vocabulary entries per block: as many as keep a block's float32 logits for `rows` rows near BLOCK_BYTES."""
    return max(_MIN_BLOCK, min(vocabulary, BLOCK_BYTES // (4 * max(1, rows))))


def _block_scores(hidden: torch.Tensor, weight: torch.Tensor, softcap: float | None,
                  scale: float) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One block's scores in float32 (logits, soft-capped, over the temperature) and, with a soft-cap, the tanh."""
    logits = (hidden @ weight.T).float()  # computed in the weight's dtype (bf16 under autocast), as nn.Linear does
    squashed = None
    if softcap is not None:
        squashed = torch.tanh(logits / softcap)
        logits = squashed * softcap
    if scale != 1.0:
        logits = logits / scale
    return logits, squashed


class _TokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None,
                scale: float) -> torch.Tensor:
        rows, vocabulary = hidden.shape[0], weight.shape[0]
        block = block_rows(rows, vocabulary)
        running_max = hidden.new_full((rows,), float("-inf"), dtype=torch.float32)
        running_sum = hidden.new_zeros((rows,), dtype=torch.float32)
        picked = hidden.new_zeros((rows,), dtype=torch.float32)
        for start in range(0, vocabulary, block):
            scores, _ = _block_scores(hidden, weight[start : start + block], softcap, scale)
            block_max = scores.max(dim=-1).values
            new_max = torch.maximum(running_max, block_max)
            running_sum = running_sum * torch.exp(running_max - new_max) + torch.exp(
                scores - new_max[:, None]).sum(dim=-1)
            running_max = new_max
            inside = (targets >= start) & (targets < start + scores.shape[1])
            where = inside.nonzero().squeeze(-1)
            picked[where] = scores[where, targets[where] - start]
        log_total = running_max + torch.log(running_sum)
        ctx.save_for_backward(hidden, weight, targets, log_total)
        ctx.softcap, ctx.scale, ctx.block = softcap, scale, block
        return picked - log_total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        with torch.autocast(grad.device.type, enabled=False):  # the dtypes are explicit, as in forward
            return _TokenLogprobs._backward(ctx, grad)

    @staticmethod
    def _backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        hidden, weight, targets, log_total = ctx.saved_tensors
        grad = grad.float()
        grad_hidden = torch.zeros(hidden.shape, dtype=torch.float32, device=hidden.device)
        for start in range(0, weight.shape[0], ctx.block):
            block_weight = weight[start : start + ctx.block]
            scores, squashed = _block_scores(hidden, block_weight, ctx.softcap, ctx.scale)
            # d value / d score = one-hot(target) - softmax; times the incoming gradient
            grad_scores = torch.exp(scores - log_total[:, None]).mul_(-grad[:, None])
            inside = (targets >= start) & (targets < start + scores.shape[1])
            where = inside.nonzero().squeeze(-1)
            grad_scores[where, targets[where] - start] += grad[where]
            if ctx.scale != 1.0:
                grad_scores /= ctx.scale
            if squashed is not None:
                grad_scores *= 1 - squashed * squashed
            grad_hidden += (grad_scores.to(block_weight.dtype) @ block_weight).float()
        return grad_hidden.to(hidden.dtype), None, None, None, None


def token_logprobs(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None,
                   scale: float = 1.0) -> torch.Tensor:
    """log softmax(softcap(hidden @ weight.T) / scale)[target] per row of `hidden` (N, D), for targets (N,), in
    float32; differentiable in `hidden` only (`weight`, (V, D), must not need a gradient). The matrix multiplies run
    in the dtype of `weight`: pass a bf16 weight for bf16 logits, as nn.Linear under autocast."""
    if weight.requires_grad and torch.is_grad_enabled():
        raise ValueError("token_logprobs: the head's weight needs a gradient; use the whole-vocabulary log-softmax")
    with torch.autocast(hidden.device.type, enabled=False):
        return _TokenLogprobs.apply(hidden.to(weight.dtype), weight.detach(), targets, softcap, scale)
