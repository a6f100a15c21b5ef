"""Shared test helpers for mem-agent."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def digest(folder: Path) -> str:
    """Hash of every entry under `folder`: names, file bytes, link targets."""
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        sha.update(path.relative_to(folder).as_posix().encode())
        if path.is_symlink():
            sha.update(b"->" + os.readlink(path).encode())
        elif path.is_file():
            sha.update(path.read_bytes())
    return sha.hexdigest()
