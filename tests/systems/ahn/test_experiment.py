"""The recall experiment's plumbing on a tiny config: arms per seed, reuse on resume, the summary's claim, the
headline and the plot. (The run of record is tests/systems/ahn/test_ahn_experiment.py, marker `experiment`.)"""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.ahn.config import (
    PRESETS,
    CurriculumStage,
    ExperimentConfig,
    StudentConfig,
    TeacherConfig,
)
from reasonlab.systems.ahn.evaluation import summarize_recall
from reasonlab.systems.ahn.experiment import headline, load_student, run_experiment
from reasonlab.tasks.recall import RecallConfig
from reasonlab.train.distill import DistillConfig


def tiny_config(**fields) -> ExperimentConfig:
    teacher = TeacherConfig(n_layer=1, n_head=2, d_model=16, warmup_steps=2, warmup_seq_len=24,
                            warmup_batch_size=2, stages=[CurriculumStage(seq_len=40, min_pairs=4, max_pairs=8,
                                                                         steps=2, batch_size=2)])
    student = StudentConfig(sinks=2, window=4, budgets=[6, 8], sink_choices=[2], chunk_size=8, batch_size=2,
                            distill=DistillConfig(steps=3, checkpoint_every=2, progress=False))
    values = {"recall": RecallConfig(seq_len=40, min_pairs=4, max_pairs=8), "teacher": teacher,
              "student": student, "kinds": ["gdn", "deltanet"], "seeds": [0, 1], "eval_sequences": 8, "jobs": 1}
    return ExperimentConfig(**{**values, **fields})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run_experiment(tiny_config(), out, "tiny"), out


def test_every_seed_keeps_each_arm_and_the_summary_covers_them(finished):
    run_dir, _ = finished
    for seed in (0, 1):
        baselines = json.loads((run_dir / f"seed-{seed}" / "baselines.json").read_text())
        assert set(baselines) == {"teacher", "swa"}
        for kind in ("gdn", "deltanet"):
            result = json.loads((run_dir / f"seed-{seed}" / f"{kind}.json").read_text())
            buckets = result["buckets"]
            assert set(buckets) == {"<=T", "T-2T", "2T-4T", ">4T"}
            assert sum(cell["n"] for cell in buckets.values()) == sum(
                cell["n"] for cell in baselines["swa"]["buckets"].values())  # the same held-out queries
            assert (run_dir / f"seed-{seed}" / kind / "ahn.pt").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and summary["budget"] == 6
    assert set(summary["accuracy"]) == {"teacher", "swa", "gdn", "deltanet"}
    assert summary["accuracy"]["gdn"]["2T-4T"]["n"] == 2
    assert (run_dir / "plots" / "recall_by_distance.png").stat().st_size > 10_000
    line = json.loads((run_dir / "headline.json").read_text())
    assert line["system"] == "ahn" and "2 seed(s)" in line["result"]
    assert (run_dir.parent / "ahn-teachers").is_dir()


def test_resume_reuses_finished_arms_and_a_second_run_is_refused(finished):
    run_dir, out = finished
    arm = run_dir / "seed-0" / "gdn.json"
    before = arm.stat().st_mtime_ns
    run_experiment(tiny_config(), out, "tiny", resume=True)
    assert arm.stat().st_mtime_ns == before
    with pytest.raises(UserError, match=r"exists|already"):
        run_experiment(tiny_config(), out, "tiny")


def test_a_trained_student_loads_back_from_the_run(finished):
    run_dir, _ = finished
    student = load_student(run_dir, seed=1, kind="deltanet", config=tiny_config())
    assert student.kind == "deltanet" and student.budget == 6


def _result(gdn: float, swa: float, teacher: float) -> dict:
    def arm(value: float) -> dict:
        cells = {b: {"correct": 0, "n": 10, "accuracy": 0.5} for b in ("<=T", "T-2T", ">4T")}
        cells["2T-4T"] = {"correct": int(10 * value), "n": 10, "accuracy": value}
        return {"buckets": cells, "pairs_past": {"[0,8)": {"correct": 1, "n": 2, "accuracy": 0.5, "lo": 0,
                                                              "hi": 8}}}

    return {"teacher": arm(teacher), "swa": arm(swa), "gdn": arm(gdn)}


@pytest.mark.parametrize(("per_seed", "holds"), [
    ({0: _result(0.6, 0.3, 0.9), 1: _result(0.55, 0.3, 0.9)}, True),
    ({0: _result(0.6, 0.3, 0.9), 1: _result(0.45, 0.3, 0.9)}, False),  # +15 on one seed: below the bar
    ({0: _result(0.95, 0.3, 0.9), 1: _result(0.6, 0.3, 0.9)}, False),  # above the teacher on one seed
])
def test_the_claim_needs_the_margin_on_every_seed_and_stays_below_the_teacher(per_seed, holds):
    summary = summarize_recall(per_seed, ["gdn"])
    assert summary["holds"] is holds
    assert summary["gain_over_swa"]["gdn"]["per_seed"] == pytest.approx(
        [per_seed[0]["gdn"]["buckets"]["2T-4T"]["accuracy"] - 0.3, per_seed[1]["gdn"]["buckets"]["2T-4T"]["accuracy"]
         - 0.3])
    summary["budget"] = 32
    assert ("+30" in headline(summary).result) is True


def test_presets_and_bad_configs():
    assert list(PRESETS) == ["record", "quick"]
    assert PRESETS["record"].recall.seq_len == 256 and PRESETS["record"].student.window + 4 == 32
    with pytest.raises(UserError, match="2T-4T"):
        tiny_config(student=StudentConfig(sinks=2, window=9, budgets=[11]))
    with pytest.raises(UserError, match="training budgets"):
        tiny_config(student=StudentConfig(sinks=2, window=3, budgets=[6]))
    with pytest.raises(UserError, match="at least one"):
        tiny_config(kinds=[])


def test_a_student_run_reports_where_the_experiment_does(tmp_path, monkeypatch):
    from reasonlab.runs import Run
    from reasonlab.systems.ahn import experiment

    saved: list[dict] = []

    def create_then_stop(cls, root, name, config=None, **options):
        saved.append(config if isinstance(config, dict) else config.model_dump(mode="json"))
        raise RuntimeError("stopped at the student's run")

    monkeypatch.setattr(experiment, "cached_teacher", lambda *args, **options: (None, None))
    monkeypatch.setattr(Run, "create", classmethod(create_then_stop))
    for report_to in ([], ["tensorboard"]):
        with pytest.raises(RuntimeError, match="stopped"):
            experiment._student(tiny_config(report_to=report_to), 0, "gdn", tmp_path, tmp_path, resume=False)
    plain, tracked = saved
    assert "report_to" not in plain and tracked["report_to"] == ["tensorboard"]
    assert {k: v for k, v in tracked.items() if k != "report_to"} == plain
