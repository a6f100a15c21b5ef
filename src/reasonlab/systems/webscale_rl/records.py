"""The records that flow through the pipeline: plain dicts (JSON- and Arrow-friendly), with helpers that build them.

A document: `{"doc_id", "source", "format", "title", "text"}` (+ `"scores"`, `"domain"`, `"personas"` as the stages
add them). A QA pair: `{"qa_id", "doc_id", "question", "answer", "domain", "persona", "evidence", "generator",
"checks", "provenance"}`. A rejection: `{"id", "stage", "reason", "detail"}`; every stage returns its kept records
and its rejections, so the report counts pass rates per stage and the run never loses an input silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["STAGES", "Record", "StageOutput", "make_document", "make_qa", "rejection"]

Record = dict[str, Any]

# every stage in pipeline order, with its version (bump a version when the stage's behaviour changes: provenance
# records it beside each QA pair, and a resumed run refuses shards written by another version)
STAGES: dict[str, str] = {
    "read": "2",
    "dedup_documents": "1",
    "filter": "1",
    "identify": "1",
    "generate": "2",
    "check": "2",
    "decontaminate": "1",
    "dedup_qa": "1",
}


@dataclass
class StageOutput:
    """What one stage did to a batch: the records it passes on and one rejection per record it dropped."""

    kept: list[Record] = field(default_factory=list)
    rejected: list[Record] = field(default_factory=list)

    def extend(self, other: StageOutput) -> None:
        self.kept.extend(other.kept)
        self.rejected.extend(other.rejected)


def rejection(record_id: str, stage: str, reason: str, detail: str = "") -> Record:
    """One dropped record: `reason` is a short fixed label (counted in the report), `detail` free text."""
    return {"id": record_id, "stage": stage, "reason": reason, "detail": detail}


def make_document(doc_id: str, text: str, source: str, fmt: str, title: str = "") -> Record:
    """A document record; `doc_id` is stable across runs (the source path, plus the line for JSONL rows)."""
    return {"doc_id": doc_id, "source": source, "format": fmt, "title": title, "text": text}


def make_qa(doc: Record, index: int, question: str, answer: str, persona: str, evidence: str,
            generator: str) -> Record:
    """A QA candidate from `doc` (its `index`-th); the checks fill `checks`, the engine fills `provenance`."""
    return {
        "qa_id": f"{doc['doc_id']}#{index}",
        "doc_id": doc["doc_id"],
        "question": question,
        "answer": answer,
        "domain": doc.get("domain", "Other"),
        "persona": persona,
        "evidence": evidence,
        "generator": generator,
        "checks": {},
        "provenance": {},
    }
