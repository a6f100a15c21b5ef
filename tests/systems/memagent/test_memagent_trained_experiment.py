"""The trained memory agent (never in CI): SFT of Gemma-3-270M on the scripted agent's episodes, GSPO from it,
the generated benchmark and the hand-written set, and the MCP server on a memory the agent never saw.

    .venv/bin/python -m pytest -m experiment tests/systems/memagent/test_memagent_trained_experiment.py -s

Each step reuses a finished run of the same config under runs/memagent (MEMAGENT_EXPERIMENT_OUT), made by the
commands in benchmarks/RESULTS.md ("mem-agent, trained"); from scratch about 2 hours on the 2-core CPU. The
assertions are the claims of the README row and RESULTS, as measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasonlab.runs import Run, config_diff
from reasonlab.systems.memagent.config import PRESETS, SFT_PRESETS, TRAIN_PRESETS
from reasonlab.systems.memagent.experiment import arm_row, run_experiment, trained_bar

OUT = Path(os.environ.get("MEMAGENT_EXPERIMENT_OUT", "runs/memagent"))
pytestmark = [pytest.mark.experiment, pytest.mark.timeout(4 * 3600)]


def _finished(name: str, config: object) -> bool:
    summary = OUT / name / "summary.json"
    return summary.is_file() and not config_diff(Run.open(summary.parent).config(),
                                                 config.model_dump(mode="json"))  # type: ignore[attr-defined]


def _bench(preset: str, name: str, **update: object) -> dict:
    config = PRESETS[preset].model_copy(update=update)
    if not _finished(name, config):
        run_experiment(config, OUT, name, overwrite=True)
    return {}


@pytest.fixture(scope="module")
def runs() -> dict[str, Path]:
    from reasonlab.systems.memagent.training import train, train_sft

    if not _finished("sft", SFT_PRESETS["record"]):
        train_sft(SFT_PRESETS["record"], OUT, "sft", overwrite=True)
    gspo = TRAIN_PRESETS["gspo"]
    if not _finished("gspo", gspo):
        train(gspo, OUT, "gspo", overwrite=True)
    _bench("trained", "trained-mini")
    _bench("handwritten", "trained-handwritten")
    _bench("trained", "gspo-mini", llm="hf:runs/memagent/gspo/model")
    _bench("handwritten", "gspo-handwritten", llm="hf:runs/memagent/gspo/model", arms=["agent"])
    _bench("mini", "base-mini", arms=["oracle", "wrong", "agent", "rag"])
    _bench("mini", "base-handwritten", arms=["agent", "rag"], tasks="handwritten")
    return {name: OUT / name for name in ("sft", "gspo", "trained-mini", "trained-handwritten", "gspo-mini",
                                          "gspo-handwritten", "base-mini", "base-handwritten")}


def _rows(runs: dict[str, Path], handwritten: bool = False) -> dict[str, dict]:
    suffix = "handwritten" if handwritten else "mini"
    rows = {"base 270M": arm_row(runs[f"base-{suffix}"], "agent"),
            "SFT": arm_row(runs[f"trained-{suffix}"], "agent"),
            "SFT+GSPO": arm_row(runs[f"gspo-{suffix}"], "agent"),
            "MiniLM-RAG": arm_row(runs[f"base-{suffix}"], "rag")}
    for label, row in rows.items():
        print(label, row["correct"], "/", row["n"], {c: v["correct"] for c, v in row["categories"].items()})
    return rows


def test_the_sft_agent_meets_the_bar_on_held_out_generated_tasks(runs):
    rows = _rows(runs)
    bar = trained_bar(rows)
    assert rows["base 270M"]["correct"] == 0 and rows["MiniLM-RAG"]["correct"] == 4
    assert bar["holds"], bar
    assert arm_row(runs["base-mini"], "oracle")["correct"] == 20


def test_the_handwritten_set_is_reported_beside_it(runs):
    rows = _rows(runs, handwritten=True)
    assert all(row["n"] == 32 for row in rows.values())


def test_sft_and_gspo_costs_are_recorded(runs):
    sft = json.loads((runs["sft"] / "summary.json").read_text())
    gspo = json.loads((runs["gspo"] / "summary.json").read_text())
    assert sft["held_out_loss_after"] < sft["held_out_loss_before"]
    assert sft["tokens_per_epoch"] > 0 and sft["peak_rss_gb"] > 0 and gspo["iterations"] == 16


def test_the_trained_agent_works_through_the_mcp_server_and_keeps_the_memory_valid(runs, tmp_path):
    out = tmp_path / "mcp-check"
    subprocess.run([sys.executable, "benchmarks/memagent_mcp_trained.py", "--model", str(runs["sft"] / "model"),
                    "--out", str(out)], check=True, timeout=3600)
    result = json.loads((out / "mcp_check.json").read_text())
    assert result["memory_valid"] and result["only_requested_change"] and result["escapes_contained"]
