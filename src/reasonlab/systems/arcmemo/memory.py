"""ArcMemo's two memory formats: open-ended lessons (OE) and program-synthesis concepts (PS).

- OE: an ordered list of `{situation, suggestion, source}` lessons; the write appends (duplicates kept, as
  in the paper). Rendered as 1-based `lesson N.` items for selection and as situation/suggestion pairs for
  the solve hint. Deviation from the official code: its selection list prints the situation twice; ours
  prints the suggestion in the second field.
- PS: named concepts (structures and routines with typed parameters, cues and implementation notes), merged
  by exact name with the paper's deterministic rules (`ConceptMemory.write_concept`), rendered in four
  sections (`ConceptMemory.render`).

On disk both are JSON with a format tag (`{"format": "arcmemo-oe" | "arcmemo-ps", "version": 1, ...}`),
written atomically; `load_memory` turns every bad file into a one-line `UserError`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write_text

__all__ = [
    "FORMAT_VERSION",
    "Concept",
    "ConceptMemory",
    "Lesson",
    "LessonMemory",
    "Parameter",
    "Solution",
    "load_memory",
    "save_memory",
    "text_for_embedding",
]

FORMAT_VERSION = 1
_FORMAT_TAGS = {"oe": "arcmemo-oe", "ps": "arcmemo-ps"}
_FORMAT_WORDS = {"oe": "an open-ended (oe)", "ps": "a program-synthesis (ps)"}
_ARTICLES = {"oe": "an", "ps": "a"}
_BUILD = "`reasonlab arcmemo build-memory --format {fmt}`"
_KINDS = ("structure", "routine")
_GRID_SUBTYPE = "grid manipulation"
_NO_SUBTYPE = "uncategorized"
_TYPEDEF = ":="

ConceptKind = Literal["structure", "routine"]


class Lesson(BaseModel):
    """One open-ended lesson: when it applies, what to try, and the puzzle it came from."""

    situation: str
    suggestion: str
    source: str = ""


class LessonMemory(BaseModel):
    """The OE memory: an ordered list of lessons, appended to and never merged."""

    lessons: list[Lesson] = Field(default_factory=list)

    def add(self, lessons: Iterable[Lesson]) -> None:
        """Append lessons in order; duplicates are kept (the paper's write never sees the memory)."""
        self.lessons.extend(lessons)

    def render_numbered(self) -> str:
        """The selection view: `lesson N.` items, numbered from 1."""
        items = [f"lesson {number}.\n{_lesson_fields(lesson, '  ')}"
                 for number, lesson in enumerate(self.lessons, start=1)]
        return "\n".join(items)

    def render_hint(self, indices: Iterable[int]) -> str:
        """The solve-prompt hint for 1-based lesson numbers; out-of-range numbers and repeats are dropped."""
        chosen: list[int] = []
        for index in indices:
            valid = isinstance(index, int) and not isinstance(index, bool) and 1 <= index <= len(self.lessons)
            if valid and index not in chosen:
                chosen.append(index)
        return "\n".join(_lesson_fields(self.lessons[i - 1], "- ") for i in chosen)


def _lesson_fields(lesson: Lesson, head: str) -> str:
    """`situation:` after `head`, `suggestion:` below it, both indented two spaces."""
    return f"{head}situation: {_hang(lesson.situation, 4)}\n  suggestion: {_hang(lesson.suggestion, 4)}"


class Parameter(BaseModel):
    """A concept parameter; `typing` is Python-like with ARC terms (`list[object]`, `Callable[..]`)."""

    name: str
    typing: str | None = None
    description: str | None = None


class Solution(BaseModel):
    """A solved puzzle's code with its one-line summary and pseudocode (the abstraction's input)."""

    solution: str
    summary: str | None = None
    pseudocode: str | None = None


class Concept(BaseModel):
    """One PS entry; `name` is the unique key, `used_in` lists the puzzles whose annotation named it."""

    name: str
    kind: ConceptKind
    routine_subtype: str | None = None
    output_typing: str | None = None
    parameters: list[Parameter] = Field(default_factory=list)
    description: str | None = None
    cues: list[str] = Field(default_factory=list)
    implementation: list[str] = Field(default_factory=list)
    used_in: list[str] = Field(default_factory=list)


class ConceptMemory(BaseModel):
    """The PS memory: concepts by name (insertion order = render order), solutions, custom types."""

    concepts: dict[str, Concept] = Field(default_factory=dict)
    solutions: dict[str, Solution] = Field(default_factory=dict)
    custom_types: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keys_are_names(self) -> ConceptMemory:
        for key, concept in self.concepts.items():
            if key != concept.name:
                raise ValueError(f"concept stored under {key!r} is named {concept.name!r}")
        return self

    @property
    def index(self) -> dict[str, list[str]]:
        """Kind -> concept names in insertion order; derived from `concepts`, so rebuilt on every load."""
        index: dict[str, list[str]] = {kind: [] for kind in _KINDS}
        for concept in self.concepts.values():
            index[concept.kind].append(concept.name)
        return index

    def names(self) -> list[str]:
        """Every concept name, in insertion order."""
        return list(self.concepts)

    def write_concept(self, puzzle_id: str, annotation: Any) -> str | None:
        """Merge one annotation written for `puzzle_id`; returns the concept's name, or None when skipped."""
        if not isinstance(annotation, dict):
            return None
        name = _concept_name(annotation)
        if name is None:
            return None
        concept = self.concepts.get(name)
        if concept is None:
            kind = annotation.get("kind")
            kind = kind.strip().lower() if isinstance(kind, str) else None
            if kind not in _KINDS:
                return None
            concept = Concept(name=name, kind=kind)
            self.concepts[name] = concept
        _merge_into(concept, puzzle_id, annotation)
        self._harvest_typedefs(concept)
        return name

    def write_batch(self, items: Iterable[tuple[str, Any]]) -> list[str]:
        """Merge `(puzzle_id, annotations)` pairs in order; returns the names written, first-seen order."""
        written: list[str] = []
        for puzzle_id, puzzle_annotations in items:
            batch = [puzzle_annotations] if isinstance(puzzle_annotations, dict) else puzzle_annotations
            if not isinstance(batch, list):
                continue
            for annotation in batch:
                name = self.write_concept(puzzle_id, annotation)
                if name is not None and name not in written:
                    written.append(name)
        return written

    def write_solution(self, puzzle_id: str, solution: str, summary: str | None = None,
                       pseudocode: str | None = None) -> None:
        """Store (or replace) the solution of `puzzle_id` with its summary and pseudocode."""
        self.solutions[puzzle_id] = Solution(solution=solution, summary=summary, pseudocode=pseudocode)

    def render(self, selected: Collection[str] | None = None, usage_threshold: int = 2,
               show_cues: bool = False, show_parameter_descriptions: bool = False) -> str:
        """The YAML-like memory block. With `selected`, those concepts in full (whatever their usage, parameter
        descriptions on) and every other one by name only."""
        if selected is not None:
            show_parameter_descriptions = True
        style = _Style(selected, usage_threshold, show_cues, show_parameter_descriptions)
        blocks: list[str] = []
        for title, concepts in self._sections():
            if title == "## types":
                lines = [f"- {name} {_TYPEDEF} {_hang(definition, 2)}"
                         for name, definition in self.custom_types.items()]
            else:
                lines = _section_lines(concepts, style, bucketed=title == "## other routines")
            if lines:
                blocks.append("\n".join([title, *lines]))
        return "\n\n".join(blocks)

    def stats(self) -> dict[str, Any]:
        """Counts for logs: concepts (total and by kind), solutions, custom types, mean `used_in` length."""
        concepts = list(self.concepts.values())
        mean_used = sum(len(c.used_in) for c in concepts) / len(concepts) if concepts else 0.0
        return {
            "concepts": len(concepts),
            "by_kind": {kind: len(names) for kind, names in self.index.items()},
            "solutions": len(self.solutions),
            "custom_types": len(self.custom_types),
            "mean_used_in": mean_used,
        }

    def _sections(self) -> list[tuple[str, list[Concept]]]:
        structures = [c for c in self.concepts.values() if c.kind == "structure"]
        routines = [c for c in self.concepts.values() if c.kind == "routine"]
        grid = [c for c in routines if _subtype(c) == _GRID_SUBTYPE]
        other = [c for c in routines if _subtype(c) != _GRID_SUBTYPE]
        return [("## structure concepts", structures), ("## types", []),
                ("## grid manipulation routines", grid), ("## other routines", other)]

    def _harvest_typedefs(self, concept: Concept) -> None:
        concept.output_typing = self._register_typedef(concept.output_typing)
        for parameter in concept.parameters:
            parameter.typing = self._register_typedef(parameter.typing)

    def _register_typedef(self, typing: str | None) -> str | None:
        """`Name := definition` registers a custom type (first definition kept) and returns `Name`."""
        if typing is None or _TYPEDEF not in typing:
            return typing
        name, definition = (part.strip() for part in typing.split(_TYPEDEF, 1))
        if not name or not definition:
            return typing
        self.custom_types.setdefault(name, definition)
        return name


def _concept_name(annotation: dict[Any, Any]) -> str | None:
    for key in ("concept", "name"):
        value = annotation.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _text(value: Any) -> str | None:
    """A usable single text value: a stripped non-empty string (numbers str()-ed, string lists joined)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        value = " ".join(item.strip() for item in value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _lines(value: Any) -> list[str]:
    """Cue or implementation lines: a one-key dict `{k: v}` becomes `k: v`, other non-strings are str()-ed."""
    items = value if isinstance(value, list) else [value]
    lines: list[str] = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, dict) and len(item) == 1:
            [(key, inner)] = item.items()
            item = f"{key}: {inner}"
        text = (item if isinstance(item, str) else str(item)).strip()
        if text:
            lines.append(text)
    return lines


def _union(existing: list[str], new: list[str]) -> list[str]:
    merged = list(existing)
    for line in new:
        if line not in merged:
            merged.append(line)
    return merged


def _parameters(value: Any) -> list[Parameter]:
    """Parameters from `[{name, typing, description}]`, `[{name: typing}]`, bare names or a dict by name."""
    if isinstance(value, dict):
        value = [{"name": key, **inner} if isinstance(inner, dict) else {key: inner}
                 for key, inner in value.items()]
    if not isinstance(value, list):
        return []
    parameters: list[Parameter] = []
    for item in value:
        if isinstance(item, str) and item.strip():
            parameters.append(Parameter(name=item.strip()))
            continue
        if not isinstance(item, dict):
            continue
        if len(item) == 1 and not item.keys() & {"name", "typing", "description"}:
            [(key, typing)] = item.items()
            item = {"name": key, "typing": typing}
        name = _text(item.get("name"))
        if name is not None:
            parameters.append(Parameter(name=name, typing=_text(item.get("typing")),
                                        description=_text(item.get("description"))))
    return parameters


def _merge_parameters(existing: list[Parameter], new: list[Parameter]) -> list[Parameter]:
    """By name: a newer parameter replaces the older one in its place; new names follow in their order."""
    merged = {p.name: p for p in existing}
    for parameter in new:
        merged[parameter.name] = parameter
    return list(merged.values())


def _merge_into(concept: Concept, puzzle_id: str, annotation: dict[Any, Any]) -> None:
    if puzzle_id not in concept.used_in:
        concept.used_in.append(puzzle_id)
    concept.description = concept.description or _text(annotation.get("description"))
    concept.output_typing = concept.output_typing or _text(annotation.get("output_typing"))
    concept.routine_subtype = concept.routine_subtype or _text(annotation.get("routine_subtype"))
    concept.parameters = _merge_parameters(concept.parameters, _parameters(annotation.get("parameters")))
    concept.cues = _union(concept.cues, _lines(annotation.get("cues")))
    concept.implementation = _union(concept.implementation, _lines(annotation.get("implementation")))


@dataclass(frozen=True)
class _Style:
    """What a render shows: the selection (or None), the usage threshold and the optional fields."""

    selected: Collection[str] | None
    usage_threshold: int
    show_cues: bool
    show_parameter_descriptions: bool

    def in_full(self, concept: Concept) -> bool:
        if self.selected is None:
            return len(concept.used_in) >= self.usage_threshold
        return concept.name in self.selected


def _subtype(concept: Concept) -> str:
    return (concept.routine_subtype or "").strip().lower() or _NO_SUBTYPE


def _hang(text: str, indent: int) -> str:
    """Indent the continuation lines of a multi-line value so the block stays YAML-like."""
    return text.replace("\n", "\n" + " " * indent)


def _section_lines(concepts: list[Concept], style: _Style, bucketed: bool) -> list[str]:
    """Full entries (under `### <subtype>` headers when bucketed), then one names-only line."""
    full = [c for c in concepts if style.in_full(c)]
    rest = [c.name for c in concepts if not style.in_full(c)]
    lines: list[str] = []
    if bucketed:
        for subtype in sorted({_subtype(c) for c in full}):
            lines.append(f"### {subtype}")
            for concept in (c for c in full if _subtype(c) == subtype):
                lines.extend(_entry_lines(concept, style))
    else:
        for concept in full:
            lines.extend(_entry_lines(concept, style))
    if rest:
        label = "lower usage concepts" if style.selected is None else "other concepts"
        lines.append(f"{label}: [{', '.join(rest)}]")
    return lines


def _entry_lines(concept: Concept, style: _Style) -> list[str]:
    lines = [f"- concept: {concept.name}"]
    if concept.description:
        lines.append(f"  description: {_hang(concept.description, 4)}")
    if concept.output_typing:
        lines.append(f"  output typing: {concept.output_typing}")
    if concept.parameters:
        lines.append("  parameters:")
        show = style.show_parameter_descriptions
        lines.extend(f"    - {_parameter_text(p, show)}" for p in concept.parameters)
    if style.show_cues and concept.cues:
        lines.append("  cues:")
        lines.extend(f"    - {_hang(cue, 6)}" for cue in concept.cues)
    if concept.implementation:
        lines.append("  implementation:")
        lines.extend(f"    - {_hang(note, 6)}" for note in concept.implementation)
    return lines


def _parameter_text(parameter: Parameter, show_description: bool) -> str:
    text = parameter.name if parameter.typing is None else f"{parameter.name} (type: {parameter.typing})"
    if show_description and parameter.description:
        text += f": {_hang(parameter.description, 6)}"
    return text


def text_for_embedding(concept: Concept) -> str:
    """What an embedding retriever sees of a concept: name, description, cues and parameter names."""
    parts = [concept.name if not concept.description else f"{concept.name}: {concept.description}"]
    if concept.cues:
        parts.append("cues: " + "; ".join(concept.cues))
    if concept.parameters:
        parts.append("parameters: " + ", ".join(p.name for p in concept.parameters))
    return "\n".join(parts)


def save_memory(memory: LessonMemory | ConceptMemory, path: str | Path) -> None:
    """Write `memory` as tagged JSON, atomically: a failure leaves any previous file untouched."""
    fmt = "oe" if isinstance(memory, LessonMemory) else "ps"
    payload = {"format": _FORMAT_TAGS[fmt], "version": FORMAT_VERSION, **memory.model_dump(mode="json")}
    # serialise before touching the file, so an unserialisable value fails with the old file in place
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(path, text)


def load_memory(path: str | Path, expect: str | None = None) -> LessonMemory | ConceptMemory:
    """Read a memory written by `save_memory`; `expect` ("oe" or "ps") refuses the other format."""
    if expect is not None and expect not in _FORMAT_TAGS:
        raise UserError(f"unknown memory format {expect!r}; use 'oe' or 'ps'")
    path = Path(path)
    data = _read_json(path)
    fmt = _format_of(path, data)
    if expect is not None and fmt != expect:
        raise UserError(f"{path} is {_FORMAT_WORDS[fmt]} memory; pass --format {fmt} or build"
                        f" {_ARTICLES[expect]} {expect} memory with {_BUILD.format(fmt=expect)}")
    if data.get("version") != FORMAT_VERSION:
        raise UserError(f"{path} has arcmemo memory version {data.get('version')!r} but this reasonlab reads"
                        f" version {FORMAT_VERSION}; rebuild it with {_BUILD.format(fmt=fmt)}")
    body = {key: value for key, value in data.items() if key not in ("format", "version")}
    model = LessonMemory if fmt == "oe" else ConceptMemory
    try:
        return model.model_validate(body)
    except ValidationError as error:
        detail = error.errors()[0]
        where = ".".join(str(part) for part in detail["loc"]) or "top level"
        raise UserError(f"{path} is a malformed {_FORMAT_TAGS[fmt]} memory ({where}: {detail['msg']});"
                        f" rebuild it with {_BUILD.format(fmt=fmt)}") from None


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise UserError(f"{path}: no such memory file; check the path or build one with"
                        " `reasonlab arcmemo build-memory`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); rebuild it with"
                        " `reasonlab arcmemo build-memory`") from None
    except OSError as error:
        raise UserError(f"cannot read memory file {path} ({error.strerror}); check its permissions") from None


def _format_of(path: Path, data: Any) -> str:
    tag = data.get("format") if isinstance(data, dict) else None
    for fmt, known in _FORMAT_TAGS.items():
        if tag == known:
            return fmt
    raise UserError(f"{path} is not an arcmemo memory (no format tag 'arcmemo-oe' or 'arcmemo-ps');"
                    " pass a file written by `reasonlab arcmemo build-memory`")
