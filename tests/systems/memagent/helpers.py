"""Shared test helpers for mem-agent."""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np


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


class WordEmbedder:
    """Bag-of-words vectors over a fixed vocabulary: deterministic stand-in for MiniLM."""

    dim = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                rows[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
