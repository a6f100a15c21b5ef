"""Delethink's prompt text: the few-shot completion prompt for zero-shot tracing of a base model on templated
arithmetic (no think block: an answer marker and stop strings instead). The tinylm walk needs no prompt text."""

from __future__ import annotations

from typing import Protocol

__all__ = ["ANSWER_MARKER", "ARITHMETIC_STOP", "FEW_SHOT", "arithmetic_prompt"]

ANSWER_MARKER = "Answer:"
ARITHMETIC_STOP = ["\n\n", "Problem:"]
FEW_SHOT = [([3, 4, 2], "3 + 4 = 7. 7 + 2 = 9."), ([5, 1, 3, 2], "5 + 1 = 6. 6 + 3 = 9. 9 + 2 = 11.")]


class HasOperands(Protocol):
    operands: tuple[int, ...]


def _problem(operands: list[int] | tuple[int, ...]) -> str:
    return f"Problem: {' + '.join(str(x) for x in operands)}\nWork:"


def arithmetic_prompt(task: HasOperands) -> str:
    """Few-shot completion prompt: worked sums, then the problem; the model writes steps and 'Answer: N'."""
    shots = [f"{_problem(ops)} {work} {ANSWER_MARKER} {sum(ops)}" for ops, work in FEW_SHOT]
    return "\n\n".join([*shots, _problem(task.operands)])
