"""AHN self-distillation (spec section 3): the frozen base with full causal attention is the teacher, the same
weights under sinks + SWA with the AHN memories are the student; only the memories train, on the forward KL at
the positions at or beyond the budget T (and, with labels, only where a label counts). The budget is drawn per
batch so the memory learns for every window size it will meet."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from reasonlab.errors import UserError
from reasonlab.systems.ahn.model import AHNStudent, causal_logits
from reasonlab.train.distill import forward_kl

__all__ = ["BudgetSampler", "distillation_loss", "teacher_logits"]


@dataclass(frozen=True)
class BudgetSampler:
    """Budgets T and sink counts s to draw from: T < length (and T > length * min_share: the paper's rule is
    length/8 < T, min_share 1/8), s <= T/2, W = T - s (the paper: T in {32, 64, ..., 8192}, s in {0, 32, 64, 128,
    512, 2048, 4096}; the CPU plan of spec 8.3: T in {16, 32, 64} at length 256, every one drawn)."""

    budgets: Sequence[int] = (16, 32, 64)
    sinks: Sequence[int] = (4,)
    min_share: float = 0.0

    def draw(self, rng: random.Random, length: int) -> tuple[int, int]:
        """(sinks, window) for a batch of sequences of `length` tokens."""
        budgets = [t for t in self.budgets if length * self.min_share < t < length]
        budgets = budgets or [t for t in self.budgets if t < length]
        if not budgets:
            raise UserError(f"no budget in {list(self.budgets)} is shorter than the {length}-token sequences: "
                            "give smaller budgets or longer sequences")
        budget = rng.choice(budgets)
        sinks = [s for s in self.sinks if s <= budget // 2] or [0]
        s = rng.choice(sinks)
        return s, budget - s


def teacher_logits(student: AHNStudent, tokens: torch.Tensor) -> torch.Tensor:
    """The frozen base with full causal attention (no gradients)."""
    with torch.no_grad():
        return causal_logits(student.base, tokens)


def distillation_loss(student: AHNStudent, tokens: torch.Tensor, sinks: int, window: int,
                      label_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward KL of the student (budget sinks + window) against the teacher at positions >= T."""
    student.set_budget(sinks, window)
    target = teacher_logits(student, tokens)
    logits = student(tokens)
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    mask = (positions >= sinks + window).expand_as(tokens)
    if label_mask is not None:
        mask = mask & label_mask
    loss = forward_kl(target, logits, mask)
    return loss, {"budget": float(sinks + window), "positions": float(mask.sum())}
