"""The MCP server: `use_memory_agent` over stdio with the official `mcp` client, and the `.filters` file."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.systems.memagent import Memory, answer_question, read_filters
from reasonlab.systems.memagent.cli import app as cli_app

pytest.importorskip("mcp", reason="the mcp package is not installed")

USER = "# User\n- name: Ada Lovelace\n- city: Paris\n"
MOVE = [
    "<think>Read the user file first.</think>\n<python>user = read_file('user.md')</python>",
    "<think>Change the city.</think>\n<python>done = update_file('user.md', '- city: Paris', '- city: Lyon')"
    "</python>",
    "<think>Saved.</think>\n<python></python>\n<reply>Noted: you live in Lyon now.</reply>",
]


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory.from_files(tmp_path / "memory", {"user.md": USER, "entities/acme.md": "# Acme\n"})


def test_filters_come_from_the_dot_filters_file_and_reach_the_prompt(memory: Memory, tmp_path: Path) -> None:
    assert read_filters(memory.root) is None
    (memory.root / ".filters").write_text("Never reveal the user's city.\n")
    assert read_filters(memory.root) == "Never reveal the user's city."
    llm = ScriptedLLM(["<think>The filter forbids it.</think>\n<python></python>\n<reply>I cannot share that."
                       "</reply>"])
    assert answer_question("Where do I live?", memory.root, llm) == "I cannot share that."
    assert "Where do I live?\n\n<filter>\nNever reveal the user's city.\n</filter>" in llm.prompts[0]
    # a .filters symlink is not followed (it could point at any host file)
    (memory.root / ".filters").unlink()
    (tmp_path / "elsewhere.txt").write_text("rules from elsewhere")
    os.symlink(tmp_path / "elsewhere.txt", memory.root / ".filters")
    assert read_filters(memory.root) is None
    # nor is a folder or a FIFO (which would block a plain open)
    (memory.root / ".filters").unlink()
    (memory.root / ".filters").mkdir()
    assert read_filters(memory.root) is None
    (memory.root / ".filters").rmdir()
    os.mkfifo(memory.root / ".filters")
    assert read_filters(memory.root) is None


@pytest.mark.parametrize(("content", "why"), [
    (b"\xff\xfe never reveal", "it is not UTF-8 text"),
    (b"x" * 100_001, "it is over 100 kB"),
    (None, "Permission denied"),
])
def test_an_unreadable_filters_file_stops_the_server_with_one_line(memory: Memory, content, why,
                                                                    monkeypatch) -> None:
    from reasonlab.systems.memagent.mcp_server import build_server

    path = memory.root / ".filters"
    if content is None:  # as a file without read permission (root could read it anyway, so simulate it)
        path.write_text("Never reveal the user's city.")
        real_open = os.open

        def refusing_open(target, flags, *args):
            if Path(target) == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real_open(target, flags, *args)

        monkeypatch.setattr(os, "open", refusing_open)
    else:
        path.write_bytes(content)
    expected = f"privacy rules {path} cannot be read ({why}): fix or remove the file"
    with pytest.raises(UserError, match=re.escape(expected)):
        build_server(memory.root, ScriptedLLM([]))
    llm = ScriptedLLM(["<think>t</think>\n<python></python>\n<reply>Paris.</reply>"])
    with pytest.raises(UserError, match=re.escape(expected)):  # a call never answers without the rules
        answer_question("Where do I live?", memory.root, llm)
    assert llm.prompts == []
    replies = memory.root.parent / "replies.json"
    replies.write_text("[]")
    result = CliRunner().invoke(cli_app, ["serve-mcp", "--memory", str(memory.root), "--llm", f"scripted:{replies}"])
    assert isinstance(result.exception, UserError) and expected in str(result.exception)


def test_a_turn_cap_answer_says_so(memory: Memory) -> None:
    from reasonlab.systems.memagent import AgentConfig

    llm = ScriptedLLM(["<think>Hmm.</think>"] * 2)
    reply = answer_question("Where do I live?", memory.root, llm, AgentConfig(max_turns=2))
    assert reply.startswith("The memory agent reached its turn limit")


async def _round_trip(memory_dir: Path, replies: Path) -> tuple[list, object]:
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "reasonlab.cli", "memagent", "serve-mcp", "--memory", str(memory_dir),
              "--llm", f"scripted:{replies}"],
        env={"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    with anyio.fail_after(120):
        async with Client(server, read_timeout_seconds=60) as client:
            tools = await client.list_tools()
            called = await client.call_tool("use_memory_agent", {"question": "I moved to Lyon last week."})
    return tools.tools, called


def test_mcp_round_trip_over_stdio_updates_the_memory_on_disk(memory: Memory, tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps(MOVE))
    before = (memory.root / "entities" / "acme.md").read_bytes()
    tools, called = anyio.run(_round_trip, memory.root, replies)
    assert [tool.name for tool in tools] == ["use_memory_agent"]
    assert "question" in tools[0].input_schema["properties"]
    assert "memory" in (tools[0].description or "")
    assert not called.is_error
    assert [block.text for block in called.content] == ["Noted: you live in Lyon now."]
    # the subprocess server ran the agent: the sandboxed update reached the file on disk
    assert (memory.root / "user.md").read_text() == USER.replace("Paris", "Lyon")
    assert (memory.root / "entities" / "acme.md").read_bytes() == before


def test_serve_mcp_refuses_a_missing_memory_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reasonlab.errors import UserError
    from reasonlab.systems.memagent.cli import app

    result = CliRunner().invoke(app, ["serve-mcp", "--memory", str(tmp_path / "nope"), "--llm", "scripted:x.json"])
    assert isinstance(result.exception, UserError) and "does not exist" in str(result.exception)
