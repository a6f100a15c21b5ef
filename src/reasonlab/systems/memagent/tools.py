"""The memory tools (spec §4) and `run_tools`, which runs model-written Python that calls them in the sandbox.

    run = run_tools("user = read_file('user.md')\\nok = update_file('user.md', 'Paris', 'Lyon')", memory)
    run.locals, run.error, run.changed      # ({'user': '# User...', 'ok': True}, None, ['user.md'])
    print(run.result_block())               # <result>\\n{'user': ..., 'ok': True}\\n</result>

One `run_tools` call is one sandbox run (reasonlab.sandbox: bubblewrap, seccomp, rlimits, audit hook):
1. the visible memory is copied into a staging folder (never `.filters` or other hidden files);
2. the tools (`MemoryTools`) and the harness (`run_model_code`) go in as the trusted preamble, the model's
   code as data; the harness runs it in a fresh namespace and returns the assigned variables as JSON;
3. the sandbox copies changed files (and deletions) back into the staging folder after its own checks;
4. the staging folder is checked against `MemoryLimits` (no hidden files, no symlinks made), and only then
   are the changes written into the memory as one change set (`Memory.apply`: all files staged, then renamed).
The tools check every path themselves for clear errors, but they are not the boundary: code can bypass
them, and the sandbox still confines it. A run the sandbox stops (timeout, CPU, memory, file size,
forbidden call) changes nothing.
"""

from __future__ import annotations

import errno
import functools
import inspect
import json
import os
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.sandbox import SandboxLimits, SandboxMode, SandboxResult, run_python
from reasonlab.systems.memagent.memory import (
    Memory,
    MemoryAccessError,
    MemoryLimits,
    is_visible_name,
    memory_usage,
    path_problem,
    render_tree,
)

__all__ = ["TOOL_NAMES", "MemoryTools", "ToolRun", "run_tools", "sandbox_limits", "tool_preamble"]

TOOL_NAMES: tuple[str, ...] = (
    "create_file", "update_file", "read_file", "delete_file", "create_dir", "check_if_file_exists",
    "check_if_dir_exists", "list_files", "get_size", "go_to_link",
)
# longest JSON (or repr) of one variable sent back; longer values are cut with a marker
MAX_VALUE_CHARS = 200_000


class MemoryTools:
    """The functions the model calls, bound to a memory root. Runs in the sandbox (its source is shipped),
    so it uses the standard library and the shipped helpers only. Path errors raise MemoryAccessError;
    ordinary misses are values (False, or a string starting with "Error:")."""

    def __init__(self, root: str, max_file_bytes: int, max_memory_bytes: int, max_files: int,
                 max_depth: int) -> None:
        self.root = os.path.realpath(root)
        self.max_file_bytes, self.max_memory_bytes = max_file_bytes, max_memory_bytes
        self.max_files, self.max_depth = max_files, max_depth

    def bind(self) -> dict:
        """The tool functions by name, as the model's code sees them."""
        names = ("create_file", "update_file", "read_file", "delete_file", "create_dir", "check_if_file_exists",
                 "check_if_dir_exists", "list_files", "get_size", "go_to_link")
        return {name: getattr(self, name) for name in names}

    def _path(self, tool: str, path: object) -> str:
        problem = path_problem(self.root, path, self.max_depth)
        if problem is not None:
            raise MemoryAccessError(f"{tool}: {problem}")
        return os.path.join(self.root, *[p for p in str(path).split("/") if p not in ("", ".")])

    def _check_write(self, tool: str, target: str, content: object) -> bytes:
        if not isinstance(content, str):
            raise TypeError(f"{tool}: content must be a str, got {type(content).__name__}")
        data = content.encode("utf-8")
        if len(data) > self.max_file_bytes:
            raise MemoryAccessError(f"{tool}: content is {len(data)} bytes, more than the limit of "
                                    f"{self.max_file_bytes} bytes per file")
        entries, total, _ = memory_usage(self.root)
        old = os.path.getsize(target) if os.path.isfile(target) else 0
        if total - old + len(data) > self.max_memory_bytes:
            raise MemoryAccessError(f"{tool}: the memory would hold {total - old + len(data)} bytes, more than "
                                    f"the limit of {self.max_memory_bytes}")
        if not os.path.exists(target) and entries + 1 > self.max_files:
            raise MemoryAccessError(f"{tool}: the memory already holds {entries} files and folders, the limit")
        return data

    def _write(self, target: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data)

    def create_file(self, file_path: str, content: str = "") -> bool:
        """Create or replace a file, making its folders."""
        target = self._path("create_file", file_path)
        if os.path.isdir(target):
            raise IsADirectoryError(f"create_file: {file_path} is a folder")
        self._write(target, self._check_write("create_file", target, content))
        return True

    def update_file(self, file_path: str, old_content: str, new_content: str) -> bool | str:
        """Replace the first exact occurrence of old_content; True, or an "Error: ..." string."""
        target = self._path("update_file", file_path)
        if not os.path.isfile(target):
            return f"Error: file {file_path} does not exist"
        with open(target, encoding="utf-8") as handle:
            text = handle.read()
        if not isinstance(old_content, str) or not isinstance(new_content, str) or not old_content:
            return "Error: old_content and new_content must be strings, and old_content must not be empty"
        if old_content not in text:
            return f"Error: old_content was not found in {file_path}; read the file and copy the text exactly"
        updated = text.replace(old_content, new_content, 1)
        if updated == text:
            return f"Error: the update leaves {file_path} unchanged"
        self._write(target, self._check_write("update_file", target, updated))
        return True

    def read_file(self, file_path: str) -> str:
        """The text of a file, or an "Error: ..." string."""
        target = self._path("read_file", file_path)
        if os.path.isdir(target):
            return f"Error: {file_path} is a folder; use list_files()"
        if not os.path.isfile(target):
            return f"Error: file {file_path} does not exist"
        try:
            with open(target, encoding="utf-8") as handle:
                return handle.read()
        except UnicodeDecodeError:
            return f"Error: {file_path} is not UTF-8 text"

    def delete_file(self, file_path: str) -> bool:
        """Delete a file; False when there is none."""
        target = self._path("delete_file", file_path)
        if not os.path.isfile(target):
            return False
        os.remove(target)
        return True

    def create_dir(self, dir_path: str) -> bool:
        """Create a folder and its parents (no error when it exists)."""
        target = self._path("create_dir", dir_path)
        if os.path.isfile(target):
            raise FileExistsError(f"create_dir: {dir_path} is a file")
        if not os.path.isdir(target) and memory_usage(self.root)[0] + 1 > self.max_files:
            raise MemoryAccessError(f"create_dir: the memory already holds {self.max_files} files and folders")
        os.makedirs(target, exist_ok=True)
        return True

    def check_if_file_exists(self, file_path: str) -> bool:
        return os.path.isfile(self._path("check_if_file_exists", file_path))

    def check_if_dir_exists(self, dir_path: str) -> bool:
        return os.path.isdir(self._path("check_if_dir_exists", dir_path))

    def list_files(self) -> str:
        """ASCII tree of the memory."""
        return render_tree(self.root)

    def get_size(self, file_path: str = "") -> int:
        """Bytes of a file, of a folder's files, or of the whole memory for ""."""
        target = self.root if file_path == "" else self._path("get_size", file_path)
        if os.path.isfile(target):
            return os.path.getsize(target)
        if not os.path.isdir(target):
            raise FileNotFoundError(f"get_size: {file_path} does not exist")
        return memory_usage(target)[1]

    def go_to_link(self, link_string: str) -> str:
        """Follow a wiki link such as "[[entities/acme.md]]": the linked file's text, or an "Error: ..." string."""
        if not isinstance(link_string, str):
            raise TypeError(f"go_to_link: link must be a str like '[[entities/acme.md]]', got {link_string!r}")
        target = link_string.strip().removeprefix("[[").removesuffix("]]").split("|")[0].strip()
        if not target.endswith(".md"):
            target += ".md"
        return self.read_file(target)


def sandbox_stop(error: BaseException) -> bool:
    """Whether an exception caught in the model's code comes from a sandbox layer (then it is re-raised,
    so that the sandbox names the layer and keeps the memory unchanged)."""
    if isinstance(error, MemoryError):
        return True
    stopped = {errno.EPERM, errno.EACCES, errno.EROFS, errno.EFBIG, errno.ENOSPC, errno.EDQUOT, errno.EOPNOTSUPP,
               errno.EAGAIN, errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL}
    return isinstance(error, OSError) and error.errno in stopped


def assigned_values(namespace: dict, given: dict) -> dict:
    """The variables the code assigned: JSON values, a repr for the rest; modules, functions, classes left out."""
    skipped = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    values = {}
    for name, value in namespace.items():
        if name.startswith("__") or (name in given and given[name] is value) or isinstance(value, skipped):
            continue
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            value, text = repr(value), None
        if text is not None and len(text) > MAX_VALUE_CHARS:
            value = repr(value)
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + f"... [{len(value) - MAX_VALUE_CHARS} more characters]"
        values[name] = value
    return values


def run_model_code(code: str, tools: dict) -> dict:
    """Run the model's code in a fresh namespace holding the tools: {"locals": ..., "error": one line or None}."""
    import builtins

    namespace = {"__builtins__": builtins, "__name__": "__memory__", **tools}
    error = None
    try:
        exec(compile(code, "<python>", "exec"), namespace)
    except (Exception, SystemExit) as caught:
        if sandbox_stop(caught):
            raise
        lines = (f"{type(caught).__name__}: {caught}".strip().rstrip(":")).splitlines() or ["error"]
        error = lines[0][:500]
    return {"locals": assigned_values(namespace, tools), "error": error}


@functools.lru_cache(maxsize=1)
def tool_preamble() -> str:
    """The trusted source the sandbox runs before the model's code: the tools and the harness."""
    shipped = [is_visible_name, path_problem, render_tree, memory_usage, MemoryTools, sandbox_stop, assigned_values,
               run_model_code]
    header = ("import errno\nimport json\nimport os\nimport stat\nimport types\n\n"
              f"MAX_VALUE_CHARS = {MAX_VALUE_CHARS}\n\n\n"
              "class MemoryAccessError(Exception):\n"
              "    \"\"\"A path that leaves the memory folder, or a write past the memory's limits.\"\"\"\n")
    return "\n\n".join([header, *(inspect.getsource(item) for item in shipped)])


_CALL = ("result = run_model_code(inputs['code'], MemoryTools(os.getcwd(), **inputs['limits']).bind())")


def sandbox_limits(limits: MemoryLimits, wall_seconds: float = 10.0, cpu_seconds: int = 5,
                   memory_mb: int = 512) -> SandboxLimits:
    """Sandbox limits that fit a memory's quotas: RLIMIT_FSIZE just above the largest file, a tmpfs that holds
    the memory twice over, room for its entries (spec §11: CPU 5 s, AS 512 MB, FSIZE 1 MB)."""
    megabyte = 1 << 20
    return SandboxLimits(
        wall_seconds=wall_seconds, cpu_seconds=cpu_seconds, memory_mb=memory_mb,
        file_mb=-(-limits.max_file_bytes // megabyte), tmpfs_mb=2 * -(-limits.max_memory_bytes // megabyte) + 8,
        max_files=limits.max_files + 64, max_output_bytes=4 * megabyte,
    )


@dataclass
class ToolRun:
    """One run of model-written code: what it assigned, its error, what it changed in the memory."""

    locals: dict[str, Any]
    error: str | None
    changed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kind: str | None = None  # "exception", "rejected" (memory limits) or the sandbox's error kind
    layer: str | None = None  # the sandbox layer that stopped the code, if one did

    def result_block(self, max_chars: int | None = None) -> str:
        """The user message the model sees: `<result>\\n{locals}\\n</result>`, or `({locals}, {error})`."""
        body = repr(self.locals) if self.error is None else f"({self.locals!r}, {self.error!r})"
        if max_chars is not None and len(body) > max_chars:
            body = body[:max_chars] + f"... [{len(body) - max_chars} more characters]"
        return f"<result>\n{body}\n</result>"


def run_tools(code: str, memory: Memory, limits: SandboxLimits | None = None, mode: SandboxMode = "auto") -> ToolRun:
    """Run model-written `code` with the tools in the sandbox on a copy of `memory`; commit its changes only
    when the copy stays within the memory's limits. `mode` is the sandbox's (auto fails closed)."""
    started = time.perf_counter()
    memory.check()
    inputs = {"code": code, "limits": memory.limits.model_dump()}
    with tempfile.TemporaryDirectory(prefix="reasonlab-memagent-") as scratch:
        staging = memory.copy_to(Path(scratch) / "memory")
        before = staging.entries()
        result = run_python(_CALL, workdir=staging.root, inputs=inputs, preamble=tool_preamble(),
                            limits=limits or sandbox_limits(memory.limits), mode=mode)
        run = _interpret(result)
        if run.kind in (None, "exception"):
            try:
                run.changed = _commit(staging, before, memory)
            except (MemoryAccessError, OSError) as refused:  # a refused or failed change set changes nothing
                run.error, run.kind = f"{refused}; no change was saved", "rejected"
    run.seconds = time.perf_counter() - started
    return run


def _interpret(result: SandboxResult) -> ToolRun:
    """The harness's {"locals", "error"} from a sandbox result, or the sandbox's own error."""
    if not result.ok:
        message = (result.error or "the code failed").splitlines()[0]
        where = f" (stopped by the sandbox: {result.error_kind}, {result.layer} layer)" if result.layer else ""
        return ToolRun({}, f"{message}{where}", kind=result.error_kind, layer=result.layer)
    value = result.value
    if not (isinstance(value, dict) and isinstance(value.get("locals"), dict)
            and isinstance(value.get("error"), (str, type(None)))):
        return ToolRun({}, "the code replaced the tool harness's result", kind="exception")
    return ToolRun(value["locals"], value["error"], kind=None if value["error"] is None else "exception")


def _commit(staging: Memory, before: tuple[dict[str, bytes], set[str], set[str]], memory: Memory) -> list[str]:
    """Write what changed in `staging` into `memory`: every check first, then the change set as a whole."""
    files, dirs, links = staging.entries()
    hidden = sorted(name for _, subdirs, names in os.walk(staging.root) for name in subdirs + names
                    if not is_visible_name(name))
    if hidden:
        raise MemoryAccessError(f"the code created hidden entries {hidden[:3]}, which the memory refuses")
    if links - before[2]:
        raise MemoryAccessError(f"the code created symbolic links {sorted(links - before[2])[:3]}")
    problems = staging.limit_problems()
    if problems:
        raise MemoryAccessError(f"the memory would hold {problems[0]}")
    written = {path: data for path, data in files.items() if before[0].get(path) != data}
    deleted = sorted(set(before[0]) - set(files))
    memory.apply(written, deleted, dirs - before[1], before[1] - dirs)
    return sorted(set(written) | set(deleted))
