"""`reasonlab h1 compose | train | eval`: verified chains out, a short curriculum run, per-depth accuracy."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.systems.h1.cli import app
from reasonlab.systems.h1.experiment import PRESETS
from reasonlab.systems.h1.modular import modular_tokenizer
from reasonlab.train.tinylm import TinyLM, TinyLMConfig


def test_compose_writes_verified_chains(tmp_path):
    out = tmp_path / "chains.jsonl"
    result = CliRunner().invoke(app, ["compose", "--depth", "3", "--count", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4 and all(r["depth"] == 3 and r["intermediate"][-1] == r["answer"] for r in rows)
    assert all(r["prompt"].count("Problem ") == 3 for r in rows)


def test_compose_prints_modular_chains():
    result = CliRunner().invoke(app, ["compose", "--modular", "--depth", "2", "--count", "2"])
    assert result.exit_code == 0, result.output
    assert result.output.count("depth 2, answer") == 2 and "?" in result.output


def test_compose_names_the_bad_gsm8k_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "q 1", "answer": "#### 1"}\n{"question": 3}\n')
    result = CliRunner().invoke(app, ["compose", "--gsm8k", str(path)])
    assert isinstance(result.exception, UserError) and "line 2" in str(result.exception)


@pytest.fixture
def tiny_policy_dir(tmp_path):
    tokenizer = modular_tokenizer(31, max_depth=7)
    policy = TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer, seed=0)
    policy.save(str(tmp_path / "tiny"))
    return tmp_path / "tiny"


def test_train_then_eval(tmp_path, tiny_policy_dir):
    result = CliRunner().invoke(app, ["train", "--policy", str(tiny_policy_dir), "--max-depth", "2",
                                      "--steps-per-stage", "1", "--iterations", "2", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "iteration 1: depth" in result.output
    saved = tmp_path / "runs" / "train" / "policy"
    assert (saved / "model.pt").is_file()
    result = CliRunner().invoke(app, ["eval", str(saved), "--depths", "3", "--chains", "4"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("depth")]
    assert [line.split(":")[0] for line in lines] == ["depth 1", "depth 2", "depth 3"]
    assert all(0.0 <= float(line.split(":")[1]) <= 1.0 for line in lines)


def test_train_and_eval_in_a_presets_chain_format(tmp_path):
    config = PRESETS["values"]
    tokenizer = modular_tokenizer(config.modulus, config.max_depth + 3, config.ops, config.max_constant)
    policy = TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer, seed=0)
    policy.save(str(tmp_path / "tiny"))
    result = CliRunner().invoke(app, ["train", "--preset", "values", "--policy", str(tmp_path / "tiny"), "--max-depth",
                                      "2", "--steps-per-stage", "1", "--iterations", "2", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    saved = tmp_path / "runs" / "train" / "policy"
    result = CliRunner().invoke(app, ["eval", str(saved), "--preset", "values", "--depths", "12", "--chains", "2"])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("depth") for line in result.output.splitlines()) == 12
    result = CliRunner().invoke(app, ["eval", str(saved), "--preset", "values", "--depths", "13"])
    assert isinstance(result.exception, UserError) and "rows of 13 slots" in str(result.exception)
    result = CliRunner().invoke(app, ["train", "--preset", "nope"])
    assert isinstance(result.exception, UserError) and "--preset 'nope' is unknown" in str(result.exception)
