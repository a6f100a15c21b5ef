"""The three ACE roles as small LLM programs: build a prompt, decode under a JSON schema, parse a typed value.

A reply that does not parse (or breaks the schema) is retried with a fresh seed at a higher temperature; after
the last retry the role returns `RoleOutcome(value=None, error=...)` with the raw texts, and the caller skips
the update: the playbook is never touched by malformed output.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from reasonlab.llm import LLM
from reasonlab.llm.program import ProgramOutcome, ProgramSettings, run_program
from reasonlab.systems.ace import prompts
from reasonlab.systems.ace.delta import DeltaOperation
from reasonlab.systems.ace.playbook import BULLET_ID_PATTERN, Playbook

__all__ = [
    "BulletTag",
    "Curator",
    "CuratorOutput",
    "Generator",
    "GeneratorOutput",
    "Reflector",
    "ReflectorOutput",
    "RoleOutcome",
    "RoleSettings",
    "reflection_text",
    "run_program",
]

T = TypeVar("T", bound=BaseModel)


class RoleSettings(ProgramSettings):
    """Decoding and schema bounds shared by the roles (paper: temperature 0, max_tokens 4096)."""

    reasoning_chars: int = Field(0, ge=0, description="Generator 'reasoning' field bound (0 drops the field)")
    field_chars: int = Field(160, ge=8, description="bound of each Reflector text field")
    content_chars: int = Field(160, ge=8, description="bound of a Curator bullet's content")
    max_operations: int = Field(2, ge=1, description="operations per Curator delta")
    max_citations: int = Field(3, ge=0, description="bullet ids a Generator may cite")
    operations: list[Literal["ADD", "UPDATE", "REMOVE"]] = Field(
        default_factory=lambda: ["ADD"], description="operation types the Curator may emit (paper: ADD only)")


RoleOutcome = ProgramOutcome  # the roles' name for the shared outcome type


class GeneratorOutput(BaseModel):
    reasoning: str = ""
    bullet_ids: list[str] = Field(default_factory=list)
    final_answer: str


class BulletTag(BaseModel):
    id: str
    tag: Literal["helpful", "harmful", "neutral"]


class ReflectorOutput(BaseModel):
    reasoning: str = ""
    error_identification: str = ""
    root_cause_analysis: str = ""
    correct_approach: str = ""
    key_insight: str
    bullet_tags: list[BulletTag] = Field(default_factory=list)


class CuratorOutput(BaseModel):
    reasoning: str = ""
    operations: list[DeltaOperation] = Field(default_factory=list)


def _string(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_chars}


def _id_array(ids: list[str], max_items: int) -> dict[str, Any]:
    if not ids or max_items == 0:
        return {"type": "array", "maxItems": 0, "items": {"type": "string"}}
    return {"type": "array", "items": {"type": "string", "enum": ids}, "maxItems": min(max_items, len(ids))}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


class Generator:
    """Answers a question with the context (playbook or baseline memory) and cites the bullet ids it used."""

    def __init__(self, llm: LLM, settings: RoleSettings, demo: str = "default", instructions: str | None = None):
        self.llm, self.settings = llm, settings
        self.stats: dict[str, int] = {}
        self.demo = prompts.DEMONSTRATIONS.get(demo, prompts.DEMONSTRATIONS["default"])
        self.instructions = instructions or self.demo["instructions"]

    def schema(self, ids: list[str], answer_schema: dict[str, Any]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        if self.settings.reasoning_chars:
            properties["reasoning"] = _string(self.settings.reasoning_chars)
        properties["bullet_ids"] = _id_array(ids, self.settings.max_citations)
        properties["final_answer"] = answer_schema
        return _object(properties)

    def prompt(self, context: str, question: str, reflection: str = "") -> str:
        return prompts.GENERATOR.format(
            instructions=self.instructions, demo_playbook=self.demo["playbook"], demo_question=self.demo["question"],
            demo_answer=self.demo["answer"], playbook=context, question=question,
            reflection=prompts.REFLECTION_LINE.format(reflection=reflection) if reflection else "")

    def __call__(
        self, context: str, question: str, ids: list[str], answer_schema: dict[str, Any], reflection: str = ""
    ) -> RoleOutcome[GeneratorOutput]:
        outcome = run_program(self.llm, self.prompt(context, question, reflection), self.schema(ids, answer_schema),
                              GeneratorOutput, self.settings, stats=self.stats)
        if outcome.value is not None:
            # the finance repo's fallback: ids cited in the reasoning text count too
            cited = outcome.value.bullet_ids + BULLET_ID_PATTERN.findall(outcome.value.reasoning)
            outcome.value.bullet_ids = [i for i in dict.fromkeys(cited) if i in ids]
        return outcome


class Reflector:
    """Diagnoses an answer against feedback (a label or an execution signal) and tags the cited bullets."""

    def __init__(self, llm: LLM, settings: RoleSettings, demo: str = "default"):
        self.llm, self.settings = llm, settings
        self.stats: dict[str, int] = {}
        self.demo = prompts.DEMONSTRATIONS.get(demo, prompts.DEMONSTRATIONS["default"])

    def schema(self, cited_ids: list[str]) -> dict[str, Any]:
        text = _string(self.settings.field_chars)
        tag = _object({"id": {"type": "string", "enum": cited_ids or ["none"]},
                       "tag": {"type": "string", "enum": ["helpful", "harmful", "neutral"]}})
        tags = {"type": "array", "items": tag, "maxItems": len(cited_ids)}
        names = ["reasoning", "error_identification", "root_cause_analysis", "correct_approach", "key_insight"]
        return _object({**{name: text for name in names}, "bullet_tags": tags})

    def prompt(self, question: str, answer: str, feedback: str, cited: str) -> str:
        demo = self.demo
        reflection = json.dumps({**prompts.REFLECTOR_DEMO, "key_insight": demo["rule"], "bullet_tags": []},
                                separators=(",", ":"))
        return prompts.REFLECTOR.format(
            demo_question=demo["question"], demo_wrong=demo["wrong"], demo_feedback=demo["feedback"],
            demo_reflection=reflection, question=question, answer=answer, feedback=feedback, cited=cited or prompts.NONE)

    def __call__(
        self, question: str, answer: str, feedback: str, playbook: Playbook, cited_ids: list[str], **_: Any
    ) -> RoleOutcome[ReflectorOutput]:
        cited = "\n".join(b.render() for b in playbook if b.id in cited_ids)
        return run_program(self.llm, self.prompt(question, answer, feedback, cited), self.schema(cited_ids),
                           ReflectorOutput, self.settings, stats=self.stats)


class Curator:
    """Turns the latest reflection into a small delta of operations (merged by `apply_delta`, not by the LLM)."""

    def __init__(self, llm: LLM, settings: RoleSettings, demo: str = "default"):
        self.llm, self.settings = llm, settings
        self.stats: dict[str, int] = {}
        self.demo = prompts.DEMONSTRATIONS.get(demo, prompts.DEMONSTRATIONS["default"])

    def schema(self, playbook: Playbook) -> dict[str, Any]:
        content = _string(self.settings.content_chars)
        choices = []
        if "ADD" in self.settings.operations:
            choices.append(_object({"type": {"const": "ADD"}, "section": {"type": "string", "enum": playbook.sections},
                                    "content": content}))
        if playbook.ids and "UPDATE" in self.settings.operations:
            choices.append(_object({"type": {"const": "UPDATE"}, "bullet_id": {"type": "string", "enum": playbook.ids},
                                    "content": content}))
        if playbook.ids and "REMOVE" in self.settings.operations:
            choices.append(_object({"type": {"const": "REMOVE"},
                                    "bullet_id": {"type": "string", "enum": playbook.ids}}))
        item = choices[0] if len(choices) == 1 else {"anyOf": choices}
        operations = {"type": "array", "items": item, "maxItems": self.settings.max_operations}
        return _object({"reasoning": _string(self.settings.field_chars), "operations": operations})

    def prompt(self, playbook: Playbook, question: str, insight: str, budget: int, step: int, total: int) -> str:
        demo = self.demo
        section = demo["playbook"].splitlines()[0].removeprefix("## ").strip()
        delta = json.dumps({"reasoning": prompts.CURATOR_DEMO_REASONING.format(rule=demo["rule"]),
                            "operations": [{"type": "ADD", "section": section, "content": demo["rule"]}]},
                           separators=(",", ":"))
        stats = playbook.stats()
        brief = {k: stats[k] for k in ("total_bullets", "high_performing", "problematic", "unused")}
        return prompts.CURATOR.format(
            budget=budget, step=step, total=total, stats=json.dumps(brief), demo_playbook=prompts.EMPTY_CONTEXT,
            demo_insight=demo["rule"], demo_delta=delta, playbook=playbook.render(), question=question,
            insight=insight)

    def __call__(
        self, playbook: Playbook, question: str, insight: str, budget: int = 0, step: int = 0, total: int = 0
    ) -> RoleOutcome[CuratorOutput]:
        return run_program(self.llm, self.prompt(playbook, question, insight, budget, step, total),
                           self.schema(playbook), CuratorOutput, self.settings, check=_check_operations,
                           stats=self.stats)


def _check_operations(value: CuratorOutput) -> str | None:
    """The repo's schema check: ADD needs section and content, UPDATE/REMOVE need an id."""
    for op in value.operations:
        if op.type == "ADD" and not (op.section and (op.content or "").strip()):
            return "ADD operation without section or content"
        if op.type in ("UPDATE", "REMOVE", "TAG") and not op.bullet_id:
            return f"{op.type} operation without bullet_id"
    return None


def reflection_text(value: ReflectorOutput) -> str:
    """The reflection as one line, for the Generator's retry."""
    parts = [value.error_identification, value.key_insight]
    return re.sub(r"\s+", " ", " ".join(p for p in parts if p)).strip()
