"""The CPU experiment (never in CI): ACE against the full-rewrite memory on invented formulas, 3 task seeds.

    .venv/bin/python -m pytest -m experiment tests/systems/ace/test_ace_experiment.py -s

The same as `reasonlab ace experiment --preset mini --out runs/ace-experiment` (about 10 minutes on a loaded
2-core CPU; rerun into the same folder, it resumes: finished adaptations are reused). The embedded Gemma-3-270M
through llama.cpp is the Generator and the Curator; the Reflector is the scripted oracle that states the true
rule. It asserts the README row: on every seed ACE's playbook keeps all 6 seeded rules and never shrinks, while
the full rewrite collapses at its first update (an 81% shrink) and keeps none; test accuracy (2 questions per
seed) is 0.67 for ACE (2/2, 2/2, 0/2), 0.50 for the rewrite and 0 with no context.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonlab.runs import Run
from reasonlab.systems.ace import PRESETS, run_experiment


@pytest.mark.experiment
@pytest.mark.timeout(3600)
def test_ace_keeps_its_rules_and_the_rewrite_collapses_on_every_seed():
    out = Path(os.environ.get("ACE_EXPERIMENT_OUT", "runs/ace-experiment"))
    run_dir = run_experiment(PRESETS["mini"], out, "mini", resume=(out / "mini" / "config.yaml").is_file())
    summary = Run.open(run_dir).summary()
    print(summary["no_context_test_accuracy"], {arm: {k: v for k, v in row.items() if k != "per_seed"}
                                                 for arm, row in summary["arms"].items()})
    ace, dc = summary["arms"]["ace"], summary["arms"]["dc"]
    for seed in ("0", "1", "2"):
        ace_seed, dc_seed = ace["per_seed"][seed], dc["per_seed"][seed]
        assert (ace_seed["facts_retained_fraction"], ace_seed["max_shrink"]) == (1.0, 0.0)
        assert (dc_seed["facts_retained_fraction"], dc_seed["collapse_events"], dc_seed["max_shrink"]) == (
            0.0, 1, 0.8095)
    assert [ace["per_seed"][seed]["test_accuracy"] for seed in ("0", "1", "2")] == [1.0, 1.0, 0.0]
    assert (ace["test_accuracy"]["mean"], ace["test_accuracy"]["n"]) == (0.6667, 3)
    assert (dc["test_accuracy"]["mean"], dc["test_accuracy"]["spread"]) == (0.5, 0.0)
    assert summary["no_context_test_accuracy"]["mean"] == 0.0
