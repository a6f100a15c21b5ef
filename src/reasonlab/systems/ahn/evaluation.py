"""Every metric AHN reports: recall by key-query distance and by pairs past the window (spec 8.5 a, b), perplexity
beyond the window on documents, and the multi-seed summary of the recall experiment with its claim."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from reasonlab.stats import mean_spread, wilson_interval
from reasonlab.tasks.recall import (
    BUCKETS,
    RecallBatch,
    accuracy_by_bucket,
    accuracy_by_pairs_past,
    predictions_from_logits,
)

__all__ = [
    "CLAIM_BUCKET",
    "CLAIM_MARGIN",
    "recall_accuracy",
    "summarize_recall",
    "window_perplexity",
]

CLAIM_BUCKET = "2T-4T"
CLAIM_MARGIN = 0.20  # the bar: a memory type recovers >= 20 points over sinks + SWA in the 2T-4T bucket
PAIRS_EDGES = (0, 8, 16, 24, 32, 40)


@torch.no_grad()
def recall_accuracy(logits_fn: Callable[[torch.Tensor], torch.Tensor], batches: Sequence[RecallBatch],
                    budget: int) -> dict[str, Any]:
    """Accuracy per distance bucket and per pairs-past-the-window bin over the evaluation batches."""
    buckets = {name: {"correct": 0, "n": 0} for name in BUCKETS}
    pairs: dict[str, dict[str, Any]] = {}
    for batch in batches:
        predictions = predictions_from_logits(logits_fn(batch.tokens))
        for name, cell in accuracy_by_bucket(predictions, batch, budget).items():
            buckets[name]["correct"] += cell["correct"]
            buckets[name]["n"] += cell["n"]
        for name, cell in accuracy_by_pairs_past(predictions, batch, budget, PAIRS_EDGES).items():
            total = pairs.setdefault(name, {"correct": 0, "n": 0, "lo": cell["lo"], "hi": cell["hi"]})
            total["correct"] += cell["correct"]
            total["n"] += cell["n"]
    for table in (buckets, pairs):
        for cell in table.values():
            cell["accuracy"] = cell["correct"] / cell["n"] if cell["n"] else None
    return {"buckets": buckets, "pairs_past": pairs}


@torch.no_grad()
def window_perplexity(logits_fn: Callable[[torch.Tensor], torch.Tensor], documents: Sequence[torch.Tensor],
                      budget: int) -> dict[str, float | int]:
    """Perplexity of each next token predicted at positions >= `budget` (what the window no longer covers),
    pooled over the documents (each a 1-D tensor of token ids)."""
    nll, count = 0.0, 0
    for tokens in documents:
        logits = logits_fn(tokens[None]).float()[0, :-1]  # (L-1, V): position t predicts token t + 1
        targets = tokens[1:]
        logp = logits.log_softmax(-1).gather(-1, targets[:, None])[:, 0]
        kept = logp[budget:]
        nll -= float(kept.sum())
        count += kept.numel()
    return {"perplexity": math.exp(nll / count) if count else float("nan"), "tokens": count}


def _bucket_accuracies(result: dict[str, Any]) -> dict[str, float | None]:
    return {name: cell["accuracy"] for name, cell in result["buckets"].items()}


def summarize_recall(per_seed: dict[int, dict[str, dict[str, Any]]], kinds: Sequence[str]) -> dict[str, Any]:
    """Mean and spread per arm and bucket over seeds, each memory type's gain over sinks + SWA in the claim bucket
    on every seed, and whether some memory type clears the bar on every seed while staying below the teacher."""
    seeds = sorted(per_seed)
    arms = ["teacher", "swa", *kinds]
    table = {arm: {bucket: mean_spread([_bucket_accuracies(per_seed[s][arm])[bucket] for s in seeds])
                   for bucket in BUCKETS} for arm in arms}
    gains = {kind: [_gain(per_seed[s], kind, "swa") for s in seeds] for kind in kinds}
    below_teacher = {kind: [_gain(per_seed[s], "teacher", kind) > 0 for s in seeds] for kind in kinds}
    clears = [kind for kind in kinds
              if all(g >= CLAIM_MARGIN for g in gains[kind]) and all(below_teacher[kind])]
    best = max(kinds, key=lambda kind: min(gains[kind])) if kinds else None
    return {
        "seeds": seeds, "bucket": CLAIM_BUCKET, "margin": CLAIM_MARGIN, "accuracy": table,
        "gain_over_swa": {kind: {"per_seed": gains[kind], **mean_spread(gains[kind])} for kind in kinds},
        "below_teacher": below_teacher, "clears": clears, "best": best, "holds": bool(clears),
        "pairs_past": {arm: _pairs_table(per_seed, arm, seeds) for arm in arms},
        "pooled": {arm: _pooled(per_seed, arm, seeds) for arm in arms},
    }


def _pooled(per_seed: dict[int, dict[str, Any]], arm: str, seeds: Sequence[int]) -> dict[str, Any]:
    """The claim bucket's queries of every seed together: correct, n and the Wilson 95% interval."""
    correct = sum(per_seed[s][arm]["buckets"][CLAIM_BUCKET]["correct"] for s in seeds)
    n = sum(per_seed[s][arm]["buckets"][CLAIM_BUCKET]["n"] for s in seeds)
    return {"correct": correct, "n": n, "ci95": list(wilson_interval(correct, n))}


def _gain(result: dict[str, dict[str, Any]], arm: str, baseline: str) -> float:
    return float(_bucket_accuracies(result[arm])[CLAIM_BUCKET] or 0.0) - float(
        _bucket_accuracies(result[baseline])[CLAIM_BUCKET] or 0.0)


def _pairs_table(per_seed: dict[int, dict[str, Any]], arm: str, seeds: Sequence[int]) -> dict[str, Any]:
    names = list(per_seed[seeds[0]][arm]["pairs_past"])
    return {name: mean_spread([per_seed[s][arm]["pairs_past"][name]["accuracy"] for s in seeds])
            for name in names}
