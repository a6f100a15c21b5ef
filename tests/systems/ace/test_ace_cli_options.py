"""`reasonlab ace adapt | eval | experiment`: every option and --set key reaches the config (saved config.yaml,
or the resolved config of `eval`, which writes no run), preset < --config < --set < named option."""

from __future__ import annotations

import pytest

from cli_options import Case, check_every_option, check_order, stop_at_resolved_config, stop_at_saved_config
from reasonlab.systems.ace.cli import app

SHARED = [
    Case(("--llm", "fake"), "llm", "fake"), Case(("--task", "tools"), "task", "tools"),
    Case(("--test-size", "3"), "test_size", 3), Case(("--seed", "5"), "seed", 5),
    Case(("--playbook", "p.json"), "playbook", "p.json"),
    Case(("--data", "test=t.jsonl"), "data", {"test": "t.jsonl"}),
]


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


def test_adapt_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        *SHARED,
        Case(("--mode", "online"), "mode", "online"), Case(("--method", "dc"), "method", "dc"),
        Case(("--no-labels",), "labels", False), Case(("--oracle-reflector",), "oracle_reflector", True),
        Case(("--epochs", "2"), "epochs", 2), Case(("--window", "4"), "window", 4),
        Case(("--token-budget", "300"), "token_budget", 300), Case(("--train-size", "2"), "train_size", 2),
        Case(("--val-size", "1"), "val_size", 1),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--out", tmp_path, "--name", "a", "--overwrite"]
    check_every_option(app, "adapt", base, cases, not_config={"--out", "--name"})
    check_order(app, "adapt", ["--preset", "quick", *base], tmp_path, "epochs", (2, 3, 4), ["--epochs", "4"])


def test_eval_every_option_and_set_key_reaches_the_config(tmp_path, monkeypatch):
    stop_at_resolved_config(monkeypatch)
    check_every_option(app, "eval", [], SHARED)
    check_order(app, "eval", ["--preset", "quick"], tmp_path, "test_size", (2, 3, 4), ["--test-size", "4"])


def test_experiment_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--llm", "fake"), "adaptation.llm", "fake"),
        Case(("--arms", "ace,none"), "arms", ["ace", "none"]),
        Case(("--seeds", "0,1"), "seeds", [0, 1]),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "quick", "--out", tmp_path, "--name", "e", "--overwrite"]
    check_every_option(app, "experiment", base, cases, not_config={"--out", "--name"})
    check_order(app, "experiment", base, tmp_path, "adaptation.llm", ("a", "b", "c"), ["--llm", "c"])
