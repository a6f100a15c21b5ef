"""The deterministic checker against 138 hand-labelled QA candidates (fixtures/labelled_qa.jsonl): what the
README row and docs/webscale_rl.md state about grounding precision and leakage.

The fixture: candidates as they left the generator, before any check, each with the passage its generator saw —
60 extractive clozes sampled from the run of record, 58 free-mode pairs from Gemma-3-270M, and 20 extractive
questions given the answer of another candidate in the same passage (`swapped`: wrong answers the passage still
contains). Made by benchmarks/webscale_label_sample.py; labels (grounded, leakage, self_contained, a note) were
given one pair at a time by a separate reviewer (an LLM assistant session, not a person) that saw only the
passage, the question and the answer, never a checker verdict or the source. Numbers: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from reasonlab.systems.webscale_rl.config import CheckConfig
from reasonlab.systems.webscale_rl.evaluation import labelled_sample_agreement

FIXTURE = Path(__file__).parent / "fixtures" / "labelled_qa.jsonl"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def agreement(rows) -> dict:
    from reasonlab.llm.embed import load_embedder

    return labelled_sample_agreement(rows, CheckConfig(), load_embedder("minilm"))


def test_the_fixture_has_over_100_labelled_pairs_from_three_sources(rows) -> None:
    assert len(rows) >= 100 and len({row["qa_id"] for row in rows}) == len(rows)
    assert Counter(row["generator"] for row in rows) == {"extractive": 60, "free:llamacpp:embedded": 58,
                                                         "swapped": 20}
    for row in rows:
        assert set(row["labels"]) == {"grounded", "leakage", "self_contained"}
        assert all(isinstance(value, bool) for value in row["labels"].values())
        assert row["passage"] and row["question"]


def test_extractive_grounding_precision_and_no_ungrounded_pair_accepted(agreement) -> None:
    extractive = agreement["by_generator"]["extractive"]
    precision = extractive["grounding"]["precision"]
    assert precision["n"] >= 55 and precision["rate"] == 1.0
    assert extractive["ungrounded_after_check"]["k"] == 0


def test_the_checker_rejects_every_free_gemma_pair(agreement) -> None:
    free = agreement["by_generator"]["free:llamacpp:embedded"]
    assert free["accepted"]["k"] == 0
    assert free["leakage_before_check"]["rate"] > 0.5  # the labels: most of them repeat their answer


def test_leakage_is_mostly_flagged_and_little_is_left(agreement) -> None:
    overall = agreement["all"]
    assert overall["leakage"]["recall"]["rate"] >= 0.8  # 42/50 labelled leaks flagged
    assert overall["leakage"]["precision"]["rate"] >= 0.95
    assert overall["leakage_after_check"]["rate"] <= 0.05  # 2/73 accepted pairs still leak


def test_a_wrong_answer_that_the_passage_contains_passes_the_string_check(agreement) -> None:
    """The known limit of grounding by string match (docs/webscale_rl.md): it cannot tell a wrong span of the
    passage from the right one, which is what the paper's LLM checker is for."""
    swapped = agreement["by_generator"]["swapped"]
    assert swapped["accepted"]["rate"] >= 0.8
    assert swapped["ungrounded_after_check"]["rate"] >= 0.7
    assert agreement["all"]["grounding"]["precision"]["rate"] < 0.9
