"""ArcMemo's LLM steps as typed programs: PS preprocessing and abstraction, OE lesson writing, both selections
(and the MiniLM embedding baseline), and the solver with its retry section (spec sections 3-5).

Each program fills a template of `prompts`, decodes under a bounded JSON schema (the solver: a regex that
forces `def transform(input_grid):` and 1-24 indented lines) through `run_program`, and parses a typed
value; a reply that never parses is a failure value (`ProgramOutcome.value is None`), never an exception.
Selection enums hold only the memory's exact names (or valid lesson numbers); the parsers still drop unknown
items and repeats. Deviations from the paper: JSON instead of fenced YAML; OE selection reads the grids, not
a VLM's description of them.

    outcome = select_concepts(llm, memory, task, ProgramSettings(max_tokens=96), k=5)
    names = outcome.value.names if outcome.ok else []
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from reasonlab.llm.base import LLM
from reasonlab.llm.embed import Embedder, cosine_similarity
from reasonlab.llm.program import ProgramOutcome, ProgramSettings, run_program
from reasonlab.systems.arcmemo import prompts
from reasonlab.systems.arcmemo.memory import ConceptMemory, Lesson, LessonMemory, text_for_embedding
from reasonlab.systems.arcmemo.tasks import ArcTask, Attempt, format_task_prompt_grids, grid_text, grids_equal

__all__ = [
    "SOLVE_REGEX",
    "Selection",
    "SolutionSummary",
    "abstract_concepts",
    "abstract_schema",
    "extract_lessons",
    "lesson_selection_schema",
    "lessons_schema",
    "name_reuse_rate",
    "parse_code",
    "select_by_embedding",
    "select_concepts",
    "select_lessons",
    "selection_schema",
    "solve",
    "summarize_solution",
    "summary_schema",
    "task_text_for_embedding",
    "write_solution_prompt",
]

# bounds of the JSON replies (characters, items): short enough for a 270M model's few hundred tokens
SUMMARY_CHARS, STEP_CHARS, MAX_STEPS = 160, 100, 6
NAME_CHARS, SHORT_CHARS, TEXT_CHARS, LINE_CHARS = 60, 40, 160, 100
MAX_PARAMETERS, MAX_LINES = 3, 3
LESSON_CHARS = 160
NOTES_CHARS = 80
# the solver writes the body of `transform`: at most this many indented lines
MAX_CODE_LINES = 24
SOLVE_REGEX = rf"def transform\(input_grid\):\n(    [^\n]*\n){{0,{MAX_CODE_LINES - 1}}}    [^\n]*\n?"
_CODE_START = re.compile(r"def transform\(input_grid[^)]*\)[^:\n]*:\n")
# a concept name: one line of at most NAME_CHARS characters, no quote, backslash or colon (it keys the view)
_NAME_PATTERN = rf'^[^"\\:\u0000-\u001f]{{1,{NAME_CHARS}}}$'
_KINDS = ("structure", "routine")


@dataclass
class SolutionSummary:
    """PS preprocessing: a one-line summary and numbered pseudocode lines."""

    summary: str
    pseudocode: str


@dataclass
class Selection:
    """Concepts chosen for a task (exact memory names, no repeats) and the selector's note to the solver."""

    names: list[str]
    notes: str = ""


def _string(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_chars}


def _strings(max_chars: int, max_items: int) -> dict[str, Any]:
    return {"type": "array", "items": _string(max_chars), "maxItems": max_items}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """All properties required, in name order: the order `reasonlab.llm.constrained` enforces (it serializes
    schemas with sorted keys), so the demonstrations, dumped with sorted keys too, show the forced layout."""
    ordered = dict(sorted(properties.items()))
    return {"type": "object", "properties": ordered, "required": list(ordered), "additionalProperties": False}


def _demo_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"reply is a JSON {type(value).__name__}, not an object")
    return value


def _clean(value: Any) -> str:
    """A reply field as one stripped line ('' for anything that is not a string)."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _clean_list(value: Any, max_items: int) -> list[str]:
    items = value if isinstance(value, list) else []
    lines = [_clean(item) for item in items]
    return [line for line in lines if line][:max_items]


def _count(stats: dict[str, int] | None, key: str, amount: int) -> None:
    if stats is not None:
        stats[key] = stats.get(key, 0) + amount


def _memory_text(text: str) -> str:
    return text if text.strip() else prompts.EMPTY_MEMORY


def summary_schema() -> dict[str, Any]:
    return _object({"summary": _string(SUMMARY_CHARS), "pseudocode": _strings(STEP_CHARS, MAX_STEPS)})


def _parse_summary(text: str) -> SolutionSummary:
    reply = _json_object(text)
    summary, steps = _clean(reply.get("summary")), _clean_list(reply.get("pseudocode"), MAX_STEPS)
    if not summary or not steps:
        raise ValueError("summary or pseudocode is empty")
    return SolutionSummary(summary, "\n".join(f"{i}. {step}" for i, step in enumerate(steps, start=1)))


def summarize_solution(llm: LLM, code: str, settings: ProgramSettings,
                       stats: dict[str, int] | None = None) -> ProgramOutcome[SolutionSummary]:
    """Describe solution code as a one-line summary and pseudocode (the PS write's preprocessing)."""
    demo = prompts.SUMMARIZE_DEMO
    prompt = prompts.SUMMARIZE_SOLUTION.format(demo_code=demo["code"], demo_reply=_demo_json(demo["reply"]),
                                               code=code.strip())
    return run_program(llm, prompt, summary_schema(), _parse_summary, settings, stats=stats)


def abstract_schema(max_concepts: int = 4) -> dict[str, Any]:
    """The concept list a PS write may return: at most `max_concepts` bounded annotations."""
    parameter = _object({"name": _string(SHORT_CHARS), "typing": _string(SHORT_CHARS),
                         "description": _string(LINE_CHARS)})
    concept = _object({
        "concept": {"type": "string", "pattern": _NAME_PATTERN},
        "kind": {"type": "string", "enum": list(_KINDS)},
        "routine_subtype": _string(SHORT_CHARS),
        "output_typing": _string(SHORT_CHARS),
        "parameters": {"type": "array", "items": parameter, "maxItems": MAX_PARAMETERS},
        "description": _string(TEXT_CHARS),
        "cues": _strings(LINE_CHARS, MAX_LINES),
        "implementation": _strings(LINE_CHARS, MAX_LINES),
    })
    return _object({"concepts": {"type": "array", "items": concept, "minItems": 1, "maxItems": max_concepts}})


def _annotation(item: Any) -> dict[str, Any] | None:
    """One reply item as a `write_concept` annotation: empty fields left out, so they never win a merge."""
    if not isinstance(item, dict) or not _clean(item.get("concept")):
        return None
    annotation: dict[str, Any] = {"concept": _clean(item["concept"])}
    kind = _clean(item.get("kind")).lower()
    if kind in _KINDS:
        annotation["kind"] = kind
    for key in ("routine_subtype", "output_typing", "description"):
        if _clean(item.get(key)):
            annotation[key] = _clean(item.get(key))
    parameters = []
    for raw in item.get("parameters") if isinstance(item.get("parameters"), list) else []:
        if isinstance(raw, dict) and _clean(raw.get("name")):
            fields = {key: _clean(raw.get(key)) for key in ("name", "typing", "description")}
            parameters.append({key: value for key, value in fields.items() if value})
    if parameters:
        annotation["parameters"] = parameters[:MAX_PARAMETERS]
    for key in ("cues", "implementation"):
        lines = _clean_list(item.get(key), MAX_LINES)
        if lines:
            annotation[key] = lines
    return annotation


def _concepts_parser(max_concepts: int):
    def parse(text: str) -> list[dict[str, Any]]:
        items = _json_object(text).get("concepts")
        annotations = [a for a in map(_annotation, items if isinstance(items, list) else []) if a is not None]
        if not annotations:
            raise ValueError("the reply names no concept")
        return annotations[:max_concepts]
    return parse


def abstract_concepts(llm: LLM, memory: ConceptMemory, puzzle_id: str, summary: str, pseudocode: str,
                      settings: ProgramSettings, max_concepts: int = 4,
                      stats: dict[str, int] | None = None) -> ProgramOutcome[list[dict[str, Any]]]:
    """Concept annotations of one solved puzzle, written against the current memory (merge them with
    `memory.write_batch([(puzzle_id, value)])`; `puzzle_id` names where they merge, it is not prompt text)."""
    demo = prompts.ABSTRACT_DEMO
    prompt = prompts.ABSTRACT_CONCEPTS.format(
        demo_memory=demo["memory"], demo_summary=demo["summary"], demo_pseudocode=demo["pseudocode"],
        demo_reply=_demo_json(demo["reply"]), memory=_memory_text(memory.render()), summary=summary.strip(),
        pseudocode=pseudocode.strip())
    outcome = run_program(llm, prompt, abstract_schema(max_concepts), _concepts_parser(max_concepts),
                          settings, stats=stats)
    if outcome.value is not None:
        _count(stats, "concepts", len(outcome.value))
        _count(stats, "reused", sum(a["concept"] in memory.concepts for a in outcome.value))
    return outcome


def name_reuse_rate(concepts: Sequence[dict[str, Any]], memory: ConceptMemory) -> float:
    """Share of the distinct concept names in `concepts` that the memory already holds (0.0 for none)."""
    names = {_clean(c.get("concept") or c.get("name")) for c in concepts if isinstance(c, dict)} - {""}
    return sum(name in memory.concepts for name in names) / len(names) if names else 0.0


def lessons_schema(max_lessons: int = 3) -> dict[str, Any]:
    lesson = _object({"situation": _string(LESSON_CHARS), "suggestion": _string(LESSON_CHARS)})
    return _object({"lessons": {"type": "array", "items": lesson, "minItems": 1, "maxItems": max_lessons}})


def _lessons_parser(puzzle_id: str, max_lessons: int):
    def parse(text: str) -> list[Lesson]:
        items = _json_object(text).get("lessons")
        lessons = [Lesson(situation=_clean(item.get("situation")), suggestion=_clean(item.get("suggestion")),
                          source=puzzle_id)
                   for item in (items if isinstance(items, list) else []) if isinstance(item, dict)]
        lessons = [lesson for lesson in lessons if lesson.situation and lesson.suggestion]
        if not lessons:
            raise ValueError("the reply holds no lesson with both a situation and a suggestion")
        return lessons[:max_lessons]
    return parse


def extract_lessons(llm: LLM, puzzle_id: str, summary_or_code: str, settings: ProgramSettings,
                    max_lessons: int = 3, stats: dict[str, int] | None = None,
                    ) -> ProgramOutcome[list[Lesson]]:
    """The OE write: situation/suggestion lessons of one solved puzzle, sourced to `puzzle_id`."""
    demo = prompts.LESSONS_DEMO
    reply = _demo_json(demo["reply"])
    prompt = prompts.EXTRACT_LESSONS.format(demo_solution=demo["solution"], demo_reply=reply,
                                            solution=summary_or_code.strip())
    return run_program(llm, prompt, lessons_schema(max_lessons), _lessons_parser(puzzle_id, max_lessons),
                       settings, stats=stats)


def _demo_task() -> ArcTask:
    demo = prompts.SELECT_DEMO
    return ArcTask("demo", [(np.asarray(i), np.asarray(o)) for i, o in demo["train"]],
                   [(np.asarray(i), np.asarray(i)) for i in demo["test_inputs"]])


def selection_schema(names: Sequence[str], k: int) -> dict[str, Any]:
    """Up to `k` names, each one of `names` exactly, and a short note."""
    items = {"type": "string", "enum": list(names)}
    return _object({"names": {"type": "array", "items": items, "maxItems": min(k, len(names))},
                    "notes": _string(NOTES_CHARS)})


def _selection_parser(names: Sequence[str], k: int, stats: dict[str, int] | None):
    known = set(names)

    def parse(text: str) -> Selection:
        reply = _json_object(text)
        given = reply.get("names") if isinstance(reply.get("names"), list) else []
        chosen = [n for n in dict.fromkeys(n for n in given if isinstance(n, str)) if n in known][:k]
        _count(stats, "dropped", len(given) - len(chosen))
        return Selection(chosen, _clean(reply.get("notes")))
    return parse


def select_concepts(llm: LLM, memory: ConceptMemory, task: ArcTask, settings: ProgramSettings, k: int = 5,
                    usage_threshold: int = 2, stats: dict[str, int] | None = None,
                    ) -> ProgramOutcome[Selection]:
    """The PS read: up to `k` exact concept names for `task` (an empty memory selects nothing, no call)."""
    names = memory.names()
    if not names or k < 1:
        return ProgramOutcome(Selection([]))
    demo = prompts.SELECT_DEMO
    prompt = prompts.SELECT_CONCEPTS.format(
        demo_memory=demo["memory"], demo_grids=format_task_prompt_grids(_demo_task()).rstrip(),
        demo_reply=_demo_json(demo["reply"]), memory=memory.render(usage_threshold=usage_threshold),
        grids=format_task_prompt_grids(task).rstrip())
    return run_program(llm, prompt, selection_schema(names, k), _selection_parser(names, k, stats), settings,
                       stats=stats)


def lesson_selection_schema(count: int, k: int) -> dict[str, Any]:
    """Up to `k` lesson numbers, each in 1..count."""
    numbers = {"type": "integer", "enum": list(range(1, count + 1))}
    return _object({"lessons": {"type": "array", "items": numbers, "maxItems": min(k, count)}})


def _lesson_numbers_parser(count: int, k: int, stats: dict[str, int] | None):
    def parse(text: str) -> list[int]:
        given = _json_object(text).get("lessons")
        given = given if isinstance(given, list) else []
        valid = (n for n in given if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= count)
        chosen = list(dict.fromkeys(valid))[:k]
        _count(stats, "dropped", len(given) - len(chosen))
        return chosen
    return parse


def select_lessons(llm: LLM, lessons: LessonMemory, task: ArcTask, settings: ProgramSettings, k: int = 5,
                   stats: dict[str, int] | None = None) -> ProgramOutcome[list[int]]:
    """The OE read: up to `k` distinct 1-based lesson numbers for `task` (an empty memory: none, no call)."""
    count = len(lessons.lessons)
    if count == 0 or k < 1:
        return ProgramOutcome([])
    prompt = prompts.SELECT_LESSONS.format(
        demo_grids=format_task_prompt_grids(_demo_task()).rstrip(),
        demo_reply=_demo_json(prompts.SELECT_LESSONS_DEMO_REPLY), lessons=lessons.render_numbered(),
        grids=format_task_prompt_grids(task).rstrip())
    parse = _lesson_numbers_parser(count, k, stats)
    return run_program(llm, prompt, lesson_selection_schema(count, k), parse, settings, stats=stats)


def _colors(grids: Sequence[np.ndarray]) -> list[int]:
    return sorted({int(c) for grid in grids for c in np.unique(grid)})


def task_text_for_embedding(task: ArcTask) -> str:
    """A task in words for a sentence embedder: size relation and colors of the train pairs (no grids)."""
    inputs, outputs = [i for i, _ in task.train], [o for _, o in task.train]
    if all(i.shape == o.shape for i, o in task.train):
        shape = "output grid has the same size as the input"
    elif all(o.size > i.size for i, o in task.train):
        shape = "output grid is larger than the input"
    elif all(o.size < i.size for i, o in task.train):
        shape = "output grid is smaller than the input"
    else:
        shape = "output size varies"
    names = prompts.COLOR_NAMES
    return prompts.TASK_EMBEDDING_TEXT.format(
        shape=shape, colors_in=", ".join(names[c] for c in _colors(inputs)),
        colors_out=", ".join(names[c] for c in _colors(outputs)))


def select_by_embedding(embedder: Embedder, memory: ConceptMemory, task: ArcTask, k: int = 5) -> list[str]:
    """The MiniLM baseline: the `k` concepts whose text is most cosine-similar to the task's text (ties keep
    memory order)."""
    names = memory.names()
    if not names or k < 1:
        return []
    texts = [task_text_for_embedding(task), *(text_for_embedding(memory.concepts[n]) for n in names)]
    vectors = embedder.embed(texts)
    similarity = cosine_similarity(vectors[:1], vectors[1:])[0]
    order = sorted(range(len(names)), key=lambda i: (-float(similarity[i]), i))
    return [names[i] for i in order[:k]]


def _retry_block(task: ArcTask, attempt: Attempt, max_mismatches: int) -> str:
    """The last attempt's code, its errors and its wrong TRAIN outputs beside the expected ones (test outputs
    are never read)."""
    problems = [prompts.RETRY_ERROR_LINE.format(where=where, error=error)
                for where, error in attempt.grouped_errors()]
    pairs = zip(attempt.train_outputs, task.train, strict=False)
    wrong = [(i, got, out) for i, (got, (_, out)) in enumerate(pairs, start=1)
             if got is not None and not grids_equal(got, out)]
    problems += [prompts.RETRY_MISMATCH.format(index=i, got=grid_text(got), expected=grid_text(out))
                 for i, got, out in wrong[:max_mismatches]]
    code = attempt.code.strip() or prompts.NO_CODE
    return prompts.RETRY_BLOCK.format(code=code, problems="".join(problems))


def write_solution_prompt(task: ArcTask, hint: str = "", previous: Sequence[Attempt] | None = None,
                          max_mismatches: int = 2) -> str:
    """The solve prompt: instructions, train pairs, test inputs, the hint block and, after a failed attempt,
    the retry section; it ends inside a python fence where `def transform(input_grid):` begins."""
    hint_block = prompts.HINT_BLOCK.format(hint=hint.strip()) if hint.strip() else ""
    retry = _retry_block(task, previous[-1], max_mismatches) if previous else ""
    return prompts.SOLVE.format(grids=format_task_prompt_grids(task).rstrip(), hint=hint_block, retry=retry,
                                header=prompts.SOLVE_HEADER)


def parse_code(text: str) -> str:
    """The model's `transform` source (a last line cut off by the token limit is dropped); ValueError without
    a `def transform(input_grid...)` header or when the code does not compile (it is never executed)."""
    code = text.strip("\n")
    if not _CODE_START.match(code + "\n"):
        raise ValueError("the reply does not start with def transform(input_grid):")
    candidates = [code]
    if not text.endswith("\n") and "\n" in code:
        candidates.append(code.rsplit("\n", 1)[0])
    error: Exception | None = None
    for candidate in candidates:
        try:
            compile(candidate, "<model>", "exec")
            return candidate
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as err:
            error = error or err
    raise ValueError(f"the code does not compile: {type(error).__name__}: {error}")


def solve(llm: LLM, task: ArcTask, hint: str, previous: Sequence[Attempt] | None, settings: ProgramSettings,
          stats: dict[str, int] | None = None) -> ProgramOutcome[str]:
    """One solve attempt: the source of `def transform(input_grid)` (numpy is `np`), decoded under
    `SOLVE_REGEX` and compiled (never run) by `parse_code`."""
    prompt = write_solution_prompt(task, hint, previous)
    return run_program(llm, prompt, None, parse_code, settings, stats=stats, regex=SOLVE_REGEX, stop=["```"])
