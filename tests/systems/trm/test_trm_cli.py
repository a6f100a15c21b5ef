"""`reasonlab trm train | experiment`: every option and --set key reaches the saved config.yaml (preset <
--config < --set < named option); `--set mixer=mlp` trains the MLP mixer (it once trained attention)."""

from __future__ import annotations

import pytest

from cli_options import (
    Case,
    check_every_option,
    check_order,
    config_of,
    stop_at_resolved_config,
    stop_at_saved_config,
)
from reasonlab.systems.trm.cli import app


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


def train_cases(tmp_path) -> list[Case]:
    return [
        Case(("--task", "sudoku"), "task", "sudoku"),
        Case(("--data-path", "none.csv"), "data_path", "none.csv", None),  # a CSV must exist: named only
        Case(("--test-path", "none.csv"), "test_path", "none.csv", None),
        Case(("--size", "4"), "size", 4), Case(("--givens", "7"), "givens", 7),
        Case(("--train-size", "5"), "train_size", 5), Case(("--arch", "hrm"), "arch", "hrm"),
        Case(("--mixer", "mlp"), "mixer", "mlp"), Case(("--hidden-size", "16"), "hidden_size", 16),
        Case(("--n", "2"), "n", 2), Case(("--T", "2"), "T", 2), Case(("--n-sup", "3"), "n_sup", 3),
        Case(("--batch-size", "4"), "batch_size", 4), Case(("--lr", "0.003"), "lr", 0.003),
        Case(("--max-steps", "7"), "max_steps", 7), Case(("--time-budget-s", "9.5"), "time_budget_s", 9.5),
        Case(("--eval-every", "3"), "eval_every", 3), Case(("--seed", "11"), "seed", 11),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "asked"), "name", "asked"),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]


# small generated data, so that building it before the run folder takes well under a second
SMALL = ["--preset", "cpu", "--set", "val_size=4", "--set", "test_size=4", "--set", "num_heads=2"]


def test_train_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = train_cases(tmp_path)
    base = [*SMALL, "--set", f"out={tmp_path / 'runs'}", "--set", "name=asked", "--overwrite"]
    check_every_option(app, "train", [*base, "--set", "size=4", "--set", "givens=7"],
                       [c for c in cases if c.path not in ("data_path", "test_path")],
                       not_config={"--data-path", "--test-path"})



def test_train_data_paths_reach_the_config(tmp_path, monkeypatch):
    stop_at_resolved_config(monkeypatch)  # the CSVs are read before the run folder exists: stop before that
    resolved = config_of(app, ["train", "--data-path", "a.csv", "--test-path", "b.csv"])
    assert (resolved["data_path"], resolved["test_path"]) == ("a.csv", "b.csv")
    resolved = config_of(app, ["train", "--set", "data_path=a.csv", "--set", "test_path=b.csv"])
    assert (resolved["data_path"], resolved["test_path"]) == ("a.csv", "b.csv")


def test_set_mixer_and_threads_are_kept_when_the_named_options_are_left_out(tmp_path):
    saved = config_of(app, ["train", "--preset", "default", "--set", "mixer=mlp", "--set", "threads=1",
                            "--set", "size=4", "--set", "train_size=4", "--set", "val_size=4",
                            "--set", "test_size=4", "--out", tmp_path, "--name", "x"])
    assert (saved["mixer"], saved["threads"], saved["hidden_size"]) == ("mlp", 1, 512)


def test_train_order_preset_file_set_option(tmp_path):
    base = [*SMALL, "--out", tmp_path, "--name", "order", "--overwrite"]
    check_order(app, "train", base, tmp_path, "lr", (0.01, 0.02, 0.03), ["--lr", "0.03"])
    preset = config_of(app, ["train", *base])
    assert (preset["mixer"], preset["hidden_size"], preset["lr"]) == ("mlp", 32, 0.003)  # the cpu preset


def test_experiment_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--seed", "4", "--seed", "5"), "seeds", [4, 5]),
        Case(("--arm", "trm", "--arm", "neither"), "arms", ["trm", "neither"]),
        Case(("--budget-s", "12.5"), "budget_s", 12.5),
        Case(("--steps", "30"), "steps", 30),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "experiment", ["--preset", "quick", "--out", tmp_path / "exp", "--overwrite"], cases,
                       not_config={"--out", "--jobs"})
    check_order(app, "experiment", ["--preset", "quick", "--out", tmp_path / "exp", "--overwrite"], tmp_path,
                "recipe.lr", (0.01, 0.02, 0.02), [])
