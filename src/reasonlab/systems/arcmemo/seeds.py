"""Our own seed solutions: hand-written programs for ARC-AGI-1 training tasks with short numpy rules.

The paper abstracts memory from 160 BARC seed puzzles with their solutions; these play that role at small
scale. Each seed carries a `transform` (self-contained, numpy imported), a one-line summary and a few lines
of object-level pseudocode, and solves every train and test pair of its task (tests/.../test_seeds.py runs
each one through the sandbox).

    for seed in select_seeds(["6150a2bd"]):
        print(seed.summary)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasonlab.errors import UserError

__all__ = ["SEEDS", "SeedSolution", "select_seeds"]


@dataclass(frozen=True)
class SeedSolution:
    """A solved ARC-AGI-1 training task: its `transform` source, a one-line summary, pseudocode lines."""

    task_id: str
    code: str
    summary: str
    pseudocode: str


SEEDS: tuple[SeedSolution, ...] = (
    SeedSolution(
        "6150a2bd",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return np.rot90(input_grid, 2).copy()\n",
        "Turn the whole grid upside down by rotating it half a turn.",
        "- treat the grid as one picture\n- rotate it by 180 degrees: the last row, read backwards, "
        "becomes the first",
    ),
    SeedSolution(
        "67a3c6ac",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return input_grid[:, ::-1].copy()\n",
        "Mirror the grid left to right.",
        "- keep every row\n- reverse the order of the cells within each row",
    ),
    SeedSolution(
        "68b16354",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return input_grid[::-1, :].copy()\n",
        "Mirror the grid top to bottom.",
        "- keep every row as it is\n- stack the rows in reverse order, bottom row first",
    ),
    SeedSolution(
        "74dd1130",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return input_grid.T.copy()\n",
        "Reflect the grid across its main diagonal, so rows become columns.",
        "- read each row of the input\n- write it as the matching column of the output",
    ),
    SeedSolution(
        "a416b8f3",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return np.concatenate([input_grid, input_grid], axis=1)\n",
        "Repeat the grid twice side by side.",
        "- copy the grid unchanged\n- place the copy directly to the right of the original",
    ),
    SeedSolution(
        "c8f0f002",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    output = input_grid.copy()\n"
        "    output[input_grid == 7] = 5\n"
        "    return output\n",
        "Recolor every orange (7) cell gray (5); other colors stay.",
        "- find every cell of color 7\n- paint it color 5\n- leave all other cells untouched",
    ),
    SeedSolution(
        "d511f180",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    output = input_grid.copy()\n"
        "    output[input_grid == 5] = 8\n"
        "    output[input_grid == 8] = 5\n"
        "    return output\n",
        "Swap the two colors gray (5) and light blue (8) everywhere.",
        "- cells of color 5 become 8\n- cells of color 8 become 5\n- every other cell keeps its color",
    ),
    SeedSolution(
        "6d0aefbc",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return np.concatenate([input_grid, input_grid[:, ::-1]], axis=1)\n",
        "Append the left-right mirror image of the grid on its right side.",
        "- keep the grid as the left half\n- mirror it left to right\n"
        "- put the mirror image as the right half, making a symmetric grid twice as wide",
    ),
    SeedSolution(
        "6fa7a44f",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return np.concatenate([input_grid, input_grid[::-1, :]], axis=0)\n",
        "Append the upside-down mirror image of the grid below it.",
        "- keep the grid as the top half\n- mirror it top to bottom\n"
        "- put the mirror image as the bottom half, making a symmetric grid twice as tall",
    ),
    SeedSolution(
        "3af2c5a8",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    top = np.concatenate([input_grid, input_grid[:, ::-1]], axis=1)\n"
        "    return np.concatenate([top, top[::-1, :]], axis=0)\n",
        "Reflect the grid into all four quadrants, giving a grid symmetric both ways.",
        "- the input is the top-left quadrant\n- its left-right mirror is the top-right quadrant\n"
        "- the top half mirrored top to bottom is the bottom half",
    ),
    SeedSolution(
        "0d3d703e",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    # the colors come in swapped pairs: 1<->5, 2<->6, 3<->4, 8<->9\n"
        "    table = np.arange(10)\n"
        "    for a, b in [(1, 5), (2, 6), (3, 4), (8, 9)]:\n"
        "        table[a], table[b] = b, a\n"
        "    return table[input_grid]\n",
        "Recolor each cell by a fixed color substitution made of four swapped pairs.",
        "- each column is a stripe of one color\n- replace each color by its partner: 1 and 5, 2 and 6, "
        "3 and 4, 8 and 9\n- the layout of the stripes stays the same",
    ),
    SeedSolution(
        "d10ecb37",
        "import numpy as np\n\n\ndef transform(input_grid: np.ndarray) -> np.ndarray:\n"
        "    return input_grid[:2, :2].copy()\n",
        "Keep only the 2 x 2 block in the top-left corner.",
        "- the input is a larger patterned grid\n- cut out the top-left 2 x 2 block\n"
        "- that block is the output",
    ),
)


def select_seeds(task_ids: Sequence[str] = ()) -> list[SeedSolution]:
    """The seeds with these task ids, in the order given (all of them, in order, when none are given)."""
    if not task_ids:
        return list(SEEDS)
    by_id = {seed.task_id: seed for seed in SEEDS}
    unknown = [task_id for task_id in task_ids if task_id not in by_id]
    if unknown:
        raise UserError(f"no seed solution for task(s) {', '.join(unknown)}; ours are {', '.join(by_id)}")
    return [by_id[task_id] for task_id in task_ids]
