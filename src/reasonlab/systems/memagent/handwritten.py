"""A hand-written held-out evaluation set for the mem-agent benchmark: 3 memories and 32 tasks (11 retrieval,
7 update, 7 clarification, 7 filter), shipped as `handwritten.jsonl`.

Written by hand for this evaluation by an LLM assistant session, not produced by `data.generate_bench` nor
copied from it. It tests transfer: an agent that learned from generated data is scored on memories and
wording it never saw. The tasks follow the same judges (judges.py) and carry the same oracle and wrong
policies as generated ones, so `run_bench` with `scripted_policy` proves them both ways.

How it differs in style from the generator:
- other people, places, organisations and file names (none of the generator's name pools), and other
  entity kinds and keys: a doctor and her clinic, a dentist's practice, a landlord, a school, a gym, a book
  club, a car; a blood type, an allergy, a shoe size, a wifi password, an anniversary, a locker code;
- memories of uneven size (4, 6 and 12 entity files), differently named `user.md` titles and sections,
  entity links that are not only the user's (a book club's organiser is the user's wife);
- conversational questions, some lower-case, some with extra words ("what's my landlord's number again",
  "Quick one: when is our anniversary?"), updates phrased as news ("Heads up, Ottilie moved!"), privacy
  rules in free wording; some replies write dates out ("14 May 2011" for 2011-05-14).

File layout, one JSON object a line:
- `{"kind": "memory", "memory_id": "hand_<name>", "files": {"user.md": "...", "entities/<x>.md": "..."}}`;
- `{"kind": "task", "task": {...every field of BenchTask...}}` (nested, since BenchTask has a `kind` too).

    memories, tasks = load_handwritten()
    report = run_bench(tasks, memories, AgentSolver(load_llm("hf:PATH")))
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import networkx as nx

from reasonlab.systems.memagent.data import CATEGORIES, BenchTask, MemoryScenario

__all__ = ["HANDWRITTEN", "load_handwritten"]

HANDWRITTEN = "handwritten.jsonl"


def _memory(record: dict[str, Any], where: str) -> MemoryScenario:
    memory_id, files = record.get("memory_id"), record.get("files")
    if not isinstance(memory_id, str) or not isinstance(files, dict):
        raise ValueError(f"{where}: a memory needs a memory_id string and a files object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValueError(f"{where}: memory {memory_id!r} has a file whose path or text is not a string")
    return MemoryScenario(memory_id, dict(files), nx.MultiDiGraph())


def _task(record: dict[str, Any], where: str) -> BenchTask:
    fields = record.get("task")
    if not isinstance(fields, dict):
        raise ValueError(f"{where}: a task line needs a 'task' object with the fields of BenchTask")
    try:
        task = BenchTask.from_dict(fields)
    except TypeError as error:
        raise ValueError(f"{where}: not a BenchTask: {error}") from None
    if task.category not in CATEGORIES:
        raise ValueError(f"{where}: unknown category {task.category!r}; use one of {', '.join(CATEGORIES)}")
    return task


def load_handwritten(text: str | None = None) -> tuple[list[MemoryScenario], list[BenchTask]]:
    """The memories (in file order) and the tasks (by category, then task_id) of the shipped set, or of
    `text` in the same format. A bad line raises a one-line ValueError that names its line number."""
    if text is None:
        text = resources.files("reasonlab.systems.memagent").joinpath(HANDWRITTEN).read_text(encoding="utf-8")
    memories: dict[str, MemoryScenario] = {}
    tasks: list[tuple[int, BenchTask]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{HANDWRITTEN} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind == "memory":
            memory = _memory(record, where)
            if memory.memory_id in memories:
                raise ValueError(f"{where}: memory {memory.memory_id!r} is defined twice")
            memories[memory.memory_id] = memory
        elif kind == "task":
            tasks.append((number, _task(record, where)))
        else:
            raise ValueError(f"{where}: unknown kind {kind!r}; use 'memory' or 'task'")
    seen: set[str] = set()
    for number, task in tasks:
        where = f"{HANDWRITTEN} line {number}"
        if task.memory_id not in memories:
            raise ValueError(f"{where}: task {task.task_id!r} names memory {task.memory_id!r}, which no line defines")
        if task.task_id in seen:
            raise ValueError(f"{where}: task_id {task.task_id!r} is used twice")
        seen.add(task.task_id)
    ordered = sorted((task for _, task in tasks), key=lambda t: (CATEGORIES.index(t.category), t.task_id))
    return list(memories.values()), ordered
