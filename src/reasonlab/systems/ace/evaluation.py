"""Every metric ACE reports, in one place: test accuracy with a context, context collapse, fact retention, and
the per-arm comparison (mean, spread, n over seeds) of an experiment.

    result = evaluate(generator, memory, task, task.test)      # {"accuracy", "parse_rate", "n", "rows"}
    collapse_stats([106, 140, 12])                              # largest one-step shrink, collapse events
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from reasonlab.systems.ace.memory import Memory, answer
from reasonlab.systems.ace.roles import Generator
from reasonlab.systems.ace.tasks import Sample, Task

__all__ = ["ARM_METRICS", "Scorer", "arm_metrics", "collapse_stats", "compare_arms", "evaluate", "mean_spread"]

Scorer = Callable[[Sample, str], bool]

# what the comparison reports for each arm, from each adaptation's summary
ARM_METRICS = ("test_accuracy", "facts_retained_fraction", "max_shrink", "collapse_events", "adapt_calls",
               "adapt_tokens", "adapt_seconds")


def evaluate(generator: Generator, memory: Memory, task: Task, samples: list[Sample],
             scorer: Scorer | None = None) -> dict[str, Any]:
    """Accuracy of the Generator with this context; parse rate; per-sample answers."""
    scorer = scorer or task.check
    rows = []
    for sample in samples:
        attempt = answer(generator, memory, task, sample, task.execute)
        rows.append({"id": sample.id, "answer": attempt.answer, "parsed": attempt.parsed,
                     "correct": attempt.parsed and scorer(sample, attempt.answer), "cited": attempt.cited})
    n = max(len(rows), 1)
    return {"accuracy": sum(r["correct"] for r in rows) / n, "parse_rate": sum(r["parsed"] for r in rows) / n,
            "n": len(rows), "rows": rows}


def collapse_stats(tokens: list[int]) -> dict[str, Any]:
    """Largest one-step shrink of the context and the number of >50% shrinks (collapse events)."""
    shrinks = [1 - b / a for a, b in pairwise(tokens) if a > 0]
    return {"max_shrink": round(max([0.0, *shrinks]), 4),  # growth is not a shrink
            "collapse_events": sum(s > 0.5 for s in shrinks),
            "peak_tokens": max(tokens, default=0), "final_tokens": tokens[-1] if tokens else 0}


def arm_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The comparison's numbers for one adaptation (an offline run's summary.json)."""
    usage = summary["adapt_usage"]
    seeded = summary["facts_seeded"]
    return {
        "test_accuracy": summary["test_after"]["accuracy"],
        # a run without seeded facts has nothing to lose: it counts as fully retained
        "facts_retained_fraction": min(summary["facts_retained"]) / seeded if seeded else 1.0,
        "max_shrink": summary["max_shrink"],
        "collapse_events": summary["collapse_events"],
        "adapt_calls": usage["calls"],
        "adapt_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "adapt_seconds": summary["adapt_seconds"],
    }


def mean_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, spread (sample standard deviation; 0 for one value), min, max and n.

    >>> mean_spread([0.5, 1.0, 1.0])
    {'mean': 0.8333, 'spread': 0.2887, 'min': 0.5, 'max': 1.0, 'n': 3}
    """
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.fmean(values), 4), "spread": round(spread, 4), "min": min(values),
            "max": max(values), "n": len(values)}


def compare_arms(runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """`{arm: {seed: summary}}` -> each arm's metrics as mean/spread/n over seeds, the no-context score (the
    first arm's test score before adapting) and the per-seed values."""
    arms = {}
    for arm, by_seed in runs.items():
        per_seed = {seed: arm_metrics(summary) for seed, summary in sorted(by_seed.items())}
        arms[arm] = {name: mean_spread([m[name] for m in per_seed.values()]) for name in ARM_METRICS}
        arms[arm]["per_seed"] = per_seed
    first = next(iter(runs.values()))
    before = [s["test_before"]["accuracy"] for _, s in sorted(first.items()) if s.get("test_before")]
    return {"no_context_test_accuracy": mean_spread(before) if before else None, "arms": arms}
