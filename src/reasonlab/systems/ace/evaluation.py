"""Every metric ACE reports, in one place: test accuracy with a context, context collapse, fact retention, and
the per-arm comparison (mean, spread, n over seeds, and answers pooled over seeds with a 95% interval) of an
experiment.

    result = evaluate(generator, memory, task, task.test)      # {"accuracy", "parse_rate", "n", "rows"}
    collapse_stats([106, 140, 12])                              # largest one-step shrink, collapse events
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from reasonlab import stats
from reasonlab.progress import eta, say
from reasonlab.systems.ace.memory import Memory, answer
from reasonlab.systems.ace.roles import Generator
from reasonlab.systems.ace.tasks import Sample, Task

__all__ = ["ARM_METRICS", "Scorer", "arm_metrics", "collapse_stats", "compare_arms", "evaluate", "mean_spread",
           "pooled_rate"]

Scorer = Callable[[Sample, str], bool]

# what the comparison reports for each arm, from each adaptation's summary
ARM_METRICS = ("test_accuracy", "facts_retained_fraction", "max_shrink", "collapse_events", "adapt_calls",
               "adapt_tokens", "adapt_seconds")
# the test questions counted apart: all of them, those whose rule was only seeded, those the stream teaches
QUESTION_GROUPS = ("all", "seeded", "learned")


def evaluate(generator: Generator, memory: Memory, task: Task, samples: list[Sample],
             scorer: Scorer | None = None, label: str | None = None) -> dict[str, Any]:
    """Accuracy of the Generator with this context; parse rate; per-sample answers. With `label`, one progress
    line per question (running score and ETA)."""
    scorer = scorer or task.check
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for index, sample in enumerate(samples, start=1):
        attempt = answer(generator, memory, task, sample, task.execute)
        rows.append({"id": sample.id, "family": sample.family, "seeded": bool(sample.meta.get("seeded")),
                     "answer": attempt.answer, "parsed": attempt.parsed,
                     "correct": attempt.parsed and scorer(sample, attempt.answer), "cited": attempt.cited})
        if label:
            say(f"{label}: question {index}/{len(samples)}, {sum(r['correct'] for r in rows)} right so far, "
                f"{eta(index, len(samples), started)}")
    n = max(len(rows), 1)
    return {"accuracy": sum(r["correct"] for r in rows) / n, "parse_rate": sum(r["parsed"] for r in rows) / n,
            "n": len(rows), "rows": rows}


def collapse_stats(tokens: list[int]) -> dict[str, Any]:
    """Largest one-step shrink of the context and the number of >50% shrinks (collapse events)."""
    shrinks = [1 - b / a for a, b in pairwise(tokens) if a > 0]
    return {"max_shrink": round(max([0.0, *shrinks]), 4),  # growth is not a shrink
            "collapse_events": sum(s > 0.5 for s in shrinks),
            "peak_tokens": max(tokens, default=0), "final_tokens": tokens[-1] if tokens else 0}


def arm_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The comparison's numbers for one adaptation (an offline run's summary.json): the ARM_METRICS, the test
    answers counted by question group (`<group>_correct`, `<group>_n`), the context size and the seeded rules
    kept at every step."""
    usage = summary["adapt_usage"]
    seeded = summary["facts_seeded"]
    rows = summary.get("test_rows", [])
    metrics: dict[str, Any] = {
        "test_accuracy": summary["test_after"]["accuracy"],
        # a run without seeded facts has nothing to lose: it counts as fully retained
        "facts_retained_fraction": min(summary["facts_retained"]) / seeded if seeded else 1.0,
        "max_shrink": summary["max_shrink"],
        "collapse_events": summary["collapse_events"],
        "adapt_calls": usage["calls"],
        "adapt_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "adapt_seconds": summary["adapt_seconds"],
        "context_tokens": list(summary["context_tokens"]),
        "facts_retained": list(summary["facts_retained"]),
        "facts_seeded": seeded,
    }
    for group in QUESTION_GROUPS:
        chosen = [r for r in rows if group == "all" or r.get("seeded", False) == (group == "seeded")]
        metrics[f"{group}_correct"] = sum(bool(r["correct"]) for r in chosen)
        metrics[f"{group}_n"] = len(chosen)
    return metrics


def mean_spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, spread (sample standard deviation; 0 for one value), min, max and n, rounded to 4 places
    (`reasonlab.stats.mean_spread` with the key `spread` that ACE's summaries have always used).

    >>> mean_spread([0.5, 1.0, 1.0])
    {'mean': 0.8333, 'spread': 0.2887, 'min': 0.5, 'max': 1.0, 'n': 3}
    """
    values_stats = stats.mean_spread(values)
    return {"mean": round(float(values_stats["mean"] or 0.0), 4), "spread": round(float(values_stats["sd"] or 0.0), 4),
            "min": values_stats["min"], "max": values_stats["max"], "n": values_stats["n"]}


def pooled_rate(correct: int, n: int) -> dict[str, Any]:
    """Answers pooled over seeds: `{"correct", "n", "rate", "low", "high", "text"}` (95% Wilson interval)."""
    low, high = stats.wilson_interval(correct, n)
    return {"correct": correct, "n": n, "rate": round(correct / n, 4) if n else None, "low": round(low, 4),
            "high": round(high, 4), "text": stats.format_rate(correct, n) if n else "n/a (n=0)"}


def compare_arms(runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """`{arm: {seed: summary}}` -> each arm's metrics as mean/spread/n over seeds, its test answers pooled over
    seeds per question group (`pooled`: rate with a 95% interval), the no-context score (the first arm's test
    score before adapting, when measured) and the per-seed values."""
    arms: dict[str, Any] = {}
    for arm, by_seed in runs.items():
        per_seed = {seed: arm_metrics(summary) for seed, summary in sorted(by_seed.items())}
        arms[arm] = {name: mean_spread([m[name] for m in per_seed.values()]) for name in ARM_METRICS}
        arms[arm]["pooled"] = {group: pooled_rate(sum(m[f"{group}_correct"] for m in per_seed.values()),
                                                  sum(m[f"{group}_n"] for m in per_seed.values()))
                               for group in QUESTION_GROUPS}
        arms[arm]["per_seed"] = per_seed
    first = next(iter(runs.values()))
    before = [s["test_before"]["accuracy"] for _, s in sorted(first.items()) if s.get("test_before")]
    return {"no_context_test_accuracy": mean_spread(before) if before else None, "arms": arms}
