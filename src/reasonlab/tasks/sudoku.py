"""Sudoku: generator with unique solutions, validity checks, augmentations, Sudoku-Extreme CSV loader.

Grids are numpy int arrays of shape (N, N), 0 = blank, 1..N = digits, with boxes of `box` = (rows, cols)
(4x4: (2, 2), 6x6: (2, 3), 9x9: (3, 3)). Token encoding as in TRM/HRM: 0 PAD, 1 blank, 2..N+1 digits.
Sudoku-Extreme CSV (huggingface sapientinc/sudoku-extreme): header `source,question,answer,rating`,
81-character strings with '.' (or '0') for blanks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonlab.errors import UserError
from reasonlab.tasks.puzzle_csv import puzzle_csv_rows

__all__ = [
    "BOX_SHAPES",
    "SudokuPuzzle",
    "augment",
    "box_shape",
    "count_solutions",
    "decode",
    "encode",
    "format_grid",
    "generate",
    "generate_dataset",
    "is_solved",
    "load_sudoku_csv",
    "parse_grid",
    "solve",
    "solves",
]

BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
PAD, BLANK = 0, 1


def box_shape(size: int) -> tuple[int, int]:
    if size not in BOX_SHAPES:
        raise UserError(f"sudoku size {size} is not supported: use one of {sorted(BOX_SHAPES)}")
    return BOX_SHAPES[size]


@dataclass(frozen=True)
class SudokuPuzzle:
    question: np.ndarray  # (N, N), 0 = blank
    solution: np.ndarray  # (N, N)
    effort: int = 0  # backtracking nodes the solver needed (difficulty proxy)


def encode(grid: np.ndarray) -> np.ndarray:
    """Grid (N, N) with 0 = blank -> tokens (N*N,), 1 = blank, digit d -> d + 1."""
    return grid.reshape(-1).astype(np.int64) + 1


def decode(tokens: np.ndarray, size: int) -> np.ndarray:
    """Tokens (N*N,) -> grid (N, N); PAD and blank both decode to 0."""
    return np.clip(np.asarray(tokens).reshape(size, size) - 1, 0, None)


def parse_grid(text: str, size: int | None = None, where: str = "puzzle") -> np.ndarray:
    """Parse a row-major puzzle string ('.' or '0' blank, digits 1..N); whitespace and '|' are ignored."""
    chars = [c for c in text if not c.isspace() and c not in "|-+"]
    if size is None:
        size = round(len(chars) ** 0.5)
    if size not in BOX_SHAPES or len(chars) != size * size:
        raise UserError(
            f"{where}: expected {size * size if size in BOX_SHAPES else '16, 36 or 81'} cells "
            f"(digits, '.' or '0' for blanks), got {len(chars)}: fix the string"
        )
    values = []
    for i, c in enumerate(chars):
        if c == ".":
            values.append(0)
        elif c.isdigit() and int(c) <= size:
            values.append(int(c))
        else:
            raise UserError(f"{where}: character {c!r} at cell {i} is not a digit 1-{size} or '.': fix the string")
    return np.array(values, dtype=np.int64).reshape(size, size)


def is_solved(grid: np.ndarray) -> bool:
    """True if every row, column and box holds each digit 1..N once."""
    size = grid.shape[0]
    br, bc = box_shape(size)
    digits = set(range(1, size + 1))
    rows = all(set(row) == digits for row in grid.tolist())
    cols = all(set(col) == digits for col in grid.T.tolist())
    boxes = all(
        set(grid[r : r + br, c : c + bc].reshape(-1).tolist()) == digits
        for r in range(0, size, br)
        for c in range(0, size, bc)
    )
    return rows and cols and boxes


def solves(question: np.ndarray, answer: np.ndarray) -> bool:
    """True if `answer` is a solved grid that keeps every given (non-zero cell) of `question`."""
    given = question > 0
    return answer.shape == question.shape and is_solved(answer) and bool((answer[given] == question[given]).all())


def format_grid(grid: np.ndarray) -> str:
    """One row per line, cells separated by spaces, '.' for a blank (read back by `parse_grid`).

    >>> print(format_grid(np.array([[1, 0], [0, 2]])))
    1 .
    . 2
    """
    return "\n".join(" ".join(str(v) if v else "." for v in row) for row in np.asarray(grid).tolist())


def _search(grid: np.ndarray, limit: int, rng: np.random.Generator | None) -> tuple[list[np.ndarray], int]:
    """Backtracking with bitmasks and minimum-remaining-values; returns (up to `limit` solutions, nodes)."""
    size = grid.shape[0]
    br, bc = box_shape(size)
    full = (1 << (size + 1)) - 2
    cells = grid.reshape(-1).tolist()
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    empty = []
    for i, v in enumerate(cells):
        r, c = divmod(i, size)
        b = (r // br) * (size // bc) + c // bc
        if v:
            bit = 1 << v
            if rows[r] & bit or cols[c] & bit or boxes[b] & bit:
                return [], 0
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
        else:
            empty.append((i, r, c, b))
    solutions: list[np.ndarray] = []
    nodes = 0

    def recurse(remaining: list[tuple[int, int, int, int]]) -> bool:
        nonlocal nodes
        if not remaining:
            solutions.append(np.array(cells, dtype=np.int64).reshape(size, size))
            return len(solutions) >= limit
        best, best_count, best_free = 0, size + 1, 0
        for k, (_, r, c, b) in enumerate(remaining):
            free = full & ~(rows[r] | cols[c] | boxes[b])
            count = free.bit_count()
            if count < best_count:
                best, best_count, best_free = k, count, free
                if count <= 1:
                    break
        if best_count == 0:
            return False
        i, r, c, b = remaining[best]
        rest = remaining[:best] + remaining[best + 1 :]
        digits = [d for d in range(1, size + 1) if best_free >> d & 1]
        if rng is not None:
            rng.shuffle(digits)
        for d in digits:
            nodes += 1
            bit = 1 << d
            cells[i] = d
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            if recurse(rest):
                return True
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            cells[i] = 0
        return False

    recurse(empty)
    return solutions, nodes


def solve(grid: np.ndarray) -> np.ndarray | None:
    """One solution of `grid`, or None if it has none."""
    solutions, _ = _search(grid, 1, None)
    return solutions[0] if solutions else None


def count_solutions(grid: np.ndarray, limit: int = 2) -> int:
    return len(_search(grid, limit, None)[0])


def generate(size: int, givens: int, rng: np.random.Generator, max_tries: int = 20) -> SudokuPuzzle:
    """A puzzle with a unique solution and about `givens` clues (never fewer; more if removal gets stuck)."""
    for _ in range(max_tries):
        solution = _search(np.zeros((size, size), dtype=np.int64), 1, rng)[0][0]
        question = solution.copy()
        filled = size * size
        for cell in rng.permutation(size * size):
            if filled <= givens:
                break
            r, c = divmod(int(cell), size)
            keep = question[r, c]
            question[r, c] = 0
            if count_solutions(question) != 1:
                question[r, c] = keep
            else:
                filled -= 1
        if filled <= givens + max(1, size // 3):
            effort = _search(question, 2, None)[1]
            return SudokuPuzzle(question, solution, effort)
    return SudokuPuzzle(question, solution, _search(question, 2, None)[1])


def generate_dataset(size: int, givens: int, count: int, seed: int) -> list[SudokuPuzzle]:
    """`count` distinct puzzles (distinct questions), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    puzzles, seen = [], set()
    while len(puzzles) < count:
        puzzle = generate(size, givens, rng)
        key = puzzle.question.tobytes()
        if key not in seen:
            seen.add(key)
            puzzles.append(puzzle)
    return puzzles


def augment(
    question: np.ndarray, solution: np.ndarray, rng: np.random.Generator, transpose: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validity-preserving transform of a (question, solution) pair, applied identically to both.

    Digit relabeling, band and stack permutations, row permutations inside bands and column permutations
    inside stacks, and (square boxes only, p=0.5) transposition.
    """
    size = question.shape[0]
    br, bc = box_shape(size)
    digit_map = np.concatenate([[0], rng.permutation(size) + 1])
    bands = rng.permutation(size // br)
    rows = np.concatenate([b * br + rng.permutation(br) for b in bands])
    stacks = rng.permutation(size // bc)
    cols = np.concatenate([s * bc + rng.permutation(bc) for s in stacks])
    if transpose is None:
        transpose = br == bc and bool(rng.random() < 0.5)

    def apply(grid: np.ndarray) -> np.ndarray:
        out = digit_map[grid][rows][:, cols]
        return out.T.copy() if transpose else out

    return apply(question), apply(solution)


def _looks_like_data(row: list[str]) -> bool:
    return len(row) >= 3 and len(row[1]) in (16, 36, 81) and all(c.isdigit() or c == "." for c in row[1])


def load_sudoku_csv(path: str | Path, limit: int | None = None) -> list[SudokuPuzzle]:
    """Read a Sudoku-Extreme style CSV (`source,question,answer,rating`); bad rows raise with their line."""
    puzzles = []
    for where, row in puzzle_csv_rows(path, "Sudoku-Extreme style sudoku", _looks_like_data, limit):
        question = parse_grid(row[1].replace("0", "."), where=f"{where} question")
        solution = parse_grid(row[2], size=question.shape[0], where=f"{where} answer")
        if not is_solved(solution):
            raise UserError(f"{where}: the answer is not a solved sudoku: fix or drop the row")
        given = question > 0
        if not np.array_equal(question[given], solution[given]):
            raise UserError(f"{where}: the answer contradicts a given of the question: fix or drop the row")
        rating = int(float(row[3])) if len(row) > 3 and row[3].strip() else 0
        puzzles.append(SudokuPuzzle(question, solution, rating))
    return puzzles
