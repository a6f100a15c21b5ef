"""The ArcMemo loop on real ARC tasks with any LLM: build a memory from seed solutions (the write), then solve
tasks with selection (the read), sandboxed execution of the model's `transform`, retries while a train pair fails,
and continual writes of train-verified solves (spec sections 3-6).

    memory, stats = build_memory(config, llm)              # PS: summarize -> abstract -> merge; OE: lessons
    records = solve_tasks(config, llm, memory, tasks, run)  # select -> solve -> execute -> retry -> write

Every LLM step is a typed program (`programs`); a step whose output does not parse is recorded and skipped, so a
small model can fail every step without corrupting the memory, which is saved atomically after each batch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from reasonlab import progress
from reasonlab.errors import UserError
from reasonlab.llm import LLM
from reasonlab.runs import Run, append_record, atomic_write_json, atomic_write_text, read_records
from reasonlab.systems.arcmemo import programs
from reasonlab.systems.arcmemo.config import ArcMemoConfig
from reasonlab.systems.arcmemo.continual import Step, run_continual
from reasonlab.systems.arcmemo.evaluation import rates, summarize_pipeline
from reasonlab.systems.arcmemo.execution import run_transform
from reasonlab.systems.arcmemo.memory import ConceptMemory, LessonMemory, load_memory, save_memory
from reasonlab.systems.arcmemo.seeds import select_seeds
from reasonlab.systems.arcmemo.tasks import (
    ArcTask,
    Attempt,
    load_split,
    load_task_json,
    official_score,
    strict_correct,
    train_correct,
)

__all__ = ["build_memory", "load_tasks", "open_memory", "run_build", "run_eval", "select_hint", "solve_tasks"]

Memory = ConceptMemory | LessonMemory


def load_tasks(config: ArcMemoConfig) -> list[ArcTask]:
    """The tasks a config names: a task file/folder or a split, filtered by ids, cut to `limit`."""
    tasks = load_task_json(config.task_file) if config.task_file else load_split(config.split)
    if config.task_ids:
        known = {t.id for t in tasks}
        missing = [i for i in config.task_ids if i not in known]
        if missing:
            source = config.task_file or f"split {config.split}"
            raise UserError(f"task ids {missing} are not in {source}: pass ids from it (or another --split)")
        tasks = [t for t in tasks if t.id in set(config.task_ids)]
    return tasks[: config.limit] if config.limit else tasks


def _write(llm: LLM, config: ArcMemoConfig, memory: Memory, puzzle_id: str, code: str, summary: str | None,
           pseudocode: str | None, stats: dict[str, dict[str, int]], notes: list[dict[str, Any]]) -> Any:
    """One abstraction: what the write step returned for `puzzle_id` (merged later, in batch order)."""
    settings = config.abstraction
    if isinstance(memory, LessonMemory):
        outcome = programs.extract_lessons(llm, puzzle_id, f"{summary or ''}\n{code}".strip(), settings,
                                           stats=stats.setdefault("lessons", {}))
        notes.append({"puzzle": puzzle_id, "step": "lessons", "ok": outcome.ok, "error": outcome.error})
        return outcome.value or []
    if summary is None or pseudocode is None:
        described = programs.summarize_solution(llm, code, settings, stats=stats.setdefault("summarize", {}))
        notes.append({"puzzle": puzzle_id, "step": "summarize", "ok": described.ok, "error": described.error})
        if described.value is None:
            return []
        summary, pseudocode = described.value.summary, described.value.pseudocode
    outcome = programs.abstract_concepts(llm, memory, puzzle_id, summary, pseudocode, settings,
                                         stats=stats.setdefault("abstract", {}))
    concepts = outcome.value or []
    notes.append({"puzzle": puzzle_id, "step": "abstract", "ok": outcome.ok, "error": outcome.error,
                  "concepts": len(concepts), "name_reuse": programs.name_reuse_rate(concepts, memory)})
    return (summary, pseudocode, concepts)


def _merge(memory: Memory, items: list[tuple[str, str, Any]]) -> list[str]:
    """Merge a batch of abstractions in order (they were all made against the same memory snapshot)."""
    written: list[str] = []
    for puzzle_id, code, value in items:
        if isinstance(memory, LessonMemory):
            memory.add(value)
            written.extend(f"lesson:{puzzle_id}" for _ in value)
        elif value and value[2]:  # a failed abstraction writes nothing, not even the solution
            summary, pseudocode, concepts = value
            memory.write_solution(puzzle_id, code, summary, pseudocode)
            written.extend(memory.write_batch([(puzzle_id, concepts)]))
    return written


def build_memory(config: ArcMemoConfig, llm: LLM, path: Path | None = None,
                 notes: list[dict[str, Any]] | None = None) -> tuple[Memory, dict[str, dict[str, int]]]:
    """Abstract every seed solution into a fresh memory, in batches sharing one snapshot; saved after each batch."""
    memory: Memory = ConceptMemory() if config.format == "ps" else LessonMemory()
    stats: dict[str, dict[str, int]] = {}
    notes = notes if notes is not None else []
    seeds = select_seeds(config.seeds)
    started = time.monotonic()
    for start in range(0, len(seeds), config.batch_size):
        batch = seeds[start:start + config.batch_size]
        items = []
        for offset, seed in enumerate(batch):  # every abstraction of the batch sees the same memory
            items.append((seed.task_id, seed.code, _write(llm, config, memory, seed.task_id, seed.code, seed.summary,
                                                          seed.pseudocode, stats, notes)))
            done = start + offset + 1
            progress.say(f"memory: seed {seed.task_id} abstracted ({done}/{len(seeds)}, "
                         f"{progress.eta(done, len(seeds), started)})")
        _merge(memory, items)
        if path is not None:
            save_memory(memory, path)
    return memory, stats


def select_hint(config: ArcMemoConfig, llm: LLM, memory: Memory | None, task: ArcTask, embedder: Any,
                stats: dict[str, dict[str, int]]) -> tuple[str, list[str]]:
    """The hint block for one task and what was selected (names, or lesson numbers as strings)."""
    if memory is None or config.selection == "none":
        return "", []
    if isinstance(memory, LessonMemory):
        if config.selection == "all":
            return memory.render_hint(range(1, len(memory.lessons) + 1)), []
        outcome = programs.select_lessons(llm, memory, task, config.selecting, k=config.top_k,
                                          stats=stats.setdefault("select", {}))
        chosen = outcome.value or []
        return memory.render_hint(chosen), [str(i) for i in chosen]
    if config.selection == "all":
        return memory.render(), []
    if config.selection == "embedding":
        names = programs.select_by_embedding(embedder, memory, task, k=config.top_k)
    else:
        outcome = programs.select_concepts(llm, memory, task, config.selecting, k=config.top_k,
                                           stats=stats.setdefault("select", {}))
        names = outcome.value.names if outcome.value is not None else []
    return (memory.render(selected=names) if names else ""), names


def solve_tasks(config: ArcMemoConfig, llm: LLM, memory: Memory | None, tasks: list[ArcTask], run: Run,
                stats: dict[str, dict[str, int]], embedder: Any = None) -> dict[str, list[Attempt]]:
    """The continual loop over `tasks`; every step is logged to `attempts.jsonl`; returns task id -> attempts."""
    memory_path = run.dir / "memory.json"
    hints: dict[str, tuple[str, list[str]]] = {}
    attempts: dict[str, list[Attempt]] = {t.id: [] for t in tasks}
    started, steps_done, total = time.monotonic(), 0, len(tasks) * config.max_passes

    def solve_batch(batch: list[ArcTask], threads: dict[str, list[Step]], pass_index: int) -> list[Step]:
        nonlocal steps_done
        steps = []
        for task in batch:
            if task.id not in hints:  # selection once per task (the paper's default: no re-selection)
                hints[task.id] = select_hint(config, llm, memory, task, embedder, stats)
            step = _attempt(config, llm, task, hints[task.id], attempts[task.id], stats, pass_index)
            attempts[task.id].append(step.payload["attempt"])
            append_record(run.dir / "attempts.jsonl", _record(task, step, pass_index))
            steps.append(step)
            steps_done += 1
            progress.say(f"{task.id} pass {pass_index + 1}: train {'ok' if step.train_correct else 'fails'} "
                         f"({steps_done} steps, {progress.eta(steps_done, total, started)})")
        return steps

    def write(verified: list[tuple[str, Step]]) -> list[str]:
        if memory is None:
            return []
        notes: list[dict[str, Any]] = []
        items = [(task_id, step.payload["attempt"].code,
                  _write(llm, config, memory, task_id, step.payload["attempt"].code, None, None, stats, notes))
                 for task_id, step in verified]
        written = _merge(memory, items)
        save_memory(memory, memory_path)
        for note in notes:
            append_record(run.dir / "writes.jsonl", {"phase": "solve", **note})
        return written

    run_continual(tasks, solve_batch, write, batch_size=config.batch_size, max_passes=config.max_passes,
                  update=config.continual and memory is not None)
    return attempts


def _attempt(config: ArcMemoConfig, llm: LLM, task: ArcTask, hint: tuple[str, list[str]],
             previous: list[Attempt], stats: dict[str, dict[str, int]], pass_index: int) -> Step:
    settings = config.solving.model_copy(update={"temperature": config.solving.temperature if pass_index == 0
                                                 else max(config.solving.temperature, 0.7)})
    outcome = programs.solve(llm, task, hint[0], previous[-1:] or None, settings, stats=stats.setdefault("solve", {}))
    if outcome.value is None:
        attempt = Attempt(code="", train_outputs=[None] * len(task.train), test_outputs=[None] * len(task.test),
                          errors={"code": outcome.error or "no parsable program"})
    else:
        attempt = run_transform(outcome.value, task, timeout_s=config.timeout_s)
    return Step(train_correct(task, attempt), {"attempt": attempt, "selected": hint[1], "parsed": outcome.ok})


def _record(task: ArcTask, step: Step, pass_index: int) -> dict[str, Any]:
    attempt: Attempt = step.payload["attempt"]
    return {"task": task.id, "pass": pass_index + 1, "parsed": step.payload["parsed"], "selected": step.payload["selected"],
            "train_correct": step.train_correct, "strict": strict_correct(task, attempt),
            "test_solved": official_score(task, [attempt]), "errors": attempt.errors, "code": attempt.code}


def open_memory(config: ArcMemoConfig) -> Memory | None:
    if config.memory is None:
        return None
    return load_memory(config.memory, expect=config.format)


def _load_llm(config: ArcMemoConfig) -> LLM:
    from reasonlab.llm import load_llm

    with progress.phase(f"loading {config.llm}"):
        return load_llm(config.llm)


def _load_embedder(config: ArcMemoConfig) -> Any:
    if config.selection != "embedding":
        return None
    from reasonlab.llm.embed import load_embedder

    return load_embedder("minilm")


def _build_into(config: ArcMemoConfig, llm: LLM, run: Run) -> tuple[Memory, dict[str, dict[str, int]]]:
    """Build the memory into `run` (memory.json, writes.jsonl), or reuse a finished build there."""
    done, built = run.dir / "memory.done.json", run.dir / "memory.built.json"
    if done.is_file():  # the memory as built, before any continual write of an interrupted solve
        progress.say(f"reusing the memory built in {run.dir}")
        memory = load_memory(built, expect=config.format)
        save_memory(memory, run.dir / "memory.json")
        return memory, json.loads(done.read_text())["stats"]
    notes: list[dict[str, Any]] = []
    memory, stats = build_memory(config, llm, run.dir / "memory.json", notes)
    save_memory(memory, run.dir / "memory.json")
    save_memory(memory, built)
    for note in notes:
        append_record(run.dir / "writes.jsonl", {"phase": "build", **note})
    atomic_write_json(done, {"stats": stats})
    return memory, stats


def _restart_solving(run_dir: Path) -> None:
    """On --resume solving starts again: drop the interrupted solve's attempts and write notes."""
    (run_dir / "attempts.jsonl").unlink(missing_ok=True)
    writes = run_dir / "writes.jsonl"
    if writes.is_file():
        kept = [r for r in read_records(writes) if r.get("phase") != "solve"]
        atomic_write_text(writes, "".join(json.dumps(r) + "\n" for r in kept))


def _memory_size(memory: Memory) -> dict[str, Any]:
    return memory.stats() if isinstance(memory, ConceptMemory) else {"lessons": len(memory.lessons)}


def run_build(config: ArcMemoConfig, out: str | Path, name: str, resume: bool = False,
              overwrite: bool = False, llm: LLM | None = None) -> Path:
    """`reasonlab arcmemo build-memory`: the memory from the seed solutions, with the rates of every LLM step."""
    select_seeds(config.seeds)  # an unknown seed id fails before the model loads
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
    llm = llm or _load_llm(config)
    memory, stats = _build_into(config, llm, run)
    run.write_summary({"memory": _memory_size(memory), "rates": rates(stats), "name_reuse": _reuse(run.dir)})
    return run.dir


def _reuse(run_dir: Path) -> dict[str, Any]:
    """Mean name-reuse rate of the PS abstraction calls that returned concepts."""
    path = run_dir / "writes.jsonl"
    rows = [r for r in read_records(path) if r.get("step") == "abstract" and r.get("concepts")] \
        if path.is_file() else []
    values = [r["name_reuse"] for r in rows]
    return {"calls": len(values), "mean": sum(values) / len(values) if values else None}


def run_eval(config: ArcMemoConfig, out: str | Path, name: str, resume: bool = False, overwrite: bool = False,
             llm: LLM | None = None) -> Path:
    """`reasonlab arcmemo eval | solve`: build (or read) the memory, solve the tasks, score them."""
    tasks = load_tasks(config)  # bad input fails before the run folder exists and before the model loads
    given = open_memory(config) if config.selection != "none" else None
    if given is None:
        select_seeds(config.seeds)
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
    llm = llm or _load_llm(config)
    stats: dict[str, dict[str, int]] = {}
    memory: Memory | None = None
    if config.selection != "none":
        if given is not None:
            memory = given
            save_memory(memory, run.dir / "memory.json")  # the run works on its own copy
        else:
            memory, build_stats = _build_into(config, llm, run)
            stats.update({f"build {k}": v for k, v in build_stats.items()})
    _restart_solving(run.dir)
    with progress.phase(f"solving {len(tasks)} tasks, up to {config.max_passes} attempts each"):
        solve_stats: dict[str, dict[str, int]] = {}
        attempts = solve_tasks(config, llm, memory, tasks, run, solve_stats, _load_embedder(config))
    stats.update(solve_stats)
    summary = summarize_pipeline(tasks, attempts, stats)
    summary["memory"] = None if memory is None else _memory_size(memory)
    summary["name_reuse"] = _reuse(run.dir)
    run.write_summary(summary)
    return run.dir
