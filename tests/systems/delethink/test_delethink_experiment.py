"""The CPU experiment (never in CI): Delethink-RL vs LongCoT-RL on a tinylm, 3 seeds, each RL model under both
inference modes, and the non-Markovian control. The README row's claims, asserted:

    .venv/bin/python -m pytest -m experiment tests/systems/delethink/test_delethink_experiment.py

The same runs as `reasonlab delethink experiment --preset main --out runs/delethink-experiment --resume` and
`reasonlab delethink control --preset main --out runs/delethink-control --resume` (about 50 min on 2 busy
cores; a finished run is reused). The margins stand clear of the seed spread of both recorded runs (benchmarks/
RESULTS.md, section Delethink): within the budget the per-seed gaps were +1.3, -3.0, -0.5 (AMD EPYC) and -1.9,
-0.9, +3.8 points (Intel Xeon); beyond it the headline gaps were 18-22 and 6-11 points; the RL effect with
Delethink inference held fixed was -0.3 and +2.9 points.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonlab.systems.delethink.config import PRESETS
from reasonlab.systems.delethink.experiment import run_control, run_experiment

pytestmark = pytest.mark.experiment


def _comparisons() -> dict:
    out = Path(os.environ.get("DELETHINK_EXPERIMENT_OUT", "runs/delethink-experiment"))
    summary = run_experiment(PRESETS["main"], out, resume=True)["summary"]
    assert summary["seeds"] == [0, 1, 2]
    return summary["comparisons"]


def test_delethink_rl_ties_longcot_rl_within_the_training_budget():
    """Each RL model under its own inference mode, mean accuracy over T <= 46: within 5 points on every seed."""
    within = _comparisons()["method_vs_baseline"]["within_budget"]
    assert within["n"] == 3 and all(abs(gap) <= 0.05 for gap in within["per_seed"])


def test_beyond_the_budget_the_gain_comes_from_chunked_inference_not_from_delethink_training():
    """Beyond the budget (T = 48..120): Delethink-RL/Delethink beats LongCoT-RL/LongCoT by at least 5 points on
    every seed, and Delethink inference beats LongCoT inference on every seed for both RL models' weights; with
    Delethink inference held fixed, Delethink-RL and LongCoT-RL are within 5 points (mean of the seeds).

    The size of the gain depends on the CPU the SFT base is trained on (issue 18): +18 to +22 points on the run of
    record's AMD EPYC, +6 to +11 on an Intel Xeon (2026-12-03), where the inference effect per seed was +2 to +9.
    These margins hold on both; the README row gives both ranges."""
    comparisons = _comparisons()
    assert all(gain >= 0.05 for gain in comparisons["method_vs_baseline"]["beyond_budget"]["per_seed"])
    for weights in ("inference_effect_longcot_rl", "inference_effect_delethink_rl"):
        assert all(gain > 0 for gain in comparisons[weights]["beyond_budget"]["per_seed"]), weights
    held_fixed = comparisons["rl_effect_delethink_inference"]["beyond_budget"]
    assert held_fixed["n"] == 3 and abs(held_fixed["mean"]) <= 0.05


def test_the_control_needs_the_deleted_tokens():
    """LongCoT and head + tail Delethink keep the early fact (>= 0.9); tail-only Delethink loses it (<= 0.5)
    once the trace no longer fits the first chunk."""
    out = Path(os.environ.get("DELETHINK_CONTROL_OUT", "runs/delethink-control"))
    config = PRESETS["main"]
    curves = run_control(config, out, resume=True)["curves"]
    first_chunk = (config.chunk_size - 4) // 2  # the whole control trace (2T + 4 tokens) fits in one chunk
    for T, accuracy in curves["delethink"].items():
        assert curves["longcot"][T] >= 0.9 and curves["delethink-head"][T] >= 0.9
        if int(T) > first_chunk:
            assert accuracy <= 0.5
