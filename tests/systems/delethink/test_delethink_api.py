"""Public API, demo registration, and the experiment's plumbing on a very small configuration: the experiment
folder is a run, the SFT base and each arm are runs keyed by the hash of what made them, and reuse is announced."""

from __future__ import annotations

import pytest
import yaml

import reasonlab.systems.delethink as delethink
from reasonlab.demo import discover_demos
from reasonlab.errors import UserError
from reasonlab.runs import Run, config_hash
from reasonlab.systems.delethink.config import PRESETS, QUICK, ExperimentConfig, TrainConfig
from reasonlab.systems.delethink.experiment import run_control, run_experiment

TINY = ExperimentConfig(n_layer=1, d_model=32, sft_examples=64, sft_steps=3, sft_batch_size=8, rl_iterations=2,
                        rl_tasks_per_iteration=2, rl_group_size=2, test_budget=24, test_steps=[4, 10],
                        control_steps=[4], eval_tasks=2, eval_n=1, control_sft_steps=2, control_head_tokens=4,
                        seeds=[0])


def test_public_api_is_pinned():
    assert sorted(delethink.__all__) == sorted([
        "ArithmeticTask", "Chunk", "DelethinkConfig", "DelethinkEnvironment", "EvalResult", "ExperimentConfig",
        "PermutationWalk", "TrainConfig", "Trace", "WalkTask", "arithmetic_prompt", "arithmetic_tasks",
        "attended_keys", "attention_flops", "carryover_ids", "chunk_prompt", "chunked_rollout", "evaluate",
        "extract_arithmetic_answer", "extract_walk_answer", "kv_cache_bytes", "longcot_rollout", "peak_context",
        "query_ids", "rl_config", "trace_metrics", "train",
    ])
    for name in delethink.__all__:
        assert getattr(delethink, name) is not None
    assert delethink.train.__module__ == "reasonlab.systems.delethink.training"


def test_quick_experiment_is_registered_as_a_demo():
    demos = discover_demos()
    assert "delethink" in demos and callable(demos["delethink"].run)


def test_presets_put_the_run_of_record_first_and_share_the_training_budget():
    assert list(PRESETS) == ["main", "quick"] and PRESETS["main"] == ExperimentConfig()
    config = ExperimentConfig()
    assert config.environment("delethink").budget == config.environment("longcot").budget == 96
    assert config.environment("delethink").chunk_size == 32 and config.budget_steps == 46
    assert 2 * config.rl_max_steps + 3 <= config.train_budget < 2 * max(config.test_steps) + 3
    assert QUICK.train_budget == config.train_budget and QUICK.seeds == [0]
    assert config.test_environment("delethink").iterations == 15 and config.test_environment("longcot").budget == 256
    with pytest.raises(UserError, match="arm 'chain' is unknown: use delethink or longcot"):
        config.environment("chain")


def test_experiment_is_a_run_with_keyed_artifacts_and_resumes(tmp_path, capsys):
    out = tmp_path / "exp"
    results = run_experiment(TINY, out)
    curves = results["curves"]
    assert set(curves) == {"sft/delethink", "sft/longcot", "sft/delethink/control", "sft/longcot/control",
                           "delethink-rl/seed0", "delethink-rl/seed0/as-longcot", "delethink-rl/seed0/control",
                           "longcot-rl/seed0", "longcot-rl/seed0/as-delethink", "longcot-rl/seed0/control"}
    # avg@1 over 2 tasks: every accuracy is 0, 1/2 or 1
    assert all(v in (0.0, 0.5, 1.0) for curve in curves.values() for v in curve.values())
    # the run holds its config, a summary with mean, spread and n per model, and the paired comparisons
    run = Run.open(out)
    assert run.config()["seeds"] == [0] and run.config()["test_steps"] == [4, 10]
    summary = run.summary()
    assert summary == results["summary"] and summary["train_budget"] == 96 and summary["budget_steps"] == 46
    row = summary["models"]["longcot-rl/delethink"]
    assert row["within_budget"] == {"mean": (curves["longcot-rl/seed0/as-delethink"]["4"]
                                             + curves["longcot-rl/seed0/as-delethink"]["10"]) / 2,
                                    "sd": 0.0, "min": row["within_budget"]["mean"],
                                    "max": row["within_budget"]["mean"], "n": 1, "per_seed": [row["within_budget"]["mean"]]}
    held = summary["comparisons"]["rl_effect_delethink_inference"]
    assert (held["a"], held["b"]) == ("delethink-rl/delethink", "longcot-rl/delethink")
    assert held["within_budget"]["mean"] == pytest.approx(
        summary["models"]["delethink-rl/delethink"]["within_budget"]["mean"] - row["within_budget"]["mean"])
    assert (out / "plots" / "accuracy_vs_length.png").stat().st_size > 1000
    # the SFT base and each arm live in folders named by the hash of the fields that made them
    sft_dir = out / f"sft-base-{config_hash(TINY.sft_fields())}"
    assert yaml.safe_load((sft_dir / "config.yaml").read_text())["sft_steps"] == 3
    arm = TrainConfig(**TINY.setup_fields(), arm="delethink", seed=0)
    arm_dir = out / f"delethink-seed0-{config_hash(arm, ignore=('out',))}"
    assert [m["iteration"] for m in Run.open(arm_dir).metrics() if m.get("kind") == "rl"] == [0, 1]
    # a second call refuses the existing run unless resumed; resumed, it reuses every curve and model
    with pytest.raises(UserError, match="already exists: pass --resume"):
        run_experiment(TINY, out)
    with pytest.raises(UserError, match=r"another config \(differs in rl_iterations\)"):
        run_experiment(TINY.model_copy(update={"rl_iterations": 3}), out, resume=True)
    stamp = (arm_dir / "model" / "model.pt").stat().st_mtime
    capsys.readouterr()
    again = run_experiment(TINY, out, resume=True)
    assert again == results and (arm_dir / "model" / "model.pt").stat().st_mtime == stamp
    assert "reusing 10 accuracy curves" in capsys.readouterr().err.replace("\n", " ")


def test_a_killed_arm_resumes_and_a_finished_one_is_reused(tmp_path, capsys):
    from reasonlab.systems.delethink.experiment import train_arm

    config = TINY.model_copy(update={"rl_iterations": 2})
    train_arm(config, "longcot", 0, tmp_path)
    [arm_dir] = tmp_path.glob("longcot-seed0-*")
    assert (arm_dir / "checkpoints" / "rl_state.pt").is_file()
    (arm_dir / "model" / "model.pt").unlink()  # as if killed after its last checkpoint
    capsys.readouterr()
    train_arm(config, "longcot", 0, tmp_path)
    assert "resuming the longcot-RL run of seed 0" in capsys.readouterr().err.replace("\n", " ")
    assert [m["iteration"] for m in Run.open(arm_dir).metrics() if m.get("kind") == "rl"] == [0, 1]
    train_arm(config, "longcot", 0, tmp_path)
    err = capsys.readouterr().err.replace("\n", " ")
    assert "reusing the longcot-RL model of seed 0" in err


def test_control_is_a_run(tmp_path):
    control = run_control(TINY, tmp_path / "control")
    assert set(control["curves"]) == {"longcot", "delethink", "delethink-head"}
    assert control["modes"]["delethink-head"]["head_tokens"] == 4 and control["modes"]["longcot"]["iterations"] == 1
    assert Run.open(tmp_path / "control").summary() == control
    assert len(list((tmp_path / "control").glob("control-sft-*/model/model.pt"))) == 1
