"""Trace-level metrics and avg@N evaluation (never per-chunk rewards: a chunk has no reward of its own)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from reasonlab.llm.base import LLM, Prompt, SamplingParams
from reasonlab.systems.delethink.config import DelethinkConfig
from reasonlab.systems.delethink.rollout import Trace, chunked_rollout

__all__ = ["EvalResult", "evaluate", "trace_metrics"]


@dataclass
class EvalResult:
    """avg@N accuracy (mean over tasks of the mean over N samples) and trace statistics."""

    accuracy: float
    n: int
    num_tasks: int
    tokens_mean: float
    chunks_mean: float
    finished_fraction: float
    max_position: int
    per_task: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace_metrics(traces: Sequence[Trace], rewards: Sequence[float]) -> dict[str, float]:
    """Reward, length, chunk count and finish rate over whole traces."""
    count = max(len(traces), 1)
    return {
        "reward_mean": sum(rewards) / count,
        "tokens_mean": sum(t.num_tokens for t in traces) / count,
        "chunks_mean": sum(len(t.chunks) for t in traces) / count,
        "finished_fraction": sum(t.finished for t in traces) / count,
        "max_position": max((t.max_position for t in traces), default=0),
    }


def evaluate(
    llm: LLM,
    tasks: Sequence[Any],
    config: DelethinkConfig,
    query: Callable[[Any], Prompt],
    reward: Callable[[Any, str], float],
    sampling: SamplingParams | None = None,
    n: int = 8,
    batch_tasks: int = 64,
) -> EvalResult:
    """avg@N of `n` sampled traces per task under `config` (LongCoT: `DelethinkConfig.longcot(budget)`)."""
    sampling = sampling or SamplingParams(temperature=0.6)
    per_task: list[float] = []
    traces: list[Trace] = []
    rewards: list[float] = []
    for start in range(0, len(tasks), batch_tasks):
        batch = list(tasks[start : start + batch_tasks])
        seed = None if sampling.seed is None else sampling.seed + start
        groups = chunked_rollout(llm, [query(t) for t in batch], config,
                                 sampling.model_copy(update={"seed": seed}), n=n)
        for task, group in zip(batch, groups, strict=True):
            scores = [reward(task, trace.reconstructed) for trace in group]
            per_task.append(sum(scores) / len(scores))
            traces.extend(group)
            rewards.extend(scores)
    metrics = trace_metrics(traces, rewards)
    return EvalResult(
        accuracy=sum(per_task) / max(len(per_task), 1),
        n=n,
        num_tasks=len(per_task),
        tokens_mean=metrics["tokens_mean"],
        chunks_mean=metrics["chunks_mean"],
        finished_fraction=metrics["finished_fraction"],
        max_position=int(metrics["max_position"]),
        per_task=per_task,
    )
