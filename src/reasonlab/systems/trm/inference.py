"""Use a trained checkpoint: evaluate it on its task (or a user's CSV), or solve one puzzle.

`solve` runs supervision steps until the halting head says stop (q_halt > 0) or N_sup is reached, and
reports how many steps it used; evaluation (as the official code) never halts early. Reading a puzzle and
rendering an answer is the task's job (`reasonlab.tasks.sudoku`, `maze`, `arc`); this module runs the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonlab.errors import UserError
from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.data import GridData, build_task_data, load_csv_split
from reasonlab.systems.trm.evaluation import arc_pass_at_k, evaluate
from reasonlab.systems.trm.model import RecursiveReasoner, StepOutput
from reasonlab.systems.trm.training import load_checkpoint, load_model
from reasonlab.tasks import arc as arc_task
from reasonlab.tasks import maze as maze_task
from reasonlab.tasks import sudoku as sudoku_task

__all__ = ["SolveResult", "eval_checkpoint", "solve_puzzle"]


def eval_checkpoint(
    checkpoint: str | Path, data_path: str | None = None, steps: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Exact accuracy after each supervision step on the checkpoint's test split, or on `data_path` (CSV)."""
    state = load_checkpoint(checkpoint)
    config = TRMTrainConfig(**state["train_config"])
    steps = steps or config.eval_steps or config.n_sup
    model = load_model(state)
    result_extra: dict[str, Any] = {}
    if data_path is not None:
        signature, split = load_csv_split(state["task"], data_path, limit)
        if signature != state["data_signature"]:
            raise UserError(
                f"{data_path} holds {signature} puzzles but the checkpoint was trained on "
                f"{state['data_signature']}: pass a matching file or checkpoint"
            )
    else:
        task = build_task_data(config.data_spec())
        split = task.test
        if limit is not None:
            split = GridData(split.inputs[:limit], split.labels[:limit], split.puzzle_ids[:limit])
        if task.task == "arc":
            result_extra["pass_at_2"] = arc_pass_at_k(model, task, config.n_sup, config.eval_batch_size)
    result = evaluate(model, split.inputs, split.labels, split.puzzle_ids, steps, config.eval_batch_size)
    return {
        "task": state["data_signature"], "count": result.count, "exact": result.exact_at(config.n_sup),
        "exact_by_step": result.exact_by_step, "token_by_step": result.token_by_step,
        "halted_exact": result.halted_exact, "mean_halt_step": result.mean_halt_step, **result_extra,
    }


@dataclass
class SolveResult:
    text: str  # the answer grid, one row per line
    steps_used: int
    halted: bool  # the halting head stopped before N_sup
    valid: bool | None  # Sudoku/Maze: the answer is a correct solution of the input; ARC: None


@torch.no_grad()
def _run(
    model: RecursiveReasoner, tokens: np.ndarray, puzzle_id: int, max_steps: int, halt: bool
) -> tuple[StepOutput, int, bool]:
    """Supervision steps on one encoded puzzle until q_halt > 0 (when `halt`) or `max_steps`."""
    inputs, ids = torch.from_numpy(tokens)[None], torch.tensor([puzzle_id])
    y, z = model.initial_state(1)
    for k in range(max_steps):
        out = model(inputs, ids, y, z)
        y, z = out.y, out.z
        if halt and bool((out.q_halt > 0).all()):
            return out, k + 1, True
    return out, max_steps, False


def _answer_tokens(out: StepOutput) -> np.ndarray:
    return out.logits.argmax(-1)[0].numpy()


def _check_size(kind: str, side: int, expected: int) -> None:
    if side != expected:
        raise UserError(f"--puzzle is a {side}x{side} {kind} but the checkpoint solves {expected}x{expected}")


def solve_puzzle(checkpoint: str | Path, puzzle: str, max_steps: int | None = None, halt: bool = True) -> SolveResult:
    """Solve one puzzle string (Sudoku digits/'.', maze characters) or one ARC task id of the training data."""
    state = load_checkpoint(checkpoint)
    config = TRMTrainConfig(**state["train_config"])
    model = load_model(state)
    max_steps = max_steps or config.n_sup
    task, size = state["task"], state["task_meta"].get("size")
    if task == "sudoku":
        return _solve_sudoku(model, puzzle, size, max_steps, halt)
    if task == "maze":
        return _solve_maze(model, puzzle, size, max_steps, halt)
    return _solve_arc(model, state["arc_identifiers"], config.arc_version, puzzle.strip(), max_steps, halt)


def _solve_sudoku(model: RecursiveReasoner, puzzle: str, size: int, max_steps: int, halt: bool) -> SolveResult:
    grid = sudoku_task.parse_grid(puzzle, where="--puzzle")
    _check_size("sudoku", grid.shape[0], size)
    out, used, halted = _run(model, sudoku_task.encode(grid), 0, max_steps, halt)
    answer = sudoku_task.decode(_answer_tokens(out), size)
    return SolveResult(sudoku_task.format_grid(answer), used, halted, sudoku_task.solves(grid, answer))


def _solve_maze(model: RecursiveReasoner, puzzle: str, size: int, max_steps: int, halt: bool) -> SolveResult:
    grid = maze_task.parse_maze(puzzle, where="--puzzle")
    _check_size("maze", grid.shape[0], size)
    out, used, halted = _run(model, maze_task.encode(grid), 0, max_steps, halt)
    answer = maze_task.decode_prediction(_answer_tokens(out), size)
    return SolveResult(maze_task.format_maze(answer), used, halted, maze_task.is_valid_solution(grid, answer))


def _solve_arc(
    model: RecursiveReasoner, identifiers: list, version: str, task_id: str, max_steps: int, halt: bool
) -> SolveResult:
    """Run every augmented variant of the task's test inputs, map answers back, vote, show the top two."""
    variants = [i for i, (name, _, _) in enumerate(identifiers) if name == task_id]
    if not variants:
        raise UserError(f"ARC task {task_id!r} is not among this checkpoint's {len(identifiers) - 1} puzzle variants: "
                        "pass a task id it was trained on")
    train_tasks, eval_tasks = arc_task.load_arc(version)
    task = {t.id: t for t in [*train_tasks, *eval_tasks]}[task_id]
    blocks, used_total = [], 0
    for index, (test_input, _) in enumerate(task.test):
        predictions = []
        for puzzle_id in variants:
            _, dihedral, colors = identifiers[puzzle_id]
            augmentation = arc_task.ArcAugmentation(dihedral, tuple(colors))
            out, used, _ = _run(model, arc_task.encode_grid(augmentation.apply(test_input)), puzzle_id, max_steps, halt)
            used_total += used
            grid = arc_task.decode_prediction(_answer_tokens(out), augmentation)
            predictions.append((grid, float(torch.sigmoid(out.q_halt[0]))))
        blocks.append(arc_task.format_attempts(index, arc_task.vote(predictions)))
    return SolveResult("\n".join(blocks), round(used_total / max(len(variants), 1)), False, None)
