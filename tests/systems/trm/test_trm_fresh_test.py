"""benchmarks/trm_fresh_test.py: a finished experiment's best checkpoints on fresh puzzles, and the deep-supervision
arms taken from another experiment on the same data (`--deep-supervision-from`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from reasonlab.systems.trm.config import ExperimentConfig, TRMTrainConfig
from reasonlab.systems.trm.experiment import run_experiment

ROOT = Path(__file__).resolve().parents[3]
RECIPE = dict(
    task="sudoku", size=4, givens=6, train_size=16, val_size=8, test_size=8, mixer="mlp", hidden_size=16,
    num_heads=2, prefix_len=1, ffn_multiple=8, n_sup=2, eval_steps=2, batch_size=4, eval_every=2,
    checkpoint_every=2, log_every=1, eval_batch_size=8, budget_clock="process", threads=1, device="cpu",
    progress=False,
)


def _fresh_test(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trm_fresh_test.py"), *args, "--puzzles", "20"],
                          capture_output=True, text=True)


def test_the_deep_supervision_arms_of_a_longer_run_replace_the_experiments_own(tmp_path):
    both = ExperimentConfig(recipe=TRMTrainConfig(**RECIPE), arms=["trm", "deep_supervision"], seeds=[0], steps=2)
    run_experiment(both, tmp_path / "both")
    run_experiment(both.model_copy(update={"arms": ["deep_supervision"], "steps": 6}), tmp_path / "ds-longer")

    own = _fresh_test(str(tmp_path / "both"))
    assert own.returncode == 0, own.stderr
    assert "seed 0: TRM" in own.stdout and "(n=20)" in own.stdout
    swapped = _fresh_test(str(tmp_path / "both"), "--deep-supervision-from", str(tmp_path / "ds-longer"))
    assert swapped.returncode == 0, swapped.stderr
    first = json.loads((tmp_path / "both" / "fresh-test-20-seed1.json").read_text())
    second = json.loads((tmp_path / "both" / "fresh-test-20-seed1-ds-ds-longer.json").read_text())
    assert second["deep_supervision_from"] == str(tmp_path / "ds-longer")
    assert second["results"]["trm"] == first["results"]["trm"]  # the same checkpoint on the same puzzles
    assert second["results"]["deep_supervision"]["0"]["count"] == 20


def test_another_recipe_or_no_deep_supervision_arm_is_a_one_line_error(tmp_path):
    config = ExperimentConfig(recipe=TRMTrainConfig(**RECIPE), arms=["trm"], seeds=[0], steps=2)
    run_experiment(config, tmp_path / "trm-only")
    other = config.model_copy(update={"recipe": TRMTrainConfig(**{**RECIPE, "givens": 7})})
    run_experiment(other, tmp_path / "other-data")

    mismatch = _fresh_test(str(tmp_path / "trm-only"), "--deep-supervision-from", str(tmp_path / "other-data"))
    assert mismatch.returncode != 0 and "was trained on another recipe" in mismatch.stderr
    missing = _fresh_test(str(tmp_path / "trm-only"), "--deep-supervision-from", str(tmp_path / "trm-only"))
    assert missing.returncode != 0 and "has no deep_supervision arm" in missing.stderr
    alone = _fresh_test(str(tmp_path / "trm-only"))  # an arm without its pair is scored, no difference printed
    assert alone.returncode == 0 and "trm: seed 0" in alone.stdout and "vs deep supervision" not in alone.stdout
    unfinished = _fresh_test(str(tmp_path / "nowhere"))
    assert unfinished.returncode != 0 and "holds no finished experiment" in unfinished.stderr
