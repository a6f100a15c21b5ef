"""The quick demo's protocol and headline: the seeded rules each arm keeps, its context size per update, and the
accuracy on questions that need the seeded rules, with n and a 95% interval; `holds` computed from the numbers."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from reasonlab.demo import read_headline
from reasonlab.runs import Run
from reasonlab.systems.ace import experiment
from reasonlab.systems.ace.config import PRESETS
from reasonlab.systems.ace.evaluation import collapse_stats, compare_arms
from reasonlab.systems.ace.experiment import collapse_headline


class DistinctEmbedder:
    """A random unit vector per text: different bullets never merge."""

    def embed(self, texts):
        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=64) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


@pytest.fixture
def scripted_demo(monkeypatch, rule_llm):
    """The demo with a scripted rule-follower (its rewrite keeps only 60 characters: a collapsing rewriter);
    counts how often the model and MiniLM are loaded and how many completions the model makes."""
    loads = {"llm": 0, "embedder": 0}
    llm = rule_llm(rewrite_keep_chars=60)

    def load_llm(settings):
        loads["llm"] += 1
        return llm

    def load_embedder():
        loads["embedder"] += 1
        return DistinctEmbedder()

    monkeypatch.setattr(experiment, "_load_llm", load_llm)
    monkeypatch.setattr(experiment, "_load_embedder", load_embedder)
    return llm, loads


def test_quick_demo_headline_states_kept_rules_context_sizes_and_accuracy_with_intervals(
        tmp_path, scripted_demo, capsys) -> None:
    llm, loads = scripted_demo
    run_dir = experiment.quick(tmp_path, fresh=False)
    assert run_dir == tmp_path / "ace-quick"
    assert loads == {"llm": 1, "embedder": 1}  # once for 2 arms x 2 seeds
    summary = Run.open(run_dir).summary()
    ace, dc = summary["arms"]["ace"], summary["arms"]["dc"]
    # 2 seeds x 6 questions, each asking about a rule that only the seeded context held
    assert ace["pooled"]["seeded"] == {"correct": 12, "n": 12, "rate": 1.0, "low": 0.7575, "high": 1.0,
                                       "text": "1.00 (12/12, 95% CI 0.76-1.00)"}
    assert (dc["pooled"]["seeded"]["correct"], dc["pooled"]["seeded"]["n"], dc["pooled"]["seeded"]["high"]) == (
        0, 12, 0.2425)
    assert ace["pooled"]["learned"]["n"] == 0
    for seed in ("0", "1"):
        assert ace["per_seed"][seed]["facts_retained"] == [6, 6, 6]
        assert dc["per_seed"][seed]["facts_retained"] == [6, 0, 0]
        assert dc["per_seed"][seed]["context_tokens"][1] < dc["per_seed"][seed]["context_tokens"][0] / 2
    headline = read_headline(run_dir)
    assert headline is not None and headline.holds is True and headline.kind == "result"
    assert "seeded rules kept: ACE 6/6 on each of 2 seeds, full rewrite 0/6 on each of 2 seeds" in headline.result
    assert ("pooled over 2 seeds: ACE 1.00 (12/12, 95% CI 0.76-1.00) vs rewrite 0.00 (0/12, 95% CI 0.00-0.24), "
            "intervals disjoint") in headline.result
    curve = "→".join(str(t) for t in ace["per_seed"]["0"]["context_tokens"])
    assert f"ACE {curve} on each seed" in headline.result and "(largest one-step shrink 0% vs 72%)" in headline.result
    assert headline.plot == "plots/collapse.png" and (run_dir / headline.plot).stat().st_size > 0
    err = capsys.readouterr().err
    # phase lines with the arm, seed, update k/N and the evaluation, each with its ETA
    assert "ace experiment [1/4] ace, seed 0: update 1/2, context" in err
    assert "ace experiment [4/4] dc, seed 1, test: question 6/6, 0 right so far, done" in err

    calls = len(llm.prompts)
    assert calls == 4 * (2 + 2 + 6)  # per arm and seed: 2 answers, 2 Curator/rewrite calls, 6 test questions
    assert experiment.quick(tmp_path, fresh=False) == run_dir  # reused, announced, no model call
    assert len(llm.prompts) == calls and loads == {"llm": 1, "embedder": 1}
    assert "ace: reusing the finished adaptations in" in capsys.readouterr().err
    experiment.quick(tmp_path, fresh=True)  # recomputed
    assert len(llm.prompts) == 2 * calls and loads == {"llm": 2, "embedder": 2}
    assert "--fresh" in capsys.readouterr().err


def test_quick_demo_recomputes_a_run_made_with_another_config(tmp_path, scripted_demo, capsys) -> None:
    config = PRESETS["quick"].model_copy(update={"seeds": [0]})
    experiment.run_experiment(config, tmp_path, "ace-quick", llm=scripted_demo[0], embedder=DistinctEmbedder())
    experiment.quick(tmp_path, fresh=False)
    assert "it was made with another config" in capsys.readouterr().err
    assert json.loads((tmp_path / "ace-quick" / "summary.json").read_text())["arms"]["ace"]["test_accuracy"]["n"] == 2


def adaptation(tokens: list[int], retained: list[int], correct: int, n: int) -> dict:
    """An offline adaptation's summary.json with the fields the comparison reads."""
    rows = [{"id": f"q{i}", "seeded": True, "correct": i < correct} for i in range(n)]
    return {"test_after": {"accuracy": correct / n}, "facts_seeded": 6, "facts_retained": retained,
            "context_tokens": tokens, **collapse_stats(tokens), "test_rows": rows, "adapt_seconds": 1.0,
            "adapt_usage": {"calls": 4, "prompt_tokens": 100, "completion_tokens": 10}}


def headline_of(ace: list[dict], dc: list[dict]):
    summary = compare_arms({"ace": dict(enumerate(ace)), "dc": dict(enumerate(dc))})
    return collapse_headline(summary, PRESETS["quick"])


KEEPS = adaptation([150, 190, 220], [6, 6, 6], 5, 6)
COLLAPSES = adaptation([60, 12, 12], [6, 0, 0], 0, 6)


def test_headline_holds_only_when_every_seed_shows_the_claim() -> None:
    headline = headline_of([KEEPS, KEEPS], [COLLAPSES, COLLAPSES])
    assert headline.holds is True
    assert "ACE 0.83 (10/12, 95% CI 0.55-0.95) vs rewrite 0.00 (0/12, 95% CI 0.00-0.24)" in headline.result
    assert "ACE 150→190→220 on each seed" in headline.result and "shrink 0% vs 80%" in headline.result
    lost_one = adaptation([150, 190, 160], [6, 6, 5], 5, 6)  # ACE shrank and lost a rule on one seed
    lost = headline_of([KEEPS, lost_one], [COLLAPSES, COLLAPSES])
    assert lost.holds is False and "ACE 6/6, 5/6" in lost.result and "150→190→220, 150→190→160" in lost.result
    gentle = adaptation([60, 40, 30], [6, 4, 3], 0, 6)  # the rewrite lost rules without a >50% shrink
    assert headline_of([KEEPS, KEEPS], [COLLAPSES, gentle]).holds is False
    kept_all = adaptation([60, 12, 70], [6, 6, 6], 0, 6)  # shrank, yet never lost a rule
    assert headline_of([KEEPS, KEEPS], [COLLAPSES, kept_all]).holds is False


def test_headline_reports_an_unresolved_accuracy_gap_without_claiming_it() -> None:
    weak = adaptation([150, 190, 220], [6, 6, 6], 2, 6)
    headline = headline_of([weak, weak], [adaptation([60, 12, 12], [6, 0, 0], 1, 6)] * 2)
    # 4/12 vs 2/12: the intervals overlap, so only the collapse is claimed
    assert headline.holds is True
    assert "ACE 0.33 (4/12, 95% CI 0.14-0.61) vs rewrite 0.17 (2/12, 95% CI 0.05-0.45)" in headline.result
    assert "intervals overlap: this run shows the collapse but not its cost in accuracy" in headline.result
    assert "the accuracy gap is reported, not claimed" in headline.note
    # the rewrite answering more (disjoint intervals the other way) contradicts the paper: it does not hold
    reverse = headline_of([weak, weak], [adaptation([60, 12, 12], [6, 0, 0], 6, 6)] * 2)
    assert reverse.holds is False and "the rewrite answers more, the opposite of the paper" in reverse.result


def test_no_headline_without_both_arms_or_seeded_rules() -> None:
    summary = compare_arms({"ace": {0: KEEPS}, "none": {0: COLLAPSES}})
    assert collapse_headline(summary, PRESETS["quick"]) is None
    untested = headline_of([{**KEEPS, "test_rows": []}], [{**COLLAPSES, "test_rows": []}])
    assert untested.holds is True and "the cost in accuracy is not measured" in untested.result
    unseeded = {**KEEPS, "facts_seeded": 0}
    assert collapse_headline(compare_arms({"ace": {0: unseeded}, "dc": {0: unseeded}}), PRESETS["quick"]) is None
