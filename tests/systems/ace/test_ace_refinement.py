"""Grow-and-refine: greedy embedding de-duplication."""

from __future__ import annotations

import numpy as np
import pytest

from reasonlab.systems.ace.calibration import calibrate, sweep
from reasonlab.systems.ace.config import ACEConfig
from reasonlab.systems.ace.playbook import Playbook
from reasonlab.systems.ace.refinement import duplicate_groups, refine


class FixedEmbedder:
    """Returns preset vectors by bullet content."""

    dim = 2

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def embed(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_groups_at_threshold_and_skip_already_grouped() -> None:
    angle = np.deg2rad(25.0)
    vectors = np.array([[1, 0], [np.cos(angle), np.sin(angle)], [np.cos(2 * angle), np.sin(2 * angle)], [0, 1]])
    threshold = float(np.cos(angle))  # equality at the threshold merges
    assert duplicate_groups(vectors, threshold) == [[0, 1]]  # 2 is 50 degrees from 0; 1 is taken
    assert duplicate_groups(vectors, 0.5) == [[0, 1, 2]]
    assert duplicate_groups(vectors, 0.5, sections=["a", "b", "a", "a"]) == [[0, 2]]
    assert duplicate_groups(vectors, 0.999) == []


def test_refine_keeps_first_id_and_content_and_sums_counters() -> None:
    playbook = Playbook()
    for content, helpful in (("use cents", 2), ("other thing", 0), ("amounts in cents", 3)):
        playbook.add("others", content).helpful = helpful
    embedder = FixedEmbedder({"use cents": [1, 0], "amounts in cents": [1, 0.01], "other thing": [0, 1]})
    refined, report = refine(playbook, embedder, threshold=0.9)
    assert report.groups == [["misc-00001", "misc-00003"]] and report.merged == 1
    assert [(b.id, b.content, b.helpful) for b in refined] == [("misc-00001", "use cents", 5),
                                                               ("misc-00002", "other thing", 0)]
    assert refined.next_id == 4


def test_refine_keeps_the_oldest_bullet_even_when_a_newer_one_renders_first() -> None:
    playbook = Playbook()
    playbook.add("others", "list orders with orders(shop_<city>)")  # misc-00001, seeded
    playbook.add("strategies_and_insights", "list orders with orders(acct_<name>)")  # strat-00002, renders first
    embedder = FixedEmbedder({"list orders with orders(shop_<city>)": [1, 0],
                              "list orders with orders(acct_<name>)": [1, 0.05]})
    refined, report = refine(playbook, embedder, threshold=0.9)
    assert report.groups == [["misc-00001", "strat-00002"]]
    assert [(b.id, b.content) for b in refined] == [("misc-00001", "list orders with orders(shop_<city>)")]


@pytest.fixture(scope="module")
def minilm():
    from reasonlab.llm.embed import MiniLMEmbedder

    return MiniLMEmbedder()


def test_calibrate_picks_the_f1_best_threshold_on_fixed_vectors() -> None:
    pairs = [("a", "a2", True), ("b", "b2", True), ("a", "b", False)]
    embedder = FixedEmbedder({"a": [1, 0], "a2": [0.9, 0.436], "b": [0, 1], "b2": [0.2, 0.98]})
    best = calibrate(embedder, pairs)
    # cos(a, a2) = 0.89996 and cos(b, b2) ~ 0.98 are duplicates, cos(a, b) = 0 is not: every t of the sweep up
    # to 0.88 is perfect, and ties go to the higher threshold
    assert best == {"threshold": 0.88, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert [r["threshold"] for r in sweep(embedder, pairs)][:2] == [0.5, 0.52]


@pytest.mark.slow
def test_minilm_calibration_and_the_default_threshold(minilm) -> None:
    best = calibrate(minilm)
    assert best == {"threshold": 0.72, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert ACEConfig().dedup_threshold == best["threshold"]
    by_threshold = {r["threshold"]: r for r in sweep(minilm)}
    assert [by_threshold[t]["f1"] for t in (0.66, 0.68, 0.7, 0.72, 0.74)] == [0.976, 1.0, 1.0, 1.0, 0.974]
    # mpnet's 0.90 would merge only a quarter of the MiniLM paraphrases
    assert by_threshold[0.9] == {"threshold": 0.9, "precision": 1.0, "recall": 0.25, "f1": 0.4}


@pytest.mark.slow
def test_minilm_merges_a_paraphrase_but_not_a_different_rule(minilm) -> None:
    playbook = Playbook()
    playbook.add("others", "Transfers take amounts in cents, so multiply coins by 100.")
    playbook.add("others", "Account ids are acct_ followed by the lowercase name.")
    playbook.add("others", "Transfer amounts are given in cents: multiply the coins by 100.")
    refined, report = refine(playbook, minilm)
    assert report.groups == [["misc-00001", "misc-00003"]]
    assert len(refined) == 2
