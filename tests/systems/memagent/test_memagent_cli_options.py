"""`reasonlab memagent chat | serve-mcp | bench | experiment | train | sft`: every option and --set key reaches the
config (saved config.yaml, or the resolved AgentConfig of chat and serve-mcp, which write no run), preset <
--config < --set < named option; an unsafe sandbox only through the command line's own flag."""

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
from reasonlab.systems.memagent.cli import app

UNSAFE = "unsafe-hook-only"


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


@pytest.mark.parametrize("command", ["chat", "serve-mcp"])
def test_agent_options_reach_the_config(command, tmp_path, monkeypatch):
    stop_at_resolved_config(monkeypatch)
    cases = [
        Case(("--max-turns", "3"), "max_turns", 3, None),  # no --set here: --config is the file form
        Case(("--max-tokens", "64"), "max_tokens_per_turn", 64, None),
        Case(("--unsafe-sandbox",), "sandbox_mode", UNSAFE, None),
    ]
    if command == "chat":
        cases += [Case(("--temperature", "0.5"), "temperature", 0.5, None),
                  Case(("--unconstrained",), "constrained", False, None)]
    not_config = {"--memory", "--llm"} | ({"--question", "--filters"} if command == "chat" else set())
    check_every_option(app, command, ["--memory", tmp_path], cases, not_config=not_config)
    (tmp_path / "agent.yaml").write_text("max_turns: 5\nmax_tokens_per_turn: 32\n")
    from_file = config_of(app, [command, "--memory", tmp_path, "--config", tmp_path / "agent.yaml"])
    assert (from_file["max_turns"], from_file["max_tokens_per_turn"]) == (5, 32)
    both = config_of(app, [command, "--memory", tmp_path, "--config", tmp_path / "agent.yaml", "--max-turns", "6"])
    assert (both["max_turns"], both["max_tokens_per_turn"]) == (6, 32)
    trained = config_of(app, [command, "--memory", tmp_path, "--preset", "trained", "--config", tmp_path / "agent.yaml"])
    assert (trained["system"], trained["few_shot"], trained["max_turns"]) == ("compact", False, 5)


@pytest.mark.parametrize("command", ["bench", "experiment"])
def test_bench_every_option_and_set_key_reaches_the_saved_config(command, tmp_path):
    cases = [
        Case(("--llm", "fake"), "llm", "fake"), Case(("--arms", "oracle,wrong"), "arms", ["oracle", "wrong"]),
        Case(("--seeds", "1,2"), "seeds", [1, 2]), Case(("--tasks-per-category", "2"), "tasks_per_category", 2),
        Case(("--max-turns", "3"), "agent.max_turns", 3), Case(("--constrained",), "agent.constrained", True),
        Case(("--unsafe-sandbox",), "agent.sandbox_mode", UNSAFE, None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "quick", "--out", tmp_path, "--name", "b", "--overwrite"]
    check_every_option(app, command, base, cases, not_config={"--out", "--name"})
    check_order(app, command, base, tmp_path, "agent.max_turns", (2, 3, 4), ["--max-turns", "4"])


def test_train_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--policy", "hf:other"), "policy", "hf:other"), Case(("--seed", "1004"), "seed", 1004),
        Case(("--unsafe-sandbox",), "environment.agent.sandbox_mode", UNSAFE, None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "smoke", "--out", tmp_path, "--name", "t", "--overwrite"]
    check_every_option(app, "train", base, cases, not_config={"--out", "--name"})
    check_order(app, "train", base, tmp_path, "seed", (1001, 1002, 1003), ["--seed", "1003"])


def test_sft_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--policy", "hf:other"), "policy", "hf:other"), Case(("--seed", "4"), "seed", 4),
        Case(("--seeds", "1001,1002"), "seeds", [1001, 1002]),
        Case(("--unsafe-sandbox",), "agent.sandbox_mode", UNSAFE, None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "smoke", "--out", tmp_path, "--name", "s", "--overwrite"]
    check_every_option(app, "sft", base, cases, not_config={"--out", "--name"})
    check_order(app, "sft", base, tmp_path, "seed", (1, 2, 3), ["--seed", "3"])


def test_sft_refuses_benchmark_seeds_in_one_line(tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["sft", "--preset", "smoke", "--seeds", "0,1", "--out", tmp_path])
    assert result.exit_code != 0 and "benchmark seed" in str(result.exception or result.output)
