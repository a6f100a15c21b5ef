"""The agent loop with a scripted LLM: turns, tool results fed back, history rules, turn cap, CLI chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.llm import Message, ScriptedLLM
from reasonlab.systems.memagent import Agent, AgentConfig, AgentTurn, Memory, ToolRun, TurnRecord
from reasonlab.systems.memagent.cli import app, load_agent_llm
from reasonlab.systems.memagent.prompts import BOTH_ACTIONS, FEW_SHOT

USER = "# User\n- name: Ada Lovelace\n- city: Paris\n- sister: [[entities/mia.md]]\n"
MIA = "# Mia\n- employer: Northwind Labs\n"
READ = "<think>Start with the user file.</think>\n<python>user = read_file('user.md')</python>"
FOLLOW = "<think>Mia is linked.</think>\n<python>mia = go_to_link('[[entities/mia.md]]')</python>"
MOVE = "<think>Change the city.</think>\n<python>done = update_file('user.md', '- city: Paris', '- city: Lyon')</python>"
REPLY = "<think>I know it now.</think>\n<python></python>\n<reply>Your sister Mia works at Northwind Labs.</reply>"


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory.from_files(tmp_path / "memory", {"user.md": USER, "entities/mia.md": MIA})


def test_an_episode_reads_follows_a_link_and_replies(memory: Memory) -> None:
    llm = ScriptedLLM([READ + "\n<result>\n{'user': 'invented'}\n</result>", FOLLOW, REPLY])
    seen: list[TurnRecord] = []
    result = Agent(llm, memory).run("Where does my sister work?", on_turn=seen.append)
    assert (result.reply, result.stopped, len(result.turns)) == ("Your sister Mia works at Northwind Labs.",
                                                                 "reply", 3)
    assert seen == result.turns and result.changed == []
    first, second, last = result.turns
    assert first.completion == READ  # the invented result was cut off
    assert first.tool_run.locals == {"user": USER} and second.tool_run.locals == {"mia": MIA}
    assert last.tool_run is None and last.feedback() is None
    # each tool result is the next prompt's last user message
    assert llm.prompts[1].endswith(f"User: <result>\n{ {'user': USER}!r}\n</result>\n\nAssistant:")
    assert llm.prompts[2].endswith(f"User: <result>\n{ {'mia': MIA}!r}\n</result>\n\nAssistant:")
    # generation stopped at "<result>" (one character per token): the newline before it was generated too
    assert result.completion_tokens == len(READ + "\n") + len(FOLLOW) + len(REPLY)
    assert result.prompt_tokens == sum(len(p) for p in llm.prompts)


def test_an_update_reaches_the_memory_folder(memory: Memory) -> None:
    llm = ScriptedLLM([READ, MOVE, "<think>Done.</think>\n<python></python>\n<reply>Noted.</reply>"])
    result = Agent(llm, memory).run("I moved to Lyon.")
    assert result.reply == "Noted." and result.changed == ["user.md"]
    assert memory.read("user.md") == USER.replace("Paris", "Lyon")


def test_build_prompt_drops_old_think_blocks_and_appends_the_filter(memory: Memory) -> None:
    record = TurnRecord(READ, AgentTurn("Start with the user file.", "user = read_file('user.md')", None),
                        ToolRun({"user": "# User"}, None))
    messages = Agent(ScriptedLLM([]), memory).build_prompt("Where do I live?", [record], "Never reveal the city.")
    assert messages[0].role == "system" and "read_file(path)" in messages[0].content
    assert [(m.role, m.content) for m in messages[1:len(FEW_SHOT) + 1]] == list(FEW_SHOT)
    assert messages[-3] == Message("user", "Where do I live?\n\n<filter>\nNever reveal the city.\n</filter>")
    assert messages[-2] == Message("assistant", "<python>user = read_file('user.md')</python>")
    assert messages[-1] == Message("user", "<result>\n{'user': '# User'}\n</result>")
    kept = Agent(ScriptedLLM([]), memory, AgentConfig(drop_old_think=False, few_shot=False))
    messages = kept.build_prompt("Where do I live?", [record])
    assert len(messages) == 4 and messages[1].content == "Where do I live?" and messages[2].content == READ


def test_format_errors_run_nothing_and_are_fed_back(memory: Memory) -> None:
    both = "<think>x</think>\n<python>create_file('x.md', 'x')</python>\n<reply>done</reply>"
    llm = ScriptedLLM([both, "just text", REPLY])
    result = Agent(llm, memory).run("Where does my sister work?")
    assert result.stopped == "reply" and len(result.turns) == 3
    assert all(record.tool_run is None for record in result.turns)
    assert not (memory.root / "x.md").exists()
    assert f"User: <result>\nFormat error: {BOTH_ACTIONS}\n</result>" in llm.prompts[1]
    assert "Format error: your turn has no action" in llm.prompts[2]


def test_the_turn_cap_stops_an_agent_that_never_replies(memory: Memory) -> None:
    llm = ScriptedLLM(lambda prompt: READ)
    result = Agent(llm, memory, AgentConfig(max_turns=2)).run("Where does my sister work?")
    assert (result.reply, result.stopped, len(result.turns), len(llm.prompts)) == (None, "turn_cap", 2, 2)


def test_long_results_are_cut_for_the_model(memory: Memory) -> None:
    memory.write("entities/long.md", "z" * 5000)
    llm = ScriptedLLM(["<think>t</think>\n<python>text = read_file('entities/long.md')</python>", REPLY])
    result = Agent(llm, memory, AgentConfig(max_result_chars=300)).run("Read it")
    assert result.turns[0].tool_run.locals["text"] == "z" * 5000
    assert "... [4712 more characters]\n</result>" in llm.prompts[1]


def test_cli_chat_prints_each_turn_and_the_reply(memory: Memory, tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([READ, REPLY]))
    result = CliRunner().invoke(app, ["chat", "--memory", str(memory.root), "--llm", f"scripted:{replies}",
                                      "--question", "Where does my sister work?", "--max-turns", "3"],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    for expected in ("turn 1", "Start with the user file.", "user = read_file('user.md')", "- city: Paris",
                     "reply: Your sister Mia works at Northwind Labs.", "2 turns"):
        assert expected in result.output


def test_cli_chat_interactive_loop_ends_on_exit(memory: Memory, tmp_path: Path) -> None:
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([REPLY]))
    result = CliRunner().invoke(app, ["chat", "--memory", str(memory.root), "--llm", f"scripted:{replies}"],
                                input="Where does my sister work?\nexit\n", terminal_width=200)
    assert result.exit_code == 0 and result.output.count("reply: Your sister Mia") == 1


def test_cli_user_errors_name_the_input(memory: Memory, tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["chat", "--memory", str(tmp_path / "nope"), "-q", "hi"])
    assert isinstance(missing.exception, UserError) and "does not exist" in str(missing.exception)
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(UserError, match="JSON list of strings"):
        load_agent_llm(f"scripted:{tmp_path / 'bad.json'}")
    with pytest.raises(UserError, match="cannot read"):
        load_agent_llm(f"scripted:{tmp_path / 'absent.json'}")


def test_public_api_of_the_runtime_is_exported() -> None:
    import reasonlab.systems.memagent as memagent

    runtime = {"Agent", "AgentConfig", "AgentResult", "AgentTurn", "FEW_SHOT", "Memory", "MemoryAccessError",
               "MemoryLimits", "MemoryTools", "SYSTEM_PROMPT", "TOOL_NAMES", "TURN_GRAMMAR", "ToolRun", "TurnRecord",
               "answer_question", "build_server", "cut_action", "drop_think", "parse_turn", "path_problem",
               "read_filters", "render_tree", "run_tools", "sandbox_limits", "turn_sampling", "wiki_links"}
    assert runtime <= set(memagent.__all__)
    assert all(hasattr(memagent, name) for name in memagent.__all__)
