"""Model-written `transform(input_grid)` programs: pulled out of a reply and run in the sandbox.

One `reasonlab.sandbox.run_python` call per attempt (mode "auto", which refuses to run without its kernel
layers): a trusted driver, passed as the sandbox preamble, runs the code and then `transform` on every
train input and every test INPUT with its own time limit (SIGALRM), and returns the outputs as nested lists.
Test outputs never enter the sandbox. Every failure (parse error, exception, timeout, bad output, a run the
sandbox stopped) is an error of the `Attempt`, keyed by the input it hit; nothing here raises on bad code.

    attempt = run_transform(extract_code(reply), task)
    attempt.errors  # {"test input 1": "timed out after 2.0 s"}
"""

from __future__ import annotations

import ast
import math
import re
from typing import Any

import numpy as np

from reasonlab.errors import UserError
from reasonlab.sandbox import SandboxLimits, SandboxResult, run_python
from reasonlab.systems.arcmemo.tasks import ArcTask, Attempt, grid_problem, grid_text

__all__ = ["DRIVER", "RUN_SLACK_S", "extract_code", "grid_text", "run_transform", "transform_limits"]

# seconds of the whole run beyond the per-input limits: sandbox start, numpy import, the result's trip back
RUN_SLACK_S = 5.0
MAX_CODE_CHARS = 100_000
MAX_ERROR_CHARS = 300  # the driver cuts its messages at the same length
MEMORY_MB = 1024

# The trusted driver, run as the preamble before the audit hook exists; the model's code runs only inside
# `_arcmemo_drive`, in its own namespace with numpy as `np`, its prints discarded.
DRIVER = '''
import signal as _signal
import sys as _sys
import traceback as _traceback

import numpy as np

_MAX_ERROR_CHARS = 300


class _TimeLimit(BaseException):
    """Raised by SIGALRM; a BaseException, so that `except Exception` in the code does not swallow it."""


class _Sink:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _on_alarm(signum, frame):
    raise _TimeLimit()


def _timed(function, argument, seconds):
    _signal.signal(_signal.SIGALRM, _on_alarm)
    _signal.setitimer(_signal.ITIMER_REAL, seconds)
    try:
        return function(argument)
    finally:
        _signal.setitimer(_signal.ITIMER_REAL, 0)


def _describe(error):
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<solution>":
            line = trace.tb_lineno
        trace = trace.tb_next
    text = "".join(_traceback.format_exception_only(type(error), error)).strip()
    return text[:_MAX_ERROR_CHARS] + ("" if line is None else f" (line {line})")


def _safe_describe(error, seconds):
    try:
        return _timed(_describe, error, seconds)
    except BaseException:
        return type(error).__name__


def _as_lists(value):
    array = np.asarray(value)
    if array.ndim != 2:
        return {"error": f"output has {array.ndim} dimensions (shape {array.shape}); return a 2-D grid"}
    if array.shape[0] > 30 or array.shape[1] > 30:
        return {"error": f"output is {array.shape[0]} x {array.shape[1]}, larger than 30 x 30"}
    if array.dtype.kind not in "iu":
        return {"error": f"output has dtype {array.dtype}; return integer colors 0-9"}
    return {"grid": array.tolist()}


def _guarded(function, argument, seconds):
    try:
        return _timed(function, argument, seconds)
    except _TimeLimit:
        return {"error": f"timed out after {seconds} s"}
    except BaseException as error:
        if type(error).__name__ == "CpuLimitExceeded":
            raise
        return {"error": _safe_describe(error, seconds)}


def _drive(source, seconds, grids):
    module = {"__name__": "solution", "np": np, "numpy": np}
    defined = _guarded(lambda _: exec(compile(source, "<solution>", "exec"), module), None, seconds)
    if defined is not None:
        return {"setup": "defining the code: " + defined["error"]}
    transform = module.get("transform")
    if not callable(transform):
        return {"setup": "the code defines no function named transform"}
    return {"outputs": [_guarded(lambda g: _as_lists(transform(g)), grid, seconds) for grid in grids]}


def _arcmemo_drive(source, seconds):
    grids = [np.array(grid, dtype=np.int64) for grid in inputs["grids"]]
    saved = _sys.stdout, _sys.stderr
    _sys.stdout = _sys.stderr = _Sink()
    try:
        return _drive(source, seconds, grids)
    finally:
        _sys.stdout, _sys.stderr = saved
'''

_FENCE = re.compile(r"^\s*```")
_TRANSFORM_DEF = re.compile(r"^def transform\s*\(", re.MULTILINE)
# a line at column 0 that continues a program (not prose): a statement keyword, a decorator, a comment, an
# assignment or a call
_CODE_LINE = re.compile(
    r"^(def |class |import |from |if |for |while |try:|with |return|@|#|[A-Za-z_][\w.]*\s*[=(\[])")


def extract_code(text: str) -> str:
    """The program in a model reply: the last fenced block defining `transform` (an unclosed fence runs to
    the end), else a bare `def transform` with the code around it, else the last fenced block, else ""."""
    segments = _fence_segments(text)
    fenced = [body for inside, body in segments if inside]
    with_transform = [body for body in fenced if _TRANSFORM_DEF.search(body)]
    if with_transform:
        return with_transform[-1].strip("\n")
    bare = [body for inside, body in segments if not inside and _TRANSFORM_DEF.search(body)]
    if bare:
        return _code_around_transform(bare[-1])
    return fenced[-1].strip("\n") if fenced else ""


def _fence_segments(text: str) -> list[tuple[bool, str]]:
    segments: list[tuple[bool, str]] = []
    inside, lines = False, []
    for line in text.splitlines():
        if _FENCE.match(line):
            segments.append((inside, "\n".join(lines)))
            inside, lines = not inside, []
        else:
            lines.append(line)
    segments.append((inside, "\n".join(lines)))
    # a reply that continues a prompt ending in an open fence starts inside it and closes it first
    if len(segments) == 2:
        (_, before), (_, after) = segments
        if _TRANSFORM_DEF.search(before) and not _TRANSFORM_DEF.search(after):
            return [(True, before), (False, after)]
    return segments


def _code_around_transform(text: str) -> str:
    """From the first code-like line before `def transform` to the last line before trailing prose."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if _TRANSFORM_DEF.match(line))
    while start > 0 and (_CODE_LINE.match(lines[start - 1]) or lines[start - 1][:1] in (" ", "\t", "")):
        start -= 1
    end = start + 1
    while end < len(lines) and (_CODE_LINE.match(lines[end]) or lines[end][:1] in (" ", "\t", "")):
        end += 1
    return "\n".join(lines[start:end]).strip("\n")


def transform_limits(n_inputs: int, timeout_s: float) -> SandboxLimits:
    """The whole run's limits: each input's time (and the code's definition) plus `RUN_SLACK_S`."""
    wall = timeout_s * (n_inputs + 1) + RUN_SLACK_S
    return SandboxLimits(wall_seconds=wall, cpu_seconds=math.ceil(wall), memory_mb=MEMORY_MB)


def run_transform(code: str, task: ArcTask, timeout_s: float = 2.0) -> Attempt:
    """Run `code`'s `transform` on every train input and test input of `task` in one sandbox run; raises only
    the sandbox's UserError where its mode "auto" refuses to run on this machine."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 60:
        raise UserError(f"timeout_s={timeout_s!r} must be a number of seconds in (0, 60]; ArcMemo uses 2.0")
    places = [f"train input {i}" for i in range(1, len(task.train) + 1)]
    places += [f"test input {i}" for i in range(1, len(task.test) + 1)]
    problem = _code_problem(code)
    if problem is not None:
        return _attempt(code, task, [{"error": problem}] * len(places), places, 0.0)
    grids = [inp.tolist() for inp, _ in [*task.train, *task.test]]
    result = run_python(f"result = _arcmemo_drive({code!r}, {float(timeout_s)!r})", inputs={"grids": grids},
                        preamble=DRIVER, limits=transform_limits(len(grids), float(timeout_s)))
    return _attempt(code, task, _entries(result, len(places)), places, result.seconds)


def _code_problem(code: str) -> str | None:
    if not code.strip():
        return "no code: the reply has no python block defining transform"
    if len(code) > MAX_CODE_CHARS:
        return f"the code is {len(code)} characters, more than {MAX_CODE_CHARS}"
    try:
        ast.parse(code)
    except SyntaxError as error:
        return f"parse error: SyntaxError: {error.msg} (line {error.lineno})"
    except (ValueError, RecursionError, MemoryError) as error:
        return f"parse error: {type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
    return None


def _entries(result: SandboxResult, count: int) -> list[dict[str, Any]]:
    """One {"grid": ...} or {"error": ...} per input from the sandbox's answer, whatever it holds."""
    if not result.ok:
        layer = f" by the {result.layer} layer" if result.layer else ""
        message = f"the sandbox stopped the run ({result.error_kind}{layer}): {result.error}"
        return [{"error": message[:MAX_ERROR_CHARS]}] * count
    value = result.value
    if isinstance(value, dict) and isinstance(value.get("setup"), str):
        return [{"error": value["setup"][:MAX_ERROR_CHARS]}] * count
    outputs = value.get("outputs") if isinstance(value, dict) else None
    if not isinstance(outputs, list) or len(outputs) != count:
        return [{"error": "the sandbox returned a malformed result"}] * count
    return [entry if isinstance(entry, dict) else {"error": "malformed output"} for entry in outputs]


def _output(entry: dict[str, Any]) -> tuple[np.ndarray | None, str | None]:
    if "grid" not in entry:
        error = entry.get("error")
        return None, error[:MAX_ERROR_CHARS] if isinstance(error, str) else "malformed output"
    problem = grid_problem(entry["grid"])
    if problem is not None:
        return None, f"bad output: the grid {problem}"
    grid = np.asarray(entry["grid"], dtype=np.int64)
    grid.setflags(write=False)
    return grid, None


def _attempt(code: str, task: ArcTask, entries: list[dict[str, Any]], places: list[str],
             seconds: float) -> Attempt:
    outputs: list[np.ndarray | None] = []
    errors: dict[str, str] = {}
    for place, entry in zip(places, entries, strict=True):
        grid, error = _output(entry)
        outputs.append(grid)
        if error is not None:
            errors[place] = error
    n_train = len(task.train)
    return Attempt(code, outputs[:n_train], outputs[n_train:], errors, seconds)
