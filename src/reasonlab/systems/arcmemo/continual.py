"""The continual loop of spec section 6: iteration-major passes over the tasks, batches of `k` that share one
memory snapshot, writes gated on the TRAIN pairs only (the test outputs never decide a write).

    for pass in 1..max_passes:                       # pass 1: every task; later: threads whose last step failed
        for batch in chunks(todo, k):
            steps = solve_batch(batch, threads)      # every task of the batch sees the same memory
            write([solved steps]) if update          # the next batch sees what this one learned

The loop knows nothing of LLMs or search: `solve_batch` returns one `Step` per task (its `train_correct` is the
retry criterion and the write gate), `write` receives the verified (task id, step) pairs. The LLM pipeline and the
ARC-lite arms both run through it, and its unit tests drive it with a scripted solver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["BatchLog", "ContinualResult", "HasId", "Step", "run_continual"]


class HasId(Protocol):
    id: str


@dataclass
class Step:
    """One attempt at one task: whether it reproduced every train pair, and what the solver wants recorded."""

    train_correct: bool
    payload: Any = None
    memory_version: int = 0  # the number of writes the memory had received when this step's batch started


@dataclass
class BatchLog:
    pass_index: int
    task_ids: list[str]
    memory_version: int
    written: list[str]


@dataclass
class ContinualResult:
    threads: dict[str, list[Step]]  # task id -> its steps, one per pass it took part in
    batches: list[BatchLog] = field(default_factory=list)
    writes: int = 0

    def last_steps(self) -> dict[str, Step]:
        return {task_id: steps[-1] for task_id, steps in self.threads.items() if steps}


def run_continual(
    tasks: Sequence[HasId],
    solve_batch: Callable[[list[Any], dict[str, list[Step]], int], list[Step]],
    write: Callable[[list[tuple[str, Step]]], list[str]] | None = None,
    batch_size: int = 10,
    max_passes: int = 1,
    update: bool = True,
    on_batch: Callable[[BatchLog], None] | None = None,
) -> ContinualResult:
    """Run `max_passes` iteration-major passes over `tasks` in batches of `batch_size`.

    `solve_batch(batch, threads, pass_index)` returns one Step per task of the batch; `write(verified)` (called
    after every batch when `update`, with the steps whose `train_correct` holds) returns what it wrote.
    """
    if batch_size < 1 or max_passes < 1:
        raise ValueError(f"batch_size ({batch_size}) and max_passes ({max_passes}) must be at least 1")
    ids = [task.id for task in tasks]
    if len(set(ids)) != len(ids):
        raise ValueError("task ids repeat; each task must have its own id")
    result = ContinualResult(threads={task_id: [] for task_id in ids})
    todo = list(tasks)
    for pass_index in range(max_passes):
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            _run_batch(batch, solve_batch, write if update else None, pass_index, result, on_batch)
        todo = [task for task in tasks if not result.threads[task.id][-1].train_correct]
        if not todo:
            break
    return result


def _run_batch(batch: list[Any], solve_batch: Callable[..., list[Step]], write: Callable[..., list[str]] | None,
               pass_index: int, result: ContinualResult, on_batch: Callable[[BatchLog], None] | None) -> None:
    version = result.writes
    steps = solve_batch(batch, result.threads, pass_index)
    if len(steps) != len(batch):
        raise ValueError(f"solve_batch returned {len(steps)} steps for a batch of {len(batch)} tasks")
    for task, step in zip(batch, steps, strict=True):
        step.memory_version = version
        result.threads[task.id].append(step)
    verified = [(task.id, step) for task, step in zip(batch, steps, strict=True) if step.train_correct]
    written = write(verified) if write is not None and verified else []
    if written:
        result.writes += 1
    log = BatchLog(pass_index, [task.id for task in batch], version, list(written))
    result.batches.append(log)
    if on_batch is not None:
        on_batch(log)
