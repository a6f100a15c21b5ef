"""Stablemax cross-entropy and the TRM loss (per-sequence token mean + 0.5 * halting BCE).

Stablemax (from "Grokking at the edge of numerical stability", used by TRM): s(v) = v + 1 for v >= 0,
1 / (1 - v) otherwise; p_i = s(v_i) / sum_j s(v_j), computed in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["IGNORE", "LossOutput", "log_stablemax", "stablemax", "stablemax_cross_entropy", "trm_loss"]

IGNORE = -100


def stablemax(v: torch.Tensor) -> torch.Tensor:
    # each branch only sees its own half-line: with the plain where(v < 0, 1/(1-v), v+1) a logit of exactly
    # 1.0 makes the unused branch's gradient inf and 0 * inf = NaN (the official code adds eps 1e-30 instead)
    return torch.where(v < 0, 1.0 / (1.0 - v.clamp(max=0.0)), v.clamp(min=0.0) + 1.0)


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    s = stablemax(logits)
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token loss (B, L) in float64; IGNORE labels give 0."""
    logprobs = log_stablemax(logits.double(), dim=-1)
    valid = labels != IGNORE
    picked = logprobs.gather(-1, torch.where(valid, labels, 0).unsqueeze(-1)).squeeze(-1)
    return -torch.where(valid, picked, torch.zeros_like(picked))


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="none"
    ).view(labels.shape)


@dataclass
class LossOutput:
    total: torch.Tensor  # scalar: summed over the batch (caller divides by the global batch size)
    lm: torch.Tensor  # scalar, summed per-sequence token means
    halt: torch.Tensor  # scalar, summed BCE
    correct: torch.Tensor  # (B,) bool: whole answer right (the halting target)
    token_accuracy: torch.Tensor  # (B,) fraction of valid tokens right


def trm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    q_halt: torch.Tensor,
    halt_weight: float = 0.5,
    loss_type: str = "stablemax",
) -> LossOutput:
    """Token CE averaged over each sequence's valid tokens and summed over the batch, + halt_weight * BCE.

    The halting target is 1 exactly when the argmax answer is right on every valid token.
    """
    if loss_type == "stablemax":
        per_token = stablemax_cross_entropy(logits, labels)
    elif loss_type == "softmax":
        per_token = softmax_cross_entropy(logits, labels)
    else:
        raise ValueError(f"loss_type must be 'stablemax' or 'softmax', got {loss_type!r}")
    valid = labels != IGNORE  # (B, L)
    counts = valid.sum(-1).clamp_min(1)  # (B,)
    lm = (per_token.sum(-1) / counts).sum()
    with torch.no_grad():
        hits = (logits.argmax(-1) == labels) & valid
        correct = hits.sum(-1) == valid.sum(-1)
        token_accuracy = hits.sum(-1) / counts
    halt = F.binary_cross_entropy_with_logits(q_halt, correct.to(q_halt.dtype), reduction="sum")
    total = lm.to(q_halt.dtype) + halt_weight * halt
    return LossOutput(total, lm.detach(), halt.detach(), correct, token_accuracy)
