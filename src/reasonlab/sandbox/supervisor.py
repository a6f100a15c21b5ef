"""The timeout and supervisor layers: start the runner, feed it the job, cap what comes back, read the result.

The parent writes the job as JSON to the child's stdin and reads stdout, stderr and a result pipe until
they close, a cap is passed or the wall clock runs out; then it kills the process group. The result is
JSON lines (a header, then the workdir manifest), parsed as data, never unpickled; a run without a
result is named from how the process ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Literal, get_args

from reasonlab.sandbox.launch import Launcher, child_env, launch_argv, runner_command, user_kwargs
from reasonlab.sandbox.limits import ErrorKind, Layer, SandboxLimits, SandboxResult
from reasonlab.sandbox.workdir import RejectedChanges, Snapshot, apply_changes

# error kinds after which the workdir is copied back: none, or an ordinary Python exception
COMMIT_KINDS = (None, "exception")
# room in the header line beside the value for the other fields (the runner cuts the error text to 4000)
_HEADER_SLACK = 65536
# a workdir entry as the runner writes it: up to four known keys with a JSON string or null each; a JSON
# string is matched as "normal* (escape normal*)*", which never starts two ways at one byte, so in linear time
_PLAIN = rb'[^"\\\x00-\x1f]*'
_JSON_TEXT = rb'(?:"' + _PLAIN + rb'(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})' + _PLAIN + rb')*"|null)'
_ENTRY_FIELD = rb'"(?:type|path|sha256|data)": ' + _JSON_TEXT
_ENTRY_LINE = re.compile(rb"\{" + _ENTRY_FIELD + rb"(?:, " + _ENTRY_FIELD + rb"){0,3}\}")


@dataclasses.dataclass
class Exchange:
    """What came back from the child: its streams, its result lines and how it ended."""

    stdout: bytes
    stderr: bytes
    result: bytes
    stopped: Literal["timeout", "output"] | None
    returncode: int
    seconds: float


def execute(job: dict[str, Any], launcher: Launcher, limits: SandboxLimits, seccomp: bytes | None,
             private: Path) -> Exchange:
    """Start the child, feed it the job, collect its streams under the caps, and reap it."""
    result_read, result_write = os.pipe()
    runner = runner_command(launcher, result_write)
    argv, fds = launch_argv(launcher, limits, seccomp, runner, private)
    start = time.monotonic()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   pass_fds=[result_write, *fds], env=child_env(job["workdir"], job["tmpdir"], launcher),
                                   cwd=None if launcher.namespace else job["workdir"], start_new_session=True,
                                   **user_kwargs(launcher))
    finally:
        os.close(result_write)
        for fd in fds:
            os.close(fd)
    payload = json.dumps(job).encode()
    result_cap = limits.max_output_bytes + (limits.tmpfs_mb << 20) * 4 // 3 + limits.max_files * 512 + 65536
    streams, stopped, returncode = _pump(process, payload, result_read, start + limits.wall_seconds,
                                         (limits.max_output_bytes, limits.max_output_bytes, result_cap))
    return Exchange(*streams, stopped=stopped, returncode=returncode, seconds=time.monotonic() - start)


def _pump(process: subprocess.Popen, payload: bytes, result_fd: int, deadline: float,
          caps: tuple[int, int, int]) -> tuple[tuple[bytes, bytes, bytes], Literal["timeout", "output"] | None, int]:
    """Write the job and read stdout, stderr and the result pipe until they close, a cap or the deadline."""
    assert process.stdin and process.stdout and process.stderr
    selector = selectors.DefaultSelector()
    buffers = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray(), result_fd: bytearray()}
    limit = dict(zip(buffers, caps, strict=True))
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    stdin = process.stdin.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_WRITE)
    sent, stopped, status = 0, None, None
    while stopped is None and any(fd in selector.get_map() for fd in buffers):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stopped = "timeout"
            break
        events = selector.select(min(remaining, 0.25))
        for key, _ in events:
            if key.fd == stdin:
                try:
                    sent += os.write(stdin, payload[sent:sent + 65536])
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    sent = len(payload)
                if sent >= len(payload):
                    selector.unregister(stdin)
                    process.stdin.close()
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fd)
                continue
            buffers[key.fd] += chunk
            if len(buffers[key.fd]) > limit[key.fd]:
                stopped = "output"
        if not events and status is None:
            # a grandchild that escaped the filters may hold the pipes open after the runner exited
            status = _reap(process, block=False)
            if status is not None:
                break
    _kill_group(process)
    if status is None:
        status = _reap(process, block=True)
    _kill_group(process)
    selector.close()
    for stream in (process.stdin, process.stdout, process.stderr):
        if not stream.closed:
            stream.close()
    os.close(result_fd)
    stdout, stderr, result = (bytes(b) for b in buffers.values())
    return (stdout, stderr, result), stopped, status


def _reap(process: subprocess.Popen, block: bool) -> int | None:
    pid, status = os.waitpid(process.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def interpret(exchange: Exchange, limits: SandboxLimits, snapshot: Snapshot) -> SandboxResult:
    stdout = exchange.stdout.decode("utf-8", errors="replace")
    stderr = exchange.stderr.decode("utf-8", errors="replace")
    common = {"stdout": stdout, "stderr": stderr, "seconds": exchange.seconds}
    if exchange.stopped == "timeout":
        return SandboxResult(False, error=f"wall-clock limit of {limits.wall_seconds} s reached",
                             error_kind="timeout", layer="timeout", **common)
    if exchange.stopped == "output":
        return SandboxResult(False, error=f"output passed max_output_bytes={limits.max_output_bytes}",
                             error_kind="output", layer="supervisor", **common)
    header, lines, problem = _parse_lines(exchange.result, limits)
    if header is None:
        if exchange.returncode != 0 or not exchange.result:
            return _died(exchange.returncode, limits, common)
        return SandboxResult(False, error=f"the sandboxed process sent back an unreadable result: {problem}",
                             error_kind="result", layer="supervisor", **common)
    kind, layer = _known(header.get("kind"), get_args(ErrorKind)), _known(header.get("layer"), get_args(Layer))
    kind = kind if kind is not None or header.get("ok") is True else "crash"
    error = header.get("error")
    # the text is the child's: keep it printable wherever the caller sends it (no lone surrogates)
    error = error.encode("utf-8", "replace").decode("utf-8") if isinstance(error, str) and error.strip() else None
    ok = header.get("ok") is True and kind is None
    if not ok and error is None:  # none, or an empty one: a failure always says something
        error = f"the sandboxed process reported a failure ({kind}) without a message"
    changed: tuple[str, ...] = ()
    if snapshot.root is not None and header.get("files") is True and kind in COMMIT_KINDS:
        try:
            changed = apply_changes(snapshot, lines, limits)
        except (RejectedChanges, ValueError, TypeError) as rejected:
            return SandboxResult(False, error=f"nothing was copied back: {rejected}", error_kind="filesize",
                                 layer="supervisor", **common)
        except OSError as failed:
            # the checks passed but the host refused a write (disk full, permissions): earlier files may be in
            return SandboxResult(False, error=f"copying back into {snapshot.root} failed: {failed}",
                                 error_kind="filesize", layer="supervisor", **common)
    return SandboxResult(ok, header.get("value") if ok else None, error=error, error_kind=kind,
                         layer=layer, changed_files=changed, **common)


def _known(value: Any, names: tuple[str, ...]) -> Any:
    """`value` when it is one of `names` (a str from the child's header), else None."""
    return value if isinstance(value, str) and value in names else None


def _parse_lines(data: bytes, limits: SandboxLimits) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str]:
    """The child's JSON lines: a header, then one line per workdir entry; anything else is no result and why.

    The bytes are the child's and already capped by the pump. Invalid UTF-8, nesting deeper than the recursion
    limit or a line that is not an object mean no result, never an exception. Memory stays within a small
    multiple of the caps: at most max_files + 1 lines, a header no longer than max_output_bytes (plus room for
    the error text), and entry lines that are flat objects of strings (checked before they are parsed).
    """
    if data.count(b"\n") > limits.max_files + 2:
        return None, [], f"more than max_files={limits.max_files} lines"
    first, _, rest = data.partition(b"\n")
    if len(first) > limits.max_output_bytes + _HEADER_SLACK:
        return None, [], "the header line is longer than max_output_bytes"
    entries = [line for line in rest.split(b"\n") if line]
    # only a path holds escapes (at most two per character of its 4096), so the match below stays short
    if not all(line.count(b"\\") <= 2 * 4096 and _ENTRY_LINE.fullmatch(line) for line in entries):
        return None, [], "a workdir entry is not a flat object of strings"
    try:
        records = [json.loads(line) for line in [first, *entries]]
    except (ValueError, RecursionError, MemoryError) as error:
        return None, [], f"not JSON ({type(error).__name__})"
    if not isinstance(records[0], dict):
        return None, [], "the header is not a JSON object"
    return records[0], records[1:], ""


def _died(returncode: int, limits: SandboxLimits, common: dict[str, Any]) -> SandboxResult:
    """No result came back: name the limit from how the process ended (bwrap reports a signal as 128+N)."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and common["seconds"] >= limits.cpu_seconds):
        return SandboxResult(False, error=f"CPU limit of {limits.cpu_seconds} s reached", error_kind="cpu",
                             layer="rlimit", **common)
    if signum == signal.SIGXFSZ:
        return SandboxResult(False, error=f"a file passed file_mb={limits.file_mb}", error_kind="filesize",
                             layer="rlimit", **common)
    try:
        how = f"signal {signal.Signals(signum).name}" if signum is not None else f"status {returncode}"
    except ValueError:
        how = f"signal {signum}"
    return SandboxResult(False, error=f"the sandboxed process ended with {how} before returning a result",
                         error_kind="crash", **common)
