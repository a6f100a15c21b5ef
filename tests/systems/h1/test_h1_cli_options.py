"""`reasonlab h1 train | eval | experiment`: every option and --set key reaches the saved config.yaml
(preset < --config < --set < named option); each command is stopped once config.yaml is written."""

from __future__ import annotations

import pytest

from cli_options import Case, check_every_option, check_order, config_of, stop_at_saved_config
from reasonlab.systems.h1.cli import app


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


def test_train_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--policy", str(tmp_path / "tiny")), "policy", str(tmp_path / "tiny")),
        Case(("--schedule", "uniform"), "curriculum.schedule", "uniform"),
        Case(("--max-depth", "3"), "curriculum.max_depth", 3),
        Case(("--steps-per-stage", "2"), "curriculum.steps_per_stage", 2),
        Case(("--iterations", "5"), "rl.iterations", 5),
        Case(("--seed", "7"), "rl.seed", 7),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "asked"), "name", "asked"),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "train", ["--preset", "quick", "--overwrite"], cases)
    check_order(app, "train", ["--preset", "quick", "--policy", tmp_path, "--out", tmp_path, "--overwrite"],
                tmp_path, "curriculum.max_depth", (2, 3, 4), ["--max-depth", "4"])


def test_eval_every_option_and_set_key_reaches_the_saved_config(tmp_path, monkeypatch):
    from reasonlab.train.tinylm import TinyLM

    monkeypatch.setattr(TinyLM, "load", staticmethod(lambda path: None))  # loaded before the run folder
    cases = [
        Case(("--depths", "3"), "depths", 3), Case(("--chains", "5"), "chains", 5),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "asked"), "name", "asked"),
    ]
    check_every_option(app, "eval", [str(tmp_path), "--preset", "quick", "--overwrite"], cases)
    saved = config_of(app, ["eval", tmp_path, "--preset", "quick", "--set", "task.modulus=13", "--out", tmp_path,
                            "--overwrite"])
    assert (saved["policy"], saved["task"]["modulus"]) == (str(tmp_path), 13)


def test_experiment_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--seed", "3", "--seed", "4"), "seeds", [3, 4], None),  # seeds are run_experiment's, not a field
        Case(("--max-depth", "3"), "max_depth", 3),
        Case(("--steps-per-stage", "2"), "steps_per_stage", 2),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "experiment", ["--preset", "quick", "--out", tmp_path / "x", "--overwrite"], cases,
                       not_config={"--out"})
    check_order(app, "experiment", ["--preset", "quick", "--out", tmp_path / "x", "--overwrite"], tmp_path,
                "sft_steps", (3, 4, 4), [])
