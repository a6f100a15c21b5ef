"""The experiment's machinery: its folder is a run (config, summary with mean / spread / n, plots) holding a run
per seed and arm; the warm start is cached under its config hash and reuse is announced; reruns are refused
unless resumed or overwritten; the warm start stops at its accuracy target."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.h1 import experiment
from reasonlab.systems.h1.config import PRESETS
from reasonlab.systems.h1.experiment import run_experiment, summarize

TINY = PRESETS["quick"].model_copy(update={"sft_steps": 20, "sft_chains_per_depth": 50, "steps_per_stage": 1,
                                           "eval_chains": 4, "probe_chains": 2, "tasks_per_iteration": 2})


def test_the_experiment_is_a_run_that_resumes_and_reuses_its_warm_start(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    calls, logs = [], []
    real = experiment.warm_start
    monkeypatch.setattr(experiment, "warm_start", lambda c, s: calls.append(s) or real(c, s))
    out = tmp_path / "h1"
    first = run_experiment(TINY, out, (0,), log=logs.append)
    run = Run.open(out)
    assert run.config()["seeds"] == [0] and run.config()["sft_steps"] == 20
    summary = run.summary()
    assert summary["H"] == 3 and summary["seeds"] == [0]
    assert set(summary["accuracy_at_H"]) == {"warm_start", "curriculum", "direct", "uniform"}
    assert summary["accuracy_at_H"]["curriculum"]["n"] == 1 and summary["accuracy_at_H"]["curriculum"]["sd"] == 0.0
    assert (run.dir / "plots" / "accuracy_by_depth.png").is_file() and (run.dir / "plots" / "signal_groups.png").is_file()
    for arm in ("curriculum", "direct", "uniform"):
        assert Run.open(out / "seed0" / arm).summary()["iterations"] == first["results"]["0"][arm]["iterations"]
    assert first["results"]["0"]["curriculum"]["iterations"] == 2  # depths 2 and 3, one iteration each
    [warm] = list((out / "warm_starts").iterdir())
    assert len(warm.name) == 12 and calls == [0]

    with pytest.raises(UserError, match="already exists: pass --resume"):
        run_experiment(TINY, out, (0,))
    with pytest.raises(UserError, match="differs in learning_rate"):
        run_experiment(TINY.model_copy(update={"learning_rate": 1e-3}), out, (0,), resume=True)
    second = run_experiment(TINY, out, (0,), log=logs.append, resume=True)
    assert calls == [0] and f"seed 0: reusing the warm start from {warm}" in logs
    assert "seed 0 curriculum: continuing from the checkpoint in " + str(out / "seed0" / "curriculum") in logs
    assert second["results"] == first["results"]
    third = run_experiment(TINY, out, (1,), log=logs.append, resume=True)  # a new seed joins the ones there
    assert third["seeds"] == [0, 1] and third["results"]["0"] == first["results"]["0"] and "1" in third["results"]
    assert Run.open(out).config()["seeds"] == [0, 1] and Run.open(out).summary()["seeds"] == [0, 1]

    run_experiment(TINY.model_copy(update={"sft_steps": 10}), out, (0,), log=logs.append, overwrite=True)
    assert calls == [0, 1, 0] and [p.name for p in (out / "warm_starts").iterdir()] != [warm.name]
    with pytest.raises(UserError, match=r"there is no run in .* to continue"):
        run_experiment(TINY, tmp_path / "nothing", (0,), resume=True)


def test_summary_gives_each_arm_its_mean_spread_and_n():
    def accuracy(at_h: float) -> dict[int, float]:
        return {1: 1.0, 2: at_h, 3: 0.0, 4: 0.0}

    def arm(at_h: float, rewards: list[float]) -> dict:
        return {"accuracy": accuracy(at_h), "reward_mean": rewards, "signal_group_fraction": [0.5, 0.0]}

    config = PRESETS["main"].model_copy(update={"max_depth": 2, "min_depth": 1})  # H = 2, depths 1..4
    results = {0: {"warm_start": accuracy(0.0), "curriculum": arm(0.5, [0.2, 0.4]), "direct": arm(0.25, [0.0, 0.0]),
                   "uniform": arm(0.25, [0.1, 0.1])},
               1: {"warm_start": accuracy(0.0), "curriculum": arm(0.75, [0.6, 0.8]), "direct": arm(0.25, [0.0, 0.2]),
                   "uniform": arm(0.5, [0.1, 0.3])}}
    summary = summarize(config, results)
    assert summary["accuracy_at_H"]["curriculum"] == {"mean": 0.625, "sd": pytest.approx(0.1767767), "min": 0.5,
                                                      "max": 0.75, "n": 2}
    assert summary["accuracy_at_H"]["direct"] == {"mean": 0.25, "sd": 0.0, "min": 0.25, "max": 0.25, "n": 2}
    assert summary["margin_at_H_spread"] == {"mean": 0.375, "sd": pytest.approx(0.1767767), "min": 0.25, "max": 0.5,
                                             "n": 2}
    assert summary["margin_at_H"] == {0: 0.25, 1: 0.5} and summary["min_margin_at_H"] == 0.25
    assert summary["mean_train_reward"] == pytest.approx({"curriculum": 0.5, "direct": 0.05, "uniform": 0.15})
    assert summary["mean_signal_group_fraction"] == {"curriculum": 0.25, "direct": 0.25, "uniform": 0.25}
    assert summary["mean_accuracy"]["uniform"] == {"1": 1.0, "2": 0.375, "3": 0.0, "4": 0.0}


def test_signal_plot_smooths_over_a_window():
    assert experiment._rolling_mean([1.0, 0.0, 1.0, 0.0], 2) == [1.0, 0.5, 0.5, 0.5]
    assert experiment._rolling_mean([], 10) == []


def test_the_warm_start_stops_at_its_accuracy_target(monkeypatch: pytest.MonkeyPatch):
    config = PRESETS["quick"].model_copy(update={"sft_steps": 30, "sft_chains_per_depth": 20, "sft_check_every": 10,
                                                 "eval_chains": 4})
    assert experiment.warm_start(config, seed=0)[1] == 30  # no target: every step
    scores = iter([0.2, 0.7])
    monkeypatch.setattr(experiment, "REPORT_SECONDS", 1e9)  # no progress line (it would score the policy too)
    monkeypatch.setattr(experiment, "accuracy", lambda policy, chains, max_tokens: (next(scores), 0))
    _, steps = experiment.warm_start(config.model_copy(update={"sft_stop_accuracy": 0.6}), seed=0)
    assert steps == 20  # checked at steps 10 (0.2) and 20 (0.7 >= 0.6)


def test_the_warm_start_says_its_step_accuracy_and_eta(monkeypatch: pytest.MonkeyPatch, capsys):
    config = PRESETS["quick"].model_copy(update={"sft_steps": 3, "sft_chains_per_depth": 10, "eval_chains": 2})
    monkeypatch.setattr(experiment, "REPORT_SECONDS", 0.0)  # a line after every step
    experiment.warm_start(config, seed=0)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"warm start step {k}/3" for k in (1, 2, 3)]
    assert lines[0].startswith("warm start step 1/3: greedy accuracy 0.") and lines[-1].endswith("on held-out "
                                                                                                  "depth-1 chains, done")
