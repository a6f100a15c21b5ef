"""Every metric AHN reports: recall by key-query distance and by pairs past the window (spec 8.5 a, b), perplexity
beyond the window on documents (full attention, sinks + SWA, AHN, with a paired interval), and the multi-seed
summary of the recall experiment with its claim."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import torch

from reasonlab.demo import Headline
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
    "documents_headline",
    "paired_bootstrap",
    "recall_accuracy",
    "scores_between",
    "summarize_recall",
    "window_scores",
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
def window_scores(wrapped: Any, windows: list[list[int]], sinks: int, window: int) -> dict[str, dict[str, float]]:
    """Perplexity of next-token predictions at positions >= T = sinks + window, pooled over the windows, for full
    attention (the teacher), sinks + SWA and AHN."""
    wrapped.set_budget(sinks, window)
    budget = sinks + window
    per_window: dict[str, list[float]] = {"full": [], "swa": [], "ahn": []}
    count = 0
    device = next(wrapped.memories.parameters()).device
    for tokens in windows:
        ids = torch.tensor([tokens], device=device)
        targets = ids[0, budget + 1:]
        keep = len(tokens) - budget  # logits at positions budget .. L-1; the last predicts nothing here
        outputs = {"full": wrapped(ids, full_attention=True, logits_to_keep=keep).logits,
                   "swa": wrapped(ids, use_memory=False, logits_to_keep=keep).logits,
                   "ahn": wrapped(ids, logits_to_keep=keep).logits}
        for name, logits in outputs.items():
            logp = logits[0, :-1].float().log_softmax(-1).gather(-1, targets[:, None])
            per_window[name].append(-float(logp.mean()))
        count += targets.numel()
    # every window scores the same number of positions, so the pooled NLL is the mean of the window means
    scores: dict[str, Any] = {name: {"perplexity": math.exp(statistics.fmean(values)),
                                     "nll": statistics.fmean(values), "tokens": count, "windows": len(values),
                                     "per_window_nll": values} for name, values in per_window.items()}
    scores["ahn_minus_swa_nll"] = paired_bootstrap(per_window["ahn"], per_window["swa"])
    return scores


def paired_bootstrap(a: Sequence[float], b: Sequence[float], draws: int = 2000, seed: int = 0
                     ) -> dict[str, float | int]:
    """Mean of the paired differences a - b and its bootstrap 95% interval (resampling the pairs)."""
    differences = torch.tensor([x - y for x, y in zip(a, b, strict=True)], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(differences), (draws, len(differences)), generator=generator)
    means = differences[picks].mean(1)
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return {"mean": float(differences.mean()), "ci95_low": low, "ci95_high": high, "n": len(differences)}


def scores_between(scores: dict[str, Any]) -> bool:
    """AHN lies between full attention and sinks + SWA, strictly below SWA with the paired interval: full <= AHN
    and the upper end of the AHN - SWA interval below zero."""
    return (scores["full"]["perplexity"] <= scores["ahn"]["perplexity"]
            and scores["ahn_minus_swa_nll"]["ci95_high"] < 0)


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


def documents_headline(summary: dict[str, Any]) -> Headline:
    after = summary["after"]
    gap = after["ahn_minus_swa_nll"]
    result = (f"perplexity at positions >= T={summary['budget']} on {summary['eval_windows']} held-out windows of "
              f"{summary['seq_len']} tokens ({after['ahn']['tokens']} tokens): full attention "
              f"{after['full']['perplexity']:.2f}, AHN-{summary['kind']} {after['ahn']['perplexity']:.2f}, "
              f"sinks+SWA {after['swa']['perplexity']:.2f}; AHN - SWA {gap['mean']:+.4f} nats/token (paired "
              f"bootstrap 95% CI {gap['ci95_low']:+.4f} to {gap['ci95_high']:+.4f}, n={gap['n']} windows); "
              f"before training AHN = SWA = {summary['before']['ahn']['perplexity']:.2f}; "
              f"{summary['steps']} distillation steps")
    return Headline(system="ahn", measures=f"{summary['model']} with AHN memories on layers {summary['layers']}, "
                    f"distilled on {summary['documents']}", result=result,
                    paper="AHN recovers long-context quality lost by sliding-window attention, below full attention",
                    holds=summary["between"], kind="result")
