"""The SFT base trained to a stated accuracy on its check walks, and the quick demo: shipped float16 RL models traced
both ways on every walk of a length once, every number with its n in walks and a 95% interval over walks, reuse
announced and `fresh` honoured."""

from __future__ import annotations

import json

import pytest
import torch

from reasonlab.demo import read_headline
from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.delethink import training
from reasonlab.systems.delethink.config import DEMO, ExperimentConfig
from reasonlab.systems.delethink.demo import (
    claim_holds,
    export_assets,
    run_demo,
    summarize_demo,
    walk_accuracies,
)
from reasonlab.systems.delethink.experiment import run_experiment
from reasonlab.train.tinylm import TinyLM

TINY = ExperimentConfig(n_layer=1, d_model=32, sft_examples=64, sft_steps=3, sft_batch_size=8, rl_iterations=1,
                        rl_tasks_per_iteration=2, rl_group_size=2, test_budget=24, test_steps=[4, 48],
                        control_steps=[4], eval_tasks=2, eval_n=2, seeds=[0], sft_check_every=2, sft_check_tasks=4)


def test_sft_base_trains_until_its_check_walks_reach_the_target(tmp_path, monkeypatch):
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
    assert (cell["walks"], cell["start_states"], cell["samples_per_walk"]) == (3, 3, 2)
    assert cell["low"] <= cell["rate"] <= cell["high"]
    per_walk = json.loads((run_dir / "results.json").read_text())["per_walk"]
    assert all(len(walks) == 3 for curve in per_walk.values() for walks in curve.values())
    headline = read_headline(run_dir)
    assert headline is not None and headline.plot == "plots/accuracy_vs_length.png"
    assert (run_dir / headline.plot).stat().st_size > 1000 and "95% CI" in headline.result
    assert "n = 3 walks" in headline.result
    assert "made by" in headline.note and headline.holds == claim_holds(summary)
    capsys.readouterr()
    run_demo(tmp_path, False, assets=assets, config=config)
    assert "reusing 4 accuracy curves" in capsys.readouterr().err.replace("\n", " ")
    run_demo(tmp_path, True, assets=assets, config=config)
    assert "reusing 4 accuracy curves" not in capsys.readouterr().err.replace("\n", " ")


def test_the_demo_traces_every_start_state_once_per_length(shipped):
    policy = TinyLM.load(shipped[0] / "delethink-rl")
    config = TINY.model_copy(update={"num_states": 31, "eval_tasks": 31, "test_steps": [4], "eval_n": 1})
    world = config.world()
    walks = world.walks_of_length(4)
    assert sorted(w.start for w in walks) == list(range(31))
    assert len({world.query(w) for w in walks}) == 31 and all(w.steps == 4 for w in walks)
    assert DEMO.eval_tasks == DEMO.num_states  # the demo: every walk of a length, none twice
    with pytest.raises(UserError, match="only 31"):
        walk_accuracies(policy, config.model_copy(update={"eval_tasks": 32}), config.test_environment("longcot"))


def _per_walk(rates: dict[str, tuple[float, float]], starts: int = 127) -> dict[str, dict[str, list[float]]]:
    """Per-walk accuracies (in thirds, as avg@3) whose means are the given (within, beyond) rates: the first
    round(rate x starts) walks right, the others wrong, the same at both lengths of a part."""

    def column(rate: float) -> list[float]:
        right = round(rate * starts)
        return [1.0] * right + [0.0] * (starts - right)

    return {model: {"16": column(within), "32": column(within), "64": column(beyond), "96": column(beyond)}
            for model, (within, beyond) in rates.items()}


MODELS = ["delethink-rl/delethink", "longcot-rl/longcot", "longcot-rl/delethink", "delethink-rl/longcot"]


def test_demo_intervals_are_over_walks_and_its_claim_can_fail():
    within, beyond = [0.8, 0.96, 0.65, 0.95], [0.4, 0.25, 0.42, 0.25]
    # the run of record's pattern: within, LongCoT ahead and Delethink training recovering part of the gap;
    # beyond, Delethink ahead through the inference mode, training adding nothing
    record = summarize_demo(_per_walk(dict(zip(MODELS, zip(within, beyond, strict=True), strict=True))), DEMO)
    cell = record["models"]["delethink-rl/delethink"]["beyond_budget"]
    assert (cell["walks"], cell["start_states"], cell["samples_per_walk"]) == (254, 127, 3)
    # the interval is over the 127 start states (each counted once), not over 254 x 3 samples
    sd = (51 * 76 / 127 / 126) ** 0.5
    assert cell["rate"] == pytest.approx(51 / 127)
    assert cell["high"] - cell["rate"] == pytest.approx(1.96 * sd / 127 ** 0.5)
    assert record["comparisons"]["inference_effect_longcot_rl"]["beyond_budget"]["gap"] == pytest.approx(
        (53 - 32) / 127)
    assert record["comparisons"]["rl_effect_delethink_inference"]["beyond_budget"]["gap"] == pytest.approx(-2 / 127)
    assert claim_holds(record)
    # beyond the budget Delethink training adds 15 points: not the claim
    trained = summarize_demo(_per_walk(dict(zip(MODELS, zip(within, [0.55, 0.25, 0.4, 0.25], strict=True),
                                                strict=True))), DEMO)
    assert not claim_holds(trained)
    # a tie within the budget: not the claim either
    tie = summarize_demo(_per_walk(dict(zip(MODELS, zip([0.9, 0.9, 0.65, 0.9], beyond, strict=True), strict=True))),
                         DEMO)
    assert not claim_holds(tie)
    json.dumps(record)  # the summary is JSON


def test_no_gain_from_training_means_the_upper_end_stays_below_five_points():
    """An interval from -3 to +8 points is not "no gain": the one-sided reading (low end <= 0) would pass it."""
    wide = {"gap": 0.025, "low": -0.03, "high": 0.08}
    passing = {"gap": -0.01, "low": -0.05, "high": 0.03}
    comparisons = {"method_vs_baseline": {"within_budget": {"high": -0.1}, "beyond_budget": {"low": 0.05}},
                   "inference_effect_longcot_rl": {"beyond_budget": {"low": 0.1}}}

    def summary(training: dict[str, float]) -> dict:
        return {"comparisons": {**comparisons, "rl_effect_delethink_inference": {
            "within_budget": {"low": 0.05}, "beyond_budget": training}}}

    assert claim_holds(summary(passing)) and not claim_holds(summary(wide))
