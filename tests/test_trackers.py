"""Trackers (`reasonlab.trackers`): a short tinylm RL run with `report_to` writes what each tracker's own reader
reads back, with the numbers of metrics.jsonl; the run directory stays the source of truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.runs import Run, config_hash
from reasonlab.trackers import metric_names, numeric_metrics, start_trackers
from reasonlab.train.rl import RLConfig, Step, train
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TASKS = [(a, b) for a in range(4) for b in range(4)]


class SumEnvironment:
    def reset(self, task):
        return f"{task[0]}+{task[1]}="

    def step(self, history, completion):
        return Step.finish(float(completion.text == str(sum(history.task))))


def short_rl_run(tmp_path, report_to: list[str]) -> Run:
    """Three GRPO iterations of a fresh tinylm on digit sums, reported to `report_to`; returns the run."""
    tokenizer = Tokenizer.from_texts(["0123456789+=;"])
    policy = TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer, seed=0)
    config = RLConfig(iterations=3, tasks_per_iteration=4, group_size=4, learning_rate=1e-3, progress=False,
                      sampling=SamplingParams(temperature=1.0, max_tokens=3), report_to=report_to)
    run = Run.create(tmp_path, "grpo", config)
    history = train(config, policy, SumEnvironment(), TASKS, run=run)
    run.write_summary({"reward_last": history[-1]["reward_mean"], "iterations": len(history)})
    return run


def logged(run: Run, name: str) -> dict[int, float]:
    """metric `name` (as trackers name it, "rl/<key>") by step, from metrics.jsonl."""
    return {record["step"]: metric_names(record)[name] for record in run.metrics() if name in metric_names(record)}


def test_metric_names_flatten_numbers_under_the_record_kind() -> None:
    record = {"kind": "rl", "step": 3, "time": 1.0, "reward_mean": 0.5, "ok": True, "note": "x",
              "loss": {"policy": 0.25, "kl": float("nan")}}
    assert metric_names(record) == {"rl/reward_mean": 0.5, "rl/ok": 1.0, "rl/loss/policy": 0.25}
    assert numeric_metrics({"a": {"b": 2}, "c": "text"}) == {"a/b": 2.0}


def test_tensorboard_event_files_hold_the_logged_numbers(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = short_rl_run(tmp_path, ["tensorboard"])
    events = EventAccumulator(str(run.dir / "tensorboard"))
    events.Reload()
    read = {event.step: event.value for event in events.Scalars("rl/reward_mean")}
    assert read == pytest.approx(logged(run, "rl/reward_mean")) and len(read) == 3
    assert [event.value for event in events.Scalars("summary/iterations")] == [3.0]


def test_mlflow_file_store_holds_the_logged_numbers_the_config_and_the_files(tmp_path, monkeypatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.x keeps the file store behind this switch
    run = short_rl_run(tmp_path, ["mlflow"])
    found = mlflow.search_runs(experiment_names=["reasonlab"], output_format="list")
    assert [r.info.run_name for r in found] == ["grpo"]
    client = mlflow.tracking.MlflowClient()
    history = {m.step: m.value for m in client.get_metric_history(found[0].info.run_id, "rl/reward_mean")}
    assert history == pytest.approx(logged(run, "rl/reward_mean"))
    assert found[0].data.params["iterations"] == "3" and found[0].data.metrics["summary/iterations"] == 3.0
    assert "summary.json" in {f.path for f in client.list_artifacts(found[0].info.run_id)}
    assert found[0].info.status == "FINISHED"


def test_report_to_changes_neither_the_resume_check_nor_the_cache_key(tmp_path) -> None:
    plain, tracked = RLConfig(), RLConfig(report_to=["tensorboard"])
    assert config_hash(plain) == config_hash(tracked)
    assert config_hash({"rl": plain.model_dump()}) == config_hash({"rl": tracked.model_dump()})


def test_unknown_or_missing_tracker_is_a_one_line_error(tmp_path, monkeypatch) -> None:
    with pytest.raises(UserError, match="unknown tracker 'neptune'"):
        start_trackers(["neptune"], tmp_path, {})
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(UserError, match=r"report_to=mlflow needs the mlflow package: pip install 'reasonlab\[mlflow\]'"):
        start_trackers(["mlflow"], tmp_path, {})
    assert start_trackers(["none"], tmp_path, {}) == []


def test_the_root_option_reports_every_run_of_a_command(tmp_path) -> None:
    """`reasonlab --report-to tensorboard SYSTEM ...`: a command whose config names no tracker reports too."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bridge.txt").write_text("The Tay Bridge opened in 1878 and fell in a storm in December 1879. "
                                       "A second bridge, opened in 1887, still carries trains across the Firth "
                                       "of Tay. It is 3,264 metres long and was the longest bridge in Britain. "
                                       "Its engineer was William Henry Barlow, who also designed St Pancras.\n")
    env = {key: value for key, value in os.environ.items() if key != "REASONLAB_REPORT_TO"}
    subprocess.run([sys.executable, "-m", "reasonlab.cli", "--report-to", "tensorboard", "webscale", "run",
                    "--input", str(corpus), "--set", "embedder=hashing", "--set", "filter.min_informativeness=-1",
                    "--out", str(tmp_path / "run")], check=True, capture_output=True, text=True, env=env, timeout=300)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [event.value for event in events.Scalars("summary/documents/read")] == [summary["documents"]["read"]]



def test_the_report_reads_tensorboard_events_of_a_run_without_metrics_jsonl(tmp_path) -> None:
    """One report over a run with metrics.jsonl and one whose metrics live only in TensorBoard event files."""
    pytest.importorskip("tensorboard")
    from reasonlab.report import write_report
    from reasonlab.trackers import tensorboard_records

    tracked = short_rl_run(tmp_path / "tracked", ["tensorboard"])
    expected = logged(tracked, "rl/reward_mean")
    tracked.metrics_path.unlink()
    records = tensorboard_records(tracked.dir)
    assert {r["step"]: r["rl/reward_mean"] for r in records} == pytest.approx(expected)
    short_rl_run(tmp_path / "plain", [])
    markdown, _ = write_report(tmp_path)
    text = markdown.read_text()
    assert "report_assets/01-plain_grpo-metrics.png" in text and "report_assets/02-tracked_grpo-metrics.png" in text
    assert "No numeric metrics" not in text


def test_mlflow_takes_two_runs_open_at_once_in_one_process(tmp_path, monkeypatch) -> None:
    """A system may hold a base run and the run trained on it at once (Delethink's SFT base and its RL run)."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    base = Run.create(tmp_path, "base", {"report_to": ["mlflow"], "lr": 1})
    tuned = Run.create(tmp_path, "tuned", {"report_to": ["mlflow"], "lr": 2})
    base.log({"kind": "sft", "loss": 2.0}, step=0)
    tuned.log({"kind": "rl", "reward": 0.5}, step=0)
    tuned.write_summary({"reward": 0.5})
    base.write_summary({"loss": 2.0})
    found = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["reasonlab"], output_format="list")}
    assert set(found) == {"base", "tuned"} and {r.info.status for r in found.values()} == {"FINISHED"}
    assert found["base"].data.metrics["sft/loss"] == 2.0 and found["tuned"].data.params["lr"] == "2"


def read_wandb_records(path):
    """The protobuf records of a W&B offline run file (`run-<id>.wandb`), decoded with W&B's own schema. The file
    is a 7-byte header (":W&B", magic, version) and a LevelDB-style log: 32 KiB blocks of chunks, each with a
    7-byte header (CRC32, little-endian length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, position, pending, records = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        length = int.from_bytes(data[position + 4:position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_records_when_complete(path, seconds: float = 20.0):
    """The run file's records once its exit record is there (W&B's service process writes the file and may finish
    a moment after `run.finish()` returns in this process)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        records = read_wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_wandb_offline_run_files_hold_the_logged_numbers(tmp_path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = short_rl_run(tmp_path, ["wandb"])
    [path] = list((run.dir / "wandb").glob("offline-run-*/run-*.wandb"))
    history, summary = {}, {}
    for record in wandb_records_when_complete(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            if "rl/reward_mean" in items:
                history[record.history.step.num] = items["rl/reward_mean"]
        elif kind == "summary":
            for item in record.summary.update:
                summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    assert history == pytest.approx(logged(run, "rl/reward_mean")) and len(history) == 3
    assert summary["summary/iterations"] == 3
    assert json.loads((run.dir / "trackers.json").read_text())["wandb"] in path.name


def test_a_run_stopped_early_closes_its_trackers_and_can_be_overwritten(tmp_path) -> None:
    """What a --report-to case of a cli-options test does: start, stop before any summary, start again with
    overwrite (a TensorBoard writer thread left open once raced the folder's removal)."""
    pytest.importorskip("tensorboard")
    for _ in range(3):
        run = Run.create(tmp_path, "again", {"report_to": ["tensorboard"]}, overwrite=True)
        run.log({"kind": "x", "value": 1.0}, step=0)
        run.close_trackers()
        assert run.trackers == [] and list((run.dir / "tensorboard").glob("events.out.tfevents.*"))
