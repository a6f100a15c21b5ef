"""`reasonlab delethink run` streams chunk by chunk; bad parameters are one-line errors (exit 2)."""

from __future__ import annotations

import random
import subprocess
import sys

from typer.testing import CliRunner

import reasonlab.llm
from reasonlab.errors import UserError
from reasonlab.systems.delethink.cli import app


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
