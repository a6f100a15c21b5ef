"""Reproduction check of the README's Webscale-RL row (`pytest -m experiment`): the run of record, i.e. the
pipeline over python3.11-doc and then base / RL / CPT at equal document tokens for 3 seeds (about 55 minutes in 2
processes on 2 cores; `reasonlab webscale experiment` is the same run)."""

from __future__ import annotations

import pytest

from reasonlab.systems.webscale_rl.experiment import run_experiment

pytestmark = pytest.mark.experiment


@pytest.fixture(scope="module")
def record(tmp_path_factory) -> dict:
    return run_experiment("record", (0, 1, 2), tmp_path_factory.mktemp("webscale") / "record", jobs=2)


def test_the_pipeline_turns_the_python_docs_into_over_a_thousand_checked_qa(record) -> None:
    """The row's pipeline numbers: 525 documents read, 1,206 QA (2.3 per document), no leakage left, under 2%
    near-duplicate QA, every bad input skipped with its reason."""
    report = record["pipeline"]
    assert report["documents"]["read"] >= 500
    assert sum(report["documents"]["skipped"].values()) == report["documents"]["inputs"] - report["documents"]["read"]
    assert report["qa"]["accepted"] >= 1000 and report["qa"]["yield_per_document"] >= 2.0
    stages = {row["stage"]: row for row in report["stages"]}
    assert 0.8 <= stages["filter"]["pass_rate"] < 1.0 and stages["filter"]["reasons"]["boilerplate"] > 0
    assert stages["check"]["pass_rate"] >= 0.95
    assert report["leakage"]["remaining_flagged"] == 0
    assert report["duplicates"]["qa"]["rate"] < 0.02


def test_rl_and_cpt_read_the_same_document_tokens_on_every_seed(record) -> None:
    arms = record["comparison"]["arms"]
    rl, cpt = arms["rl"]["tokens"]["document_tokens"], arms["cpt"]["tokens"]["document_tokens"]
    assert rl["n"] == cpt["n"] == 3
    assert rl["mean"] == cpt["mean"] > 30_000 and rl["sd"] == cpt["sd"] == 0


def test_closed_book_accuracy_stays_at_the_floor_for_every_arm(record) -> None:
    """What the row reports: on 200 held-out QA no arm reaches 2% on average, and RL - CPT is not clear of twice
    its seed spread; the run cannot tell RL's token efficiency from its absence."""
    comparison = record["comparison"]
    for arm in ("base", "rl", "cpt"):
        assert comparison["arms"][arm]["heldout_documents"]["mean"] < 0.02, arm
    difference = comparison["differences"]["rl-cpt"]["heldout_documents"]
    assert abs(difference["mean"]) <= 2 * difference["sd"] + 0.005
    assert record["headline"]["holds"] is False


@pytest.mark.xfail(reason="not met at CPU scale: Gemma-3-270M with LoRA and 36 GRPO iterations stays at the floor "
                   "(benchmarks/RESULTS.md, Webscale-RL)", strict=False)
def test_rl_beats_continued_pretraining_at_equal_tokens(record) -> None:
    """The paper's claim in miniature: RL ahead of CPT on held-out documents, clear of twice the seed spread."""
    difference = record["comparison"]["differences"]["rl-cpt"]["heldout_documents"]
    assert difference["mean"] > 2 * difference["sd"] and difference["mean"] > 0.02
