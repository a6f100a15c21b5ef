"""The caller's workdir: read it into the job, and copy changed files back only after the supervisor's checks.

The parent never follows a link on either side: symlinks travel as links into the sandbox, only regular
files come back, every returned path is checked (no `..`, no absolute path, no symlink or file on the way
on the host), sizes and checksums are checked before anything is written, and files are replaced by rename.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.sandbox.limits import SandboxLimits


@dataclasses.dataclass
class Snapshot:
    """The caller's workdir as it was sent in: job entries plus what to compare the returned files to."""

    root: Path | None
    entries: list[dict[str, str]] = dataclasses.field(default_factory=list)
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # relative path -> sha256
    dirs: set[str] = dataclasses.field(default_factory=set)


class RejectedChanges(Exception):
    """A file the child returned may not be copied into the caller's workdir."""


def snapshot_workdir(workdir: Path | str | None, limits: SandboxLimits) -> Snapshot:
    """Read the caller's workdir (regular files, dirs and symlinks as links) without following links."""
    if workdir is None:
        return Snapshot(None)
    root = Path(workdir).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"sandbox workdir {workdir} is not a directory; create it or pass workdir=None")
    snapshot, total = Snapshot(root), 0
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs) + sorted(files):
            path = Path(top, name)
            relative = path.relative_to(root).as_posix()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                snapshot.entries.append({"type": "symlink", "path": relative, "target": os.readlink(path)})
            elif stat.S_ISDIR(info.st_mode):
                snapshot.entries.append({"type": "dir", "path": relative})
                snapshot.dirs.add(relative)
            elif stat.S_ISREG(info.st_mode):
                if info.st_size > limits.file_mb << 20:
                    raise UserError(f"{path} is larger than SandboxLimits.file_mb={limits.file_mb}; raise it")
                data = _read_regular(path)
                total += len(data)
                snapshot.entries.append({"type": "file", "path": relative, "data": base64.b64encode(data).decode()})
                snapshot.files[relative] = hashlib.sha256(data).hexdigest()
    if total > limits.tmpfs_mb << 20 or len(snapshot.entries) > limits.max_files:
        raise UserError(f"sandbox workdir {root} holds {len(snapshot.entries)} entries and {total >> 20} MB, more "
                        f"than max_files={limits.max_files} or tmpfs_mb={limits.tmpfs_mb}; raise those limits")
    return snapshot


def _read_regular(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def apply_changes(snapshot: Snapshot, lines: list[dict[str, Any]], limits: SandboxLimits) -> tuple[str, ...]:
    """Copy returned regular files into the caller's workdir, delete removed ones; never follow a link."""
    assert snapshot.root is not None
    files, dirs, total = {}, set(), 0
    if len(lines) > limits.max_files:
        raise RejectedChanges(f"more than max_files={limits.max_files} entries")
    for line in lines:
        relative = _checked_relative(line.get("path"))
        if line.get("type") == "dir":
            dirs.add(relative)
        elif line.get("type") == "file":
            data = line.get("data")
            if data is None:
                files[relative] = None
                continue
            if not isinstance(data, str):
                raise RejectedChanges(f"{relative} has no base64 text")
            try:
                content = base64.b64decode(data, validate=True)
            except ValueError as error:
                raise RejectedChanges(f"{relative} is not valid base64") from error
            total += len(content)
            if len(content) > limits.file_mb << 20 or total > limits.tmpfs_mb << 20:
                raise RejectedChanges(f"{relative} passes file_mb or tmpfs_mb")
            if hashlib.sha256(content).hexdigest() != line.get("sha256"):
                raise RejectedChanges(f"{relative} does not match its checksum")
            files[relative] = content
        else:
            raise RejectedChanges(f"unknown entry type {line.get('type')!r}")
    writes = {path: data for path, data in files.items()
              if data is not None and hashlib.sha256(data).hexdigest() != snapshot.files.get(path)}
    for path in sorted(dirs) + sorted(writes):
        _host_parent(snapshot.root, path, create=False)
    changed = []
    for path in sorted(dirs - snapshot.dirs):
        _host_parent(snapshot.root, path, create=True)
        if not os.path.lexists(snapshot.root / path):
            os.mkdir(snapshot.root / path)
    for path, data in sorted(writes.items()):
        _write_file(_host_parent(snapshot.root, path, create=True), path.rsplit("/", 1)[-1], data)
        changed.append(path)
    for path in sorted(set(snapshot.files) - set(files)):
        target = _host_parent(snapshot.root, path, create=False) / path.rsplit("/", 1)[-1]
        if os.path.lexists(target) and stat.S_ISREG(os.lstat(target).st_mode):
            os.unlink(target)
            changed.append(path)
    for path in sorted(snapshot.dirs - dirs, key=lambda p: -p.count("/")):
        # a folder that still holds a symlink or a file the sandbox never saw stays
        with contextlib.suppress(OSError):
            os.rmdir(_host_parent(snapshot.root, path, create=False) / path.rsplit("/", 1)[-1])
    return tuple(sorted(changed))


def _checked_relative(path: Any) -> str:
    if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/") or len(path) > 4096:
        raise RejectedChanges(f"bad path {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise RejectedChanges(f"path {path!r} leaves the workdir")
    try:
        encoded = [os.fsencode(part) for part in path.split("/")]
    except UnicodeEncodeError as error:  # a lone surrogate outside surrogateescape's range
        raise RejectedChanges(f"path {path[:80]!r} is not a valid file name") from error
    if any(len(part) > 255 for part in encoded):
        raise RejectedChanges(f"path {path[:80]!r} has a name longer than 255 bytes")
    return path


def _host_parent(root: Path, relative: str, create: bool) -> Path:
    """The real directory that holds `relative` under `root`; a symlink or file on the way is refused."""
    current = root
    for part in relative.split("/")[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if create:
                os.mkdir(current)
            continue
        if not stat.S_ISDIR(mode):
            raise RejectedChanges(f"{relative} goes through {current}, which is not a real directory")
    return current


def _write_file(directory: Path, name: str, data: bytes) -> None:
    """Replace directory/name atomically; os.replace swaps a symlink itself instead of writing through it."""
    target = directory / name
    if os.path.isdir(target) and not os.path.islink(target):
        raise RejectedChanges(f"{target} is a directory on the host")
    mode = stat.S_IMODE(os.lstat(target).st_mode) if os.path.isfile(target) and not os.path.islink(target) else 0o644
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".sandbox-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
