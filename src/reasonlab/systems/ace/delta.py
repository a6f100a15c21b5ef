"""Deterministic, non-LLM merge of Curator deltas, counter updates, and the enforced token budget.

Operations (the paper's ADD plus the community's UPDATE/TAG/REMOVE/MERGE) run in list order on a copy of
the playbook. An operation naming an unknown bullet is skipped and reported, never guessed. If the result
exceeds the token budget, `prune` drops the least useful bullets (harmful - helpful highest, then never-used,
then oldest) - but never the bullets this delta added; if that cannot make it fit, the whole delta is
rejected and the playbook (and its id counter) stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from reasonlab.systems.ace.playbook import Bullet, Playbook, TokenCounter

__all__ = [
    "DeltaOperation",
    "MergeReport",
    "apply_delta",
    "apply_tags",
    "fit_to_budget",
    "prune_order",
]


class DeltaOperation(BaseModel):
    """One Curator operation. ADD needs section+content; UPDATE bullet_id+content; TAG bullet_id+counts;
    REMOVE bullet_id; MERGE source_ids (the first is kept) + optional merged content."""

    type: Literal["ADD", "UPDATE", "TAG", "REMOVE", "MERGE"]
    section: str | None = None
    content: str | None = None
    bullet_id: str | None = None
    helpful: int = Field(0, ge=0)
    harmful: int = Field(0, ge=0)
    source_ids: list[str] = Field(default_factory=list)


@dataclass
class MergeReport:
    """What a delta did: ids added/updated/removed, skipped operations with reasons, budget outcome."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    rejected: str | None = None
    tokens_before: int = 0
    tokens_after: int = 0


def _apply_one(playbook: Playbook, op: DeltaOperation, report: MergeReport) -> None:
    if op.type == "ADD":
        content = " ".join((op.content or "").split())
        if not content:
            report.skipped.append("ADD without content")
        elif any(b.content == content for b in playbook):
            report.skipped.append(f"ADD duplicates an existing bullet: {content[:40]}")
        else:
            report.added.append(playbook.add(op.section or "others", content).id)
        return
    if op.type == "MERGE":
        _merge(playbook, op, report)
        return
    bullet = playbook.get(op.bullet_id or "")
    if bullet is None:
        report.skipped.append(f"{op.type} names unknown bullet {op.bullet_id!r}")
    elif op.type == "UPDATE" and op.content:
        bullet.content = " ".join(op.content.split())
        report.updated.append(bullet.id)
    elif op.type == "TAG":
        bullet.helpful += op.helpful
        bullet.harmful += op.harmful
        report.updated.append(bullet.id)
    elif op.type == "REMOVE":
        playbook.bullets.remove(bullet)
        report.removed.append(bullet.id)
    else:
        report.skipped.append(f"{op.type} without content")


def _merge(playbook: Playbook, op: DeltaOperation, report: MergeReport) -> None:
    """Keep the first source id, sum the counters, drop the others."""
    sources = [playbook.get(i) for i in dict.fromkeys(op.source_ids)]
    if len(sources) < 2 or any(b is None for b in sources):
        report.skipped.append(f"MERGE needs >= 2 existing ids, got {op.source_ids}")
        return
    keep, *rest = [b for b in sources if b is not None]
    for other in rest:
        keep.helpful += other.helpful
        keep.harmful += other.harmful
        playbook.bullets.remove(other)
        report.removed.append(other.id)
    if op.content:
        keep.content = " ".join(op.content.split())
    report.updated.append(keep.id)


def prune_order(bullets: list[Bullet], protected: set[str]) -> list[Bullet]:
    """Bullets in the order pruning drops them: most net-harmful, then never used, then oldest first."""
    candidates = [b for b in bullets if b.id not in protected]
    position = {b.id: i for i, b in enumerate(bullets)}
    return sorted(candidates, key=lambda b: (-(b.harmful - b.helpful), -(b.helpful + b.harmful == 0),
                                             int(b.id.rsplit("-", 1)[1]), position[b.id]))


def fit_to_budget(playbook: Playbook, budget: int, count: TokenCounter, protected: set[str] = frozenset()) -> list[str]:
    """Drop bullets in `prune_order` until the rendered playbook fits `budget` tokens; return the dropped ids."""
    dropped: list[str] = []
    for bullet in prune_order(playbook.bullets, set(protected)):
        if playbook.tokens(count) <= budget:
            break
        playbook.bullets.remove(bullet)
        dropped.append(bullet.id)
    return dropped


def apply_delta(
    playbook: Playbook,
    operations: list[DeltaOperation],
    count: TokenCounter | None = None,
    budget: int | None = None,
    prune: bool = True,
) -> tuple[Playbook, MergeReport]:
    """Apply operations to a copy of `playbook`; enforce `budget` tokens (prune, else reject the delta)."""
    report = MergeReport()
    updated = playbook.copy()
    for op in operations:
        _apply_one(updated, op, report)
    if count is None or budget is None:
        return updated, report
    report.tokens_before = playbook.tokens(count)
    if updated.tokens(count) > budget and prune:
        report.pruned = fit_to_budget(updated, budget, count, protected=set(report.added))
    if updated.tokens(count) > budget:
        rejected = MergeReport(skipped=report.skipped, tokens_before=report.tokens_before,
                               tokens_after=report.tokens_before)
        rejected.rejected = f"delta would make the playbook exceed the {budget}-token budget"
        return playbook, rejected
    report.tokens_after = updated.tokens(count)
    return updated, report


def apply_tags(playbook: Playbook, tags: list[tuple[str, str]]) -> tuple[Playbook, list[str]]:
    """Bump counters: +1 helpful or harmful per (id, tag); neutral and unknown ids are ignored (returned)."""
    updated = playbook.copy()
    ignored = []
    for bullet_id, tag in tags:
        bullet = updated.get(bullet_id)
        if bullet is None or tag not in ("helpful", "harmful"):
            ignored.append(f"{bullet_id}:{tag}")
            continue
        if tag == "helpful":
            bullet.helpful += 1
        else:
            bullet.harmful += 1
    return updated, ignored
