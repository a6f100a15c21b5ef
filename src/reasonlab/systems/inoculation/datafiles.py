"""Reading the settings' data files: one JSON object per line, every malformed line a one-line error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError

__all__ = ["json_lines"]


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for each non-blank line of a jsonl file; a line that is not JSON is a
    UserError naming the file and the line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(
                    f"{path}, line {number} is not valid JSON ({err.msg}): write one JSON object per line"
                ) from None
