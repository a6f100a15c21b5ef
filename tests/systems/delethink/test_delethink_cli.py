"""`reasonlab delethink ...`: `run` streams chunk by chunk; every command that writes a run saves exactly the
config asked for (preset < --config file < --set < named options); bad parameters are one-line errors (exit 2)."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

import reasonlab.llm
from reasonlab.errors import UserError
from reasonlab.llm.fake import ScriptedLLM
from reasonlab.runs import Run
from reasonlab.systems.delethink.cli import app

# a tiny walk setup: one layer, a 3-step SFT base, 2 tasks x 2 samples per RL iteration
TINY = {"n_layer": 1, "d_model": 32, "sft_examples": 64, "sft_steps": 3, "sft_batch_size": 8,
        "rl_tasks_per_iteration": 2, "rl_group_size": 4}
TINY_TEST = {"test_budget": 24, "test_steps": [4, 48], "eval_tasks": 2, "eval_n": 2, "control_sft_steps": 2}


def invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def saved_config(run_dir) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_run_streams_each_chunk_then_the_summary(world, oracle, monkeypatch):
    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: oracle)
    task = world.task(12, random.Random(0))  # 27 tokens: chunks of 12, 6, 6, 3
    result = CliRunner().invoke(app, ["run", "--llm", "fake", "--chunk", "12", "--carryover", "6",
                                      "--iterations", "6", world.query(task)])
    assert result.exit_code == 0, result.output
    assert result.output.count("chunk: prompt") == 4
    assert "chunk: prompt 4 tokens, +12 (length)" in result.output
    assert "chunk: prompt 10 tokens, +3 (eos)" in result.output
    assert "27 thinking tokens in 4 chunks, finished: True, largest position: 15" in result.output
    assert [len(p) for p, _ in oracle.requests] == [4, 10, 10, 10]


def test_longcot_flag_uses_one_chunk_of_the_same_budget(world, oracle, monkeypatch):
    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: oracle)
    task = world.task(12, random.Random(0))
    result = CliRunner().invoke(app, ["run", "--chunk", "12", "--carryover", "6", "--iterations", "6", "--longcot",
                                      world.query(task)])
    assert result.exit_code == 0, result.output
    assert "LongCoT C=42 m=0 I=1 budget=42" in result.output
    assert oracle.requests[0][1] == 42 and len(oracle.requests) == 1


def test_chunk_larger_than_context_is_refused(world, monkeypatch):
    from delethink_fakes import WalkOracle

    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: WalkOracle(world, context_length=16))
    result = CliRunner().invoke(app, ["run", "--chunk", "32", "--carryover", "8", "1 > 2 :"])
    assert isinstance(result.exception, UserError)
    assert "chunk size C=32 is larger than the context length 16" in str(result.exception)


def test_bad_parameters_are_one_line_errors():
    result = subprocess.run([sys.executable, "-m", "reasonlab.cli", "delethink", "run", "--chunk", "64",
                             "--carryover", "64", "question"], capture_output=True, text=True, timeout=120)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2 and "Traceback" not in output
    assert output.startswith("error:") and len(output.splitlines()) == 1
    assert "carryover m=64 must be smaller than the chunk size C=64" in output


def test_iterations_below_one_are_refused():
    result = CliRunner().invoke(app, ["run", "--iterations", "0", "question"])
    assert isinstance(result.exception, UserError) and "iterations I=0 must be at least 1" in str(result.exception)


def test_run_reads_a_config_file_and_set_pairs(world, oracle, monkeypatch, tmp_path):
    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: oracle)
    (tmp_path / "run.yaml").write_text("chunk: 12\ncarryover: 4\niterations: 6\n")
    task = world.task(12, random.Random(0))
    result = invoke(["run", "--config", str(tmp_path / "run.yaml"), "--set", "carryover=6", world.query(task)])
    assert "Delethink C=12 m=6 I=6 budget=42" in result.output
    assert [len(p) for p, _ in oracle.requests] == [4, 10, 10, 10]


def test_train_saves_what_was_asked_and_resumes_only_a_checkpoint(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, "seed": 9}))
    out = tmp_path / "train" / "longcot-seed3"
    invoke(["train", "--preset", "quick", "--config", str(tmp_path / "tiny.yaml"), "--set", "rl_group_size=2",
            "--set", "seed=5", "--seed", "3", "--arm", "longcot", "--out", str(out)])
    config = saved_config(out)
    # quick preset (6 RL iterations) < file (tiny model) < --set (group 2, seed 5) < named option (seed 3)
    assert (config["rl_iterations"], config["n_layer"], config["sft_steps"]) == (6, 1, 3)
    assert (config["rl_group_size"], config["seed"], config["arm"], config["out"]) == (2, 3, "longcot", str(out))
    assert [m["iteration"] for m in Run.open(out).metrics() if m.get("kind") == "rl"] == list(range(6))
    assert (out / "model" / "model.pt").is_file() and len(list(out.parent.glob("sft-base-*/model/model.pt"))) == 1
    again = CliRunner().invoke(app, ["train", "--preset", "quick", "--config", str(tmp_path / "tiny.yaml"),
                                     "--set", "rl_group_size=2", "--seed", "3", "--arm", "longcot", "--out", str(out)])
    assert isinstance(again.exception, UserError) and "already exists: pass --resume" in str(again.exception)
    missing = CliRunner().invoke(app, ["train", "--resume", "--out", str(tmp_path / "nothing")])
    assert isinstance(missing.exception, UserError)
    assert "has no RL checkpoint to continue: drop --resume" in str(missing.exception)
    assert not (tmp_path / "nothing").exists()


def test_experiment_saves_what_was_asked(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, **TINY_TEST, "rl_iterations": 2}))
    out = tmp_path / "exp"
    result = invoke(["experiment", "--preset", "quick", "--config", str(tmp_path / "tiny.yaml"), "--set", "eval_n=1",
                     "--seed", "4", "--out", str(out)])
    config = saved_config(out)
    # quick preset (control lengths) < file (tiny setup, eval_n 2) < --set (eval_n 1) < --seed
    assert (config["control_steps"], config["rl_iterations"], config["eval_n"], config["seeds"]) == ([24], 2, 1, [4])
    assert set(Run.open(out).summary()["comparisons"]) == {
        "method_vs_baseline", "rl_effect_delethink_inference", "rl_effect_longcot_inference",
        "inference_effect_longcot_rl", "inference_effect_delethink_rl"}
    assert re.search(r"rl_effect_delethink_inference\s+delethink-rl/delethink - longcot-rl/delethink", result.output)
    assert len(list(out.glob("delethink-seed4-*/model/model.pt"))) == 1


def test_control_saves_what_was_asked(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY, **TINY_TEST, "control_head_tokens": 2}))
    out = tmp_path / "control"
    invoke(["control", "--preset", "quick", "--config", str(tmp_path / "tiny.yaml"), "--set", "control_sft_steps=1",
            "--control-head-tokens", "4", "--out", str(out)])
    config = saved_config(out)
    assert (config["control_steps"], config["control_sft_steps"], config["control_head_tokens"]) == ([24], 1, 4)
    assert Run.open(out).summary()["modes"]["delethink-head"]["head_tokens"] == 4


def sum_of_last_problem(prompt: str) -> str:
    """A fake model that adds the last problem of its prompt correctly, in one short line."""
    numbers = re.findall(r"\d+", prompt.rsplit("Problem:", 1)[-1].split("\n")[0])
    return f" Answer: {sum(map(int, numbers))}\n\n"


def test_arithmetic_saves_what_was_asked_and_resumes_measured_arms(tmp_path, monkeypatch):
    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: ScriptedLLM(sum_of_last_problem))
    (tmp_path / "arith.yaml").write_text("seed: 5\nproblems: 8\n")
    out = tmp_path / "arithmetic"
    args = ["arithmetic", "--preset", "sums4", "--config", str(tmp_path / "arith.yaml"), "--set", "problems=3",
            "--n", "1", "--llm", "fake", "--out", str(out)]
    result = invoke(args)
    config = saved_config(out)
    # sums4 preset (4 operands, C=16 m=8 I=6) < file (seed 5) < --set (3 problems) < named options
    assert (config["operands"], config["chunk_size"], config["carryover"], config["iterations"]) == (4, 16, 8, 6)
    assert (config["seed"], config["problems"], config["n"], config["llm"]) == (5, 3, 1, "fake")
    assert "delethink: avg@1 = 1.000" in result.output and "longcot: avg@1 = 1.000" in result.output
    assert Run.open(out).summary()["budget"] == 16 + 5 * 8
    resumed = invoke([*args, "--resume"])
    assert "reusing the delethink measurement" in resumed.output.replace("\n", " ")
    assert "delethink: avg@1 = 1.000" in resumed.output


@pytest.mark.parametrize("command", ["train", "experiment", "control", "arithmetic"])
def test_unknown_preset_and_keys_are_one_line_errors(command, tmp_path):
    bad = CliRunner().invoke(app, [command, "--preset", "mian", "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, UserError) and "--preset 'mian' is unknown" in str(bad.exception)
    typo = CliRunner().invoke(app, [command, "--set", "sead=1", "--out", str(tmp_path / "x")])
    assert isinstance(typo.exception, UserError) and "has no option 'sead' (did you mean seed" in str(typo.exception)
    assert not (tmp_path / "x").exists()
