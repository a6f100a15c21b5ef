"""The CPU experiment (never in CI): the mini benchmark without the agent arm, 20 generated tasks.

    .venv/bin/python -m pytest -m experiment tests/systems/memagent/test_memagent_experiment.py -s

The same as `reasonlab memagent bench --preset mini --arms oracle,wrong,rag,judge --out runs/memagent
--name memagent-mini` (rerun into the same folder, it reuses the finished run). It asserts the README row:
the deterministic scorer gives the scripted oracle 1.00 and the scripted wrong agent 0.00 in every category,
MiniLM-RAG with Gemma-3-270M scores 0.20 (its only points are filter refusals), the deterministic judges agree
with 45 of the 54 hand labels, and Gemma-3-270M as a CORRECT/INCORRECT judge is at chance (kappa < 0.2).
The run of record (2026-12-03) took 15 minutes at load average 9-10 on the 2-core CPU, mostly the LLM judge
and RAG (the scripted arms take seconds). A finished run of the same config is reused, one of another config
run again.

The demo (`reasonlab demo --only memagent`, the `demo` preset: the same 20 tasks without the LLM judge) must
print the same numbers with their intervals: about 130 CPU-seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonlab.demo import read_headline
from reasonlab.runs import Run, config_diff
from reasonlab.systems.memagent import PRESETS, run_experiment
from reasonlab.systems.memagent.experiment import quick


@pytest.mark.experiment
@pytest.mark.timeout(3600)
def test_the_scorer_is_proven_both_ways_and_the_270m_baselines_score_what_the_readme_says():
    out = Path(os.environ.get("MEMAGENT_EXPERIMENT_OUT", "runs/memagent"))
    config = PRESETS["mini"].model_copy(update={"arms": ["oracle", "wrong", "rag", "judge"]})
    finished = out / "memagent-mini" / "summary.json"
    reuse = finished.is_file() and not config_diff(Run.open(finished.parent).config(), config.model_dump(mode="json"))
    run_dir = run_experiment(config, out, "memagent-mini", resume=reuse, overwrite=not reuse)
    summary = Run.open(run_dir).summary()
    reports = summary["per_seed"]["0"]
    print({arm: (r["score"], {c: v["score"] for c, v in r["categories"].items()}) for arm, r in reports.items()})
    print({judge: (a["accuracy"], a["kappa"], a["judge_failures"]) for judge, a in summary["judge_agreement"].items()})
    assert reports["oracle"]["n"] == 20
    assert {c: v["score"] for c, v in reports["oracle"]["categories"].items()} == dict.fromkeys(
        ("retrieval", "update", "clarification", "filter"), 1.0)
    assert {c: v["score"] for c, v in reports["wrong"]["categories"].items()} == dict.fromkeys(
        ("retrieval", "update", "clarification", "filter"), 0.0)
    rag = reports["rag"]
    assert rag["score"] == 0.2 and rag["categories"]["filter"]["score"] == 0.8
    deterministic, llm = summary["judge_agreement"]["deterministic"], summary["judge_agreement"]["llm"]
    assert (deterministic["n"], deterministic["accuracy"], deterministic["kappa"]) == (54, 0.8333, 0.6685)
    # the 270M judge says CORRECT to most cases (the labels: 26 of 54): chance-level agreement
    assert llm["n"] + llm["judge_failures"] == 54 and llm["kappa"] < 0.2 and llm["judge_positive_rate"] > 0.7


@pytest.mark.experiment
@pytest.mark.timeout(1200)
def test_the_demo_headline_is_the_readme_row_with_its_intervals(tmp_path):
    headline = read_headline(quick(tmp_path, fresh=True))
    assert headline is not None and headline.holds is True and headline.kind == "pipeline check"
    assert headline.result == (
        "oracle 1.00 (20/20, 95% CI 0.84-1.00) vs wrong 0.00 (0/20, 95% CI 0.00-0.16); "
        "MiniLM-RAG + Gemma-3-270M 0.20 (4/20, 95% CI 0.08-0.42); "
        "deterministic judge vs hand labels 0.83 (45/54, 95% CI 0.71-0.91), kappa 0.67")
    assert headline.note.startswith("MiniLM-RAG by category: clarification 0/5, filter 4/5, retrieval 0/5, update 0/5")
