"""The benchmark end to end through the real agent loop and sandbox: scripted oracle 100%, scripted wrong 0%,
the fresh follow-up agent, the RAG baseline, the experiment run directory and the CLI."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.runs import Run
from reasonlab.systems.memagent.config import AgentConfig
from reasonlab.systems.memagent.data import CATEGORIES, generate_bench
from reasonlab.systems.memagent.evaluation import (
    AgentSolver,
    ScriptedAgent,
    run_bench,
    scripted_policy,
    turn_text,
)
from reasonlab.systems.memagent.rag import RAGSolver, chunk_memory, rag_prompt
from reasonlab.systems.memagent.turns import parse_turn

from .helpers import WordEmbedder


@pytest.fixture(scope="module")
def small_bench():
    return generate_bench(seed=0, n_memories=1, tasks_per_category=2)


def _scripted(correct: bool) -> AgentSolver:
    return AgentSolver(policy_for_task=lambda task: scripted_policy(task, correct), name=str(correct))


def test_scripted_turns_are_in_the_agents_format() -> None:
    python = parse_turn(turn_text("look", 'u = read_file("user.md")'))
    reply = parse_turn(turn_text("done", reply="Lyon."))
    assert (python.python, python.reply, python.problem) == ('u = read_file("user.md")', None, None)
    assert (reply.python, reply.reply, reply.problem) == ("", "Lyon.", None)


def test_the_scorer_gives_the_oracle_100_and_the_wrong_policy_0(small_bench) -> None:
    memories, tasks = small_bench
    oracle = run_bench(tasks, memories, _scripted(True)).summary
    wrong = run_bench(tasks, memories, _scripted(False)).summary
    assert oracle["score"] == 1.0 and wrong["score"] == 0.0
    assert {c: v["score"] for c, v in oracle["categories"].items()} == dict.fromkeys(CATEGORIES, 1.0)
    assert {c: v["score"] for c, v in wrong["categories"].items()} == dict.fromkeys(CATEGORIES, 0.0)
    # every scripted turn is well-formed and runs; updates add the fresh agent's two turns
    turns = sum(len(t.oracle_code) + 1 + 2 * (t.category == "update") for t in tasks)
    for summary in (oracle, wrong):
        assert (summary["n"], summary["format_valid_rate"], summary["ast_parse_rate"]) == (8, 1.0, 1.0)
        assert (summary["tool_error_rate"], summary["reply_rate"]) == (0.0, 1.0)
        assert summary["turns_per_episode"] == round(turns / 8, 4)
        assert summary["seconds"] > 0
    # a scripted policy counts characters: the prompts and completions it saw and wrote, pinned
    assert (oracle["prompt_tokens"], oracle["completion_tokens"]) == (95649, 5429)
    assert (wrong["prompt_tokens"], wrong["completion_tokens"]) == (95657, 5325)


def test_update_is_judged_on_the_memory_and_a_fresh_agents_answer(small_bench) -> None:
    memories, tasks = small_bench
    update = next(t for t in tasks if t.category == "update")
    # claims success but never writes: the facts fail, and the honest fresh reader finds the old value
    lazy = dataclasses.replace(update, oracle_code=update.oracle_code[:-1])
    report = run_bench([lazy], memories, AgentSolver(policy_for_task=lambda task: scripted_policy(task)))
    (outcome,) = report.outcomes
    (path, key, value), old = lazy.expected_facts[0], re.search(r'"- \w+: (.+?)", "', update.oracle_code[-1])
    assert not outcome.correct and outcome.reason.startswith(f"{path} {key} is {old.group(1)!r}")
    assert outcome.reply == update.oracle_reply and outcome.followup_reply == f"According to your memory, it is {old.group(1)}."
    good = run_bench([update], memories, AgentSolver(policy_for_task=lambda task: scripted_policy(task))).outcomes[0]
    assert good.correct and good.followup_reply == f"According to your memory, it is {value}."
    assert good.turns == len(update.oracle_code) + 1 + 2


def test_scripted_agent_counts_turns_after_the_request() -> None:
    _, tasks = generate_bench(seed=2, n_memories=1, tasks_per_category=1)
    task = tasks[0]
    agent = ScriptedAgent(task)
    prefix = "<result>\n{}\n</result>\n" * 3  # results of the few-shot examples come before the question
    assert task.oracle_code[0] in agent(prefix + task.question)
    assert task.oracle_code[1] in agent(prefix + task.question + "\n<result>\n{'u': 1}\n</result>")
    done = prefix + task.question + "<result>\n{}\n</result>" * len(task.oracle_code)
    assert parse_turn(agent(done)).reply == task.oracle_reply


def test_chunks_cover_every_line_and_carry_their_title(small_bench) -> None:
    files = small_bench[0][0].files
    chunks = chunk_memory(files, lines_per_chunk=3)
    for path, text in files.items():
        lines = [line for line in text.splitlines() if line.strip()]
        mine = [c for c in chunks if c.path == path]
        assert len(mine) == -(-(len(lines) - 1) // 3)
        assert all(c.text.startswith(lines[0]) for c in mine)
        assert [piece for c in mine for piece in c.text.split(" | ")[1:]] == lines[1:]
    prompt = rag_prompt(chunks[:2], "Where?", "Never reveal phones.")
    assert prompt.endswith("Privacy rule: Never reveal phones.\nQuestion: Where?\nAnswer:")


def test_rag_baseline_retrieves_and_answers_once(small_bench) -> None:
    memories, tasks = small_bench
    files = memories[0].files
    friend = memories[0].graph.nodes["friend0"]["name"]
    solver = RAGSolver(ScriptedLLM(lambda prompt: " It is pho.\nQuestion: and more"), WordEmbedder(), k=3)
    top = solver.retrieve(files, f"What is the occupation of my friend {friend}?")
    assert len(top) == 3 and top[0].text.startswith(f"# {friend}")
    report = run_bench(tasks, memories, solver)
    llm = solver.llm
    assert len(llm.prompts) == 8 + 2  # one call per task, one more per update's follow-up question
    assert {o.reply for o in report.outcomes} == {"It is pho."}  # the first line only
    # RAG cannot write: every update fails its fact check
    assert report.summary["categories"]["update"]["score"] == 0.0
    assert report.summary["turns_per_episode"] == 0.0 and report.summary["format_valid_rate"] is None
    assert report.summary["prompt_tokens"] == sum(len(p) for p in llm.prompts)


def test_experiment_writes_a_run_with_scores_agreement_and_reward_table(tmp_path) -> None:
    from reasonlab.demo import discover_demos
    from reasonlab.systems.memagent.config import PRESETS
    from reasonlab.systems.memagent.experiment import run_experiment

    config = PRESETS["quick"].model_copy(update={"arms": ["wrong"], "seeds": [0, 1]})
    run_dir = run_experiment(config, tmp_path, "quick")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["tasks_per_seed"] == 4 and summary["arms"]["wrong"]["score"] == {"mean": 0.0, "spread": 0.0,
                                                                                     "n": 2}
    assert [s["wrong"]["n"] for s in summary["per_seed"].values()] == [4, 4]
    assert summary["judge_agreement"]["deterministic"]["accuracy"] == round(45 / 54, 4)
    assert summary["judge_agreement"]["deterministic"]["judge_failures"] == 0
    assert summary["reward_table"]["farm_to_cap"] < summary["reward_table"]["wrong_in_2_turns"]
    records = Run.open(run_dir).metrics()
    assert [(r["arm"], r["seed"]) for r in records] == [("wrong", 0)] * 4 + [("wrong", 1)] * 4
    assert all(r["correct"] is False for r in records)
    assert len((run_dir / "tasks.jsonl").read_text().splitlines()) == 8
    assert "memagent" in discover_demos()


def test_cli_generate_and_bench(tmp_path) -> None:
    from reasonlab.systems.memagent.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "gen"), "--memories", "1",
                                 "--tasks-per-category", "2"])
    assert result.exit_code == 0 and "1 memories and 8 tasks" in result.output
    assert (tmp_path / "gen" / "memory_0_0" / "user.md").is_file()
    assert len((tmp_path / "gen" / "tasks.jsonl").read_text().splitlines()) == 8
    args = ["bench", "--preset", "quick", "--arms", "oracle", "--out", str(tmp_path), "--name", "cli"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "seed 0 oracle  all 1.00 | clarification 1.00 filter 1.00 retrieval 1.00 update 1.00" in result.output
    assert "oracle  score 1.00 ± 0.00 (n=1 seeds)" in result.output
    assert "judge deterministic: agreement 0.83" in result.output
    again = runner.invoke(app, args)
    assert isinstance(again.exception, UserError) and "already exists: pass --resume" in str(again.exception)
    assert "reusing the finished benchmark" in runner.invoke(app, [*args, "--resume"]).output
    bad = runner.invoke(app, ["bench", "--arms", "oracle,telepathy", "--out", str(tmp_path)])
    assert isinstance(bad.exception, UserError) and "config field 'arms.1'" in str(bad.exception)


def test_cli_bench_saves_the_config_it_was_asked_for(tmp_path) -> None:
    from reasonlab.systems.memagent.cli import app

    yaml_file = tmp_path / "bench.yaml"
    yaml_file.write_text("rag_k: 2\nagent:\n  temperature: 0.5\n")
    args = ["bench", "--preset", "quick", "--config", str(yaml_file), "--set", "agent.max_tokens_per_turn=64",
            "--arms", "wrong", "--seeds", "3", "--tasks-per-category", "1", "--max-turns", "3", "--llm", "x:y",
            "--out", str(tmp_path), "--name", "saved"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "saved" / "config.yaml").read_text())
    assert (saved["arms"], saved["seeds"], saved["llm"], saved["rag_k"], saved["memories"]) == (
        ["wrong"], [3], "x:y", 2, 1)
    agent = saved["agent"]
    assert (agent["max_turns"], agent["max_tokens_per_turn"], agent["temperature"], agent["constrained"]) == (
        3, 64, 0.5, False)
    unknown = CliRunner().invoke(app, ["bench", "--set", "agent.max_turn=3", "--out", str(tmp_path)])
    assert isinstance(unknown.exception, UserError)
    assert "has no option 'agent.max_turn' (did you mean agent.max_turns?)" in str(unknown.exception)


def test_resolving_a_preset_does_not_change_the_defaults_or_the_preset() -> None:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.memagent.config import PRESETS, ExperimentConfig

    before = lookup_preset(PRESETS, "mini").model_dump()
    resolved = resolve_config(ExperimentConfig, lookup_preset(PRESETS, "mini"), None, ["agent.max_turns=2"])
    assert resolved.agent.max_turns == 2 and lookup_preset(PRESETS, "mini").model_dump() == before
    assert AgentConfig().max_turns == 8 and ExperimentConfig().agent.max_turns == AgentConfig().max_turns
