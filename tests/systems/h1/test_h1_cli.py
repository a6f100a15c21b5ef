"""`reasonlab h1 compose | train | eval | experiment`: verified chains out; each run's config.yaml holds what was
asked (preset < --config < --set < named options); reruns refused unless resumed or overwritten; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.systems.h1.cli import app
from reasonlab.systems.h1.config import PRESETS


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


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def saved(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


@pytest.fixture
def quick_policy(tmp_path, tiny_tinylm) -> Path:
    """A tiny tinylm in the quick preset's chain format."""
    tiny_tinylm(PRESETS["quick"].chain_format(), PRESETS["quick"].max_depth).save(str(tmp_path / "tiny"))
    return tmp_path / "tiny"


def test_train_saves_the_config_it_was_asked_for_then_eval(tmp_path, quick_policy):
    (tmp_path / "h1.yaml").write_text("probe_chains: 3\ncurriculum:\n  gate_threshold: 0.0\n")
    result = invoke("train", "--preset", "quick", "--policy", quick_policy, "--config", tmp_path / "h1.yaml",
                    "--set", "rl.learning_rate=0.001", "--set", "rl.tasks_per_iteration=2", "--max-depth", "2",
                    "--steps-per-stage", "1", "--iterations", "2", "--seed", "5", "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert "iteration 1: depth 2.0" in result.output
    config = saved(tmp_path / "runs" / "train")
    assert config["policy"] == str(quick_policy) and config["probe_chains"] == 3  # --policy, the file
    assert config["curriculum"] == {**config["curriculum"], "max_depth": 2, "steps_per_stage": 1, "gate_threshold": 0.0,
                                    "schedule": "fixed", "min_depth": 2}  # options over the file over the preset
    assert (config["rl"]["iterations"], config["rl"]["seed"], config["rl"]["learning_rate"]) == (2, 5, 0.001)
    assert config["rl"]["tasks_per_iteration"] == 2 and config["rl"]["sampling"]["max_tokens"] == 36  # quick: H + 2 = 5
    policy = tmp_path / "runs" / "train" / "policy"
    assert (policy / "model.pt").is_file()

    result = invoke("eval", policy, "--preset", "quick", "--depths", "3", "--chains", "4", "--out", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["depth 1: 0.000", "depth 2: 0.000", "depth 3: 0.000"]  # 2 iterations: untrained
    config = saved(tmp_path / "runs" / "eval")
    assert (config["policy"], config["depths"], config["chains"], config["task"]["modulus"]) == (str(policy), 3, 4, 31)


def test_train_refuses_a_rerun_resumes_and_overwrites(tmp_path, quick_policy):
    args = ["train", "--preset", "quick", "--policy", quick_policy, "--max-depth", "2", "--steps-per-stage", "1",
            "--iterations", "1", "--set", "rl.tasks_per_iteration=2", "--out", tmp_path / "runs"]
    result = invoke(*args, "--resume")
    assert isinstance(result.exception, UserError) and "has no h1 checkpoint to continue" in str(result.exception)
    assert invoke(*args).exit_code == 0
    result = invoke(*args)
    assert isinstance(result.exception, UserError) and "pass --resume to continue it" in str(result.exception)
    result = invoke(*args, "--seed", "1", "--resume")
    assert isinstance(result.exception, UserError) and "differs in rl.seed" in str(result.exception)
    assert invoke(*args, "--resume").exit_code == 0
    assert invoke(*args, "--seed", "1", "--overwrite").exit_code == 0
    assert saved(tmp_path / "runs" / "train")["rl"]["seed"] == 1


def test_experiment_saves_its_config_and_the_seeds(tmp_path, monkeypatch):
    from reasonlab.systems.h1 import experiment

    asked = {}

    def fake(config, out, seeds, log, resume, overwrite):
        asked.update(config=config, out=out, seeds=seeds, resume=resume, overwrite=overwrite)
        return {"summary": {"H": config.max_depth}}

    monkeypatch.setattr(experiment, "run_experiment", fake)
    result = invoke("experiment", "--preset", "quick", "--seed", "3", "--seed", "4", "--max-depth", "2",
                    "--set", "sft_steps=7", "--out", tmp_path / "x", "--resume")
    assert result.exit_code == 0, result.output
    assert asked["config"] == PRESETS["quick"].model_copy(update={"max_depth": 2, "sft_steps": 7})
    assert (asked["out"], asked["seeds"], asked["resume"], asked["overwrite"]) == (tmp_path / "x", (3, 4), True, False)


def test_experiment_run_directory_holds_what_was_asked(tmp_path):
    result = invoke("experiment", "--preset", "quick", "--seed", "1", "--set", "sft_steps=5",
                    "--set", "sft_chains_per_depth=20", "--steps-per-stage", "1", "--set", "eval_chains=2",
                    "--set", "probe_chains=2", "--set", "tasks_per_iteration=2", "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    config = saved(tmp_path / "x")
    assert (config["seeds"], config["sft_steps"], config["steps_per_stage"], config["eval_chains"]) == ([1], 5, 1, 2)
    assert config["max_depth"] == PRESETS["quick"].max_depth and '"H": 3' in result.output


def test_bad_presets_and_depths_are_one_line_errors(tmp_path, quick_policy):
    result = invoke("train", "--preset", "nope")
    assert isinstance(result.exception, UserError) and "--preset 'nope' is unknown" in str(result.exception)
    result = invoke("eval", quick_policy, "--preset", "values", "--depths", "13")
    assert isinstance(result.exception, UserError) and "rows of 13 slots: use at most 12" in str(result.exception)
    result = invoke("experiment", "--set", "max_depth=20")
    assert isinstance(result.exception, UserError) and "width=13 must exceed H = 20" in str(result.exception)
    result = invoke("train", "--set", "rl.learning_rat=1")
    assert isinstance(result.exception, UserError) and "did you mean rl.learning_rate" in str(result.exception)
