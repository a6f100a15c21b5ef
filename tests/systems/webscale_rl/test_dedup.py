"""MinHash near-duplicate removal: shingles, seeded signatures, and exact keep/drop counts."""

from __future__ import annotations

import re

import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import DedupConfig
from reasonlab.systems.webscale_rl.dedup import (
    NearDuplicateIndex,
    dedup_stage,
    minhash,
    near_duplicates,
    shingles,
)

BASE = ("In the Python 3.11 documentation the asyncio module describes how the event loop runs coroutines, "
        "schedules callbacks, performs network input and output, and runs subprocesses; which function of the "
        "module should an application call to run the top level coroutine and close the loop when it finishes "
        "its work on every platform that the interpreter supports today?")
# one word changed at the very end: 1 of 56 shingles differs (true Jaccard 55/57)
NEAR = BASE.replace("today?", "now?")
# the same words with other case and punctuation: identical shingles
RECASED = BASE.upper().replace(";", ",")
OTHER = ("Which standard library module reads TOML configuration files in Python 3.11, and what type does its "
         "load function return for a table of keys and values found in a file opened in binary mode?")
# the first half of BASE with a different second half: true Jaccard about 0.4
HALF = " ".join(BASE.split()[:30]) + " and how does it cancel tasks that are still pending when the loop stops?"


def test_shingles_are_lowercased_word_trigrams() -> None:
    assert shingles("The cat sat on the mat", 3) == {"the cat sat", "cat sat on", "sat on the", "on the mat"}
    assert shingles("a b a b a", 2) == {"a b", "b a"}


def test_texts_shorter_than_the_shingle_still_get_one_shingle() -> None:
    assert shingles("Hello, World!", 3) == {"hello world"}
    assert shingles("", 3) == {""}
    config = DedupConfig()
    assert minhash("Yes!", config).jaccard(minhash("yes", config)) == 1.0
    assert minhash("Yes", config).jaccard(minhash("No", config)) == 0.0


def test_minhash_is_seeded_and_reproducible() -> None:
    config = DedupConfig(num_perm=64)
    first, again = minhash(BASE, config), minhash(BASE, config)
    assert np.array_equal(first.hashvalues, again.hashvalues)
    other_seed = minhash(BASE, DedupConfig(num_perm=64, seed=7))
    assert not np.array_equal(first.hashvalues, other_seed.hashvalues)
    assert first.jaccard(minhash(NEAR, config)) >= 0.8
    assert first.jaccard(minhash(HALF, config)) < 0.6


def test_near_duplicates_map_each_later_copy_to_the_first_kept_item() -> None:
    items = [("a", BASE), ("b", OTHER), ("c", NEAR), ("d", RECASED), ("e", HALF), ("f", OTHER + "  ")]
    assert near_duplicates(items, DedupConfig()) == {"c": "a", "d": "a", "f": "b"}
    # order decides which one is kept
    assert near_duplicates(list(reversed(items)), DedupConfig()) == {"c": "d", "b": "f", "a": "d"}


def test_dedup_stage_keeps_the_first_of_each_group_with_exact_counts() -> None:
    records = [{"qa_id": f"doc#{i}", "question": text} for i, text in enumerate([BASE, NEAR, OTHER, RECASED, HALF])]
    output = dedup_stage(records, lambda r: r["question"], lambda r: r["qa_id"], DedupConfig(), "dedup_qa")
    assert [r["qa_id"] for r in output.kept] == ["doc#0", "doc#2", "doc#4"]
    assert output.rejected == [
        {"id": "doc#1", "stage": "dedup_qa", "reason": "near-duplicate", "detail": "duplicates doc#0"},
        {"id": "doc#3", "stage": "dedup_qa", "reason": "near-duplicate", "detail": "duplicates doc#0"},
    ]


def test_a_lower_threshold_also_drops_the_half_overlapping_text() -> None:
    assert near_duplicates([("a", BASE), ("e", HALF)], DedupConfig(threshold=0.3)) == {"e": "a"}


WORDS = [f"w{i}" for i in range(100)]


def tail_variant(k: int) -> str:
    """100 distinct words with the last k replaced: true Jaccard with the original (98 - k) / (98 + k)."""
    return " ".join(WORDS[:100 - k] + [f"x{j}" for j in range(k)])


def test_a_pair_is_dropped_iff_its_estimated_jaccard_reaches_the_threshold() -> None:
    config = DedupConfig()
    original = minhash(" ".join(WORDS), config)
    flagged = [k for k in range(1, 26) if near_duplicates([("w", " ".join(WORDS)), ("x", tail_variant(k))], config)]
    # true Jaccard crosses 0.8 between k = 10 (0.818) and k = 11 (0.798); the seeded estimate between 13 and 14
    assert flagged == list(range(1, 14))
    assert flagged == [k for k in range(1, 26) if original.jaccard(minhash(tail_variant(k), config)) >= 0.8]


def test_a_text_matching_two_kept_items_names_the_earlier_one() -> None:
    # a and b differ at both ends (estimated Jaccard 0.73, both kept); c is within 0.8 of each
    a = tail_variant(6)
    b = " ".join([f"y{j}" for j in range(6)] + WORDS[6:])
    assert near_duplicates([("a", a), ("b", b), ("c", " ".join(WORDS))], DedupConfig()) == {"c": "a"}
    assert near_duplicates([("b", b), ("a", a), ("c", " ".join(WORDS))], DedupConfig()) == {"c": "b"}


def test_index_rejects_a_repeated_id_and_an_impossible_threshold() -> None:
    index = NearDuplicateIndex(DedupConfig())
    assert index.add("a", BASE) is None
    assert index.add("b", NEAR) == "a"
    assert len(index) == 1
    with pytest.raises(ValueError, match="'b' given twice"):
        index.add("b", OTHER)
    with pytest.raises(UserError, match=re.escape("dedup.threshold=0.99 with dedup.num_perm=16")):
        NearDuplicateIndex(DedupConfig(threshold=0.99, num_perm=16))
