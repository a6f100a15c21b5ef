"""Public API, demo registration, and the experiment's plumbing on a very small configuration."""

from __future__ import annotations

import json

import reasonlab.systems.delethink as delethink
from reasonlab.demo import discover_demos
from reasonlab.systems.delethink.experiment import (
    QUICK,
    ExperimentConfig,
    arm_delethink,
    run_control,
    run_experiment,
)


def test_public_api_is_pinned():
    assert sorted(delethink.__all__) == sorted([
        "ArithmeticTask", "Chunk", "DelethinkConfig", "DelethinkEnvironment", "EvalResult", "PermutationWalk",
        "Trace", "WalkTask", "arithmetic_prompt", "arithmetic_tasks", "attended_keys", "attention_flops",
        "carryover_ids", "chunk_prompt", "chunked_rollout", "evaluate", "extract_arithmetic_answer",
        "extract_walk_answer", "kv_cache_bytes", "longcot_rollout", "peak_context", "query_ids", "rl_config",
        "trace_metrics",
    ])
    for name in delethink.__all__:
        assert getattr(delethink, name) is not None


def test_quick_experiment_is_registered_as_a_demo():
    demos = discover_demos()
    assert "delethink" in demos and callable(demos["delethink"].run)


def test_arms_have_the_same_training_budget():
    config = ExperimentConfig()
    assert arm_delethink(config, "delethink").budget == arm_delethink(config, "longcot").budget == 96
    assert arm_delethink(config, "delethink").chunk_size == 32
    assert 2 * config.rl_max_steps + 3 <= config.train_budget < 2 * max(config.test_steps) + 3
    assert QUICK.train_budget == config.train_budget


def test_experiment_runs_end_to_end_and_resumes(tmp_path):
    config = ExperimentConfig(n_layer=1, d_model=32, sft_examples=64, sft_steps=3, sft_batch_size=8,
                              rl_iterations=2, rl_tasks_per_iteration=2, rl_group_size=2, test_budget=24,
                              test_steps=[4, 10], control_steps=[4], eval_tasks=2, eval_n=1, control_sft_steps=2,
                              control_head_tokens=4)
    results = run_experiment(config, tmp_path, seeds=(0,))
    curves = results["curves"]
    assert set(curves) == {"sft/delethink", "sft/longcot", "sft/delethink/control", "sft/longcot/control",
                           "delethink-rl/seed0", "delethink-rl/seed0/as-longcot", "delethink-rl/seed0/control",
                           "longcot-rl/seed0", "longcot-rl/seed0/as-delethink", "longcot-rl/seed0/control"}
    assert all(0.0 <= v <= 1.0 for curve in curves.values() for v in curve.values())
    assert set(results["table"]) == {"delethink", "longcot"}
    assert (tmp_path / "accuracy_vs_length.png").stat().st_size > 1000
    metrics = [json.loads(line) for line in (tmp_path / "delethink-seed0" / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics if m.get("kind") == "rl"] == [0, 1]
    # a second call reuses every trained model and curve
    stamp = (tmp_path / "delethink-seed0" / "model" / "model.pt").stat().st_mtime
    again = run_experiment(config, tmp_path, seeds=(0,))
    assert again["curves"] == curves
    assert (tmp_path / "delethink-seed0" / "model" / "model.pt").stat().st_mtime == stamp
    control = run_control(config, tmp_path / "control")
    assert set(control["curves"]) == {"longcot", "delethink", "delethink-head"}
    assert control["modes"]["delethink-head"]["head_tokens"] == 4 and control["modes"]["longcot"]["iterations"] == 1
