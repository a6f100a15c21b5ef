"""`reasonlab delethink run | train | experiment | control | arithmetic`: every option and --set key reaches the
config (saved config.yaml, or the resolved config of `run`, which writes no run), preset < --config < --set <
named option; each command stops once it has its config."""

from __future__ import annotations

import pytest

from cli_options import Case, check_every_option, check_order, stop_at_resolved_config, stop_at_saved_config
from reasonlab.systems.delethink.cli import app


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


def test_run_every_option_and_set_key_reaches_the_config(tmp_path, monkeypatch):
    stop_at_resolved_config(monkeypatch)
    cases = [
        Case(("--llm", "fake"), "llm", "fake"), Case(("--chunk", "12"), "chunk", 12),
        Case(("--carryover", "6"), "carryover", 6), Case(("--iterations", "3"), "iterations", 3),
        Case(("--head-tokens", "2"), "head_tokens", 2), Case(("--temperature", "0.3"), "temperature", 0.3),
        Case(("--seed", "9"), "seed", 9), Case(("--stop", "END", "--stop", "STOP"), "stop", ["END", "STOP"]),
        Case(("--longcot",), "longcot", True),
    ]
    check_every_option(app, "run", ["question"], cases)
    check_order(app, "run", ["question"], tmp_path, "chunk", (10, 11, 12), ["--chunk", "12"])


def test_train_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--arm", "longcot"), "arm", "longcot"), Case(("--seed", "3"), "seed", 3),
        Case(("--rl-iterations", "4"), "rl_iterations", 4),
        Case(("--out", str(tmp_path / "train")), "out", str(tmp_path / "train")),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "train", ["--preset", "quick", "--overwrite"], cases)
    check_order(app, "train", ["--preset", "quick", "--out", tmp_path / "t", "--overwrite"], tmp_path,
                "rl_iterations", (2, 3, 4), ["--rl-iterations", "4"])


@pytest.mark.parametrize(("command", "cases"), [
    ("experiment", [Case(("--seed", "4", "--seed", "5"), "seeds", [4, 5]),
                    Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"])]),
    ("control", [Case(("--control-head-tokens", "3"), "control_head_tokens", 3),
                 Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"])]),
])
def test_experiment_and_control_options_reach_the_saved_config(command, cases, tmp_path):
    base = ["--preset", "quick", "--out", tmp_path / command, "--overwrite"]
    check_every_option(app, command, base, cases, not_config={"--out"})
    check_order(app, command, base, tmp_path, "eval_n", (1, 2, 2), [])


def test_arithmetic_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--llm", "fake"), "llm", "fake"), Case(("--operands", "3"), "operands", 3),
        Case(("--problems", "2"), "problems", 2), Case(("--n", "1"), "n", 1),
        Case(("--chunk", "20"), "chunk_size", 20), Case(("--carryover", "8"), "carryover", 8),
        Case(("--iterations", "3"), "iterations", 3), Case(("--seed", "6"), "seed", 6),
    ]
    base = ["--preset", "sums4", "--out", tmp_path / "arith", "--overwrite"]
    check_every_option(app, "arithmetic", base, cases, not_config={"--out"})
    check_order(app, "arithmetic", base, tmp_path, "problems", (3, 4, 5), ["--problems", "5"])
