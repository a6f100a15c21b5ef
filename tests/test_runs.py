"""Run directories: creation, reopening, atomic writes and the metrics log."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from reasonlab.errors import UserError
from reasonlab.runs import (
    Run,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    config_diff,
    config_hash,
)


class ToyConfig(BaseModel):
    lr: float = 3e-4
    steps: int = 100
    task: str = "sudoku"


def _temporary_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def test_create_writes_resolved_config(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "trm-small", ToyConfig(steps=7))

    assert run.dir == tmp_path / "trm-small"
    assert run.name == "trm-small"
    saved = yaml.safe_load((tmp_path / "trm-small" / "config.yaml").read_text())
    assert saved["lr"] == 3e-4
    assert saved["steps"] == 7
    assert saved["task"] == "sudoku"
    assert "_created" in saved
    assert run.config() == saved
    # what the config class validates again: the saved values without the run's bookkeeping
    assert ToyConfig.model_validate(run.settings()) == ToyConfig(steps=7)
    assert "_created" not in run.settings()


def test_create_from_dict_and_none(tmp_path: Path) -> None:
    assert Run.create(tmp_path, "a", {"seed": 3}).config()["seed"] == 3
    assert set(Run.create(tmp_path, "b").config()) == {"_created"}


def test_create_on_existing_run_without_a_flag_raises(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 1})
    with pytest.raises(UserError, match=r"already exists: pass --resume to continue it, --overwrite"):
        Run.create(tmp_path, "run", {"seed": 1})


def test_create_with_another_config_names_the_differing_keys(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 1, "rl": {"lr": 0.1, "steps": 3}, "task": "a"})
    with pytest.raises(UserError, match=r"another config \(differs in rl\.lr, seed\): pass --overwrite"):
        Run.create(tmp_path, "run", {"seed": 2, "rl": {"lr": 0.2, "steps": 3}, "task": "a"}, resume=True)


class NewerToyConfig(ToyConfig):
    """ToyConfig with a field added after a run was made with it."""

    shots: int = 0


def test_a_field_added_since_the_run_was_made_differs_only_off_its_default(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", ToyConfig(steps=7))
    assert Run.create(tmp_path, "run", NewerToyConfig(steps=7), resume=True).config()["steps"] == 7
    with pytest.raises(UserError, match=r"differs in shots\)"):
        Run.create(tmp_path, "run", NewerToyConfig(steps=7, shots=1), resume=True)
    with pytest.raises(UserError, match=r"differs in shots\)"):  # a dict has no defaults to tell
        Run.create(tmp_path, "run", NewerToyConfig(steps=7).model_dump(), resume=True)
    assert config_diff({"a": {"b": 1}}, {"a": {"b": 1, "c": 0}}, explicit={}) == []
    assert config_diff({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, explicit={"a": {"c": 2}}) == ["a.c"]
    assert config_diff({"a": {"b": 1, "c": 0}}, {"a": {"b": 1}}, explicit={}) == ["a.c"]  # a field since removed


def test_create_on_existing_empty_dir_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    assert Run.create(tmp_path, "run", {"seed": 2}).config()["seed"] == 2


def test_resume_reopens_a_run_with_the_same_config(tmp_path: Path) -> None:
    first = Run.create(tmp_path, "run", ToyConfig(steps=7))
    first.log({"loss": 2.0}, step=0)
    created = first.config()["_created"]

    again = Run.create(tmp_path, "run", ToyConfig(steps=7), resume=True)

    assert again.dir == first.dir
    assert again.config()["_created"] == created
    assert [record["loss"] for record in again.metrics()] == [2.0]


def test_resume_may_differ_in_ignored_keys_and_in_the_resume_flag(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 1, "max_steps": 10, "resume": False})
    again = Run.create(tmp_path, "run", {"seed": 1, "max_steps": 20, "resume": True}, resume=True, ignore=["max_steps"])
    assert again.config()["max_steps"] == 10


def test_ignored_keys_may_be_nested_and_update_config_records_the_new_value(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"base": {"rounds": 2, "seed": 1}})
    again = Run.create(tmp_path, "run", {"base": {"rounds": 3, "seed": 1}}, resume=True, ignore=["base.rounds"])
    again.update_config({"base.rounds": 3})
    assert again.config()["base"] == {"rounds": 3, "seed": 1} and "_created" in again.config()
    with pytest.raises(UserError, match=r"differs in base\.seed"):
        Run.create(tmp_path, "run", {"base": {"rounds": 3, "seed": 2}}, resume=True, ignore=["base.rounds"])


def test_resume_on_a_missing_run_creates_it(tmp_path: Path) -> None:
    assert Run.create(tmp_path, "fresh", {"seed": 1}, resume=True).config()["seed"] == 1


def test_overwrite_starts_clean(tmp_path: Path) -> None:
    first = Run.create(tmp_path, "run", {"seed": 1})
    first.log({"loss": 2.0}, step=0)
    first.write_summary({"accuracy": 0.5})

    again = Run.create(tmp_path, "run", {"seed": 2}, overwrite=True)

    assert again.config()["seed"] == 2
    assert again.metrics() == []
    assert again.summary() == {}


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match=r"--overwrite: .*notes is not a run directory"):
        Run.create(tmp_path, "notes", {"seed": 1}, overwrite=True)
    with pytest.raises(UserError, match=r"notes exists and is not a run directory"):
        Run.create(tmp_path, "notes", {"seed": 1}, resume=True)
    assert (tmp_path / "notes" / "thesis.tex").read_text() == "years of work"


def test_config_hash_keys_artifacts_by_config(tmp_path: Path) -> None:
    base = config_hash(ToyConfig())
    assert base == config_hash({"lr": 3e-4, "steps": 100, "task": "sudoku", "_created": "today"})
    assert base != config_hash(ToyConfig(steps=101))
    assert config_hash(ToyConfig(), ignore=["steps"]) == config_hash(ToyConfig(steps=101), ignore=["steps"])
    assert len(base) == 12 and int(base, 16) >= 0


def test_config_diff_reports_dotted_keys() -> None:
    assert config_diff({"a": 1, "b": {"c": [1, 2], "d": 0}}, {"a": 1, "b": {"c": (1, 3), "d": 0}, "e": 5}) == [
        "b.c", "e"]


def test_open_existing_run(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 5}).write_summary({"accuracy": 0.75})
    run = Run.open(tmp_path / "run")
    assert run.config()["seed"] == 5
    assert run.summary() == {"accuracy": 0.75}


def test_open_on_non_run_raises(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match=r"notes is not a run directory \(no config.yaml\)"):
        Run.open(tmp_path / "notes")
    with pytest.raises(UserError, match="is not a run directory"):
        Run.open(tmp_path / "missing")


def test_log_and_metrics_roundtrip(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    assert run.metrics() == []
    run.log({"loss": 1.5, "accuracy": 0.25}, step=0)
    run.log({"loss": 0.75, "accuracy": 0.5}, step=1)
    run.log({"eval_accuracy": 0.625})

    records = run.metrics()

    assert [record.get("step") for record in records] == [0, 1, None]
    assert [record.get("loss") for record in records] == [1.5, 0.75, None]
    assert records[1]["accuracy"] == 0.5
    assert records[2]["eval_accuracy"] == 0.625
    assert all(isinstance(record["time"], float) for record in records)
    assert len(run.metrics_path.read_text().splitlines()) == 3


def test_log_converts_numpy_scalars(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    run = Run.create(tmp_path, "run")
    run.log({"loss": np.float32(0.5), "count": np.int64(3)}, step=np.int64(2))
    record = run.metrics()[0]
    assert record["loss"] == 0.5
    assert record["count"] == 3
    assert record["step"] == 2


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    run.log({"loss": 1.0}, step=0)
    run.log({"loss": 0.5}, step=1)
    # a process killed mid-write leaves a partial line without its newline
    with open(run.metrics_path, "a") as handle:
        handle.write('{"step": 2, "loss": 0.2')

    assert [record["step"] for record in run.metrics()] == [0, 1]


def test_log_after_torn_line_starts_a_fresh_line(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    run.log({"loss": 1.0}, step=0)
    with open(run.metrics_path, "a") as handle:
        handle.write('{"step": 1, "lo')

    # the resumed process logs again: its record must not be glued to the torn fragment
    resumed = Run.create(tmp_path, "run", resume=True)
    resumed.log({"loss": 0.4}, step=1)

    assert [(record["step"], record["loss"]) for record in resumed.metrics()] == [(0, 1.0), (1, 0.4)]


def test_a_long_torn_line_is_cut_before_the_next_record(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    run.log({"loss": 1.0}, step=0)
    with open(run.metrics_path, "a") as handle:
        handle.write('{"step": 1, "blob": "' + "x" * 200_000)
    run.log({"loss": 0.4}, step=1)
    assert [(record["step"], record["loss"]) for record in run.metrics()] == [(0, 1.0), (1, 0.4)]
    assert len(run.metrics_path.read_text().splitlines()) == 2


def test_a_bad_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    run.log({"loss": 1.0}, step=0)
    with open(run.metrics_path, "a") as handle:
        handle.write("not json\n")
    run.log({"loss": 0.5}, step=1)
    with pytest.raises(UserError, match=r"metrics.jsonl line 2 is not JSON"):
        run.metrics()


def test_summary_roundtrip_and_missing(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    assert run.summary() == {}
    run.write_summary({"accuracy": 0.875, "solved": 7, "nested": {"k": [1, 2]}})
    assert run.summary() == {"accuracy": 0.875, "solved": 7, "nested": {"k": [1, 2]}}
    assert json.loads(run.summary_path.read_text())["solved"] == 7


def test_plot_and_checkpoint_paths(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    assert run.plot_path("loss") == run.dir / "plots" / "loss.png"
    assert run.plot_path("curve.svg") == run.dir / "plots" / "curve.svg"
    assert (run.dir / "plots").is_dir()
    assert run.checkpoint_dir == run.dir / "checkpoints"
    assert run.checkpoint_dir.is_dir()


def test_atomic_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.txt", "alpha")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "c.json", {"b": 2, "a": 1})
    atomic_write_text(tmp_path / "deeper" / "d.txt", "delta")

    assert (tmp_path / "a.txt").read_text() == "alpha"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "c.json").read_text() == '{\n  "a": 1,\n  "b": 2\n}\n'
    assert (tmp_path / "deeper" / "d.txt").read_text() == "delta"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.json", "deeper"]
    assert sorted(path.name for path in (tmp_path / "deeper").iterdir()) == ["d.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_write_gives_open_permissions(tmp_path: Path) -> None:
    # mkstemp alone creates 0600 files; a run's files must be as readable as ones made by open()
    (tmp_path / "plain.txt").write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    plain_mode = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "atomic.txt").stat().st_mode) == plain_mode


def test_failing_write_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    atomic_write_text(target, "old contents")

    with pytest.raises(RuntimeError, match="killed"), atomic_write(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("killed mid-write")

    assert target.read_text() == "old contents"
    assert _temporary_files(tmp_path) == []
    assert [path.name for path in tmp_path.iterdir()] == ["summary.json"]


def test_unserializable_summary_keeps_old_summary(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run")
    run.write_summary({"accuracy": 0.5})
    with pytest.raises(ValueError, match="Circular reference"):
        circular: dict = {}
        circular["self"] = circular
        run.write_summary(circular)
    assert run.summary() == {"accuracy": 0.5}
    assert _temporary_files(run.dir) == []


def test_resume_and_overwrite_together_are_refused(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 1}).log({"loss": 1.0}, step=0)
    with pytest.raises(UserError, match=r"--resume and --overwrite both given .*: pass one"):
        Run.create(tmp_path, "run", {"seed": 1}, resume=True, overwrite=True)
    assert Run.open(tmp_path / "run").metrics()[0]["loss"] == 1.0  # nothing was deleted


def test_require_existing_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    Run.create(tmp_path, "run", {"seed": 1})
    Run.require_existing(tmp_path / "run")
    with pytest.raises(UserError, match=r"--resume: there is no run in .*missing to continue: drop --resume"):
        Run.require_existing(tmp_path / "missing")
