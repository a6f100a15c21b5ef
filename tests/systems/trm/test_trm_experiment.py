"""The three-arm CPU experiment (never in CI): TRM vs. deep supervision alone vs. neither, 3 seeds.

    .venv/bin/python -m pytest -m experiment tests/systems/trm/test_trm_experiment.py -s

Finished arms are reused from TRM_EXPERIMENT_OUT (default runs/trm-experiment), so an interrupted run resumes.
"""

import os

import pytest

from reasonlab.systems.trm.experiment import run_experiment


@pytest.mark.experiment
@pytest.mark.timeout(7200)
def test_recursion_beats_deep_supervision_alone_on_every_seed():
    results = run_experiment(os.environ.get("TRM_EXPERIMENT_OUT", "runs/trm-experiment"))
    for seed, per_arm in results["arms"]["trm"].items():
        ds = results["arms"]["deep_supervision"][seed]["test_exact"]
        neither = results["arms"]["neither"][seed]["test_exact"]
        print(f"seed {seed}: trm {per_arm['test_exact']:.3f}  deep supervision {ds:.3f}  neither {neither:.3f}")
    for seed, margin in results["trm_minus_deep_supervision"].items():
        assert margin >= 0.10, f"seed {seed}: TRM leads deep supervision alone by {margin:.3f} < 0.10"
    for seed, gain in results["trm_gain_step1_to_nsup"].items():
        assert gain > 0, f"seed {seed}: TRM accuracy does not rise from step 1 to N_sup ({gain:+.3f})"
