"""Reproduction check of the README's AHN row (`pytest -m experiment`): the recall run of record (3 seeds, three
memory types, about an hour in 2 processes), and AHN-GDN on hf:embedded with real documents (the `quick` preset,
about 15 minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonlab.systems.ahn.config import DOCUMENT_PRESETS, PRESETS
from reasonlab.systems.ahn.evaluation import CLAIM_BUCKET, CLAIM_MARGIN
from reasonlab.systems.ahn.experiment import run_experiment

pytestmark = pytest.mark.experiment


def test_the_recall_run_of_record_reproduces_the_readme_claim(tmp_path):
    """Some memory type gains >= 20 points over sinks + SWA in the 2T-4T bucket on every seed and stays below the
    full-attention teacher; beyond the window, recall falls as more pairs lie past it (capacity)."""
    run_dir = run_experiment(PRESETS["record"], tmp_path, "record")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["bucket"] == CLAIM_BUCKET and summary["margin"] == CLAIM_MARGIN
    best = summary["best"]
    assert all(gain >= CLAIM_MARGIN for gain in summary["gain_over_swa"][best]["per_seed"])
    assert all(summary["below_teacher"][best])
    assert summary["holds"] is True
    pairs = summary["pairs_past"][best]  # bins "[lo,hi)", ordered here by their lower edge
    ordered = sorted(pairs, key=lambda name: int(name[1:].split(",")[0]))
    filled = [pairs[name]["mean"] for name in ordered if pairs[name]["mean"] is not None]
    assert filled[0] > filled[-1] + 0.2, pairs  # capacity: recall collapses as pairs past the window grow
    accuracy = summary["accuracy"]
    # the README's other statements: the memory costs recall inside the window; Mamba2 recovers little
    assert accuracy[best]["<=T"]["mean"] < accuracy["swa"]["<=T"]["mean"] - 0.1
    assert summary["gain_over_swa"]["mamba2"]["mean"] < CLAIM_MARGIN
    assert json.loads((run_dir / "headline.json").read_text())["holds"] is True


@pytest.fixture(scope="module")
def documents_run(tmp_path_factory):
    """Experiment (b) in miniature: the `quick` documents preset on hf:embedded (about 10 minutes)."""
    from reasonlab.systems.ahn.training import train

    out = tmp_path_factory.mktemp("docs")
    config = DOCUMENT_PRESETS["quick"].model_copy(update={"out": str(out), "name": "quick"})
    return json.loads((train(config) / "summary.json").read_text())


def test_on_the_embedded_model_full_attention_beats_sinks_swa_and_a_fresh_memory_is_sinks_swa(documents_run):
    """What the README row states as measured: the window costs perplexity beyond it, and a zero-initialised
    memory changes nothing."""
    before, after = documents_run["before"], documents_run["after"]
    assert after["full"]["perplexity"] < after["swa"]["perplexity"]
    assert before["ahn"]["perplexity"] == pytest.approx(before["swa"]["perplexity"])
    assert after["ahn_minus_swa_nll"]["n"] == documents_run["eval_windows"]


@pytest.mark.xfail(reason="not met at CPU scale: after 60 CPU steps AHN - SWA was +0.0023 nats/token, 95% CI "
                   "-0.0077 to +0.0115; met by the GPU run of record's 600 steps of 8 windows (the test below; "
                   "benchmarks/RESULTS.md, AHN)", strict=False)
def test_ahn_on_the_embedded_model_lies_between_sinks_swa_and_full_attention(documents_run):
    """The paper's claim for experiment (b): after distillation AHN is below sinks + SWA (the paired interval
    below zero) and not below full attention."""
    assert documents_run["between"] is True


# benchmarks/ahn_gpu_check.sh on a lent H200, unpacked into the repository's runs/ahn
GPU_RECORD = Path(__file__).resolve().parents[3] / "runs" / "ahn" / "docs-gpu"


@pytest.mark.skipif(not (GPU_RECORD / "ahn.pt").is_file(),
                    reason="needs the GPU run of record: benchmarks/ahn_gpu_check.sh OUT, then tar -xzf "
                    "OUT/docs-gpu.tgz -C runs/ahn (benchmarks/RESULTS.md, AHN)")
def test_the_gpu_run_of_record_lies_between_sinks_swa_and_full_attention_when_scored_on_this_cpu():
    """The README's experiment (b) row: the memories distilled on the GPU (600 steps of 8 windows), scored again
    here in float32 on the run's 64 held-out windows: AHN below sinks + SWA (paired interval below zero) and
    not below full attention."""
    from reasonlab.systems.ahn.longtext import evaluate_run

    scores = evaluate_run(GPU_RECORD)
    assert scores["between"] is True
    assert scores["ahn_minus_swa_nll"]["n"] == 64 and scores["ahn_minus_swa_nll"]["ci95_high"] < 0
    assert scores["full"]["perplexity"] < scores["ahn"]["perplexity"] < scores["swa"]["perplexity"]


def test_the_quick_demo_headline_holds(tmp_path):
    """The demo (one seed, GDN, 96-token sequences, T=16, about 3 minutes): GDN gains >= 20 points over sinks +
    SWA in the 2T-4T bucket and stays below the teacher."""
    run_dir = run_experiment(PRESETS["quick"], tmp_path, "quick")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["gain_over_swa"]["gdn"]["per_seed"][0] >= CLAIM_MARGIN
    assert summary["holds"] is True and summary["pooled"]["gdn"]["n"] > 300
