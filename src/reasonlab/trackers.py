"""Experiment trackers a run also reports to: TensorBoard, MLflow and Weights & Biases, through each library's
own API. The run directory stays the source of truth; a tracker gets a copy of what the run logs.

A config with a top-level `report_to` list (`["tensorboard", "mlflow"]`) makes `Run.create` start those
trackers; `Run.log` then sends every numeric metric, and `Run.write_summary` the final summary (the numbers as
summary metrics, summary.json and the run's plots as artifacts) before it closes them.

    run = Run.create("runs", "grpo", RLConfig(report_to=["tensorboard"]))   # runs/grpo/tensorboard/events.*

- tensorboard: `torch.utils.tensorboard.SummaryWriter` into `<run>/tensorboard` (scalars per step, the
  config as text, the summary's numbers as scalars, plots as images).
- mlflow: the tracking URI MLflow itself reads (`MLFLOW_TRACKING_URI`; a local file store needs
  `MLFLOW_ALLOW_FILE_STORE=true` on MLflow 3); experiment `reasonlab`, one MLflow run per run directory (resumed
  by its id), the flattened config as parameters.
- wandb: project `reasonlab` (`WANDB_PROJECT` overrides), `WANDB_MODE=offline` to keep it on disk (`wandb sync`
  uploads later); files under `<run>/wandb`; one W&B run per run directory (resumed by its id).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from reasonlab.errors import UserError

__all__ = ["REPORT_TO_DESCRIPTION", "REPORT_TO_HELP", "TRACKERS", "Tracker", "TrackerName", "default_trackers",
           "metric_names", "numeric_metrics", "set_default_trackers", "start_trackers", "tensorboard_records"]

TrackerName = Literal["none", "tensorboard", "mlflow", "wandb"]
TRACKERS: tuple[str, ...] = ("tensorboard", "mlflow", "wandb")
# which package each tracker needs, and the extra that installs it
_PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"),
             "wandb": ("wandb", "wandb")}
# the `report_to` field of every command's config, and its `--report-to` option
REPORT_TO_DESCRIPTION = ("trackers every run also reports to: tensorboard, mlflow, wandb (empty: reasonlab "
                         "--report-to, else none)")
REPORT_TO_HELP = ("trackers every run also reports to (repeatable): none | tensorboard | mlflow | wandb "
                  "[default: none, or reasonlab --report-to]")
DEFAULT_ENV = "REASONLAB_REPORT_TO"  # `reasonlab --report-to`: every run of the command (and its workers)
MLFLOW_EXPERIMENT = "reasonlab"
_IDS_FILE = "trackers.json"  # the MLflow and W&B run ids, so a resumed run reports into the same tracker run


class Tracker(Protocol):
    def log(self, metrics: dict[str, float], step: int | None) -> None: ...

    def finish(self, summary: dict[str, float], files: list[Path]) -> None: ...


def numeric_metrics(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) record, flattened with '/' ("rl/reward_mean"); "step" and "time" left
    out, booleans as 0/1."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if not prefix and key in ("step", "time"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numeric_metrics(value, f"{name}/"))
        elif isinstance(value, bool | int | float) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def metric_names(metrics: dict[str, Any]) -> dict[str, float]:
    """A metrics record's numbers, named under its `kind` ("rl/reward_mean") when it has one."""
    kind = metrics.get("kind")
    values = numeric_metrics({k: v for k, v in metrics.items() if k != "kind"})
    return {f"{kind}/{k}" if isinstance(kind, str) else k: v for k, v in values.items()}


def tensorboard_records(run_dir: Path) -> list[dict[str, Any]]:
    """The scalars of `<run_dir>/tensorboard` as metrics records ({"step": s, tag: value, ...} per step, the
    final `summary/` scalars left out); [] without event files or without the tensorboard package."""
    folder = Path(run_dir) / "tensorboard"
    if not folder.is_dir() or not any(folder.glob("events.out.tfevents.*")):
        return []
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return []
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    by_step: dict[int, dict[str, Any]] = {}
    for tag in events.Tags().get("scalars", []):
        if tag.startswith("summary/"):
            continue
        for event in events.Scalars(tag):
            by_step.setdefault(event.step, {"step": event.step})[tag] = event.value
    return [by_step[step] for step in sorted(by_step)]


def _import(name: str) -> Any:
    import importlib

    module, extra = _PACKAGES[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"report_to={name} needs the {module} package: pip install 'reasonlab[{extra}]' (or "
                        f"pip install {module}), or drop {name} from report_to") from None


def _checked(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` without "none" and repeats; an unknown name is a one-line error."""
    wanted = [name for name in dict.fromkeys(names) if name != "none"]
    unknown = [name for name in wanted if name not in TRACKERS]
    if unknown:
        raise UserError(f"report_to: unknown tracker {unknown[0]!r}: use none, {', '.join(TRACKERS)}")
    return wanted


def set_default_trackers(names: list[str] | tuple[str, ...]) -> None:
    """The trackers of every run whose config names none (`reasonlab --report-to`), through an environment
    variable so that worker processes report too."""
    os.environ[DEFAULT_ENV] = ",".join(_checked(names)) or "none"


def default_trackers() -> list[str]:
    return _checked([name.strip() for name in os.environ.get(DEFAULT_ENV, "").split(",") if name.strip()])


def start_trackers(names: list[str] | tuple[str, ...], run_dir: Path, config: dict[str, Any]) -> list[Tracker]:
    """The trackers `names` asks for ("none" and repeats ignored), started for the run in `run_dir`."""
    wanted = _checked(names)
    ids_path = run_dir / _IDS_FILE
    ids = json.loads(ids_path.read_text()) if ids_path.is_file() else {}
    starters = {"tensorboard": _TensorBoard, "mlflow": _MLflow, "wandb": _Wandb}
    trackers = [starters[name](run_dir, config, ids) for name in wanted]
    if ids:
        from reasonlab.runs import atomic_write_json

        atomic_write_json(ids_path, ids)
    return trackers


def _flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in config.items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat_config(value, f"{name}."))
        else:
            out[name] = json.dumps(value, default=str)[:500]
    return out


class _TensorBoard:
    def __init__(self, run_dir: Path, config: dict[str, Any], ids: dict[str, str]) -> None:
        _import("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, value, global_step=step)
        self.writer.flush()

    def finish(self, summary: dict[str, float], files: list[Path]) -> None:
        for name, value in summary.items():
            self.writer.add_scalar(f"summary/{name}", value)
        for path in files:
            if path.suffix == ".png":
                import matplotlib.image

                self.writer.add_image(f"plots/{path.stem}", matplotlib.image.imread(path)[..., :3],
                                      dataformats="HWC")
        self.writer.close()


class _MLflow:
    """Through `MlflowClient`, not the fluent API: one process may hold several runs at once (an SFT base run
    and the RL run on it), and the fluent API allows one active run."""

    def __init__(self, run_dir: Path, config: dict[str, Any], ids: dict[str, str]) -> None:
        mlflow = _import("mlflow")
        from mlflow.entities import Param

        self.client = mlflow.tracking.MlflowClient()
        if "mlflow" in ids:  # a resumed run reports into the MLflow run it started
            self.run_id = ids["mlflow"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        run = self.client.create_run(self._experiment_id(), run_name=run_dir.name)
        self.run_id = ids["mlflow"] = run.info.run_id
        params = [Param(key, value) for key, value in _flat_config(config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        if experiment is not None:
            return str(experiment.experiment_id)
        try:
            return str(self.client.create_experiment(MLFLOW_EXPERIMENT))
        except Exception:  # another worker created it first
            return str(self.client.get_experiment_by_name(MLFLOW_EXPERIMENT).experiment_id)

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(name, value, now, step or 0) for name, value in metrics.items()]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start:start + 1000])

    def finish(self, summary: dict[str, float], files: list[Path]) -> None:
        self.log({f"summary/{name}": value for name, value in summary.items()}, None)
        for path in files:
            self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id)


class _Wandb:
    """`wandb.init(reinit=...)` with its own run object, so several runs may be open in one process."""

    def __init__(self, run_dir: Path, config: dict[str, Any], ids: dict[str, str]) -> None:
        wandb = _import("wandb")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "reasonlab"), name=run_dir.name,
                              id=ids.get("wandb"), resume="allow", dir=str(run_dir), config=config,
                              reinit="create_new")
        ids["wandb"] = self.run.id

    def log(self, metrics: dict[str, float], step: int | None) -> None:
        self.run.log(metrics, step=step)

    def finish(self, summary: dict[str, float], files: list[Path]) -> None:
        self.run.summary.update({f"summary/{name}": value for name, value in summary.items()})
        for path in files:
            self.run.save(str(path), base_path=str(path.parent), policy="now")
        self.run.finish()
