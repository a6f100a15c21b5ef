"""Use a trained checkpoint: evaluate it on its task (or a user's CSV), or solve one puzzle.

`solve` runs supervision steps until the halting head says stop (q_halt > 0) or N_sup is reached, and
reports how many steps it used; evaluation (as the official code) never halts early.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonlab.errors import UserError
from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.data import GridData, build_task_data
from reasonlab.systems.trm.model import RecursiveReasoner
from reasonlab.systems.trm.supervision import evaluate
from reasonlab.systems.trm.train import arc_pass_at_k, load_checkpoint, load_model
from reasonlab.tasks import arc as arc_task
from reasonlab.tasks import maze as maze_task
from reasonlab.tasks import sudoku as sudoku_task

__all__ = ["SolveResult", "eval_checkpoint", "solve_puzzle"]


def _csv_split(task: str, path: str, limit: int | None) -> tuple[str, GridData]:
    if task == "sudoku":
        puzzles = sudoku_task.load_sudoku_csv(path, limit)
        size = puzzles[0].question.shape[0]
        rows = [(sudoku_task.encode(p.question), sudoku_task.encode(p.solution)) for p in puzzles]
        signature = f"sudoku-{size}x{size}"
    elif task == "maze":
        mazes = maze_task.load_maze_csv(path, limit)
        side = mazes[0].question.shape[0]
        rows = [(maze_task.encode(m.question), maze_task.encode(m.solution)) for m in mazes]
        signature = f"maze-{side}x{side}"
    else:
        raise UserError(f"--data is supported for sudoku and maze checkpoints, not {task}: omit it to use ARC's test split")
    if len({r[0].shape for r in rows}) != 1:
        raise UserError(f"{path} mixes grid sizes: use one size per file")
    inputs = torch.from_numpy(np.stack([r[0] for r in rows]))
    labels = torch.from_numpy(np.stack([r[1] for r in rows]))
    return signature, GridData(inputs, labels, torch.zeros(len(rows), dtype=torch.long))


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
        signature, split = _csv_split(state["task"], data_path, limit)
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
def _run(model: RecursiveReasoner, inputs: torch.Tensor, ids: torch.Tensor, max_steps: int, halt: bool):
    y, z = model.initial_state(len(inputs))
    for k in range(max_steps):
        out = model(inputs, ids, y, z)
        y, z = out.y, out.z
        if halt and bool((out.q_halt > 0).all()):
            return out, k + 1, True
    return out, max_steps, False


def solve_puzzle(checkpoint: str | Path, puzzle: str, max_steps: int | None = None, halt: bool = True) -> SolveResult:
    """Solve one puzzle string (Sudoku digits/'.', maze characters) or one ARC task id of the training data."""
    state = load_checkpoint(checkpoint)
    config = TRMTrainConfig(**state["train_config"])
    model = load_model(state)
    max_steps = max_steps or config.n_sup
    task, size = state["task"], state["task_meta"].get("size")
    if task == "sudoku":
        grid = sudoku_task.parse_grid(puzzle, where="--puzzle")
        if grid.shape[0] != size:
            raise UserError(f"--puzzle is a {grid.shape[0]}x{grid.shape[0]} sudoku but the checkpoint solves {size}x{size}")
        out, used, halted = _run(model, torch.from_numpy(sudoku_task.encode(grid))[None], torch.zeros(1, dtype=torch.long), max_steps, halt)
        answer = sudoku_task.decode(out.logits.argmax(-1)[0].numpy(), size)
        valid = sudoku_task.is_solved(answer) and bool((answer[grid > 0] == grid[grid > 0]).all())
        return SolveResult("\n".join(" ".join(str(v) for v in row) for row in answer), used, halted, valid)
    if task == "maze":
        grid = maze_task.parse_maze(puzzle, where="--puzzle")
        if grid.shape[0] != size:
            raise UserError(f"--puzzle is a {grid.shape[0]}x{grid.shape[0]} maze but the checkpoint solves {size}x{size}")
        out, used, halted = _run(model, torch.from_numpy(maze_task.encode(grid))[None], torch.zeros(1, dtype=torch.long), max_steps, halt)
        answer = maze_task.decode(out.logits.argmax(-1)[0].clamp(1, 5).numpy(), size)
        return SolveResult("\n".join("".join(row) for row in answer), used, halted, maze_task.is_valid_solution(grid, answer))
    # arc: the puzzle is a task id; vote over its augmented variants
    identifiers = state["arc_identifiers"]
    variants = [i for i, (task_id, _, _) in enumerate(identifiers) if task_id == puzzle.strip()]
    if not variants:
        raise UserError(f"ARC task {puzzle!r} is not among this checkpoint's {len(identifiers) - 1} puzzle variants: pass a task id it was trained on")
    train_tasks, eval_tasks = arc_task.load_arc(config.arc_version)
    by_id = {t.id: t for t in [*train_tasks, *eval_tasks]}
    lines, used_total = [], 0
    for index, (test_input, _) in enumerate(by_id[puzzle.strip()].test):
        preds = []
        for pid in variants:
            _, dihedral, colors = identifiers[pid]
            aug = arc_task.ArcAugmentation(dihedral, tuple(colors))
            tokens = torch.from_numpy(arc_task.encode_grid(aug.apply(test_input)))[None]
            out, used, _ = _run(model, tokens, torch.tensor([pid]), max_steps, halt)
            used_total += used
            grid = aug.invert(arc_task.crop(out.logits.argmax(-1)[0].numpy()))
            preds.append((grid, float(torch.sigmoid(out.q_halt[0]))))
        for rank, grid in enumerate(arc_task.vote(preds)[:2]):
            lines.append(f"test {index} attempt {rank + 1}:")
            lines.extend(" ".join(str(v) for v in row) for row in grid)
    return SolveResult("\n".join(lines), round(used_total / max(len(variants), 1)), False, None)
