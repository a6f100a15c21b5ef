"""Reading a pipeline run back: its QA, candidates, rejections and report, and a seeded sample for `inspect`."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.runs import read_records
from reasonlab.systems.webscale_rl.records import Record

__all__ = ["filter_records", "load_run_records", "sample_records"]

FILES = {"qa": "qa.jsonl", "candidates": "candidates.jsonl", "rejected": "rejected.jsonl",
         "documents": "documents.jsonl", "report": "report.json"}


def load_run_records(run_dir: str | Path, kind: str) -> Any:
    """One output of a finished run (`qa`, `candidates`, `rejected`, `documents` or `report`)."""
    path = Path(run_dir) / FILES[kind]
    if not path.is_file():
        raise UserError(f"{run_dir}: no {FILES[kind]} here: pass a folder made by `reasonlab webscale run` (a "
                        "killed run writes its outputs when resumed with --resume)")
    return json.loads(path.read_text()) if path.suffix == ".json" else read_records(path)


def filter_records(records: list[Record], domain: str | None = None, contains: str | None = None) -> list[Record]:
    """The records of one domain (case-insensitive) whose question or answer contains `contains`."""
    if domain is not None:
        records = [r for r in records if r.get("domain", "").lower() == domain.lower()]
    if contains is not None:
        needle = contains.lower()
        records = [r for r in records if needle in r["question"].lower() or needle in r["answer"].lower()]
    return records


def sample_records(records: list[Record], count: int, seed: int) -> list[Record]:
    """A seeded random sample of `count` records (all of them when there are no more)."""
    if len(records) <= count:
        return records
    return random.Random(seed).sample(records, count)
