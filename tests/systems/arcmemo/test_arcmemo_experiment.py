"""Reproduction check of the README's ArcMemo row (`pytest -m experiment`): the ARC-lite run of record (6 arms x
6 budgets x 3 seeds, 100 held-out tasks per seed, MiniLM for the embedding arm), 3-5 minutes in 2 processes."""

from __future__ import annotations

import json

import pytest

from reasonlab.systems.arcmemo.config import EXPERIMENT_PRESETS
from reasonlab.systems.arcmemo.evaluation import CLAIM_MARGINS
from reasonlab.systems.arcmemo.experiment import run_experiment

pytestmark = pytest.mark.experiment


def test_the_run_of_record_reproduces_the_readme_claim(tmp_path):
    """At the headline budget, concept memory beats no memory by >= 10 points and instance memory by >= 5 points
    on every seed, and cue-rule selection recalls the true primitives better than MiniLM selection."""
    config = EXPERIMENT_PRESETS["record"].model_copy(update={"jobs": 2})
    run_dir = run_experiment(config, tmp_path, "record")
    summary = json.loads((run_dir / "summary.json").read_text())
    margins = summary["margins"]
    assert set(margins) == set(CLAIM_MARGINS)
    assert len(margins["none"]["per_seed"]) == len(config.seeds)
    assert all(m >= 10.0 for m in margins["none"]["per_seed"]), margins["none"]["per_seed"]
    assert all(m >= 5.0 for m in margins["instance"]["per_seed"]), margins["instance"]["per_seed"]
    assert summary["holds"] is True
    budget = str(config.headline_budget)
    recall = {arm: summary["arms"][arm]["by_budget"][budget]["recall_at_k"]["mean"]
              for arm in ("concept", "concept-embedding")}
    assert recall["concept-embedding"] < recall["concept"], recall
    assert json.loads((run_dir / "headline.json").read_text())["holds"] is True
