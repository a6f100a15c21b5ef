"""The CPU experiment (never in CI): ACE against the full-rewrite memory on invented formulas, 3 task seeds.

    .venv/bin/python -m pytest -m experiment tests/systems/ace/test_ace_experiment.py -s

The same as `reasonlab ace experiment --preset mini --out runs/ace-experiment` (rerun into the same folder, it
resumes: finished adaptations are reused). The embedded Gemma-3-270M through llama.cpp is the Generator, the
Curator and the rewriter; the Reflector is the scripted oracle that states the true rule. Both memories start
with the true rules of 6 metrics that training never asks about; the test asks one question per seeded metric.
It asserts the README row: on every seed ACE's playbook keeps all 6 seeded rules and never shrinks, while the
full rewrite collapses (a >50% one-step shrink) and loses seeded rules; and on the questions that need those
rules ACE's pooled accuracy lies above the rewrite's, with disjoint 95% intervals (n = 18 each).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonlab.demo import read_headline
from reasonlab.runs import Run
from reasonlab.systems.ace import PRESETS, run_experiment


@pytest.mark.experiment
@pytest.mark.timeout(3600)
def test_ace_keeps_its_rules_the_rewrite_collapses_and_that_costs_it_the_seeded_questions():
    out = Path(os.environ.get("ACE_EXPERIMENT_OUT", "runs/ace-experiment"))
    run_dir = run_experiment(PRESETS["mini"], out, "mini", resume=(out / "mini" / "config.yaml").is_file())
    summary = Run.open(run_dir).summary()
    ace, dc = summary["arms"]["ace"], summary["arms"]["dc"]
    print({arm: row["pooled"]["seeded"]["text"] for arm, row in summary["arms"].items()})
    for seed in ("0", "1", "2"):
        ace_seed, dc_seed = ace["per_seed"][seed], dc["per_seed"][seed]
        assert ace_seed["facts_retained"] == [6, 6, 6] and ace_seed["max_shrink"] == 0.0
        assert dc_seed["collapse_events"] >= 1 and min(dc_seed["facts_retained"]) < 6
    ace_rate, dc_rate = ace["pooled"]["seeded"], dc["pooled"]["seeded"]
    assert ace_rate["n"] == dc_rate["n"] == 18
    assert ace_rate["low"] > dc_rate["high"]
    headline = read_headline(run_dir)
    assert headline is not None and headline.holds is True and "intervals disjoint" in headline.result
