"""ARC-lite: a small ARC-like world for the memory experiment of spec section 10 (no LLM, no memory here).

Twelve grid primitives, each with a small fixed parameter set (42 ops); tasks are programs of 1-3 ops shown as
3 train + 1 test pairs, generated so that no strictly shorter program reproduces the train pairs; a bounded
enumerative search accepts the first candidate that reproduces every TRAIN pair (the test pair only scores it);
train-pair features and a plain-English description stand in for the paper's puzzle descriptions.

The paper (arXiv 2509.04439) solves real ARC puzzles with an LLM writing Python; here the "solver" is
`search` over an ordered candidate stream, so the memory arms can only change that order (the retries analogue
is the search budget).

    tasks = generate_tasks(100, seed=0)
    result = search(tasks[0], enumerate_programs(all_ops(), 3, np.random.default_rng(0)), budget=1000)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonlab.errors import UserError

__all__ = [
    "FEATURE_NAMES",
    "MAX_SIDE",
    "PRIMITIVES",
    "ArcLiteTask",
    "Op",
    "Primitive",
    "Program",
    "SearchResult",
    "all_ops",
    "apply_program",
    "describe_pairs",
    "describe_task",
    "enumerate_programs",
    "generate_task",
    "generate_tasks",
    "op_text",
    "pair_features",
    "parse_program",
    "program_text",
    "random_grid",
    "search",
    "solves",
    "step_features",
    "task_features",
]

MAX_SIDE = 30  # ARC's largest grid side; an op whose output would be larger is not applicable
Param = int | str | tuple[int, int] | None
Op = tuple[str, Param]
Program = tuple[Op, ...]
Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Primitive:
    """A grid primitive: `apply(grid, param)` returns a new grid, or None where it does not apply."""

    name: str
    params: tuple[Param, ...]
    apply: Callable[[np.ndarray, Any], np.ndarray | None]
    description: str
    cues: tuple[str, ...]


# the primitives: pure functions (grid, param) -> new grid | None


def _rotate(grid: np.ndarray, k: int) -> np.ndarray:
    return np.rot90(grid, k).copy()


def _flip(grid: np.ndarray, axis: str) -> np.ndarray:
    return (grid[:, ::-1] if axis == "h" else grid[::-1, :]).copy()


def _transpose(grid: np.ndarray, _: None) -> np.ndarray:
    return grid.T.copy()


def _fits(grid: np.ndarray) -> np.ndarray | None:
    return grid if max(grid.shape) <= MAX_SIDE else None


def _scale(grid: np.ndarray, k: int) -> np.ndarray | None:
    if max(grid.shape) * k > MAX_SIDE:
        return None
    return np.repeat(np.repeat(grid, k, axis=0), k, axis=1)


def _tile(grid: np.ndarray, reps: tuple[int, int]) -> np.ndarray | None:
    if grid.shape[0] * reps[0] > MAX_SIDE or grid.shape[1] * reps[1] > MAX_SIDE:
        return None
    return np.tile(grid, reps)


def _mirror_extend(grid: np.ndarray, side: str) -> np.ndarray | None:
    if side == "right":
        return _fits(np.concatenate([grid, grid[:, ::-1]], axis=1))
    return _fits(np.concatenate([grid, grid[::-1, :]], axis=0))


def _crop(grid: np.ndarray, _: None) -> np.ndarray | None:
    rows = np.flatnonzero(grid.any(axis=1))
    cols = np.flatnonzero(grid.any(axis=0))
    if rows.size == 0:
        return None
    return grid[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].copy()


def _gravity(grid: np.ndarray, direction: str) -> np.ndarray:
    # a stable sort on "is empty" / "is filled" moves the coloured cells to one end, keeping their order
    axis = 0 if direction in ("down", "up") else 1
    key = grid != 0 if direction in ("down", "right") else grid == 0
    order = np.argsort(key, axis=axis, kind="stable")
    return np.take_along_axis(grid, order, axis=axis)


def _recolor(grid: np.ndarray, color: int) -> np.ndarray:
    out = grid.copy()
    out[grid != 0] = color
    return out


def _fill_enclosed(grid: np.ndarray, color: int) -> np.ndarray:
    empty = grid == 0
    outside = np.zeros_like(empty)  # empty cells reachable from the border through empty cells
    outside[[0, -1], :] = empty[[0, -1], :]
    outside[:, [0, -1]] = empty[:, [0, -1]]
    while True:
        grown = outside.copy()
        grown[1:, :] |= outside[:-1, :]
        grown[:-1, :] |= outside[1:, :]
        grown[:, 1:] |= outside[:, :-1]
        grown[:, :-1] |= outside[:, 1:]
        grown &= empty
        if np.array_equal(grown, outside):
            break
        outside = grown
    out = grid.copy()
    out[empty & ~outside] = color
    return out


def _extend_rows(grid: np.ndarray) -> np.ndarray:
    # every empty cell takes the colour of the nearest coloured cell in its row (the left one on a tie)
    width = grid.shape[1]
    cols = np.arange(width)
    filled = grid != 0
    left = np.maximum.accumulate(np.where(filled, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(filled, cols, width)[:, ::-1], axis=1)[:, ::-1]
    far = 2 * width
    dist_left = np.where(left >= 0, cols - left, far)
    dist_right = np.where(right < width, right - cols, far)
    source = np.clip(np.where(dist_left <= dist_right, left, right), 0, width - 1)
    # a row without coloured cells reads some cell of itself, which is empty
    return np.take_along_axis(grid, source, axis=1)


def _draw_lines(grid: np.ndarray, axis: str) -> np.ndarray:
    return _extend_rows(grid) if axis == "row" else _extend_rows(grid.T).T.copy()


_SHIFTS = {"down": (1, 0), "up": (-1, 0), "right": (1, 1), "left": (-1, 1)}


def _shift(grid: np.ndarray, direction: str) -> np.ndarray:
    step, axis = _SHIFTS[direction]
    return np.roll(grid, step, axis=axis)


_COLORS = tuple(range(1, 10))

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in (
    Primitive("rotate", (1, 2, 3), _rotate,
              "rotate(k): turn the whole grid k quarter turns counterclockwise",
              ("output is the input turned a quarter or half turn",
               "output height = input width and output width = input height (k = 1 or 3)",
               "colours and cell counts unchanged, positions rotated")),
    Primitive("flip", ("h", "v"), _flip,
              "flip(h) mirrors the grid left-right, flip(v) mirrors it top-bottom",
              ("output is the input seen in a mirror", "same shape, same colour counts, rows or columns reversed")),
    Primitive("transpose", (None,), _transpose,
              "transpose: swap rows and columns (mirror along the main diagonal)",
              ("output height = input width and output width = input height",
               "the first row of the output is the first column of the input")),
    Primitive("scale", (2, 3), _scale,
              "scale(k): blow every cell up into a k x k block",
              ("output height = k x input height and output width = k x input width",
               "the output is made of solid k x k blocks")),
    Primitive("tile", ((1, 2), (2, 1), (2, 2)), _tile,
              "tile(r,c): repeat the grid r times down and c times across",
              ("output height = 2 x input height or output width = 2 x input width",
               "the input reappears unchanged as every block of the output")),
    Primitive("mirror_extend", ("right", "down"), _mirror_extend,
              "mirror_extend(side): append the grid's mirror image to its right or below it",
              ("output width = 2 x input width (right) or output height = 2 x input height (down)",
               "the output is symmetric and its first half is the input")),
    Primitive("crop", (None,), _crop,
              "crop: cut the grid down to the bounding box of its coloured cells",
              ("output is smaller than the input", "the output has no empty border rows or columns",
               "the coloured cells are unchanged")),
    Primitive("gravity", ("down", "up", "left", "right"), _gravity,
              "gravity(dir): coloured cells fall in direction dir until they pile up at the edge, keeping order",
              ("same shape and colour counts, cells piled against one edge",
               "every column (or row) keeps its coloured cells, moved to one end")),
    Primitive("recolor", _COLORS, _recolor,
              "recolor(c): paint every coloured cell with colour c",
              ("same shape, empty cells stay empty", "the output has a single colour",
               "a new colour may appear and old colours disappear")),
    Primitive("fill_enclosed", _COLORS, _fill_enclosed,
              "fill_enclosed(c): paint colour c into every empty cell that cannot reach the border through empty cells",
              ("same shape, coloured cells unchanged", "holes inside closed outlines become coloured",
               "the output has more coloured cells")),
    Primitive("draw_lines", ("row", "col"), _draw_lines,
              "draw_lines(axis): every empty cell in a row (col) takes the colour of the nearest coloured cell "
              "in that row (col), the left (upper) one on a tie",
              ("same shape, coloured cells unchanged",
               "coloured cells stretch into full lines across the grid", "the output has more coloured cells")),
    Primitive("shift", ("down", "up", "left", "right"), _shift,
              "shift(dir): move the whole picture one cell in direction dir, wrapping around the edge",
              ("same shape and colour counts", "every coloured cell moved by one step the same way")),
)}

_OP_APPLY: dict[Op, Callable[[np.ndarray], np.ndarray | None]] = {
    (p.name, param): (lambda grid, p=p, param=param: p.apply(grid, param))
    for p in PRIMITIVES.values() for param in p.params
}


def all_ops(primitives: Collection[str] | None = None) -> list[Op]:
    """Every (primitive name, parameter) op in a fixed order; only those of `primitives` when given."""
    if primitives is not None:
        unknown = sorted(set(primitives) - set(PRIMITIVES))
        if unknown:
            raise UserError(f"unknown ARC-lite primitive(s) {unknown}: use names from {sorted(PRIMITIVES)}")
    return [(p.name, param) for p in PRIMITIVES.values() if primitives is None or p.name in primitives
            for param in p.params]


def op_text(op: Op) -> str:
    """'rotate(1)', 'tile(2,2)', 'crop' (no parentheses for parameterless ops)."""
    name, param = op
    if param is None:
        return name
    if isinstance(param, tuple):
        return f"{name}({','.join(map(str, param))})"
    return f"{name}({param})"


def program_text(program: Program) -> str:
    """'rotate(1) -> recolor(3)'; the empty program is 'identity'."""
    return " -> ".join(op_text(op) for op in program) if program else "identity"


_OPS_BY_TEXT: dict[str, Op] = {op_text(op): op for op in _OP_APPLY}


def parse_program(text: str) -> Program:
    """Inverse of `program_text`."""
    if text.strip() == "identity":
        return ()
    ops = []
    for part in text.split("->"):
        op = _OPS_BY_TEXT.get(part.strip().replace(" ", ""))
        if op is None:
            raise UserError(f"unknown ARC-lite op {part.strip()!r} in program {text!r}: write ops as "
                            f"{', '.join(list(_OPS_BY_TEXT)[:4])}, ... joined by ' -> '")
        ops.append(op)
    return tuple(ops)


def _check_program(program: Program) -> None:
    for op in program:
        if op not in _OP_APPLY:
            raise UserError(f"unknown ARC-lite op {op!r}: use an op from all_ops(), e.g. {all_ops()[0]!r}")


def apply_program(program: Program, grid: np.ndarray) -> np.ndarray | None:
    """Run the ops left to right; None as soon as one does not apply."""
    _check_program(program)
    for op in program:
        grid = _OP_APPLY[op](grid)
        if grid is None:
            return None
    return grid


# tasks


@dataclass(frozen=True, eq=False)
class ArcLiteTask:
    """A generated task: train and test (input, output) pairs made by `program`."""

    id: str
    train: list[Pair]
    test: list[Pair]
    program: Program


def _draw_shape(grid: np.ndarray, rng: np.random.Generator, color: int) -> None:
    height, width = grid.shape
    kind = rng.choice(["rect", "hollow", "line", "pixel"], p=[0.3, 0.35, 0.2, 0.15])
    if kind == "hollow" and min(height, width) < 4:
        kind = "rect"
    if kind == "pixel":
        grid[rng.integers(height), rng.integers(width)] = color
        return
    if kind == "line":
        length = int(rng.integers(2, max(height, width)))
        if rng.random() < 0.5 and length < width:
            row, col = rng.integers(height), rng.integers(width - length + 1)
            grid[row, col : col + length] = color
        else:
            length = min(length, height - 1)
            row, col = rng.integers(height - length + 1), rng.integers(width)
            grid[row : row + length, col] = color
        return
    low = 3 if kind == "hollow" else 1
    # at most side - 1 so that the picture usually leaves an empty margin
    rect_h = int(rng.integers(low, max(low, height - 1) + 1))
    rect_w = int(rng.integers(low, max(low, width - 1) + 1))
    top, left = rng.integers(height - rect_h + 1), rng.integers(width - rect_w + 1)
    grid[top : top + rect_h, left : left + rect_w] = color
    if kind == "hollow":
        grid[top + 1 : top + rect_h - 1, left + 1 : left + rect_w - 1] = 0


def random_grid(rng: np.random.Generator, palette: Sequence[int]) -> np.ndarray:
    """A 3-8 x 3-8 grid on black with 1-3 shapes (filled or hollow rectangles, lines, pixels) from `palette`."""
    height, width = (int(side) for side in rng.integers(3, 9, size=2))
    grid = np.zeros((height, width), dtype=np.int64)
    for _ in range(int(rng.integers(1, 4))):
        _draw_shape(grid, rng, int(palette[rng.integers(len(palette))]))
    if not grid.any():
        grid[rng.integers(height), rng.integers(width)] = palette[0]
    return grid


def _trace(program: Program, grid: np.ndarray) -> list[np.ndarray] | None:
    """The grid before and after every op (len(program) + 1 grids), or None if an op does not apply."""
    grids = [grid]
    for op in program:
        nxt = _OP_APPLY[op](grids[-1])
        if nxt is None:
            return None
        grids.append(nxt)
    return grids


def _shorter_program_solves(pairs: Sequence[Pair], depth: int) -> bool:
    """Whether any program over all ops of length < depth (the empty one included) reproduces every pair."""
    evaluator = _Evaluator([pair[0] for pair in pairs], [pair[1] for pair in pairs])
    if evaluator.solves(()):
        return True
    ops = all_ops()
    return any(evaluator.solves(program) for length in range(1, depth)
               for program in itertools.product(ops, repeat=length))


def generate_task(rng: np.random.Generator, depth: int, task_id: str,
                  primitives: Collection[str] | None = None) -> ArcLiteTask | None:
    """One random task of exactly `depth` ops (each a uniform primitive of `primitives`, then a uniform parameter),
    or None when the draw is rejected.

    Rejected: an op does not apply to some pair; an op leaves all its train grids unchanged; two train outputs
    equal their inputs, or the test output equals its input; a strictly shorter program over all ops reproduces
    every train pair (so `depth` is the task's true depth).
    """
    if not all_ops(primitives):  # also validates the names
        raise UserError("ARC-lite primitives must name at least one primitive: pass None for all of them")
    names = [name for name in PRIMITIVES if primitives is None or name in primitives]
    # a primitive uniformly, then its parameter, so 9-colour primitives do not crowd out the others
    chosen = [PRIMITIVES[names[i]] for i in rng.integers(len(names), size=depth)]
    program = tuple((p.name, p.params[rng.integers(len(p.params))]) for p in chosen)
    palette = [int(c) for c in rng.choice(_COLORS, size=int(rng.integers(1, 4)), replace=False)]
    traces = []
    for _ in range(4):
        trace = _trace(program, random_grid(rng, palette))
        if trace is None:
            return None
        traces.append(trace)
    train_traces, test_trace = traces[:3], traces[3]
    for step in range(depth):
        if all(np.array_equal(t[step], t[step + 1]) for t in train_traces):
            return None
    if sum(np.array_equal(t[0], t[-1]) for t in train_traces) >= 2 or np.array_equal(test_trace[0], test_trace[-1]):
        return None
    train = [(t[0], t[-1]) for t in train_traces]
    if _shorter_program_solves(train, depth):
        return None
    return ArcLiteTask(task_id, train, [(test_trace[0], test_trace[-1])], program)


def generate_tasks(n: int, seed: int, depths: Sequence[int] = (1, 2, 3), depth_weights: Sequence[float] | None = None,
                   primitives: Collection[str] | None = None, max_tries: int = 2000) -> list[ArcLiteTask]:
    """`n` tasks, each of a depth drawn from `depths` (by `depth_weights`, default uniform); same seed, same tasks."""
    if not depths or min(depths) < 1:
        raise UserError(f"ARC-lite depths {list(depths)} must be a non-empty list of integers >= 1")
    if depth_weights is not None and (len(depth_weights) != len(depths) or min(depth_weights) < 0
                                      or sum(depth_weights) <= 0):
        raise UserError(f"ARC-lite depth_weights {list(depth_weights)} must be {len(depths)} non-negative numbers "
                        f"with a positive sum, one per depth in {list(depths)}")
    all_ops(primitives)  # validates the names
    probs = None if depth_weights is None else np.asarray(depth_weights, dtype=float) / sum(depth_weights)
    rng = np.random.default_rng(seed)
    tasks = []
    for index in range(n):
        depth = int(rng.choice(depths, p=probs))
        for _ in range(max_tries):
            task = generate_task(rng, depth, f"arclite-{seed}-{index:04d}", primitives)
            if task is not None:
                tasks.append(task)
                break
        else:
            raise UserError(f"no ARC-lite task of depth {depth} from primitives {primitives} in {max_tries} draws: "
                            "allow more primitives or smaller depths")
    return tasks


# search

_MISSING = object()


class _Evaluator:
    """Outputs of programs on fixed input grids, each program prefix computed once per grid."""

    def __init__(self, inputs: Sequence[np.ndarray], targets: Sequence[np.ndarray]):
        self._caches: list[dict[Program, np.ndarray | None]] = [{(): np.asarray(grid)} for grid in inputs]
        self._targets = [(np.asarray(t).shape, np.asarray(t, dtype=np.asarray(g).dtype).tobytes())
                         for g, t in zip(inputs, targets, strict=True)]

    def output(self, program: Program, index: int) -> np.ndarray | None:
        cache = self._caches[index]
        result = cache.get(program, _MISSING)
        if result is _MISSING:
            before = self.output(program[:-1], index)
            result = None if before is None else _OP_APPLY[program[-1]](before)
            cache[program] = result
        return result  # type: ignore[return-value]

    def solves(self, program: Program) -> bool:
        # pair by pair, so most wrong candidates cost one op on one grid
        for index, (shape, data) in enumerate(self._targets):
            out = self.output(program, index)
            if out is None or out.shape != shape or out.tobytes() != data:
                return False
        return True


def solves(program: Program, pairs: Sequence[Pair]) -> bool:
    """Whether `program` maps every input of `pairs` to its output."""
    _check_program(program)
    return _Evaluator([p[0] for p in pairs], [p[1] for p in pairs]).solves(program)


@dataclass(frozen=True)
class SearchResult:
    """The first candidate that reproduced every train pair (None: budget spent), programs tried, test verdict."""

    program: Program | None
    tried: int
    test_correct: bool


def search(task: ArcLiteTask, candidates: Iterable[Program], budget: int) -> SearchResult:
    """Try `candidates` in order (repeats skipped, not counted) until one reproduces all TRAIN pairs or
    `budget` distinct programs were tried; the test pair only scores the accepted program."""
    evaluator = _Evaluator([p[0] for p in task.train], [p[1] for p in task.train])
    seen: set[Program] = set()
    if budget <= 0:
        return SearchResult(None, 0, False)
    for candidate in candidates:
        program = tuple(candidate)
        if program in seen:
            continue
        _check_program(program)
        seen.add(program)
        if evaluator.solves(program):
            return SearchResult(program, len(seen), solves(program, task.test))
        if len(seen) >= budget:
            break  # checked after a try, so no candidate beyond the budget is drawn from the stream
    return SearchResult(None, len(seen), False)


def enumerate_programs(ops: Sequence[Op], max_depth: int, rng: np.random.Generator | None = None,
                       chunk: int = 4096) -> Iterator[Program]:
    """Every program over `ops` (repeats in `ops` dropped) of length 1..max_depth, by increasing length; within a
    length uniformly shuffled by `rng`, or in `itertools.product` order when rng is None."""
    ops = list(dict.fromkeys(ops))
    for op in ops:
        _check_program((op,))
    n = len(ops)
    for length in range(1, max_depth + 1):
        if rng is None:
            yield from itertools.product(ops, repeat=length)
            continue
        order = rng.permutation(n**length)
        for start in range(0, order.size, chunk):
            digits = np.unravel_index(order[start : start + chunk], (n,) * length)
            for indices in zip(*(d.tolist() for d in digits), strict=True):
                yield tuple(ops[i] for i in indices)


# features (train pairs only)

FEATURE_NAMES: tuple[str, ...] = (
    "same_shape", "transposed_shape", "larger_output", "smaller_output",
    "height_x2", "height_x3", "width_x2", "width_x3",
    "same_colors", "new_color", "colors_removed", "single_out_color",
    "same_count", "more_cells", "fewer_cells", "same_histogram",
    "out_symmetric_lr", "out_symmetric_ud", "is_rotation", "is_flip", "is_transpose",
    "contains_input", "background_kept", "foreground_kept", "cells_changed",
    "row_counts_kept", "col_counts_kept", "row_counts_reversed", "col_counts_reversed", "counts_transposed",
    "settled", "holes_in_input", "holes_filled", "full_lines_added",
)


def _colors(grid: np.ndarray) -> set[int]:
    return {int(c) for c in np.unique(grid) if c != 0}


def _histogram(grid: np.ndarray) -> np.ndarray:
    return np.bincount(grid.ravel().astype(np.int64), minlength=10)[1:]


def _line_counts(grid: np.ndarray, axis: int) -> np.ndarray:
    return np.count_nonzero(grid, axis=axis)


def _settled(grid: np.ndarray) -> bool:
    """Coloured cells packed against one edge in every row (or every column), with some empty cells left."""
    mask = grid != 0
    if not mask.any() or mask.all():
        return False
    views = (mask, mask[:, ::-1], mask.T, mask.T[:, ::-1])  # packed left, right, up, down
    return any(all(not line[count:].any() for line, count in zip(view, view.sum(axis=1), strict=True))
               for view in views)


def _holes(grid: np.ndarray) -> int:
    """Empty cells not connected to the border through empty cells."""
    return int(np.count_nonzero(_fill_enclosed(grid, 1) != grid))


def _full_lines(grid: np.ndarray) -> int:
    mask = grid != 0
    return int(mask.all(axis=1).sum() + mask.all(axis=0).sum())


def _count_features(grid_in: np.ndarray, grid_out: np.ndarray, same_shape: bool) -> dict[str, bool]:
    """Invariants that survive composition with colour changes: per-row / per-column cell counts kept,
    reversed or transposed; cells packed against an edge; enclosed holes; new full rows or columns."""
    rows_in, cols_in = _line_counts(grid_in, 1), _line_counts(grid_in, 0)
    rows_out, cols_out = _line_counts(grid_out, 1), _line_counts(grid_out, 0)
    holes_in = _holes(grid_in)
    return {
        "row_counts_kept": same_shape and bool(np.array_equal(rows_in, rows_out)),
        "col_counts_kept": same_shape and bool(np.array_equal(cols_in, cols_out)),
        "row_counts_reversed": same_shape and bool(np.array_equal(rows_in[::-1], rows_out))
        and not np.array_equal(rows_in, rows_out),
        "col_counts_reversed": same_shape and bool(np.array_equal(cols_in[::-1], cols_out))
        and not np.array_equal(cols_in, cols_out),
        "counts_transposed": grid_in.shape == grid_out.shape[::-1] and (
            np.array_equal(rows_in, cols_out) or np.array_equal(rows_in, cols_out[::-1])),
        "settled": _settled(grid_out) and not _settled(grid_in),
        "holes_in_input": holes_in > 0,
        "holes_filled": holes_in > 0 and _holes(grid_out) < holes_in,
        "full_lines_added": _full_lines(grid_out) > _full_lines(grid_in),
    }


def _single_pair_features(grid_in: np.ndarray, grid_out: np.ndarray) -> dict[str, float]:
    (h_in, w_in), (h_out, w_out) = grid_in.shape, grid_out.shape
    same_shape = grid_in.shape == grid_out.shape
    colors_in, colors_out = _colors(grid_in), _colors(grid_out)
    count_in, count_out = int(np.count_nonzero(grid_in)), int(np.count_nonzero(grid_out))
    changed = not (same_shape and np.array_equal(grid_in, grid_out))

    def equals(candidate: np.ndarray) -> bool:
        return changed and np.array_equal(candidate, grid_out)

    values = {
        "same_shape": same_shape,
        "transposed_shape": h_in != w_in and (h_out, w_out) == (w_in, h_in),
        "larger_output": h_out * w_out > h_in * w_in,
        "smaller_output": h_out * w_out < h_in * w_in,
        "height_x2": h_out == 2 * h_in, "height_x3": h_out == 3 * h_in,
        "width_x2": w_out == 2 * w_in, "width_x3": w_out == 3 * w_in,
        "same_colors": colors_in == colors_out,
        "new_color": bool(colors_out - colors_in),
        "colors_removed": bool(colors_in - colors_out),
        "single_out_color": len(colors_out) == 1,
        "same_count": count_in == count_out,
        "more_cells": count_out > count_in,
        "fewer_cells": count_out < count_in,
        "same_histogram": bool(np.array_equal(_histogram(grid_in), _histogram(grid_out))),
        "out_symmetric_lr": bool(np.array_equal(grid_out, grid_out[:, ::-1])),
        "out_symmetric_ud": bool(np.array_equal(grid_out, grid_out[::-1, :])),
        "is_rotation": any(equals(np.rot90(grid_in, k)) for k in (1, 2, 3)),
        "is_flip": equals(grid_in[:, ::-1]) or equals(grid_in[::-1, :]),
        "is_transpose": equals(grid_in.T),
        "contains_input": h_out * w_out > h_in * w_in and h_out >= h_in and w_out >= w_in
        and bool(np.array_equal(grid_out[:h_in, :w_in], grid_in)),
        "background_kept": same_shape and not grid_out[grid_in == 0].any(),
        "foreground_kept": same_shape and bool(np.array_equal(grid_out[grid_in != 0], grid_in[grid_in != 0])),
        "cells_changed": float(np.mean(grid_in != grid_out)) if same_shape else 1.0,
        **_count_features(grid_in, grid_out, same_shape),
    }
    return {name: float(values[name]) for name in FEATURE_NAMES}


def pair_features(pairs: Sequence[Pair]) -> dict[str, float]:
    """Each feature (all in [0, 1]) averaged over the pairs: a 0/1 feature becomes the fraction of pairs with it."""
    if not pairs:
        raise UserError("ARC-lite features need at least one (input, output) pair; pass the task's train pairs")
    rows = [_single_pair_features(np.asarray(a), np.asarray(b)) for a, b in pairs]
    return {name: float(np.mean([row[name] for row in rows])) for name in FEATURE_NAMES}


def task_features(task: ArcLiteTask) -> dict[str, float]:
    """`pair_features` of the task's TRAIN pairs (the test pair is never read)."""
    return pair_features(task.train)


def step_features(grid_in: np.ndarray | Sequence[np.ndarray],
                  grid_out: np.ndarray | Sequence[np.ndarray]) -> dict[str, float]:
    """`pair_features` of one (input, output) pair, or of parallel lists of inputs and outputs."""
    if isinstance(grid_in, np.ndarray) and isinstance(grid_out, np.ndarray):
        return pair_features([(grid_in, grid_out)])
    return pair_features(list(zip(grid_in, grid_out, strict=True)))


_PHRASES: dict[str, str] = {
    "same_shape": "the output has the same shape as the input",
    "transposed_shape": "the output's height and width are the input's swapped",
    "larger_output": "the output is larger than the input",
    "smaller_output": "the output is smaller than the input",
    "height_x2": "the output is twice as tall as the input",
    "height_x3": "the output is three times as tall as the input",
    "width_x2": "the output is twice as wide as the input",
    "width_x3": "the output is three times as wide as the input",
    "same_colors": "the output uses the same colours as the input",
    "new_color": "a colour that is not in the input appears",
    "colors_removed": "some colours of the input disappear",
    "single_out_color": "the output has a single colour",
    "same_count": "the number of coloured cells stays the same",
    "more_cells": "the output has more coloured cells",
    "fewer_cells": "the output has fewer coloured cells",
    "same_histogram": "every colour keeps its number of cells",
    "out_symmetric_lr": "the output is left-right symmetric",
    "out_symmetric_ud": "the output is top-bottom symmetric",
    "is_rotation": "the output is the input rotated",
    "is_flip": "the output is the input mirrored",
    "is_transpose": "the output is the input transposed",
    "contains_input": "the input reappears as the top-left block of the output",
    "background_kept": "empty cells of the input stay empty",
    "foreground_kept": "coloured cells of the input keep their colour",
    "row_counts_kept": "every row keeps its number of coloured cells",
    "col_counts_kept": "every column keeps its number of coloured cells",
    "row_counts_reversed": "the rows' cell counts come in reverse order",
    "col_counts_reversed": "the columns' cell counts come in reverse order",
    "counts_transposed": "the rows' cell counts become the columns' cell counts",
    "settled": "the coloured cells end up packed against one edge",
    "holes_in_input": "the input has empty cells enclosed by coloured cells",
    "holes_filled": "enclosed empty cells get filled",
    "full_lines_added": "new completely coloured rows or columns appear",
}


def describe_pairs(pairs: Sequence[Pair]) -> str:
    """Plain English for what holds in every pair (from `pair_features`), e.g. for a MiniLM embedding."""
    features = pair_features(pairs)
    facts = [phrase for name, phrase in _PHRASES.items() if features[name] == 1.0]
    if features["same_shape"] == 1.0:
        facts.append(f"about {round(100 * features['cells_changed'])}% of the cells change")
    if not facts:
        return "No property holds in every pair."
    return "In every pair, " + "; ".join(facts) + "."


def describe_task(task: ArcLiteTask) -> str:
    """`describe_pairs` of the task's TRAIN pairs."""
    return describe_pairs(task.train)
