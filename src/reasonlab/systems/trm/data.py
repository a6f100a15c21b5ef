"""Grid datasets for TRM: Sudoku, Maze and ARC as token tensors, on-the-fly augmentation, sharded batches.

A `TaskData` holds the raw training examples (augmented each time they are drawn), and the validation and
test splits as fixed tensors. `BatchStream` walks one global permutation per epoch; under torch.distributed
rank r takes every world-th index of each global batch (DistributedSampler-style), so one process with
batch B and W processes with B/W each see the same samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonlab.errors import UserError
from reasonlab.systems.trm.losses import IGNORE
from reasonlab.tasks import arc as arc_task
from reasonlab.tasks import maze as maze_task
from reasonlab.tasks import sudoku as sudoku_task

__all__ = ["BatchStream", "DataSpec", "GridData", "TaskData", "build_task_data", "load_csv_split"]


@dataclass
class GridData:
    inputs: torch.Tensor  # (N, L) long tokens
    labels: torch.Tensor  # (N, L) long tokens, IGNORE at PAD
    puzzle_ids: torch.Tensor  # (N,) long

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class DataSpec:
    """What a dataset is made of; fields mirror the `data` options of the train config."""

    task: str = "sudoku"
    data_path: str | None = None
    test_path: str | None = None
    size: int = 9  # sudoku side (4, 6, 9) or maze cells per side (grid side 2*size+1)
    givens: int = 28
    min_path: int = 0
    train_size: int = 1000
    val_size: int = 200
    test_size: int = 1000
    augment: bool = True
    arc_version: str = "arcagi"
    arc_tasks: int | None = None
    arc_augmentations: int = 1000
    seed: int = 0


@dataclass
class TaskData:
    task: str
    signature: str  # e.g. "sudoku-9x9": checkpoints refuse data of another signature
    vocab_size: int
    seq_len: int
    num_puzzle_ids: int
    train_examples: list[Any]
    encode_train: Callable[[Any, np.random.Generator], tuple[np.ndarray, np.ndarray, int]]
    val: GridData
    test: GridData
    arc: arc_task.ArcPuzzleSet | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def train_batch(self, indices: np.ndarray, rng: np.random.Generator) -> GridData:
        rows = [self.encode_train(self.train_examples[int(i)], rng) for i in indices]
        return GridData(
            torch.from_numpy(np.stack([r[0] for r in rows])),
            torch.from_numpy(np.stack([r[1] for r in rows])),
            torch.tensor([r[2] for r in rows], dtype=torch.long),
        )


def _stack(rows: list[tuple[np.ndarray, np.ndarray, int]]) -> GridData:
    if not rows:
        return GridData(torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    return GridData(
        torch.from_numpy(np.stack([r[0] for r in rows])),
        torch.from_numpy(np.stack([r[1] for r in rows])),
        torch.tensor([r[2] for r in rows], dtype=torch.long),
    )


def _split(items: list, sizes: tuple[int, ...], where: str) -> list[list]:
    if sum(sizes) > len(items):
        raise UserError(f"{where} holds {len(items)} examples, fewer than the {sum(sizes)} requested: lower the sizes")
    out, start = [], 0
    for size in sizes:
        out.append(items[start : start + size])
        start += size
    return out


def _sudoku(spec: DataSpec) -> TaskData:
    def encode(p: sudoku_task.SudokuPuzzle) -> tuple[np.ndarray, np.ndarray, int]:
        return sudoku_task.encode(p.question), sudoku_task.encode(p.solution), 0

    def encode_train(p: sudoku_task.SudokuPuzzle, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        if spec.augment:
            q, s = sudoku_task.augment(p.question, p.solution, rng)
            return sudoku_task.encode(q), sudoku_task.encode(s), 0
        return encode(p)

    if spec.data_path:
        puzzles = sudoku_task.load_sudoku_csv(spec.data_path)
        rng = np.random.default_rng(spec.seed)
        puzzles = [puzzles[i] for i in rng.permutation(len(puzzles))]
        if spec.test_path:
            train, val = _split(puzzles, (spec.train_size, spec.val_size), spec.data_path)
            test = sudoku_task.load_sudoku_csv(spec.test_path, limit=spec.test_size)
        else:
            train, val, test = _split(puzzles, (spec.train_size, spec.val_size, spec.test_size), spec.data_path)
    else:
        sudoku_task.box_shape(spec.size)
        total = spec.train_size + spec.val_size + spec.test_size
        puzzles = sudoku_task.generate_dataset(spec.size, spec.givens, total, spec.seed)
        train, val, test = _split(puzzles, (spec.train_size, spec.val_size, spec.test_size), "generator")
    size = train[0].question.shape[0]
    if any(p.question.shape[0] != size for p in [*val, *test]):
        raise UserError(f"sudoku data mixes grid sizes (train is {size}x{size}): use one size per run")
    return TaskData(
        "sudoku", f"sudoku-{size}x{size}", size + 2, size * size, 1, train, encode_train,
        _stack([encode(p) for p in val]), _stack([encode(p) for p in test]), meta={"size": size},
    )


def _maze(spec: DataSpec) -> TaskData:
    def encode(m: maze_task.Maze) -> tuple[np.ndarray, np.ndarray, int]:
        return maze_task.encode(m.question), maze_task.encode(m.solution), 0

    def encode_train(m: maze_task.Maze, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        if spec.augment:
            k = int(rng.integers(8))
            return maze_task.encode(maze_task.dihedral(m.question, k)), maze_task.encode(maze_task.dihedral(m.solution, k)), 0
        return encode(m)

    if spec.data_path:
        mazes = maze_task.load_maze_csv(spec.data_path)
        if spec.test_path:
            train, val = _split(mazes, (spec.train_size, spec.val_size), spec.data_path)
            test = maze_task.load_maze_csv(spec.test_path, limit=spec.test_size)
        else:
            train, val, test = _split(mazes, (spec.train_size, spec.val_size, spec.test_size), spec.data_path)
    else:
        total = spec.train_size + spec.val_size + spec.test_size
        mazes = maze_task.generate_dataset(spec.size, spec.min_path, total, spec.seed)
        train, val, test = _split(mazes, (spec.train_size, spec.val_size, spec.test_size), "generator")
    side = train[0].question.shape[0]
    if any(m.question.shape[0] != side for m in [*val, *test]):
        raise UserError(f"maze data mixes grid sizes (train is {side}x{side}): use one size per run")
    return TaskData(
        "maze", f"maze-{side}x{side}", len(maze_task.CHARSET) + 1, side * side, 1, train, encode_train,
        _stack([encode(m) for m in val]), _stack([encode(m) for m in test]), meta={"size": side},
    )


def _arc_rows(example: arc_task.ArcExample, offset: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    labels = arc_task.encode_grid(example.output, offset)
    labels = np.where(labels == arc_task.PAD, IGNORE, labels)
    return arc_task.encode_grid(example.input, offset), labels, example.puzzle_id


def _arc(spec: DataSpec) -> TaskData:
    train_tasks, eval_tasks = arc_task.load_arc(spec.arc_version)
    if spec.arc_tasks is not None:
        train_tasks, eval_tasks = train_tasks[: spec.arc_tasks], eval_tasks[: spec.arc_tasks]
    puzzles = arc_task.build_puzzles(train_tasks, eval_tasks, spec.arc_augmentations, spec.seed)

    def encode_train(example: arc_task.ArcExample, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        offset = (0, 0)
        if spec.augment:
            h = max(example.input.shape[0], example.output.shape[0])
            w = max(example.input.shape[1], example.output.shape[1])
            offset = (int(rng.integers(arc_task.GRID - h + 1)), int(rng.integers(arc_task.GRID - w + 1)))
        return _arc_rows(example, offset)

    # validation: the demonstrations of held-out variants are seen in training, so hold out test pairs only
    rows = [_arc_rows(e, (0, 0)) for e in puzzles.test]
    rng = np.random.default_rng(spec.seed)
    val_idx = rng.permutation(len(rows))[: min(spec.val_size, len(rows))]
    return TaskData(
        "arc", f"arc-{spec.arc_version}", 12, arc_task.GRID * arc_task.GRID, len(puzzles.identifiers),
        puzzles.train, encode_train, _stack([rows[i] for i in val_idx]), _stack(rows), arc=puzzles,
        meta={"version": spec.arc_version},
    )


def build_task_data(spec: DataSpec) -> TaskData:
    """Load or generate the task named by `spec.task`."""
    if spec.data_path and not Path(spec.data_path).is_file():
        raise UserError(f"data file {spec.data_path} does not exist: pass an existing CSV with --data-path")
    if spec.task == "sudoku":
        return _sudoku(spec)
    if spec.task == "maze":
        return _maze(spec)
    if spec.task == "arc":
        return _arc(spec)
    raise UserError(f"unknown task {spec.task!r}: use sudoku, maze or arc")


def load_csv_split(task: str, path: str, limit: int | None = None) -> tuple[str, GridData]:
    """A Sudoku-Extreme / Maze-Hard style CSV as an evaluation split, with its task signature ("sudoku-9x9")."""
    if task == "sudoku":
        puzzles = sudoku_task.load_sudoku_csv(path, limit)
        rows = [(sudoku_task.encode(p.question), sudoku_task.encode(p.solution), 0) for p in puzzles]
        side = puzzles[0].question.shape[0]
    elif task == "maze":
        mazes = maze_task.load_maze_csv(path, limit)
        rows = [(maze_task.encode(m.question), maze_task.encode(m.solution), 0) for m in mazes]
        side = mazes[0].question.shape[0]
    else:
        raise UserError(f"--data is supported for sudoku and maze checkpoints, not {task}: omit it to use ARC's test split")
    if len({r[0].shape for r in rows}) != 1:
        raise UserError(f"{path} mixes grid sizes: use one size per file")
    return f"{task}-{side}x{side}", _stack(rows)


class BatchStream:
    """Endless shuffled batches; rank r of world W takes indices r, r+W, ... of each global batch."""

    def __init__(self, n: int, global_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise UserError(f"batch size {global_batch} is not divisible by the {world} processes: change --batch-size")
        self.n, self.global_batch, self.seed, self.rank, self.world = n, global_batch, seed, rank, world
        self.epoch, self.position = 0, 0

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng((self.seed, epoch)).permutation(self.n)

    def next(self) -> np.ndarray:
        chunk: list[np.ndarray] = []
        need = self.global_batch
        while need:
            order = self._order(self.epoch)[self.position :]
            take = order[:need]
            chunk.append(take)
            need -= len(take)
            self.position += len(take)
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
        return np.concatenate(chunk)[self.rank :: self.world]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
