"""Mazes: a generator of perfect mazes with a minimum shortest-path length, TRM encoding, Maze-Hard CSV loader.

A maze is a square character grid: '#' wall, ' ' open, 'S' start, 'G' goal, 'o' path cell of the solution.
Token encoding as in TRM/HRM: PAD 0, '#' 1, ' ' 2, 'S' 3, 'G' 4, 'o' 5 (V=6). The input shows walls, S and
G; the label is the same grid with the shortest path marked 'o'. Maze-Hard CSV (huggingface
sapientinc/maze-30x30-hard-1k): header `source,question,answer,rating`, row-major 900-character strings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reasonlab.errors import UserError
from reasonlab.tasks.puzzle_csv import puzzle_csv_rows

__all__ = [
    "CHARSET",
    "Maze",
    "decode",
    "decode_prediction",
    "dihedral",
    "encode",
    "format_maze",
    "generate",
    "generate_dataset",
    "is_valid_solution",
    "load_maze_csv",
    "parse_maze",
    "shortest_path",
]

CHARSET = "# SGo"


@dataclass(frozen=True)
class Maze:
    question: np.ndarray  # (H, W) of characters
    solution: np.ndarray  # (H, W) of characters, path marked 'o'

    @property
    def path_length(self) -> int:
        return int((self.solution == "o").sum()) + 2  # cells from S to G, both included


def encode(grid: np.ndarray) -> np.ndarray:
    """Character grid (H, W) -> tokens (H*W,) in 1..5."""
    lookup = {c: i + 1 for i, c in enumerate(CHARSET)}
    return np.array([lookup[c] for c in grid.reshape(-1)], dtype=np.int64)


def decode(tokens: np.ndarray, size: int) -> np.ndarray:
    """Tokens (size*size,) -> character grid (size, size); PAD reads as '?'."""
    chars = np.array(["?", *CHARSET])
    return chars[np.asarray(tokens).reshape(size, size)]


def decode_prediction(tokens: np.ndarray, size: int) -> np.ndarray:
    """A model's argmax tokens -> character grid; a predicted PAD reads as a wall, so the grid is always a maze."""
    return decode(np.clip(np.asarray(tokens), 1, len(CHARSET)), size)


def format_maze(grid: np.ndarray) -> str:
    """One row of characters per line (read back by `parse_maze`)."""
    return "\n".join("".join(row) for row in np.asarray(grid).tolist())


def parse_maze(text: str, size: int | None = None, where: str = "maze") -> np.ndarray:
    """Row-major maze string -> character grid; raises naming `where` on a bad length or character."""
    text = text.replace("\n", "")
    if size is None:
        size = round(len(text) ** 0.5)
    if len(text) != size * size:
        raise UserError(f"{where}: expected a square maze of {size}x{size} characters, got {len(text)}: fix the string")
    bad = sorted(set(text) - set(CHARSET))
    if bad:
        raise UserError(f"{where}: characters {bad} are not one of {CHARSET!r}: fix the string")
    return np.array(list(text)).reshape(size, size)


def shortest_path(grid: np.ndarray) -> list[tuple[int, int]] | None:
    """BFS from 'S' to 'G' through non-wall cells; the list of cells (both ends included) or None."""
    starts, goals = np.argwhere(grid == "S"), np.argwhere(grid == "G")
    if len(starts) != 1 or len(goals) != 1:
        return None
    start, goal = tuple(starts[0]), tuple(goals[0])
    height, width = grid.shape
    parent = {start: start}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == goal:
            path = [cell]
            while path[-1] != start:
                path.append(parent[path[-1]])
            return [(int(r), int(c)) for r, c in path[::-1]]
        r, c = cell
        for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if 0 <= nr < height and 0 <= nc < width and grid[nr, nc] != "#" and (nr, nc) not in parent:
                parent[(nr, nc)] = cell
                queue.append((nr, nc))
    return None


def is_valid_solution(question: np.ndarray, answer: np.ndarray) -> bool:
    """True if `answer` keeps the question's walls/S/G and marks a shortest S->G path with 'o'."""
    question = np.where(question == "o", " ", question)
    if not np.array_equal(np.where(answer == "o", " ", answer), question):
        return False
    path = shortest_path(question)
    if path is None or int((answer == "o").sum()) != len(path) - 2:
        return False
    walkable = np.where(answer == " ", "#", answer)
    own = shortest_path(walkable)
    return own is not None and len(own) == len(path)


def _carve(cells: int, rng: np.random.Generator) -> np.ndarray:
    """Perfect maze by randomized depth-first search on a cells x cells lattice; grid side 2*cells+1."""
    side = 2 * cells + 1
    grid = np.full((side, side), "#")
    visited = np.zeros((cells, cells), dtype=bool)
    stack = [(int(rng.integers(cells)), int(rng.integers(cells)))]
    visited[stack[0]] = True
    grid[2 * stack[0][0] + 1, 2 * stack[0][1] + 1] = " "
    while stack:
        r, c = stack[-1]
        options = [
            (nr, nc)
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
            if 0 <= nr < cells and 0 <= nc < cells and not visited[nr, nc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        visited[nr, nc] = True
        grid[r + nr + 1, c + nc + 1] = " "
        grid[2 * nr + 1, 2 * nc + 1] = " "
        stack.append((nr, nc))
    return grid


def generate(cells: int, min_path: int, rng: np.random.Generator, max_tries: int = 200) -> Maze:
    """A maze on a (2*cells+1)^2 grid whose S->G shortest path has at least `min_path` cells."""
    for _ in range(max_tries):
        grid = _carve(cells, rng)
        open_cells = np.argwhere(grid == " ")
        for _ in range(20):
            a, b = open_cells[rng.choice(len(open_cells), size=2, replace=False)]
            question = grid.copy()
            question[tuple(a)], question[tuple(b)] = "S", "G"
            path = shortest_path(question)
            if path is not None and len(path) >= min_path:
                solution = question.copy()
                for cell in path[1:-1]:
                    solution[cell] = "o"
                return Maze(question, solution)
    raise UserError(f"no {cells}x{cells}-cell maze with a path of >= {min_path} cells found: lower --min-path")


def generate_dataset(cells: int, min_path: int, count: int, seed: int) -> list[Maze]:
    rng = np.random.default_rng(seed)
    return [generate(cells, min_path, rng) for _ in range(count)]


def dihedral(grid: np.ndarray, index: int) -> np.ndarray:
    """The 8 symmetries of the square: index 0..3 rotate by 90*index, 4..7 also transpose first."""
    out = grid.T if index >= 4 else grid
    return np.rot90(out, k=index % 4).copy()


def _looks_like_data(row: list[str]) -> bool:
    return len(row) >= 3 and len(row[1]) > 3 and set(row[1]) <= set(CHARSET)


def load_maze_csv(path: str | Path, limit: int | None = None) -> list[Maze]:
    """Read a Maze-Hard style CSV (`source,question,answer,rating`); bad rows raise with their line."""
    mazes = []
    for where, row in puzzle_csv_rows(path, "Maze-Hard style maze", _looks_like_data, limit):
        question = parse_maze(row[1], where=f"{where} question")
        solution = parse_maze(row[2], size=question.shape[0], where=f"{where} answer")
        if not np.array_equal(np.where(solution == "o", " ", solution), question):
            raise UserError(f"{where}: the answer changes walls, S or G of the question: fix or drop the row")
        mazes.append(Maze(question, solution))
    return mazes
