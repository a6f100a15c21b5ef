"""Run directories: one per experiment, holding config.yaml, metrics.jsonl, summary.json, plots/, checkpoints/.

Every file is written atomically (temporary file in the same folder, then `os.replace`), so a killed run
never leaves a half-written config, summary or checkpoint behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from pydantic import BaseModel

from reasonlab.errors import UserError

__all__ = ["Run", "atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text"]

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


@dataclass
class Run:
    """A run directory. Create one with `Run.create`, reopen it (to resume or report) with `Run.open`."""

    dir: Path

    @classmethod
    def create(
        cls, root: str | Path, name: str, config: BaseModel | dict[str, Any] | None = None, exist_ok: bool = False
    ) -> Run:
        """Make `root/name` and save the resolved config; with exist_ok an existing run is reopened (resume)."""
        run_dir = Path(root) / name
        if run_dir.exists() and not exist_ok and any(run_dir.iterdir()):
            raise UserError(f"run directory {run_dir} already exists: pass a new --name, or --resume to continue it")
        run_dir.mkdir(parents=True, exist_ok=True)
        run = cls(run_dir)
        config_dict = _as_dict(config)
        config_dict.setdefault("_created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        if not run.config_path.exists():
            atomic_write_text(run.config_path, yaml.safe_dump(config_dict, sort_keys=False))
        return run

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

    def log(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Append one JSON line to metrics.jsonl (a line is one write call, flushed and synced)."""
        record = {"step": step, **metrics} if step is not None else dict(metrics)
        record.setdefault("time", round(time.time(), 3))
        line = json.dumps(record, default=float) + "\n"
        with open(self.metrics_path, "a+b") as handle:
            # a killed writer may have left a torn last line: start a fresh one so this record survives
            if handle.seek(0, os.SEEK_END) > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    line = "\n" + line
            handle.write(line.encode())  # append mode: always lands at the end
            handle.flush()
            os.fsync(handle.fileno())

    def metrics(self) -> list[dict[str, Any]]:
        """Every logged record; a torn last line from a killed process is skipped."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)

    def summary(self) -> dict[str, Any]:
        if not self.summary_path.exists():
            return {}
        return json.loads(self.summary_path.read_text())
