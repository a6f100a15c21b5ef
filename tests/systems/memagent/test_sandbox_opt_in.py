"""mem-agent runs the model's code with the sandbox's safe default; the unsafe mode needs the command line's flag."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.memagent import Memory, run_tools
from reasonlab.systems.memagent import tools as tools_module
from reasonlab.systems.memagent.agent import Agent
from reasonlab.systems.memagent.cli import _agent_config
from reasonlab.systems.memagent.config import AgentConfig


def _memory(tmp_path: Path) -> Memory:
    return Memory.from_files(tmp_path / "memory", {"user.md": "# User\n- name: Ada\n"})


def test_the_unsafe_mode_from_a_file_or_option_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"sandbox_mode 'unsafe-hook-only' .*pass --unsafe-sandbox"):
        _agent_config(None, False, sandbox_mode="unsafe-hook-only")
    file = tmp_path / "agent.yaml"
    file.write_text("sandbox_mode: unsafe-hook-only\n")
    with pytest.raises(UserError, match=r"pass --unsafe-sandbox on the command line"):
        _agent_config(file, False)
    assert _agent_config(file, True).sandbox_mode == "unsafe-hook-only"
    assert _agent_config(None, True).sandbox_mode == "unsafe-hook-only"


@pytest.mark.parametrize("command", [["bench", "--preset", "quick", "--set", "agent.sandbox_mode=unsafe-hook-only"],
                                     ["train", "--set", "environment.agent.sandbox_mode=unsafe-hook-only"]])
def test_the_cli_refuses_the_unsafe_mode_without_the_flag(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reasonlab.cli", "memagent", *command, "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2 and len(output.splitlines()) == 1, output
    assert "pass --unsafe-sandbox on the command line" in output
    assert not any(tmp_path.iterdir())  # refused before any work


def test_the_mode_reaches_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real = tools_module.run_python

    def spy(*args, **kwargs):
        seen.append(kwargs["mode"])
        return real(*args, **kwargs)

    monkeypatch.setattr(tools_module, "run_python", spy)
    memory = _memory(tmp_path)
    run = run_tools("name = read_file('user.md')", memory, mode="unsafe-hook-only")
    assert run.error is None and run.locals["name"] == "# User\n- name: Ada\n"
    agent = Agent(None, memory, AgentConfig(sandbox_mode="unsafe-hook-only"))  # type: ignore[arg-type]
    agent.act("<think>look</think>\n<python>name = read_file('user.md')</python>")
    assert seen == ["unsafe-hook-only", "unsafe-hook-only"]
