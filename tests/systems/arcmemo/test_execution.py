"""Model-written transforms: code extraction, and one sandbox run per attempt where every failure is a value.

The sandbox runs in its default mode "auto"; where that mode refuses (no bubblewrap or unshare, no seccomp),
the tests that run code are skipped with the reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from reasonlab.errors import UserError
from reasonlab.sandbox.launch import choose_launcher, missing_layers
from reasonlab.systems.arcmemo import execution
from reasonlab.systems.arcmemo.execution import extract_code, run_transform
from reasonlab.systems.arcmemo.tasks import (
    ArcTask,
    official_score,
    strict_correct,
    task_from_arrays,
    train_correct,
)

AUTO_REFUSED = missing_layers(choose_launcher("auto", strict_raises=False))
needs_sandbox = pytest.mark.skipif(bool(AUTO_REFUSED), reason=f"sandbox mode auto refuses: {AUTO_REFUSED}")

FLIP = "def transform(input_grid):\n    return np.fliplr(input_grid)\n"


def flip_task() -> ArcTask:
    """Mirror left to right; every output holds color 7 and no input does."""
    return task_from_arrays("flip", [([[1, 2, 3]], [[3, 2, 7]]), ([[4, 5], [6, 8]], [[7, 4], [8, 6]])],
                            [([[9, 0, 1, 1]], [[1, 1, 7, 9]])])


def test_extract_code_takes_the_last_fenced_block_that_defines_transform() -> None:
    reply = ("Idea:\n```python\ndef helper(g):\n    return g\n```\nThen:\n```python\nimport numpy as np\n\n"
             "def transform(g):\n    return g.T\n```\nDone.\n```\nnot code\n```")
    assert extract_code(reply) == "import numpy as np\n\ndef transform(g):\n    return g.T"


def test_extract_code_reads_an_unclosed_fence_to_the_end() -> None:
    reply = "Plan.\n```python\ndef transform(g):\n    return g\n"
    assert extract_code(reply) == "def transform(g):\n    return g"


def test_extract_code_reads_a_reply_that_continues_the_prompts_open_fence() -> None:
    reply = "def transform(g):\n    return g[::-1]\n```\n\nThis flips the grid upside down."
    assert extract_code(reply) == "def transform(g):\n    return g[::-1]"


def test_extract_code_cuts_prose_around_a_bare_transform() -> None:
    reply = ("The rule is a flip.\nimport numpy as np\n\ndef transform(g):\n    out = g.copy()\n\n"
             "    return out[:, ::-1]\nThis works because columns reverse.")
    assert extract_code(reply) == "import numpy as np\n\ndef transform(g):\n    out = g.copy()\n\n" \
                                  "    return out[:, ::-1]"


def test_extract_code_without_code_is_empty_and_falls_back_to_the_last_fence() -> None:
    assert extract_code("I cannot solve this puzzle.") == ""
    assert extract_code("```python\nx = 1\n```\n```python\ny = 2\n```") == "y = 2"


@needs_sandbox
def test_a_correct_program_solves_the_task_and_no_output_enters_the_sandbox(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    real = execution.run_python

    def spy(code: str, **kwargs: Any) -> Any:
        sent.append({"code": code, **kwargs})
        return real(code, **kwargs)

    monkeypatch.setattr(execution, "run_python", spy)
    task = flip_task()
    attempt = run_transform(FLIP, task)
    assert attempt.errors == {}
    assert [g.tolist() for g in attempt.train_outputs] == [[[3, 2, 1]], [[5, 4], [8, 6]]]
    assert attempt.test_outputs[0].tolist() == [[1, 1, 0, 9]]
    assert train_correct(task, attempt) is False  # 7 appears in the expected outputs only
    [call] = sent
    assert call["inputs"] == {"grids": [[[1, 2, 3]], [[4, 5], [6, 8]], [[9, 0, 1, 1]]]}
    assert call.get("mode", "auto") == "auto"
    assert "7" not in json.dumps(call["inputs"]) and "7" not in call["code"].replace(FLIP, "")


@needs_sandbox
def test_every_kind_of_failure_is_an_error_of_its_own_input() -> None:
    # input[0][0] picks the failure; the test input is solved although every train input fails
    code = """
import sys
def transform(grid):
    kind = int(grid[0, 0])
    if kind == 1:
        return 1 // 0
    if kind == 2:
        return grid.astype(float)
    if kind == 3:
        return grid[None]
    if kind == 4:
        while True:
            pass
    if kind == 5:
        return grid + 9
    if kind == 6:
        return np.zeros((31, 1), dtype=int)
    if kind == 8:
        return [[1, 2], [3]]
    for _ in range(20000):
        print("noise " * 50)
        sys.stderr.write("more noise\\n")
    return grid[:, ::-1]
"""
    train = [([[k, 0]], [[0, k]]) for k in (1, 2, 3, 4, 5, 6, 8)]
    task = task_from_arrays("mixed", train, [([[9, 4]], [[4, 9]])])
    attempt = run_transform(code, task, timeout_s=0.5)
    errors = attempt.errors
    assert set(errors) == {f"train input {i}" for i in range(1, 8)}
    assert errors["train input 1"] == "ZeroDivisionError: integer division or modulo by zero (line 6)"
    assert errors["train input 2"] == "output has dtype float64; return integer colors 0-9"
    assert errors["train input 3"] == "output has 3 dimensions (shape (1, 1, 2)); return a 2-D grid"
    assert errors["train input 4"] == "timed out after 0.5 s"
    assert errors["train input 5"] == "bad output: the grid has cell (0, 0) = 14, outside colors 0-9"
    assert errors["train input 6"] == "output is 31 x 1, larger than 30 x 30"
    assert errors["train input 7"].startswith("ValueError: setting an array element with a sequence")
    assert attempt.train_outputs == [None] * 7 and attempt.test_outputs[0].tolist() == [[4, 9]]
    assert official_score(task, [attempt]) == 1.0 and not strict_correct(task, attempt)


ESCAPES = {
    "file": ("return open('/etc/passwd').read()", "open is not allowed"),
    "socket": ("import socket\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
               "    s.connect(('127.0.0.1', 22))\n    return grid", "socket.__new__ is not allowed"),
    "subprocess": ("import subprocess\n    subprocess.run(['id'])\n    return grid",
                   "subprocess.Popen is not allowed"),
    "fork": ("import os\n    os.fork()\n    return grid", "os.fork is not allowed"),
}


@needs_sandbox
@pytest.mark.parametrize("name", list(ESCAPES))
def test_an_escape_attempt_is_stopped_and_reported_on_every_input(name: str) -> None:
    body, message = ESCAPES[name]
    # the escape is tried on the test input only, after the train input ran fine
    code = f"def transform(grid):\n    if grid.shape[1] == 2:\n        return grid[:, ::-1]\n    {body}\n"
    task = task_from_arrays("escape", [([[1, 2]], [[2, 1]])], [([[1, 2, 3]], [[3, 2, 1]])])
    attempt = run_transform(code, task, timeout_s=1.0)
    assert attempt.train_outputs == [None] and attempt.test_outputs == [None]
    assert set(attempt.errors) == {"train input 1", "test input 1"}
    for error in attempt.errors.values():
        assert error.startswith("the sandbox stopped the run (forbidden by the audit layer)")
        assert message in error


@needs_sandbox
def test_code_hunting_for_the_expected_outputs_finds_nothing() -> None:
    # outputs hold color 7, inputs never do: any grid with a 7 reachable in the sandbox would be a leak, and
    # so would the text of an expected output (the needles are built at run time: this source lacks them)
    code = """
import os, sys

SEVEN = 3 + 4
NEEDLES = [f"{SEVEN}, 4]", f"{SEVEN},4]"]
for a, b in ((3, 2), (1, 1)):
    NEEDLES += [f"{a}, {b}, {SEVEN}", f"{a},{b},{SEVEN}"]

def holds_seven(value, depth=0):
    if depth > 6 or value is globals() or value is NEEDLES:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(row, list) for row in value) and any(SEVEN in row for row in value):
            return value
        for item in value:
            found = holds_seven(item, depth + 1)
            if found is not None:
                return found
    if isinstance(value, str) and any(needle in value for needle in NEEDLES):
        return [[SEVEN]]
    return None

def transform(grid):
    # every frame above this one (this frame and this module hold the needles themselves)
    frame, places = sys._getframe().f_back, []
    while frame is not None:
        places += [frame.f_locals, frame.f_globals]
        frame = frame.f_back
    places.append(dict(os.environ))
    for folder in (".", "/tmp"):
        for top, _, names in os.walk(folder):
            places += [open(os.path.join(top, name)).read() for name in names]
    for place in places:
        found = holds_seven(place)
        if found is not None:
            return found
    return np.zeros((1, 1), dtype=int)
"""
    task = flip_task()
    attempt = run_transform(code, task)
    assert attempt.errors == {}
    assert [g.tolist() for g in attempt.train_outputs + attempt.test_outputs] == [[[0]]] * 3
    assert official_score(task, [attempt]) == 0.0


@needs_sandbox
def test_code_that_disarms_the_per_input_timer_is_stopped_by_the_run_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execution, "RUN_SLACK_S", 0.5)
    code = ("import signal\ndef transform(grid):\n    signal.setitimer(signal.ITIMER_REAL, 0)\n"
            "    while True:\n        pass\n")
    attempt = run_transform(code, flip_task(), timeout_s=0.3)
    assert set(attempt.errors) == {"train input 1", "train input 2", "test input 1"}
    assert all("(timeout by the timeout layer)" in error for error in attempt.errors.values())
    assert 1.0 < attempt.seconds < 10


@pytest.mark.parametrize(("code", "message"), [
    ("", "no code: the reply has no python block defining transform"),
    ("def transform(grid)\n    return grid", "parse error: SyntaxError: expected ':' (line 1)"),
])
def test_unparsable_code_fails_every_input_without_a_sandbox_run(monkeypatch: pytest.MonkeyPatch, code: str,
                                                                 message: str) -> None:
    monkeypatch.setattr(execution, "run_python", lambda *a, **k: pytest.fail("the sandbox was started"))
    attempt = run_transform(code, flip_task())
    assert attempt.errors == {"train input 1": message, "train input 2": message, "test input 1": message}
    assert attempt.grouped_errors() == [("train inputs 1, 2; test input 1", message)]


@needs_sandbox
def test_code_without_transform_or_failing_at_definition_fails_every_input() -> None:
    task = task_from_arrays("one", [([[1]], [[1]])], [([[2]], [[2]])])
    missing = run_transform("def solve(grid):\n    return grid\n", task)
    assert set(missing.errors.values()) == {"the code defines no function named transform"}
    assert len(missing.errors) == 2


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), 61, True])
def test_a_bad_timeout_is_a_user_error(timeout: float) -> None:
    with pytest.raises(UserError, match=r"timeout_s=.* must be a number of seconds"):
        run_transform(FLIP, flip_task(), timeout_s=timeout)
