"""benchmarks/trm_cpu_crossing.py: both arms' best validation within given CPU seconds, and where TRM overtakes
deep supervision alone for good (the functions it calls are tested in test_trm_experiment.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "trm_cpu_crossing.py"


def test_the_script_reads_an_experiments_summary_and_says_how_to_write_the_curves(tmp_path):
    per_seed = {
        "trm": {"0": {"val_exact_by_train_seconds": [[100.0, 0.1], [200.0, 0.6]]}},
        "deep_supervision": {"0": {"val_exact_by_train_seconds": [[50.0, 0.3], [150.0, 0.4]]}},
    }
    (tmp_path / "summary.json").write_text(json.dumps({"per_seed": per_seed}))
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--at", "100", "200"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| 0 | trm | 0.100 | 0.600 | 200 |" in done.stdout
    assert "| 0 | deep_supervision | 0.300 | 0.400 |  |" in done.stdout
    record = json.loads(done.stdout.splitlines()[-1])
    assert record["crossing_seconds"] == 200.0 and record["trm_best_by"] == {"100": 0.1, "200": 0.6}

    older = {arm: {"0": {"test_exact": 0.5}} for arm in per_seed}  # a summary written before the curves were kept
    (tmp_path / "summary.json").write_text(json.dumps({"per_seed": older}))
    stale = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert stale.returncode != 0 and "with --resume" in stale.stderr and len(stale.stderr.strip().splitlines()) == 1
    missing = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert missing.returncode != 0 and "not found" in missing.stderr
    (tmp_path / "summary.json").write_text("{}")  # some other run's summary
    other = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert other.returncode != 0 and "no per_seed" in other.stderr and "Traceback" not in other.stderr
