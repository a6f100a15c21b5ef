"""Multi-query associative recall (MQAR) with accuracy by key-query distance, for the AHN experiment (spec 8).

A sequence of exactly `seq_len` tokens is BOS, then P stored pairs "k v" (P drawn in [min_pairs, max_pairs],
keys distinct), then Q queries "k v" of distinct stored keys spread over the rest, PAD as filler between them.
Token ids: 0 PAD (also the filler), 1 BOS, then the key tokens, then the value tokens (disjoint ranges).
Labels follow the Hugging Face convention: `labels[t] = tokens[t]` exactly at the query values and -100
elsewhere, so the logit at t - 1 (the query key) predicts `labels[t]`; `predictions_from_logits` does the shift.

`distance[t]` = t - (position of the stored value of the queried key) at label positions, -1 elsewhere. The key
of a query is never asked twice, so the stored pair is the only earlier copy of the answer. Query distances are
drawn uniformly over 2 .. seq_len - 3 (most constrained first, then packed into free slots), so recent and old
pairs are asked about alike. With a budget T = s + W the query key at t - 1 still attends to the stored value
iff d <= W (or the value is a sink); `distance_buckets` uses the spec's edges T, 2T, 4T.

    config = RecallConfig(seed=0)
    batch = make_batch(config, batch_size=16)
    stats = accuracy_by_bucket(predictions_from_logits(model(batch.tokens)), batch, budget=32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reasonlab.errors import UserError

__all__ = [
    "BOS",
    "BUCKETS",
    "IGNORE",
    "PAD",
    "RecallBatch",
    "RecallConfig",
    "accuracy_by_bucket",
    "accuracy_by_pairs_past",
    "distance_buckets",
    "induction_batch",
    "make_batch",
    "pairs_past_window",
    "predictions_from_logits",
]

PAD, BOS, IGNORE = 0, 1, -100
BUCKETS = ("<=T", "T-2T", "2T-4T", ">4T")
MIN_DISTANCE = 2  # a query right after the last stored pair


class RecallConfig(BaseModel):
    """The MQAR task of spec 8.1: vocabulary 128, 24-48 pairs, 256 tokens."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(128, description="Token ids: 0 PAD, 1 BOS, then keys, then values (half each).")
    min_pairs: int = Field(24, description="Fewest stored key-value pairs in a sequence.")
    max_pairs: int = Field(48, description="Most stored key-value pairs in a sequence (distinct keys).")
    seq_len: int = Field(256, description="Length of every sequence (the rest is PAD filler between queries).")
    queries_per_sequence: int | None = Field(
        None, description="Queries per sequence, each of a distinct stored key; None asks every stored key once."
    )
    seed: int = Field(0, description="Seed of `make_batch` when it is not given a generator.")

    @model_validator(mode="after")
    def _check(self) -> RecallConfig:
        if not 1 <= self.min_pairs <= self.max_pairs:
            raise UserError(f"min_pairs {self.min_pairs} and max_pairs {self.max_pairs}: "
                            "need 1 <= min_pairs <= max_pairs")
        keys = self.key_range[1] - self.key_range[0]
        if keys < self.max_pairs:
            raise UserError(f"vocab_size {self.vocab_size} leaves {keys} key tokens for max_pairs "
                            f"{self.max_pairs} distinct keys: raise vocab_size to >= {2 + 2 * self.max_pairs} "
                            "or lower max_pairs")
        q = self.queries_per_sequence
        if q is not None and not 1 <= q <= self.min_pairs:
            raise UserError(f"queries_per_sequence {q} must be in 1..min_pairs ({self.min_pairs}): "
                            "each query asks a distinct stored key")
        need = 1 + 2 * self.max_pairs + 2 * (self.max_pairs if q is None else q)
        if need > self.seq_len:
            fit = (self.seq_len - 1) // 4 if q is None else (self.seq_len - 1 - 2 * q) // 2
            raise UserError(f"max_pairs {self.max_pairs} needs {need} tokens (BOS, 2 per pair, 2 per query) "
                            f"but seq_len is {self.seq_len}: lower max_pairs to {fit} or raise seq_len")
        return self

    @property
    def key_range(self) -> tuple[int, int]:
        """Key token ids [start, stop)."""
        return 2, 2 + (self.vocab_size - 2) // 2

    @property
    def value_range(self) -> tuple[int, int]:
        """Value token ids [start, stop)."""
        return self.key_range[1], self.vocab_size


@dataclass(frozen=True)
class RecallBatch:
    tokens: torch.Tensor  # (B, L) long
    labels: torch.Tensor  # (B, L) long, the query values, IGNORE elsewhere
    distance: torch.Tensor  # (B, L) long, label position - stored value position, -1 elsewhere
    num_pairs: torch.Tensor  # (B,) long, stored pairs P (keys at 1, 3, .., 2P - 1, values at 2, 4, .., 2P)


def _draw_query_pairs(num_pairs: int, num_queries: int, seq_len: int, rng: np.random.Generator) -> np.ndarray:
    """Stored pair index j and wanted distance d per query; each j once, d uniform where some j can realise it."""
    wanted = rng.integers(MIN_DISTANCE, seq_len - 2, size=num_queries)  # (Q,) in 2 .. L - 3
    # query key q = 1 + 2j + d must lie in [2P + 1, L - 2]
    lowest = np.maximum(0, -((wanted - 2 * num_pairs) // 2))  # ceil((2P - d) / 2)
    highest = np.minimum(num_pairs - 1, (seq_len - 3 - wanted) // 2)
    order = rng.permutation(num_queries)
    order = order[np.argsort(highest[order] - lowest[order], kind="stable")]  # fewest choices first
    free = np.ones(num_pairs, dtype=bool)
    chosen = np.empty(num_queries, dtype=np.int64)
    index = np.arange(num_pairs)
    for i in order:
        candidates = np.flatnonzero(free & (index >= lowest[i]) & (index <= highest[i]))
        if candidates.size == 0:
            candidates = np.flatnonzero(free)
        chosen[i] = candidates[rng.integers(candidates.size)]
        free[chosen[i]] = False
    return np.stack([chosen, wanted], axis=1)  # (Q, 2)


def _pack(targets: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Non-overlapping 2-token slots in [start, stop] as close to the sorted `targets` as the room allows."""
    slots = targets.copy()
    for i in range(len(slots)):
        slots[i] = max(slots[i], start if i == 0 else slots[i - 1] + 2)
    for i in reversed(range(len(slots))):
        slots[i] = min(slots[i], stop if i == len(slots) - 1 else slots[i + 1] - 2)
    return slots


def _fill_sequence(config: RecallConfig, rng: np.random.Generator, tokens: np.ndarray, labels: np.ndarray,
                   distance: np.ndarray) -> int:
    """Write one sequence into the given rows (pre-filled with PAD / IGNORE / -1); returns its pair count."""
    num_pairs = int(rng.integers(config.min_pairs, config.max_pairs + 1))
    num_queries = config.queries_per_sequence or num_pairs
    (key_lo, key_hi), (value_lo, value_hi) = config.key_range, config.value_range
    keys = rng.choice(np.arange(key_lo, key_hi), size=num_pairs, replace=False)
    values = rng.integers(value_lo, value_hi, size=num_pairs)
    tokens[0] = BOS
    tokens[1:1 + 2 * num_pairs:2], tokens[2:2 + 2 * num_pairs:2] = keys, values

    pairs = _draw_query_pairs(num_pairs, num_queries, config.seq_len, rng)
    key_positions = 1 + 2 * pairs[:, 0]
    targets = key_positions + pairs[:, 1]
    order = np.argsort(targets + rng.random(num_queries), kind="stable")  # random among equal targets
    slots = _pack(targets[order], 1 + 2 * num_pairs, config.seq_len - 2)
    asked = pairs[order, 0]
    tokens[slots], tokens[slots + 1] = keys[asked], values[asked]
    labels[slots + 1] = values[asked]
    distance[slots + 1] = slots - key_positions[order]
    return num_pairs


def make_batch(config: RecallConfig, batch_size: int, rng: np.random.Generator | None = None) -> RecallBatch:
    """`batch_size` fresh sequences; without `rng` the same batch for the same `config.seed`."""
    if batch_size < 1:
        raise UserError(f"batch_size {batch_size} must be at least 1")
    rng = np.random.default_rng(config.seed) if rng is None else rng
    shape = (batch_size, config.seq_len)
    tokens = np.full(shape, PAD, dtype=np.int64)
    labels = np.full(shape, IGNORE, dtype=np.int64)
    distance = np.full(shape, -1, dtype=np.int64)
    num_pairs = [_fill_sequence(config, rng, tokens[b], labels[b], distance[b]) for b in range(batch_size)]
    return RecallBatch(torch.from_numpy(tokens), torch.from_numpy(labels), torch.from_numpy(distance),
                       torch.tensor(num_pairs, dtype=torch.long))


def induction_batch(vocab_size: int, seq_len: int, batch_size: int, rng: np.random.Generator) -> RecallBatch:
    """Warm-up data that teaches a fresh model to look things up by content: BOS, a random span of 8 .. L/3 tokens,
    PAD filler of random length, then the span again, labelled from its second token (a model that finds the
    earlier copy of the current token predicts the next one). The repeat's offset varies, so no positional rule
    solves it. `distance` and `num_pairs` are -1 / 0: this batch is for training only."""
    if seq_len < 20:
        raise UserError(f"seq_len {seq_len} is too short for the induction warm-up: use at least 20 tokens")
    tokens = np.full((batch_size, seq_len), PAD, dtype=np.int64)
    labels = np.full((batch_size, seq_len), IGNORE, dtype=np.int64)
    for row in range(batch_size):
        n = int(rng.integers(8, max(9, seq_len // 3)))
        gap = int(rng.integers(0, seq_len - 2 * n))
        span = rng.integers(BOS + 1, vocab_size, size=n)
        start = 1 + n + gap
        tokens[row, 0], tokens[row, 1:1 + n], tokens[row, start:start + n] = BOS, span, span
        labels[row, start + 1:start + n] = span[1:]
    shape = (batch_size, seq_len)
    return RecallBatch(torch.from_numpy(tokens), torch.from_numpy(labels), torch.full(shape, -1, dtype=torch.long),
                       torch.zeros(batch_size, dtype=torch.long))


def predictions_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Logits (B, L, V) -> predicted token ids (B, L) aligned with labels: position t gets argmax at t - 1."""
    predictions = torch.full(logits.shape[:2], -1, dtype=torch.long, device=logits.device)
    predictions[:, 1:] = logits[:, :-1].argmax(-1)
    return predictions


def distance_buckets(distance: torch.Tensor | np.ndarray, budget: int) -> np.ndarray:
    """Bucket name per distance d with T = budget: "<=T" d <= T, "T-2T" T < d <= 2T, "2T-4T" 2T < d <= 4T,
    ">4T" d > 4T (each bucket includes its upper edge); "" where d < 0 (no label)."""
    if budget < 1:
        raise UserError(f"budget T={budget} must be at least 1 (sinks + window)")
    d = np.asarray(distance)
    conditions = [d < 0, d <= budget, d <= 2 * budget, d <= 4 * budget]
    return np.select(conditions, ["", *BUCKETS[:3]], default=BUCKETS[3])


def pairs_past_window(batch: RecallBatch, budget: int) -> torch.Tensor:
    """(B, L): at each label position t, the stored pairs whose value lies more than `budget` tokens back
    (t - value position > T, the same side as distance > T); -1 where there is no label."""
    t = torch.arange(batch.tokens.shape[1])  # (L,)
    value_positions = 2 + 2 * torch.arange(int(batch.num_pairs.max()))  # (Pmax,)
    stored = value_positions[None, :] <= 2 * batch.num_pairs[:, None]  # (B, Pmax)
    past = (t[:, None] - value_positions[None, :]) > budget  # (L, Pmax)
    counts = (past[None] & stored[:, None]).sum(-1)  # (B, L)
    return torch.where(batch.labels != IGNORE, counts, torch.full_like(counts, -1))


def _check_predictions(predictions: torch.Tensor, batch: RecallBatch) -> None:
    if tuple(predictions.shape) != tuple(batch.labels.shape):
        raise UserError(f"predictions of shape {tuple(predictions.shape)} do not match labels "
                        f"{tuple(batch.labels.shape)}: pass token ids aligned with labels "
                        "(predictions_from_logits(logits))")


def _tally(correct: np.ndarray, groups: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Correct, count and accuracy (nan when empty) per group name."""
    out = {}
    for name in names:
        member = groups == name
        n, hits = int(member.sum()), int(correct[member].sum())
        out[name] = {"correct": hits, "n": n, "accuracy": hits / n if n else float("nan")}
    return out


def accuracy_by_bucket(predictions: torch.Tensor, batch: RecallBatch, budget: int) -> dict[str, dict[str, float]]:
    """Recall accuracy per distance bucket of `distance_buckets` (spec 8.5(a)); every bucket is present."""
    _check_predictions(predictions, batch)
    correct = (predictions.cpu() == batch.labels).numpy()
    return _tally(correct, distance_buckets(batch.distance, budget), BUCKETS)


def accuracy_by_pairs_past(predictions: torch.Tensor, batch: RecallBatch, budget: int,
                           edges: Sequence[int] = (0, 8, 16, 24, 32, 40, 48)) -> dict[str, dict[str, float]]:
    """Recall accuracy by stored pairs past the budget (spec 8.5(b)): bins "[a,b)" between increasing edges and
    a last "[e,inf)"; counts below the first edge are left out. Entries also carry "lo" and "hi"."""
    _check_predictions(predictions, batch)
    if len(edges) < 1 or any(b <= a for a, b in pairwise(edges)) or edges[0] < 0:
        raise UserError(f"edges {list(edges)} must be non-negative and strictly increasing")
    bounds = [*zip(edges, [*edges[1:], float("inf")], strict=True)]
    names = [f"[{lo},{hi})" for lo, hi in bounds]
    counts = pairs_past_window(batch, budget).numpy()
    groups = np.full(counts.shape, "", dtype=object)
    for name, (lo, hi) in zip(names, bounds, strict=True):
        groups[(counts >= lo) & (counts < hi)] = name
    correct = (predictions.cpu() == batch.labels).numpy()
    out = _tally(correct, groups, names)
    for name, (lo, hi) in zip(names, bounds, strict=True):
        out[name].update(lo=lo, hi=hi)
    return out
