import math

import numpy as np
import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.tasks import recall
from reasonlab.tasks.recall import IGNORE, RecallBatch, RecallConfig


@pytest.fixture(scope="module")
def batch() -> RecallBatch:
    return recall.make_batch(RecallConfig(seed=3), batch_size=64)


def _stored_value_position(row: np.ndarray, num_pairs: int, key: int) -> int:
    """Search the stored section for `key`; the position of its value."""
    hits = [p for p in range(1, 2 * num_pairs, 2) if row[p] == key]
    assert len(hits) == 1
    return hits[0] + 1


def test_shapes_layout_and_token_ranges(batch):
    config = RecallConfig()
    assert batch.tokens.shape == batch.labels.shape == batch.distance.shape == (64, 256)
    assert batch.tokens.dtype == batch.labels.dtype == batch.distance.dtype == batch.num_pairs.dtype == torch.long
    assert batch.num_pairs.min() >= 24 and batch.num_pairs.max() <= 48
    assert len(set(batch.num_pairs.tolist())) > 5
    (key_lo, key_hi), (value_lo, value_hi) = config.key_range, config.value_range
    assert (key_lo, key_hi, value_lo, value_hi) == (2, 65, 65, 128)
    for row, labels, p in zip(batch.tokens.numpy(), batch.labels.numpy(), batch.num_pairs.tolist(), strict=True):
        assert row[0] == recall.BOS and (row[1:] != recall.BOS).all()
        assert ((row[1:2 * p:2] >= key_lo) & (row[1:2 * p:2] < key_hi)).all()
        assert ((row[2:2 * p + 1:2] >= value_lo) & (row[2:2 * p + 1:2] < value_hi)).all()
        query_values = np.flatnonzero(labels != IGNORE)
        rest = np.setdiff1d(np.arange(2 * p + 1, 256), np.concatenate([query_values - 1, query_values]))
        assert (row[rest] == recall.PAD).all()


def test_labels_sit_exactly_on_query_values_and_are_the_stored_values(batch):
    for row, labels, p in zip(batch.tokens.numpy(), batch.labels.numpy(), batch.num_pairs.tolist(), strict=True):
        positions = np.flatnonzero(labels != IGNORE)
        assert len(positions) == p  # every stored key asked once
        assert positions.min() >= 2 * p + 2  # after the stored section
        assert (labels[positions] == row[positions]).all()
        assert (np.diff(positions) >= 2).all()
        for t in positions:
            assert row[_stored_value_position(row, p, row[t - 1])] == labels[t]


def test_keys_are_distinct_among_the_stored_pairs_and_among_the_queries(batch):
    for row, labels, p in zip(batch.tokens.numpy(), batch.labels.numpy(), batch.num_pairs.tolist(), strict=True):
        stored = row[1:2 * p:2]
        asked = row[np.flatnonzero(labels != IGNORE) - 1]
        assert len(set(stored.tolist())) == p
        assert len(set(asked.tolist())) == len(asked)


def test_distance_matches_a_search_for_the_stored_pair(batch):
    for row, labels, dist, p in zip(batch.tokens.numpy(), batch.labels.numpy(), batch.distance.numpy(),
                                    batch.num_pairs.tolist(), strict=True):
        positions = np.flatnonzero(labels != IGNORE)
        assert (dist[labels == IGNORE] == -1).all()
        for t in positions:
            assert dist[t] == t - _stored_value_position(row, p, row[t - 1])


def test_distances_cover_recent_and_old_pairs_alike(batch):
    distances = batch.distance[batch.distance >= 0].numpy()
    assert distances.min() == 2 and distances.max() >= 240
    share = np.histogram(distances, bins=[0, 32, 64, 128, 256])[0] / len(distances)
    # uniform over 2..253 would give 0.12, 0.13, 0.25, 0.50
    assert share[0] > 0.08 and share[1] > 0.10
    assert 0.2 < share[2] < 0.3 and 0.4 < share[3] < 0.6


def test_fixed_query_count_and_smallest_pair_count():
    config = RecallConfig(min_pairs=4, max_pairs=4, seq_len=40, queries_per_sequence=3, seed=1)
    small = recall.make_batch(config, batch_size=8)
    assert ((small.labels != IGNORE).sum(1) == 3).all()
    assert (small.num_pairs == 4).all()


def test_same_seed_same_batch_and_another_seed_another():
    config = RecallConfig(seed=7)
    a, b = recall.make_batch(config, 4), recall.make_batch(config, 4, np.random.default_rng(7))
    for field in ("tokens", "labels", "distance", "num_pairs"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.tokens, recall.make_batch(RecallConfig(seed=8), 4).tokens)


def test_induction_batch_repeats_a_span_at_a_varying_offset_and_labels_its_continuation():
    batch = recall.induction_batch(128, 64, 32, np.random.default_rng(0))
    starts = set()
    for row, labels in zip(batch.tokens.numpy(), batch.labels.numpy(), strict=True):
        assert row[0] == recall.BOS
        labelled = np.flatnonzero(labels != IGNORE)
        n = len(labelled) + 1  # the span's first token of the repeat has no label
        start = labelled[0] - 1
        starts.add(int(start))
        assert np.array_equal(row[start:start + n], row[1:1 + n])  # the repeat is the span
        assert np.array_equal(labels[labelled], row[labelled])  # HF convention: the label is the token itself
        assert (row[1 + n:start] == recall.PAD).all()
        assert row[1:1 + n].min() > recall.BOS
    assert len(starts) > 10  # the offset varies, so no positional rule answers
    assert (batch.distance == -1).all()
    with pytest.raises(UserError, match="too short"):
        recall.induction_batch(128, 10, 2, np.random.default_rng(0))


def test_bucket_edges_are_inclusive_at_t_2t_and_4t():
    T = 32
    distance = torch.tensor([-1, 1, T, T + 1, 2 * T, 2 * T + 1, 4 * T, 4 * T + 1])
    names = recall.distance_buckets(distance, budget=T).tolist()
    assert names == ["", "<=T", "<=T", "T-2T", "T-2T", "2T-4T", "2T-4T", ">4T"]
    with pytest.raises(UserError, match="budget"):
        recall.distance_buckets(distance, budget=0)


def test_accuracy_by_bucket_counts_each_query_once(batch):
    predictions = batch.labels.clone()
    far = batch.distance > 128
    predictions[far & (torch.arange(256) % 2 == 0)] = 0  # wrong on the even far positions
    stats = recall.accuracy_by_bucket(predictions, batch, budget=32)
    assert list(stats) == list(recall.BUCKETS)
    assert sum(s["n"] for s in stats.values()) == int((batch.labels != IGNORE).sum())
    for name in ("<=T", "T-2T", "2T-4T"):
        assert stats[name]["accuracy"] == 1.0
    wrong = int((far & (torch.arange(256) % 2 == 0)).sum())
    assert stats[">4T"]["n"] == int(far.sum()) and stats[">4T"]["correct"] == int(far.sum()) - wrong
    assert math.isnan(recall.accuracy_by_bucket(predictions, batch, budget=64)[">4T"]["accuracy"])


def test_predictions_from_logits_shift_onto_the_label_positions():
    logits = torch.zeros(1, 4, 10)
    logits[0, torch.arange(4), torch.tensor([5, 6, 7, 8])] = 1.0
    assert recall.predictions_from_logits(logits).tolist() == [[-1, 5, 6, 7]]


def _hand_built() -> RecallBatch:
    # row 0: BOS k v k v k v . . K V . K V . .   (3 pairs, labels at 10 and 13)
    # row 1: BOS k v k v . . . . . . . K V . .   (2 pairs, label at 13)
    tokens = torch.zeros(2, 16, dtype=torch.long)
    tokens[0, :7] = torch.tensor([1, 2, 70, 3, 71, 4, 72])
    tokens[0, [9, 10, 12, 13]] = torch.tensor([4, 72, 2, 70])
    tokens[1, :5] = torch.tensor([1, 5, 80, 6, 81])
    tokens[1, [12, 13]] = torch.tensor([6, 81])
    labels = torch.full((2, 16), IGNORE)
    labels[0, [10, 13]] = torch.tensor([72, 70])
    labels[1, 13] = 81
    distance = torch.full((2, 16), -1)
    distance[0, [10, 13]] = torch.tensor([4, 11])
    distance[1, 13] = 9
    return RecallBatch(tokens, labels, distance, torch.tensor([3, 2]))


def test_pairs_past_the_window_on_a_hand_built_sequence():
    hand = _hand_built()
    past = recall.pairs_past_window(hand, budget=4)
    # t=10: values at 2, 4 are more than 4 back, the one at 6 is exactly 4 back (inside, like bucket "<=T")
    assert past[0, [10, 13]].tolist() == [2, 3]
    assert past[1, 13].item() == 2  # row 1 has no value at 6
    assert (past[hand.labels == IGNORE] == -1).all()
    assert recall.pairs_past_window(hand, budget=7)[0, [10, 13]].tolist() == [1, 2]


def test_accuracy_by_pairs_past_bins_the_capacity_curve():
    hand = _hand_built()
    predictions = hand.labels.clone()
    predictions[0, 13] = 71
    stats = recall.accuracy_by_pairs_past(predictions, hand, budget=4, edges=(0, 3))
    assert stats["[0,3)"] == {"correct": 2, "n": 2, "accuracy": 1.0, "lo": 0, "hi": 3}
    assert stats["[3,inf)"] == {"correct": 0, "n": 1, "accuracy": 0.0, "lo": 3, "hi": math.inf}
    with pytest.raises(UserError, match="edges"):
        recall.accuracy_by_pairs_past(predictions, hand, budget=4, edges=(3, 3))
    with pytest.raises(UserError, match="predictions_from_logits"):
        recall.accuracy_by_pairs_past(torch.zeros(2, 16, 5), hand, budget=4)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vocab_size": 512, "max_pairs": 100}, r"max_pairs 100 needs 401 tokens .* lower max_pairs to 63"),
        ({"vocab_size": 64}, r"vocab_size 64 leaves 31 key tokens .* raise vocab_size to >= 98"),
        ({"queries_per_sequence": 30}, r"queries_per_sequence 30 must be in 1..min_pairs \(24\)"),
        ({"min_pairs": 50}, r"min_pairs 50 and max_pairs 48"),
    ],
    ids=["pairs-do-not-fit", "vocab-too-small", "too-many-queries", "min-above-max"],
)
def test_bad_config_is_one_line_user_error(fields, message):
    with pytest.raises(UserError, match=message) as err:
        RecallConfig(**fields)
    assert "\n" not in str(err.value)


def test_largest_fitting_config_builds():
    config = RecallConfig(vocab_size=512, min_pairs=63, max_pairs=63)
    full = recall.make_batch(config, 2)
    assert ((full.labels != IGNORE).sum(1) == 63).all()
