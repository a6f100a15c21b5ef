"""Every metric TRM reports: accuracy after each supervision step on a split, and ARC pass@k.

`evaluate` runs every supervision step without halting (as the official eval) and records, after each step k,
the fraction of puzzles fully right (exact) and of non-PAD tokens right (token): the accuracy-vs-step curve.
`halted_exact` reads each answer instead at its first step with q_halt > 0 (or the last). Under DDP,
`evaluate_split` scores this rank's rows and sums the counts over the ranks. ARC pass@k maps every augmented
variant's answer back to the task's frame, votes per test pair and scores the top k (`reasonlab.tasks.arc`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from reasonlab.systems.trm.data import GridData, TaskData
from reasonlab.systems.trm.losses import IGNORE
from reasonlab.systems.trm.model import RecursiveReasoner
from reasonlab.tasks import arc as arc_task
from reasonlab.train.distributed import all_reduce_sum

__all__ = ["EvalResult", "arc_pass_at_k", "evaluate", "evaluate_split", "score_arc"]


@dataclass
class EvalResult:
    exact_by_step: list[float]  # fraction of puzzles fully right after step k = 1..steps
    token_by_step: list[float]  # fraction of valid (non-PAD) tokens right after step k
    halted_exact: float  # exact accuracy reading each answer at its first step with q_halt > 0 (or the last)
    mean_halt_step: float
    count: int  # puzzles
    token_count: int = 0  # valid tokens
    predictions: torch.Tensor | None = None  # (N, L) argmax at the read step, if requested
    confidences: torch.Tensor | None = None  # (N,) sigmoid(q_halt) at the read step

    def exact_at(self, step: int) -> float:
        """Exact accuracy after `step` supervision steps (the last one when `step` is beyond the curve)."""
        return self.exact_by_step[min(step, len(self.exact_by_step)) - 1]

    def to_counts(self) -> dict[str, float]:
        """The result as sums over its rows, which add up across shards (`from_counts` inverts it)."""
        n, tokens = self.count, self.token_count
        return {
            "count": float(n), "token_count": float(tokens), "halted_right": self.halted_exact * n,
            "halt_steps": self.mean_halt_step * n,
            **{f"exact_{k}": value * n for k, value in enumerate(self.exact_by_step)},
            **{f"token_{k}": value * tokens for k, value in enumerate(self.token_by_step)},
        }

    @classmethod
    def from_counts(cls, counts: dict[str, float]) -> EvalResult:
        """Rates from (possibly summed) `to_counts` sums; predictions are not kept."""
        n, tokens = max(counts["count"], 1.0), max(counts["token_count"], 1.0)
        steps = sum(1 for key in counts if key.startswith("exact_"))
        return cls(
            exact_by_step=[counts[f"exact_{k}"] / n for k in range(steps)],
            token_by_step=[counts[f"token_{k}"] / tokens for k in range(steps)],
            halted_exact=counts["halted_right"] / n, mean_halt_step=counts["halt_steps"] / n,
            count=round(counts["count"]), token_count=round(counts["token_count"]),
        )


@torch.no_grad()
def evaluate(
    model: RecursiveReasoner,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    puzzle_ids: torch.Tensor,
    steps: int,
    batch_size: int = 256,
    keep_predictions: bool = False,
    read_step: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """Run `steps` supervision steps on every puzzle without halting; accuracy after each step.

    With `keep_predictions`, the argmax answers and halting confidences at `read_step` (default `steps`).
    `on_progress(done, total)` is called after every supervision step of every batch (units: batch x step)."""
    model.eval()
    device = next(model.parameters()).device
    read_step = read_step or steps
    exact = torch.zeros(steps, dtype=torch.float64)
    tokens = torch.zeros(steps, dtype=torch.float64)
    halted_hits, halt_steps, total_valid = 0.0, 0.0, 0
    preds, confs = [], []
    total_units, done_units = -(-len(inputs) // batch_size) * steps, 0
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size].to(device)  # (B, L)
        t = labels[start : start + batch_size].to(device)  # (B, L)
        ids = puzzle_ids[start : start + batch_size].to(device)  # (B,)
        valid = t != IGNORE
        total_valid += int(valid.sum())
        y, z = model.initial_state(len(x))
        halted_at = torch.full((len(x),), steps, dtype=torch.long, device=device)
        halted_right = torch.zeros(len(x), dtype=torch.bool, device=device)
        for k in range(steps):
            out = model(x, ids, y, z)
            y, z = out.y, out.z
            hits = (out.logits.argmax(-1) == t) & valid  # (B, L)
            right = hits.sum(-1) == valid.sum(-1)  # (B,)
            exact[k] += float(right.sum())
            tokens[k] += float(hits.sum())
            newly = (halted_at == steps) & ((out.q_halt > 0) | (k == steps - 1))
            halted_at = torch.where(newly, k + 1, halted_at)
            halted_right |= newly & right
            if keep_predictions and k == read_step - 1:
                preds.append(out.logits.argmax(-1).cpu())
                confs.append(torch.sigmoid(out.q_halt).cpu())
            done_units += 1
            if on_progress is not None:
                on_progress(done_units, total_units)
        halted_hits += float(halted_right.sum())
        halt_steps += float(halted_at.sum())
    n = max(len(inputs), 1)
    return EvalResult(
        exact_by_step=(exact / n).tolist(),
        token_by_step=(tokens / max(total_valid, 1)).tolist(),
        halted_exact=halted_hits / n,
        mean_halt_step=halt_steps / n,
        count=len(inputs),
        token_count=total_valid,
        predictions=torch.cat(preds) if preds else None,
        confidences=torch.cat(confs) if confs else None,
    )


def evaluate_split(
    model: RecursiveReasoner, data: GridData, steps: int, batch_size: int, rank: int = 0, world: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> EvalResult:
    """`evaluate` on this rank's shard (rows rank::world), its counts summed across the ranks."""
    shard = GridData(data.inputs[rank::world], data.labels[rank::world], data.puzzle_ids[rank::world])
    result = evaluate(model, shard.inputs, shard.labels, shard.puzzle_ids, steps, batch_size, on_progress=on_progress)
    if world == 1:
        return result
    return EvalResult.from_counts(all_reduce_sum(result.to_counts()))


def score_arc(
    puzzles: arc_task.ArcPuzzleSet, predictions: torch.Tensor, confidences: torch.Tensor, k: int = 2
) -> float:
    """pass@k of canvas predictions (N, 900), one per `puzzles.test` example, with halting confidences (N,)."""
    candidates: dict[tuple[str, int], list[tuple[np.ndarray, float]]] = {}
    for example, tokens, confidence in zip(puzzles.test, predictions, confidences, strict=True):
        _, augmentation = puzzles.identifiers[example.puzzle_id]
        grid = arc_task.decode_prediction(tokens.numpy(), augmentation)
        candidates.setdefault((example.task_id, example.test_index), []).append((grid, float(confidence)))
    ranked = {key: arc_task.vote(grids) for key, grids in candidates.items()}
    return arc_task.pass_at_k(ranked, puzzles.test_truth, k)


def arc_pass_at_k(model: RecursiveReasoner, task_data: TaskData, steps: int, batch_size: int, k: int = 2) -> float:
    """Predict every augmented ARC test input after `steps` supervision steps and score pass@k (`score_arc`)."""
    if task_data.arc is None:
        raise ValueError(f"arc_pass_at_k needs ARC task data, not {task_data.signature}")
    test = task_data.test
    result = evaluate(model, test.inputs, test.labels, test.puzzle_ids, steps, batch_size, keep_predictions=True)
    assert result.predictions is not None and result.confidences is not None
    return score_arc(task_data.arc, result.predictions, result.confidences, k)
