"""benchmarks/trm_cpu_crossing.py: both arms' best validation so far at given CPU seconds, and where TRM overtakes
deep supervision alone for good."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "trm_cpu_crossing.py"


def _module():
    spec = importlib.util.spec_from_file_location("trm_cpu_crossing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_best_so_far_is_what_a_run_with_that_budget_could_have_tested():
    crossing = _module()
    curve = [(100.0, 0.2), (200.0, 0.5), (300.0, 0.4)]
    assert crossing.best_so_far(curve, 50) is None
    assert crossing.best_so_far(curve, 200) == 0.5
    assert crossing.best_so_far(curve, 1000) == 0.5  # a later, worse evaluation does not lower it


def test_the_crossing_is_where_trm_stays_ahead_not_where_it_first_leads():
    crossing = _module()
    deep = [(50.0, 0.3), (150.0, 0.45), (250.0, 0.46)]
    # TRM leads at 100 s (0.40 > 0.30), falls behind at 150 s (0.40 < 0.45), and leads for good from 200 s
    trm = [(100.0, 0.4), (200.0, 0.5), (300.0, 0.7)]
    assert crossing.crossing(trm, deep) == 200.0
    assert crossing.crossing([(100.0, 0.1), (300.0, 0.46)], deep) is None  # level is not ahead
    assert crossing.crossing([(10.0, 0.9)], deep) == 10.0  # ahead before deep supervision's first evaluation


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
