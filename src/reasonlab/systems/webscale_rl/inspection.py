"""Reading a pipeline run back: its QA, candidates, rejections and report, and a seeded sample for `inspect`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.records import Record

__all__ = ["load_run_records", "read_jsonl", "sample_records"]

FILES = {"qa": "qa.jsonl", "candidates": "candidates.jsonl", "rejected": "rejected.jsonl",
         "documents": "documents.jsonl", "report": "report.json"}


def read_jsonl(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_run_records(run_dir: str | Path, kind: str) -> Any:
    """One output of a finished run (`qa`, `candidates`, `rejected`, `documents` or `report`)."""
    path = Path(run_dir) / FILES[kind]
    if not path.is_file():
        raise UserError(f"{run_dir}: no {FILES[kind]} here: pass a folder made by `reasonlab webscale run` (a "
                        "killed run writes its outputs when resumed with --resume)")
    return json.loads(path.read_text()) if path.suffix == ".json" else read_jsonl(path)


def sample_records(records: list[Record], count: int, seed: int, domain: str | None = None,
                   contains: str | None = None) -> list[Record]:
    """A seeded random sample, after the optional domain and text filters."""
    if domain is not None:
        records = [r for r in records if r.get("domain", "").lower() == domain.lower()]
    if contains is not None:
        needle = contains.lower()
        records = [r for r in records if needle in r["question"].lower() or needle in r["answer"].lower()]
    if len(records) <= count:
        return records
    return random.Random(seed).sample(records, count)
