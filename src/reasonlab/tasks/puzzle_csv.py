"""Reading the `source,question,answer,rating` CSV files of the public puzzle sets (Sudoku-Extreme, Maze-Hard)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

from reasonlab.errors import UserError

__all__ = ["puzzle_csv_rows"]


def puzzle_csv_rows(
    path: str | Path, kind: str, looks_like_data: Callable[[list[str]], bool], limit: int | None = None
) -> Iterator[tuple[str, list[str]]]:
    """Yield (`"PATH line N"`, row) for each data row with at least 3 columns; bad rows raise with their line.

    The official files start with a header; headerless files work too (`looks_like_data` tells them apart).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{kind} CSV {path} does not exist: pass the path of a {kind} CSV")
    count = 0
    with open(path, newline="") as handle:
        rows = enumerate(csv.reader(handle), start=1)
        first = next(rows, None)
        if first is not None and looks_like_data(first[1]):
            rows = itertools.chain([first], rows)
        for line_no, row in rows:
            if limit is not None and count >= limit:
                break
            if not row:
                continue
            where = f"{path} line {line_no}"
            if len(row) < 3:
                raise UserError(f"{where}: expected 4 columns source,question,answer,rating")
            count += 1
            yield where, row
    if count == 0:
        raise UserError(f"{path} holds no {kind} rows: add rows below the header")
