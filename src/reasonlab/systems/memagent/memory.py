"""The memory: an Obsidian-like folder of markdown files, confined and size-limited (spec §2, §11).

    memory = Memory.from_files("mem", {"user.md": "# User\\n- employer: [[entities/acme.md]]\\n",
                                       "entities/acme.md": "# Acme\\n- city: Paris\\n"})
    memory.write("entities/acme.md", "# Acme\\n- city: Lyon\\n")
    print(memory.tree())

Every path is relative to the root: no absolute path, no `..`, no hidden name (`.filters` lives there),
no symbolic link on the way. Writes are atomic (temporary file + rename) and checked against
`MemoryLimits` first. `path_problem`, `render_tree` and `memory_usage` use the standard library only,
because the sandboxed tools run the very same code (tools.py ships their source into the sandbox).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path

from pydantic import BaseModel, Field

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write_bytes, stage_bytes

__all__ = [
    "Memory",
    "MemoryAccessError",
    "MemoryLimits",
    "is_visible_name",
    "memory_usage",
    "path_problem",
    "render_tree",
    "wiki_links",
]

WIKI_LINK = re.compile(r"\[\[([^\[\]|]+)(?:\|[^\[\]]*)?\]\]")


class MemoryLimits(BaseModel):
    """Quotas of one memory folder; every write and every committed tool run is checked against them."""

    max_file_bytes: int = Field(1_000_000, ge=1, description="largest file (spec: error over 1 MB)")
    max_memory_bytes: int = Field(10_000_000, ge=1, description="all files together")
    max_files: int = Field(1000, ge=1, description="files and folders together")
    max_depth: int = Field(8, ge=1, description="path components below the root")


class MemoryAccessError(UserError):
    """A path that leaves the memory folder (absolute, `..`, hidden, a symlink) or a write past the limits."""


def _overlaps(a: str, b: str) -> bool:
    """One memory path is the other or lies inside it."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def path_problem(root: str, path: object, max_depth: int) -> str | None:
    """Why `path` may not name an entry of the memory at `root` (a resolved path), or None when it may."""
    if not isinstance(path, str):
        return f"path {path!r} must be a str relative to the memory folder, e.g. 'entities/acme.md'"
    if "\x00" in path or "\\" in path:
        return f"path {path!r} may not hold NUL bytes or backslashes; separate folders with '/'"
    if path.startswith(("/", "~")) or os.path.isabs(path):
        return f"{path!r} is absolute; use a path relative to the memory folder, e.g. 'entities/acme.md'"
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return f"{path!r} leaves the memory folder ('..' is not allowed)"
    if any(part.startswith(".") for part in parts):
        return f"{path!r} names a hidden file or folder, which is not part of the memory"
    if len(parts) > max_depth:
        return f"{path!r} is nested {len(parts)} levels deep, more than the limit of {max_depth}"
    current = root
    for part in parts:
        current = os.path.join(current, part)
        if os.path.islink(current):
            return f"{path!r} goes through a symbolic link, which the memory never follows"
    real = os.path.realpath(os.path.join(root, *parts))
    if real != root and not real.startswith(root.rstrip("/") + "/"):
        return f"{path!r} leaves the memory folder"
    return None


def is_visible_name(name: str) -> bool:
    """Whether an entry belongs to the memory: no dotfiles (`.filters`), no __pycache__."""
    return not name.startswith(".") and name != "__pycache__"


def render_tree(root: str) -> str:
    """ASCII tree of the memory from `./`: hidden names and __pycache__ left out, empty folders marked."""
    lines = ["./"]

    def walk(folder: str, prefix: str) -> None:
        names = sorted(name for name in os.listdir(folder) if is_visible_name(name))
        for index, name in enumerate(names):
            last = index == len(names) - 1
            path = os.path.join(folder, name)
            branch = "└── " if last else "├── "
            if os.path.islink(path):
                lines.append(f"{prefix}{branch}{name} (symbolic link, not followed)")
            elif os.path.isdir(path):
                empty = not any(is_visible_name(child) for child in os.listdir(path))
                lines.append(f"{prefix}{branch}{name}/" + (" (empty)" if empty else ""))
                walk(path, prefix + ("    " if last else "│   "))
            else:
                lines.append(f"{prefix}{branch}{name}")

    walk(root, "")
    return "\n".join(lines)


def memory_usage(root: str) -> tuple[int, int, int]:
    """(entries, bytes, depth) of the visible memory: files, folders and links, file sizes, deepest entry."""
    entries = total = depth = 0
    for top, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if is_visible_name(name)]
        level = 0 if top == root else os.path.relpath(top, root).count(os.sep) + 1
        for name in dirs + [name for name in files if is_visible_name(name)]:
            entries += 1
            depth = max(depth, level + 1)
            info = os.lstat(os.path.join(top, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return entries, total, depth


def wiki_links(text: str) -> list[str]:
    """The targets of `[[path]]` / `[[path|alias]]` links in `text`, in order."""
    return [match.strip() for match in WIKI_LINK.findall(text)]


def _read_no_follow(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


class Memory:
    """A memory folder on disk. Reads and writes are confined to `root` and checked against `limits`."""

    def __init__(self, root: Path | str, limits: MemoryLimits | None = None, create: bool = False) -> None:
        path = Path(root).expanduser()
        if create:
            path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise UserError(f"memory folder {root} does not exist or is not a folder; create it (with a user.md) "
                            "or pass an existing folder")
        self.root = path.resolve()
        self.limits = limits or MemoryLimits()

    @classmethod
    def from_files(cls, root: Path | str, files: dict[str, str], limits: MemoryLimits | None = None) -> Memory:
        """Create `root` and write `files` (relative path -> text) into it, each atomically."""
        memory = cls(root, limits, create=True)
        for path, text in files.items():
            memory.write(path, text)
        return memory

    def __repr__(self) -> str:
        return f"Memory({str(self.root)!r})"

    # paths

    def path(self, relative: str) -> Path:
        """The confined absolute path of `relative`; MemoryAccessError when it would leave the folder."""
        problem = path_problem(str(self.root), relative, self.limits.max_depth)
        if problem is not None:
            raise MemoryAccessError(f"memory path refused: {problem}")
        return self.root.joinpath(*[part for part in relative.split("/") if part not in ("", ".")])

    def exists(self, relative: str) -> bool:
        return self.path(relative).is_file()

    # reading

    def read(self, relative: str) -> str:
        """The text of a file of the memory."""
        return self.read_bytes(relative).decode("utf-8")

    def read_bytes(self, relative: str) -> bytes:
        path = self.path(relative)
        if not path.is_file():
            raise MemoryAccessError(f"memory file {relative!r} does not exist in {self.root}")
        return _read_no_follow(path)

    def files(self) -> dict[str, str]:
        """Every markdown file: relative posix path -> text, sorted by path."""
        return {path: data.decode("utf-8", errors="replace")
                for path, data in self.entries()[0].items() if path.endswith(".md")}

    def entries(self) -> tuple[dict[str, bytes], set[str], set[str]]:
        """(files: path -> bytes, folders, symlinks) of the visible memory; links are listed, never followed."""
        files: dict[str, bytes] = {}
        dirs: set[str] = set()
        links: set[str] = set()
        for top, subdirs, names in os.walk(self.root):
            subdirs[:] = sorted(name for name in subdirs if is_visible_name(name))
            for name in subdirs + sorted(name for name in names if is_visible_name(name)):
                path = Path(top, name)
                relative = path.relative_to(self.root).as_posix()
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    links.add(relative)
                elif stat.S_ISDIR(mode):
                    dirs.add(relative)
                elif stat.S_ISREG(mode):
                    files[relative] = _read_no_follow(path)
        return dict(sorted(files.items())), dirs, links

    def dump(self) -> str:
        """`## path` then the content, for every file: what a judge sees of the memory before and after."""
        files = self.entries()[0]
        return "".join(f"## {path}\n{data.decode('utf-8', errors='replace')}\n" for path, data in files.items())

    def tree(self) -> str:
        """The same ASCII tree as the `list_files()` tool."""
        return render_tree(str(self.root))

    def usage(self) -> tuple[int, int, int]:
        """(entries, bytes, depth) of the memory."""
        return memory_usage(str(self.root))

    # writing

    def write(self, relative: str, text: str) -> None:
        """Replace or create a file atomically, making its folders; checked against the limits first."""
        self.write_bytes(relative, text.encode("utf-8"))

    def write_bytes(self, relative: str, data: bytes) -> None:
        path = self.path(relative)
        if path.is_dir():
            raise MemoryAccessError(f"memory path {relative!r} is a folder; write to a file inside it")
        self._check_write(relative, path, len(data))
        self._make_dirs(path.parent)
        atomic_write_bytes(path, data)

    def apply(self, written: dict[str, bytes], deleted: list[str], made_dirs: set[str], removed_dirs: set[str]) -> None:
        """Apply one change set as a whole, as far as a filesystem allows: every written file is first staged
        in a synced hidden file beside its target, and only when all are staged are they renamed into place
        (renames inside the folder do not fail short of a crash); then files are deleted and emptied folders
        removed. When staging fails (a full disk, a folder in the way) the memory is left as it was. The
        caller checks the end state against the limits (the tools check a staging copy of the memory).
        Removals in the way of a new entry (a file replaced by a folder of the same name) go first."""
        creations = [*made_dirs, *written]
        if any(_overlaps(gone, new) for gone in [*deleted, *removed_dirs] for new in creations):
            self._remove(deleted, removed_dirs)
            deleted, removed_dirs = [], set()
        created: list[Path] = []  # folders made on the way, removed again when staging fails
        staged: list[tuple[Path, Path]] = []
        try:
            for folder in [self.path(d) for d in sorted(made_dirs)] + [self.path(f).parent for f in sorted(written)]:
                for missing in reversed(self._missing_dirs(folder)):
                    missing.mkdir()
                    created.append(missing)
            for relative, data in sorted(written.items()):
                path = self.path(relative)
                if path.is_dir():
                    raise MemoryAccessError(f"memory path {relative!r} is a folder; write to a file inside it")
                staged.append((stage_bytes(path, data), path))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            for folder in reversed(created):
                folder.rmdir()
            raise
        for tmp, path in staged:
            os.replace(tmp, path)
        self._remove(deleted, removed_dirs)

    def _remove(self, deleted: list[str], removed_dirs: set[str]) -> None:
        for relative in deleted:
            self.delete(relative)
        for folder in sorted(removed_dirs, key=lambda p: -p.count("/")):
            self.delete(folder)  # removes the folder only when it is empty

    def make_dir(self, relative: str) -> None:
        """Create a folder (and its parents) inside the memory."""
        path = self.path(relative)
        missing = self._missing_dirs(path)
        entries = self.usage()[0]
        if entries + len(missing) > self.limits.max_files:
            raise MemoryAccessError(f"memory {self.root} would hold more than max_files="
                                    f"{self.limits.max_files} files and folders; delete some first")
        self._make_dirs(path)

    def delete(self, relative: str) -> bool:
        """Delete a file; False when there is none. Folders are removed only when empty."""
        path = self.path(relative)
        if path.is_file():
            path.unlink()
            return True
        if path.is_dir() and path != self.root and not any(path.iterdir()):
            path.rmdir()
            return True
        return False

    def copy_to(self, dest: Path | str) -> Memory:
        """Copy the visible memory (files, folders, symlinks as links) into `dest`, which must not exist."""
        target = Path(dest)
        if target.exists():
            raise UserError(f"{dest} already exists; copy the memory into a new folder")
        target.mkdir(parents=True)
        files, dirs, links = self.entries()
        for relative in sorted(dirs):
            (target / relative).mkdir(parents=True, exist_ok=True)
        for relative, data in files.items():
            (target / relative).write_bytes(data)
            shutil.copymode(self.root / relative, target / relative)
        for relative in sorted(links):
            os.symlink(os.readlink(self.root / relative), target / relative)
        return Memory(target, self.limits)

    def limit_problems(self) -> list[str]:
        """What about the folder as it stands passes the limits, e.g. "2707 bytes, more than max_memory_bytes=1500"."""
        entries, total, depth = self.usage()
        limits = self.limits
        problems = [message for failed, message in [
            (entries > limits.max_files, f"{entries} files and folders, more than max_files={limits.max_files}"),
            (total > limits.max_memory_bytes, f"{total} bytes, more than max_memory_bytes={limits.max_memory_bytes}"),
            (depth > limits.max_depth, f"entries {depth} levels deep, more than max_depth={limits.max_depth}"),
        ] if failed]
        problems += [f"{path!r} of {len(data)} bytes, more than max_file_bytes={limits.max_file_bytes}"
                     for path, data in self.entries()[0].items() if len(data) > limits.max_file_bytes]
        return problems

    def check(self) -> None:
        """Raise MemoryAccessError when the folder passes one of its limits."""
        problems = self.limit_problems()
        if problems:
            raise MemoryAccessError(f"memory {self.root} holds {problems[0]}; shrink it or raise MemoryLimits")

    def _check_write(self, relative: str, path: Path, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise MemoryAccessError(f"memory file {relative!r} would be {size} bytes, more than max_file_bytes="
                                    f"{self.limits.max_file_bytes}; write less")
        entries, total, _ = self.usage()
        old = path.stat().st_size if path.is_file() else 0
        if total - old + size > self.limits.max_memory_bytes:
            raise MemoryAccessError(f"memory {self.root} would hold {total - old + size} bytes, more than "
                                    f"max_memory_bytes={self.limits.max_memory_bytes}; delete something first")
        added = len(self._missing_dirs(path.parent)) + (0 if path.exists() else 1)
        if entries + added > self.limits.max_files:
            raise MemoryAccessError(f"memory {self.root} would hold more than max_files={self.limits.max_files} "
                                    "files and folders; delete some first")

    def _missing_dirs(self, folder: Path) -> list[Path]:
        missing = []
        while folder != self.root and not folder.exists():
            missing.append(folder)
            folder = folder.parent
        return missing

    def _make_dirs(self, folder: Path) -> None:
        # one level at a time: path() has already refused symlinks on the way
        for missing in reversed(self._missing_dirs(folder)):
            missing.mkdir()
