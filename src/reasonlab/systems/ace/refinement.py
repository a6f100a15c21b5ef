"""Grow-and-refine: embedding de-duplication of playbook bullets (MiniLM by default).

Greedy grouping as in the official repo (for each unvisited bullet i, every later j with cos >= threshold
joins its group), except that bullets already grouped are skipped. A group keeps its oldest id (the repo: the
first in text order) and that bullet's content, with the counters summed: the deterministic "pure dedup"
variant; the repo's optional LLM merge of the text is left out because LLM rewrites cause context collapse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reasonlab.llm.embed import Embedder
from reasonlab.systems.ace.delta import DeltaOperation, apply_delta
from reasonlab.systems.ace.playbook import Playbook

__all__ = ["RefineReport", "duplicate_groups", "refine"]


@dataclass
class RefineReport:
    """Groups merged by de-duplication (kept id first)."""

    groups: list[list[str]] = field(default_factory=list)

    @property
    def merged(self) -> int:
        return sum(len(g) - 1 for g in self.groups)


def duplicate_groups(
    vectors: np.ndarray, threshold: float, sections: list[str] | None = None
) -> list[list[int]]:
    """Greedy groups of row indices with cosine >= threshold to the group's first row (size >= 2 only)."""
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit = vectors / norms
    similarity = unit @ unit.T  # (N, N)
    grouped: set[int] = set()
    groups = []
    for i in range(len(unit)):
        if i in grouped:
            continue
        members = [j for j in range(i + 1, len(unit)) if j not in grouped and similarity[i, j] >= threshold - 1e-6
                   and (sections is None or sections[i] == sections[j])]
        if members:
            groups.append([i, *members])
            grouped.update([i, *members])
    return groups


def _id_number(bullet_id: str) -> int:
    return int(bullet_id.rsplit("-", 1)[1])


def refine(
    playbook: Playbook, embedder: Embedder, threshold: float = 0.72, within_section: bool = False
) -> tuple[Playbook, RefineReport]:
    """Merge near-duplicate bullets (keep the oldest id and its text, sum the counters)."""
    if len(playbook) < 2:
        return playbook, RefineReport()
    vectors = embedder.embed([b.content for b in playbook])
    sections = [b.section for b in playbook] if within_section else None
    groups = duplicate_groups(vectors, threshold, sections)
    ids = playbook.ids
    # the oldest bullet (lowest id number) of a group survives: a fresh, possibly garbled copy never replaces
    # an established bullet that happens to sit later in the rendering order
    id_groups = [sorted((ids[i] for i in g), key=_id_number) for g in groups]
    operations = [DeltaOperation(type="MERGE", source_ids=g) for g in id_groups]
    merged, _ = apply_delta(playbook, operations)
    return merged, RefineReport(id_groups)
