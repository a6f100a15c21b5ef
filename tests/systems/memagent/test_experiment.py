"""The experiment's summary and the demo's headline, with scripted models: each arm's count of correct tasks
with its Wilson interval, the judges' agreement with n, the models loaded once, and reuse unless fresh."""

from __future__ import annotations

import json

import pytest

from reasonlab.demo import read_headline
from reasonlab.llm import ScriptedLLM
from reasonlab.runs import Run
from reasonlab.systems.memagent import experiment
from reasonlab.systems.memagent.config import PRESETS

from .helpers import WordEmbedder

CLARIFYING_REPLY = " Which one do you mean?"  # right on clarifications, reveals nothing on filters


@pytest.fixture
def scripted_demo(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """The demo preset on 2 seeds of 4 tasks, with a scripted LLM and a bag-of-words embedder; counts loads."""
    loads = {"llm": 0, "embedder": 0}

    def load_llm(config):
        loads["llm"] += 1
        return ScriptedLLM(lambda prompt: CLARIFYING_REPLY)

    def load_embedder():
        loads["embedder"] += 1
        return WordEmbedder()

    monkeypatch.setattr(experiment, "_load_llm", load_llm)
    monkeypatch.setattr(experiment, "_load_embedder", load_embedder)
    small = PRESETS["demo"].model_copy(update={"memories": 1, "tasks_per_category": 1, "seeds": [0, 1]})
    monkeypatch.setitem(PRESETS, "demo", small)
    return loads


def test_demo_headline_carries_counts_and_intervals_computed_from_the_run(tmp_path, scripted_demo, capsys) -> None:
    run_dir = experiment.quick(tmp_path, fresh=False)
    assert scripted_demo == {"llm": 1, "embedder": 1}  # once per experiment, not per seed
    headline = read_headline(run_dir)
    assert headline is not None and headline.kind == "pipeline check" and headline.holds is True
    assert headline.result == (
        "oracle 1.00 (8/8, 95% CI 0.68-1.00) vs wrong 0.00 (0/8, 95% CI 0.00-0.32); "
        "MiniLM-RAG + Gemma-3-270M 0.50 (4/8, 95% CI 0.22-0.78); "
        "deterministic judge vs hand labels 0.83 (45/54, 95% CI 0.71-0.91), kappa 0.67")
    assert "same 8 generated memory tasks" in headline.measures and "2 generator seeds" in headline.measures
    assert headline.note.startswith("MiniLM-RAG by category: clarification 2/2, filter 2/2, retrieval 0/2, update 0/2")
    assert (run_dir / headline.plot).is_file()
    # the headline's counts are the per-task verdicts logged in metrics.jsonl
    records = Run.open(run_dir).metrics()
    correct = {arm: sum(r["correct"] for r in records if r["arm"] == arm) for arm in ("oracle", "wrong", "rag")}
    assert correct == {"oracle": 8, "wrong": 0, "rag": 4} and len(records) == 24
    summary = Run.open(run_dir).summary()
    assert summary["arms"]["rag"]["score"] == {"mean": 0.5, "spread": 0.0, "n": 2}
    assert summary["arms"]["rag"]["ci95"] == pytest.approx([0.2152, 0.7848], abs=1e-4)
    assert summary["judge_agreement"]["deterministic"]["agree"] == 45
    progress = capsys.readouterr().err
    assert "mem-agent seed 1: MiniLM-RAG + LLM (rag) on 4 tasks ..." in progress
    assert "mem-agent rag: task 4/4 (filter, correct), 2 correct so far, done" in progress
    assert "judging, the deterministic judge against 54 hand labels" in progress


def test_demo_reuses_a_finished_run_of_its_config_unless_fresh(tmp_path, scripted_demo, monkeypatch, capsys) -> None:
    run_dir = experiment.quick(tmp_path, fresh=False)
    first = json.loads((run_dir / "headline.json").read_text())
    capsys.readouterr()
    assert experiment.quick(tmp_path, fresh=False) == run_dir
    assert "reusing the finished demo run" in capsys.readouterr().err
    assert scripted_demo == {"llm": 1, "embedder": 1}
    assert json.loads((run_dir / "headline.json").read_text()) == first
    experiment.quick(tmp_path, fresh=True)
    assert scripted_demo == {"llm": 2, "embedder": 2} and "reusing" not in capsys.readouterr().err
    # a finished run of another config is run again, not reused
    monkeypatch.setitem(PRESETS, "demo", PRESETS["demo"].model_copy(update={"seeds": [0]}))
    experiment.quick(tmp_path, fresh=False)
    assert "reusing" not in capsys.readouterr().err and scripted_demo["llm"] == 3
    assert "1 generator seed)" in read_headline(run_dir).measures  # type: ignore[union-attr]


def _summary(oracle: tuple[int, int], wrong: tuple[int, int]) -> dict:
    per_seed = {0: {"oracle": {"score": oracle[0] / oracle[1], "n": oracle[1], "correct": oracle[0]},
                    "wrong": {"score": wrong[0] / wrong[1], "n": wrong[1], "correct": wrong[0]}}}
    agreement = {"n": 54, "agree": 45, "kappa": 0.6685}
    return {"llm": "x:y", "per_seed": per_seed, "arms": experiment.arm_scores(per_seed, ["oracle", "wrong"]),
            "judge_agreement": {"deterministic": agreement}}


def test_the_claim_holds_only_when_the_intervals_of_right_and_wrong_do_not_overlap() -> None:
    separated = experiment.demo_headline(_summary((4, 4), (0, 4)))
    assert separated.holds is True  # 4/4 [0.51, 1] vs 0/4 [0, 0.49]
    overlapping = experiment.demo_headline(_summary((3, 4), (1, 4)))
    assert overlapping.holds is False
    assert overlapping.result.startswith("oracle 0.75 (3/4, 95% CI 0.30-0.95) vs wrong 0.25 (1/4, 95% CI 0.05-0.70)")
    assert "Not in this run: x:y as the agent" in overlapping.note


def test_arm_scores_pool_tasks_over_seeds_and_keep_the_spread_of_seed_scores() -> None:
    per_seed = {0: {"rag": {"score": 0.5, "n": 4, "correct": 2}}, 1: {"rag": {"score": 1.0, "n": 4, "correct": 4}}}
    scores = experiment.arm_scores(per_seed, ["rag"])["rag"]
    assert (scores["correct"], scores["tasks"], scores["score"]["mean"], scores["score"]["n"]) == (6, 8, 0.75, 2)
    assert scores["score"]["spread"] == pytest.approx(0.353553, abs=1e-6)
    assert scores["ci95"] == pytest.approx([0.4093, 0.9285], abs=1e-4)
