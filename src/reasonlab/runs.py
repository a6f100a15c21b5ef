"""Run directories: one per experiment, holding config.yaml, metrics.jsonl, summary.json, plots/, checkpoints/.

Every file is written atomically (temporary file in the same folder, then `os.replace`), so a killed run
never leaves a half-written config, summary or checkpoint behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel

from reasonlab.errors import UserError

__all__ = ["Run", "append_record", "atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "config_diff", "config_hash", "read_records"]

# mkstemp makes 0600 files; written files get the mode a plain open() would give (0666 minus the umask)
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; on success it replaces `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            os.chmod(tmp, _FILE_MODE)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stage_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to a synced, hidden temporary file next to `path` and return it; `os.replace(tmp, path)`
    then puts it in place in one step. Lets a caller prepare several files before publishing any."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.chmod(tmp, _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_write(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage_bytes(path, data), path)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _as_dict(config: BaseModel | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, BaseModel):
        return config.model_dump(mode="json")
    return dict(config)


def config_hash(config: BaseModel | dict[str, Any] | None, ignore: Iterable[str] = ()) -> str:
    """A short, stable hash of a config (keys starting with '_' and `ignore` left out): the key of a cached
    artifact, so a warm start or saved model made with one config is never reused under another."""
    data = _identity(_as_dict(config), ignore)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def config_diff(saved: dict[str, Any], new: dict[str, Any], ignore: Iterable[str] = (),
                explicit: dict[str, Any] | None = None) -> list[str]:
    """Dotted keys whose values differ between two configs (keys starting with '_' and `ignore` left out). With
    `explicit` (the new config's values that are not its defaults, nested like it), a key the saved config lacks
    and the new one holds at its default is no difference: a field added to the config class after the run was
    made, at its default, computes what the run computed."""
    return _diff(_identity(saved, ignore), _identity(new, ignore), "", explicit)


def _identity(config: dict[str, Any], ignore: Iterable[str]) -> dict[str, Any]:
    """The config without what may differ on reopening: `ignore` holds top-level keys and dotted nested ones
    (`base.rounds`)."""
    skip = set(ignore) | {"resume", "overwrite", "report_to"}  # where a run reports changes nothing it computes
    data = json.loads(json.dumps(config, default=str))  # tuples -> lists, paths -> str: as saved in YAML
    for dotted in (key for key in skip if "." in key):
        node, last = _parent(data, dotted, create=False)
        if node is not None:
            node.pop(last, None)
    return {key: _without_run_flags(value) for key, value in data.items()
            if not key.startswith("_") and key not in skip}


def _parent(config: dict[str, Any], dotted: str, create: bool) -> tuple[dict[str, Any] | None, str]:
    """The dict that holds the last part of a dotted key (`base.rounds` -> config["base"], "rounds"); missing
    levels are made with `create`, else the dict is None."""
    *parents, last = dotted.split(".")
    node: Any = config
    for part in parents:
        node = node.setdefault(part, {}) if create else node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), last


def _without_run_flags(value: Any) -> Any:
    """A nested config without its resume/overwrite flags (an experiment's per-run config carries them) and
    its report_to (trackers change nothing a run computes, so neither a resume check nor a cache key sees them)."""
    if isinstance(value, dict):
        return {key: _without_run_flags(item) for key, item in value.items()
                if key not in ("resume", "overwrite", "report_to")}
    return value


def _diff(saved: Any, new: Any, prefix: str, explicit: Any = None) -> list[str]:
    if isinstance(saved, dict) and isinstance(new, dict):
        chosen = explicit if isinstance(explicit, dict) else None
        keys = sorted(set(saved) | set(new))
        return [key for name in keys
                if not (chosen is not None and name not in saved and name not in chosen)  # a newer field at its default
                for key in _diff(saved.get(name), new.get(name), f"{prefix}{name}.",
                                 chosen.get(name, {}) if chosen is not None else None)]
    return [] if saved == new else [prefix.rstrip(".")]


@dataclass
class Run:
    """A run directory. Create one with `Run.create`, reopen it (to resume or report) with `Run.open`. A config
    with a top-level `report_to` (tensorboard, mlflow) also reports to those trackers (`reasonlab.trackers`):
    `log` sends each metrics record, `write_summary` the summary and plots, then closes them."""

    dir: Path
    trackers: list[Any] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def create(
        cls,
        root: str | Path,
        name: str,
        config: BaseModel | dict[str, Any] | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        ignore: Iterable[str] = (),
    ) -> Run:
        """Make `root/name` and save the resolved config. An existing run is reopened only with `resume` and
        the same config (keys in `ignore` may differ); `overwrite` deletes it and starts clean."""
        run_dir = Path(root) / name
        config_dict = _as_dict(config)
        if resume and overwrite:
            raise UserError(f"--resume and --overwrite both given for {run_dir}: pass one (continue it, or start clean)")
        if overwrite:
            _remove_run(run_dir)
        elif run_dir.exists() and any(run_dir.iterdir()):
            explicit = config.model_dump(mode="json", exclude_defaults=True) if isinstance(config, BaseModel) else None
            _check_reopen(run_dir, config_dict, resume, ignore, explicit)
        run_dir.mkdir(parents=True, exist_ok=True)
        run = cls(run_dir)
        if not run.config_path.exists():
            config_dict.setdefault("_created", time.strftime("%Y-%m-%dT%H:%M:%S"))
            atomic_write_text(run.config_path, yaml.safe_dump(json.loads(json.dumps(config_dict, default=str)),
                                                               sort_keys=False))
        from reasonlab.trackers import default_trackers, start_trackers

        report_to = config_dict.get("report_to") or default_trackers()
        if report_to:
            run.trackers = start_trackers(list(report_to), run_dir, config_dict)
        return run

    @staticmethod
    def require_existing(path: str | Path, option: str = "--resume") -> None:
        """For a command's `--resume`: a one-line UserError when `path` holds no run to continue."""
        if not (Path(path) / "config.yaml").is_file():
            raise UserError(f"{option}: there is no run in {path} to continue: drop {option} to start it")

    @classmethod
    def open(cls, path: str | Path) -> Run:
        run_dir = Path(path)
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir} is not a run directory (no config.yaml): pass a folder made by an experiment")
        return cls(run_dir)

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def config_path(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.dir / "summary.json"

    @property
    def checkpoint_dir(self) -> Path:
        path = self.dir / "checkpoints"
        path.mkdir(exist_ok=True)
        return path

    def plot_path(self, name: str) -> Path:
        path = self.dir / "plots"
        path.mkdir(exist_ok=True)
        return path / (name if name.endswith((".png", ".svg")) else f"{name}.png")

    def config(self) -> dict[str, Any]:
        return yaml.safe_load(self.config_path.read_text()) or {}

    def settings(self) -> dict[str, Any]:
        """The saved config without the run's own bookkeeping (`_created` and any other key starting with '_'):
        what the config class that made the run validates again."""
        return {key: value for key, value in self.config().items() if not str(key).startswith("_")}

    def update_config(self, values: dict[str, Any]) -> None:
        """Set keys of the saved config, dotted for nested ones (`base.rounds`), in one atomic write: a run
        reopened with a setting its resume check ignores (more rounds) records the value it now runs with."""
        config = self.config()
        for dotted, value in values.items():
            node, last = _parent(config, dotted, create=True)
            assert node is not None  # made on the way
            node[last] = value
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Append one JSON line to metrics.jsonl (a line is one write call, flushed and synced)."""
        record = {"step": step, **metrics} if step is not None else dict(metrics)
        record.setdefault("time", round(time.time(), 3))
        append_record(self.metrics_path, record)
        if self.trackers:
            from reasonlab.trackers import metric_names

            for tracker in self.trackers:
                tracker.log(metric_names(metrics), step)

    def metrics(self) -> list[dict[str, Any]]:
        """Every logged record. Only a torn last line (a killed writer) is skipped; a bad line anywhere else
        is an error, since records after it were written by a later, healthy process."""
        return read_records(self.metrics_path)

    def drop_metrics(self, kind: str, key: str, start: int) -> None:
        """Drop the `kind` records whose `key` is at or after `start`: what a killed run logged after its last
        checkpoint, before a resume logs those steps again."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in self.metrics() if not (r.get("kind") == kind and r.get(key, 0) >= start)]
        atomic_write_text(self.metrics_path, "".join(json.dumps(record) + "\n" for record in kept))

    def write_summary(self, summary: dict[str, Any]) -> None:
        """Write summary.json; a run with trackers sends them its numbers and files, then closes them."""
        atomic_write_json(self.summary_path, summary)
        if self.trackers:
            from reasonlab.trackers import numeric_metrics

            plots = sorted((self.dir / "plots").glob("*.png")) if (self.dir / "plots").is_dir() else []
            for tracker in self.trackers:
                tracker.finish(numeric_metrics(summary), [self.summary_path, *plots])
            self.trackers = []

    def close_trackers(self) -> None:
        """Close the run's trackers without a summary (a run stopped early); their files stay complete."""
        for tracker in self.trackers:
            tracker.finish({}, [])
        self.trackers = []

    def summary(self) -> dict[str, Any]:
        if not self.summary_path.exists():
            return {}
        return json.loads(self.summary_path.read_text())


def _check_reopen(run_dir: Path, config: dict[str, Any], resume: bool, ignore: Iterable[str],
                  explicit: dict[str, Any] | None = None) -> None:
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{run_dir} exists and is not a run directory (no config.yaml): pass another --out/--name")
    saved = yaml.safe_load(config_path.read_text()) or {}
    differing = config_diff(saved, config, ignore, explicit)
    if differing:
        shown = ", ".join(differing[:6]) + (f" and {len(differing) - 6} more" if len(differing) > 6 else "")
        raise UserError(f"run directory {run_dir} was made with another config (differs in {shown}): "
                        f"pass --overwrite to start it again, or another --out/--name")
    if not resume:
        raise UserError(f"run directory {run_dir} already exists: pass --resume to continue it, "
                        f"--overwrite to start it again, or another --out/--name")


def _remove_run(run_dir: Path) -> None:
    """Delete a run directory for --overwrite; refuse a folder that is not one (never delete user files)."""
    if not run_dir.exists():
        return
    if any(run_dir.iterdir()) and not (run_dir / "config.yaml").is_file():
        raise UserError(f"--overwrite: {run_dir} is not a run directory (no config.yaml), so it is left alone: "
                        f"pass another --out/--name")
    shutil.rmtree(run_dir)


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line to `path` (one write call, flushed and synced; a torn last line left by a killed
    writer is cut first), so an append-only log survives a crash with every finished record. Missing parent
    folders are created."""
    line = json.dumps(record, default=float) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        _drop_torn_last_line(handle)  # a killed writer may have left one; it is not a record
        handle.write(line.encode())  # append mode: always lands at the end
        handle.flush()
        os.fsync(handle.fileno())


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of an `append_record` log (none when the file is missing). A torn last line is skipped; a bad
    line anywhere else is a one-line error."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise UserError(f"{path} line {number} is not JSON: the log is corrupt; "
                            f"delete that line or rerun with --overwrite") from None
    return records


def _drop_torn_last_line(handle: IO[bytes]) -> None:
    """Cut a last line that has no newline (a writer killed mid-line) so the next record starts clean."""
    size = handle.seek(0, os.SEEK_END)
    if size == 0:
        return
    handle.seek(-1, os.SEEK_END)
    if handle.read(1) == b"\n":
        return
    end = size
    while end > 0:  # walk back in blocks to the last newline
        start = max(0, end - (1 << 16))
        handle.seek(start)
        cut = handle.read(end - start).rfind(b"\n")
        if cut >= 0:
            handle.truncate(start + cut + 1)
            return
        end = start
    handle.truncate(0)
