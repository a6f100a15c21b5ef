"""The ARC-lite experiment on a tiny config: the summary against the saved records, the headline and plot,
budget monotonicity, continual writes gated on train verification, reuse and resume; `summarize_lite` on
hand-made records; the `reasonlab arcmemo experiment` command."""

from __future__ import annotations

import dataclasses
import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.systems.arcmemo import experiment
from reasonlab.systems.arcmemo.config import ArcLiteConfig
from reasonlab.systems.arcmemo.evaluation import CLAIM_MARGINS, lite_headline, summarize_lite
from reasonlab.systems.arcmemo.experiment import build_tasks, run_arm, run_experiment, run_seed

FROZEN = ("none", "instance", "concept")
TINY = ArcLiteConfig(seed_tasks=20, eval_tasks=12, budgets=[10, 100], headline_budget=100, seeds=[0, 1],
                     arms=["none", "instance", "concept", "concept-continual"], batch_size=4)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_experiment(TINY, tmp_path_factory.mktemp("arclite"), "tiny")


def seed_records(run_dir: Path) -> dict[int, list[dict[str, Any]]]:
    return {seed: json.loads((run_dir / "seeds" / f"seed{seed}.json").read_text()) for seed in TINY.seeds}


def rows(records: list[dict[str, Any]], arm: str, budget: int) -> list[dict[str, Any]]:
    return sorted((r for r in records if r["arm"] == arm and r["budget"] == budget), key=lambda r: r["task"])


def summary_of(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def raise_if_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("run_arm was called: the saved seed records were not reused")


# the run on disk


def test_summary_solve_rates_are_the_records_means(tiny_run):
    summary = summary_of(tiny_run)
    assert set(summary) == {"seeds", "eval_tasks", "seed_tasks", "headline_budget", "top_k", "arms", "margins",
                            "continual_vs_frozen", "holds"}
    assert (summary["seeds"], summary["eval_tasks"], summary["headline_budget"]) == ([0, 1], 12, 100)
    records = seed_records(tiny_run)
    assert set(summary["arms"]) == set(TINY.arms)  # summary.json is written with sorted keys
    for arm in TINY.arms:
        assert set(summary["arms"][arm]["by_budget"]) == {"10", "100"}
        for budget in TINY.budgets:
            cell = summary["arms"][arm]["by_budget"][str(budget)]
            per_seed = [sum(r["solved"] for r in rows(records[s], arm, budget)) / 12 for s in TINY.seeds]
            verified = [sum(r["train_correct"] for r in rows(records[s], arm, budget)) / 12 for s in TINY.seeds]
            assert all(len(rows(records[s], arm, budget)) == 12 for s in TINY.seeds)
            assert cell["solve_rate"]["per_seed"] == pytest.approx(per_seed)
            assert cell["solve_rate"]["mean"] == pytest.approx(statistics.fmean(per_seed))
            assert cell["solve_rate"]["sd"] == pytest.approx(statistics.stdev(per_seed))
            assert cell["train_verified"]["mean"] == pytest.approx(statistics.fmean(verified))
            assert cell["tasks"] == 24


def test_margins_are_concept_minus_other_in_points_and_holds_follows_them(tiny_run):
    summary = summary_of(tiny_run)
    arms = summary["arms"]
    assert set(summary["margins"]) == {"none", "instance"}
    for other, margin in summary["margins"].items():
        concept = arms["concept"]["by_budget"]["100"]["solve_rate"]["per_seed"]
        theirs = arms[other]["by_budget"]["100"]["solve_rate"]["per_seed"]
        assert margin["per_seed"] == pytest.approx([100 * (c - t) for c, t in zip(concept, theirs, strict=True)])
        assert margin["min"] == pytest.approx(min(margin["per_seed"]))
    expected = all(m >= CLAIM_MARGINS[other] for other in CLAIM_MARGINS
                   for m in summary["margins"][other]["per_seed"])
    assert summary["holds"] is expected
    continual = summary["continual_vs_frozen"]["concept"]["per_seed"]
    frozen = arms["concept"]["by_budget"]["100"]["solve_rate"]["per_seed"]
    mine = arms["concept-continual"]["by_budget"]["100"]["solve_rate"]["per_seed"]
    assert continual == pytest.approx([100 * (a - b) for a, b in zip(mine, frozen, strict=True)])


def test_headline_config_and_plot_are_written(tiny_run):
    summary = summary_of(tiny_run)
    headline = json.loads((tiny_run / "headline.json").read_text())
    cell = summary["arms"]["concept"]["by_budget"]["100"]["solve_rate"]
    assert "n=12 tasks x 2 seeds, mean ± sd" in headline["result"]
    assert f"concept {100 * cell['mean']:.1f} ± {100 * cell['sd']:.1f}%" in headline["result"]
    assert headline["holds"] is summary["holds"]
    assert headline["plot"] == "plots/solve_rate_vs_budget.png"
    assert (tiny_run / headline["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = yaml.safe_load((tiny_run / "config.yaml").read_text())
    assert (saved["seed_tasks"], saved["eval_tasks"], saved["budgets"], saved["batch_size"]) == (20, 12, [10, 100], 4)


def test_a_frozen_arm_solves_at_a_larger_budget_whatever_it_solved_at_a_smaller_one(tiny_run):
    solved_small = 0
    for records in seed_records(tiny_run).values():
        for arm in FROZEN:
            for small, large in zip(rows(records, arm, 10), rows(records, arm, 100), strict=True):
                assert small["task"] == large["task"]
                assert small["tried"] <= 10 and large["tried"] <= 100
                if small["train_correct"]:
                    solved_small += 1
                    assert (large["program"], large["tried"], large["solved"]) == (
                        small["program"], small["tried"], small["solved"])
                assert small["memory_version"] == 0 == large["memory_version"]
    assert solved_small > 0


def test_continual_memory_grows_only_after_a_batch_with_a_verified_task(tiny_run):
    grown = 0
    for records in seed_records(tiny_run).values():
        for budget in TINY.budgets:
            ordered = rows(records, "concept-continual", budget)
            batches = [ordered[i:i + TINY.batch_size] for i in range(0, len(ordered), TINY.batch_size)]
            expected = 0
            for batch in batches:
                assert {r["memory_version"] for r in batch} == {expected}
                expected += any(r["train_correct"] for r in batch)
            grown += expected
    assert grown > 0


def test_continual_arm_writes_exactly_its_train_verified_tasks(monkeypatch):
    writes: list[tuple[str, list[str]]] = []
    real_make_arm = experiment.make_arm

    def spying_make_arm(spec, *args, **kwargs):
        arm = real_make_arm(spec, *args, **kwargs)
        real_write = arm.write

        def write(verified):
            writes.append((spec.name, [task.id for task, _ in verified]))
            return real_write(verified)
        arm.write = write
        return arm

    monkeypatch.setattr(experiment, "make_arm", spying_make_arm)
    seeds, held_out = build_tasks(TINY, 0)
    # every test output made unreachable: the test pairs must not decide a write
    held_out = [dataclasses.replace(t, test=[(t.test[0][0], np.zeros((1, 31), dtype=np.int64))]) for t in held_out]
    for arm in ("concept", "concept-continual"):
        records = run_arm(arm, TINY, 0, 100, seeds, held_out)
        assert not any(r["solved"] for r in records)
        calls = [ids for name, ids in writes if name == arm]
        assert calls[0] == [t.id for t in seeds]
        verified = {r["task"] for r in records if r["train_correct"]}
        if arm == "concept":
            assert len(calls) == 1
        else:
            assert verified and sorted(i for ids in calls[1:] for i in ids) == sorted(verified)
            assert len(calls) - 1 == len({r["memory_version"] for r in records if r["train_correct"]})


def test_records_carry_selection_and_recall(tiny_run):
    records = seed_records(tiny_run)[0]
    programs = {task.id: task.program for task in build_tasks(TINY, 0)[1]}
    for record in rows(records, "concept", 100):
        true = {name for name, _ in programs[record["task"]]}
        assert record["depth"] == len(programs[record["task"]])
        assert len(record["selected"]) == TINY.top_k
        assert record["recall"] == pytest.approx(len(true & set(record["selected"])) / len(true))
    assert all(r["selected"] == [] and r["recall"] is None for r in rows(records, "none", 100))


# reuse and resume


def test_run_seed_reuses_the_saved_records(tiny_run, monkeypatch):
    monkeypatch.setattr(experiment, "run_arm", raise_if_called)
    assert run_seed(TINY, 1, tiny_run) == seed_records(tiny_run)[1]


def test_rerun_needs_resume_and_resume_reuses_every_seed(tiny_run, tmp_path, monkeypatch):
    shutil.copytree(tiny_run, tmp_path / "tiny")
    with pytest.raises(UserError, match="already exists") as error:
        run_experiment(TINY, tmp_path, "tiny")
    assert "\n" not in str(error.value) and "--resume" in str(error.value)
    monkeypatch.setattr(experiment, "run_arm", raise_if_called)
    assert run_experiment(TINY, tmp_path, "tiny", resume=True) == tmp_path / "tiny"
    assert summary_of(tmp_path / "tiny") == summary_of(tiny_run)


def test_another_jobs_value_resumes_the_same_run(tiny_run, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "tiny")
    for path in (tmp_path / "tiny" / "seeds").iterdir():
        path.write_text(path.read_text())  # the workers (other processes) must read these, not recompute
    mtimes = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "tiny" / "seeds").iterdir()}
    run_experiment(TINY.model_copy(update={"jobs": 2}), tmp_path, "tiny", resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "tiny" / "seeds").iterdir()} == mtimes
    assert summary_of(tmp_path / "tiny") == summary_of(tiny_run)
    with pytest.raises(UserError, match="budgets"):
        run_experiment(TINY.model_copy(update={"budgets": [10, 100, 1000]}), tmp_path, "tiny", resume=True)


# summarize_lite on hand-made records

HAND = ArcLiteConfig(seed_tasks=5, eval_tasks=4, budgets=[50], headline_budget=50, seeds=[0, 1],
                     arms=["none", "instance", "concept"])


def hand_records(arm: str, seed: int, solved: list[int], verified: list[int], depths=(1, 1, 2, 3),
                 recall: list[float | None] | None = None) -> list[dict[str, Any]]:
    recall = recall or [None] * len(solved)
    return [{"arm": arm, "budget": 50, "seed": seed, "task": f"eval-{i:03d}", "solved": bool(s),
             "train_correct": bool(v), "depth": d, "recall": r}
            for i, (s, v, d, r) in enumerate(zip(solved, verified, depths, recall, strict=True))]


def two_arms() -> list[dict[str, Any]]:
    return (hand_records("concept", 0, [1, 1, 1, 0], [1, 1, 1, 1], recall=[1.0, 0.5, 1.0, 0.5])
            + hand_records("concept", 1, [1, 0, 0, 0], [1, 1, 0, 0], recall=[1.0, 1.0, 0.0, 0.0])
            + hand_records("none", 0, [1, 0, 0, 0], [1, 0, 0, 0])
            + hand_records("none", 1, [0, 0, 0, 0], [0, 0, 0, 0]))


def test_summarize_lite_gives_exact_means_sds_and_margins():
    summary = summarize_lite(two_arms(), HAND)
    assert list(summary["arms"]) == ["none", "concept"]
    concept = summary["arms"]["concept"]["by_budget"]["50"]
    assert concept["solve_rate"]["per_seed"] == [0.75, 0.25]
    assert concept["solve_rate"]["mean"] == 0.5
    assert concept["solve_rate"]["sd"] == pytest.approx(0.5 ** 0.5 / 2)  # stdev of 0.75 and 0.25
    assert concept["train_verified"]["mean"] == 0.75
    assert concept["train_only_accepts"]["mean"] == pytest.approx(0.25)
    assert concept["by_depth"]["1"]["mean"] == 0.75 and concept["by_depth"]["2"]["mean"] == 0.5
    assert concept["recall_at_k"]["mean"] == pytest.approx(0.625)
    assert concept["tasks"] == 8
    assert summary["arms"]["none"]["by_budget"]["50"]["recall_at_k"] is None
    none = summary["arms"]["none"]["by_budget"]["50"]["solve_rate"]
    assert (none["mean"], none["sd"]) == (0.125, pytest.approx(0.25 / 2 ** 0.5))
    assert summary["margins"]["none"]["per_seed"] == pytest.approx([50.0, 25.0])
    assert summary["margins"]["none"]["mean"] == pytest.approx(37.5)
    assert summary["holds"] is False  # without an instance arm the claim cannot hold


@pytest.mark.parametrize(("instance_seed1", "holds"), [([0, 0, 0, 0], True), ([1, 0, 0, 0], False)])
def test_summarize_lite_holds_only_when_every_seed_clears_both_margins(instance_seed1, holds):
    records = (two_arms() + hand_records("instance", 0, [1, 1, 0, 0], [1, 1, 0, 0])
               + hand_records("instance", 1, instance_seed1, instance_seed1))
    summary = summarize_lite(records, HAND)
    assert summary["margins"]["instance"]["per_seed"] == pytest.approx([25.0, 25.0 - 25 * sum(instance_seed1)])
    assert summary["holds"] is holds
    assert lite_headline(summary).holds is holds


def test_a_margin_of_exactly_the_bar_holds():
    config = HAND.model_copy(update={"eval_tasks": 100, "seeds": [0]})
    records = [{"arm": arm, "budget": 50, "seed": 0, "task": f"eval-{i:03d}", "solved": i < solved,
                "train_correct": i < solved, "depth": 1, "recall": None}
               for arm, solved in (("concept", 62), ("none", 52), ("instance", 57)) for i in range(100)]
    assert summarize_lite(records, config)["holds"] is True


def test_by_depth_skips_seeds_without_tasks_of_that_depth():
    records = (hand_records("concept", 0, [1, 1, 1, 0], [1, 1, 1, 1], depths=(1, 1, 2, 3))
               + hand_records("concept", 1, [1, 0, 0, 0], [1, 0, 0, 0], depths=(1, 1, 2, 2)))
    by_depth = summarize_lite(records, HAND)["arms"]["concept"]["by_budget"]["50"]["by_depth"]
    assert by_depth["3"]["mean"] == 0.0 and by_depth["3"]["n"] == 1


# the command


def test_experiment_command_prints_the_table_and_the_claim(tmp_path):
    from reasonlab.systems.arcmemo.cli import app

    result = CliRunner().invoke(app, ["experiment", "--preset", "quick", "--seed", "0", "--eval-tasks", "8",
                                      "--seed-tasks", "16", "--out", str(tmp_path), "--name", "x"])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # rich wraps long lines at the runner's width
    assert "budget 300" in printed and "recall@k" in printed
    assert "claim holds" in printed and "n=8 tasks x 1 seeds" in printed
    saved = yaml.safe_load((tmp_path / "x" / "config.yaml").read_text())
    assert (saved["seeds"], saved["eval_tasks"], saved["seed_tasks"]) == ([0], 8, 16)
    assert saved["arms"] == ["none", "instance", "concept"] and saved["budgets"] == [30, 100, 300, 1000]
    summary = summary_of(tmp_path / "x")
    assert set(summary["arms"]) == {"none", "instance", "concept"}
    cell = summary["arms"]["concept"]["by_budget"]["300"]
    assert cell["tasks"] == 8
    assert f"{100 * cell['solve_rate']['mean']:.1f} ± 0.0" in printed
    holds = json.loads((tmp_path / "x" / "headline.json").read_text())["holds"]
    assert holds is summary["holds"] and f"claim holds: {holds}" in printed
