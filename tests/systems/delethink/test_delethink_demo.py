"""The SFT base trained to a stated accuracy, and the quick demo: shipped float16 RL models traced both ways, every
number with its n and a 95% interval, reuse announced and `fresh` honoured."""

from __future__ import annotations

import json

import pytest
import torch

from reasonlab.demo import read_headline
from reasonlab.runs import Run
from reasonlab.systems.delethink import training
from reasonlab.systems.delethink.config import DEMO, ExperimentConfig
from reasonlab.systems.delethink.demo import claim_holds, export_assets, run_demo, summarize_demo
from reasonlab.systems.delethink.experiment import run_experiment

TINY = ExperimentConfig(n_layer=1, d_model=32, sft_examples=64, sft_steps=3, sft_batch_size=8, rl_iterations=1,
                        rl_tasks_per_iteration=2, rl_group_size=2, test_budget=24, test_steps=[4, 48],
                        control_steps=[4], eval_tasks=2, eval_n=2, seeds=[0], sft_check_every=2, sft_check_tasks=4)


def test_sft_base_trains_until_the_held_out_check_reaches_its_target(tmp_path, monkeypatch):
    scripted = iter([0.2, 0.5, 0.91, 0.95])

    def check(self, steps):
        row = {"step": steps, "accuracy": next(scripted), "tasks": 4}
        self.checks.append(row)
        return row

    monkeypatch.setattr(training._SFTWatcher, "check", check)
    setup = TINY.model_copy(update={"sft_steps": 20, "sft_stop_accuracy": 0.9})
    training.sft_base(setup, tmp_path)
    summary = Run.open(training.sft_base_dir(setup, tmp_path)).summary()
    # checks at steps 2, 4, 6: the third reaches 0.9, so training ends there, well before the cap of 20
    assert summary["steps"] == 6 and summary["reached_target"] and summary["check_accuracy"] == 0.91
    assert [c["step"] for c in summary["checks"]] == [2, 4, 6]


def test_sft_base_without_a_target_runs_every_step_and_checks_the_last(tmp_path):
    setup = TINY.model_copy(update={"sft_steps": 3, "sft_stop_accuracy": None})
    training.sft_base(setup, tmp_path)
    summary = Run.open(training.sft_base_dir(setup, tmp_path)).summary()
    assert summary["steps"] == 3 and not summary["reached_target"]
    assert [c["step"] for c in summary["checks"]] == [2, 3] and all(c["tasks"] == 4 for c in summary["checks"])
    # the check is part of what makes the base: another target is another base
    assert training.sft_base_dir(setup, tmp_path) != training.sft_base_dir(
        setup.model_copy(update={"sft_stop_accuracy": 0.5}), tmp_path)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny experiment's RL models exported as the demo's assets would be."""
    root = tmp_path_factory.mktemp("demo")
    run_experiment(TINY, root / "exp")
    provenance = export_assets(root / "exp", 0, root / "assets")
    return root / "assets", provenance


def test_exported_assets_are_float16_and_say_where_they_came_from(shipped):
    assets, provenance = shipped
    assert provenance["source"] == "exp" and provenance["seed"] == 0 and provenance["setup"] == TINY.setup_fields()
    assert set(provenance["runs"]) == {"delethink", "longcot"} and "steps" in provenance["sft_base"]
    state = torch.load(assets / "delethink-rl" / "model.pt", weights_only=True)
    assert all(t.dtype == torch.float16 for t in state.values() if t.is_floating_point())


def test_demo_reports_each_cell_with_n_and_interval_and_reuses_unless_fresh(shipped, tmp_path, capsys):
    assets, _ = shipped
    config = TINY.model_copy(update={"eval_tasks": 3})
    run_dir = run_demo(tmp_path, False, assets=assets, config=config)
    summary = Run.open(run_dir).summary()
    assert set(summary["models"]) == {"delethink-rl/delethink", "longcot-rl/longcot", "longcot-rl/delethink",
                                      "delethink-rl/longcot"}
    cell = summary["models"]["longcot-rl/delethink"]["beyond_budget"]
    assert cell["n"] == 3 * 2 and cell["low"] <= cell["rate"] <= cell["high"]
    headline = read_headline(run_dir)
    assert headline is not None and headline.plot == "plots/accuracy_vs_length.png"
    assert (run_dir / headline.plot).stat().st_size > 1000 and "95% CI" in headline.result
    assert "made by" in headline.note and headline.holds == claim_holds(summary)
    capsys.readouterr()
    run_demo(tmp_path, False, assets=assets, config=config)
    assert "reusing 4 accuracy curves" in capsys.readouterr().err.replace("\n", " ")
    run_demo(tmp_path, True, assets=assets, config=config)
    assert "reusing 4 accuracy curves" not in capsys.readouterr().err.replace("\n", " ")


def _curves(within: dict[str, float], beyond: dict[str, float]) -> dict[str, dict[str, float]]:
    return {model: {"16": within[model], "32": within[model], "64": beyond[model], "96": beyond[model]}
            for model in within}


def _cells(models: list[str], rates: list[float]) -> dict[str, float]:
    return dict(zip(models, rates, strict=True))


def test_demo_summary_pools_lengths_and_its_claim_can_fail():
    models = ["delethink-rl/delethink", "longcot-rl/longcot", "longcot-rl/delethink", "delethink-rl/longcot"]
    # the run of record's pattern: within, LongCoT ahead and Delethink training recovering part of the gap;
    # beyond, Delethink ahead through the inference mode, training adding nothing
    within = _cells(models, [0.8, 0.96, 0.65, 0.95])
    record = summarize_demo(_curves(within, _cells(models, [0.4, 0.25, 0.42, 0.25])), DEMO)
    cell = record["models"]["delethink-rl/delethink"]["beyond_budget"]
    assert (cell["k"], cell["n"]) == (307, 768) and cell["low"] < 0.4 < cell["high"]
    assert record["comparisons"]["inference_effect_longcot_rl"]["beyond_budget"]["gap"] == pytest.approx(0.17, abs=1e-3)
    assert record["comparisons"]["rl_effect_delethink_inference"]["beyond_budget"]["gap"] == pytest.approx(-0.02, abs=1e-3)
    assert claim_holds(record)
    # beyond the budget Delethink training adds 15 points: not the claim
    trained = summarize_demo(_curves(within, _cells(models, [0.55, 0.25, 0.4, 0.25])), DEMO)
    assert not claim_holds(trained)
    # a tie within the budget: not the claim either
    tie = summarize_demo(_curves(_cells(models, [0.9, 0.9, 0.65, 0.9]), _cells(models, [0.4, 0.25, 0.42, 0.25])), DEMO)
    assert not claim_holds(tie)
    json.dumps(record)  # the summary is JSON
