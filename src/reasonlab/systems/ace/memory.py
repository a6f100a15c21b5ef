"""What the Generator reads, and how it learns: ACE's playbook and the three baselines in one interface.

- `PlaybookMemory`: ACE. Generator -> feedback -> Reflector rounds (tags bump counters) -> Curator delta ->
  deterministic merge under the token budget -> optional grow-and-refine de-duplication.
- `RewriteMemory`: Dynamic Cheatsheet, cumulative (DC-CU): the LLM rewrites the whole cheatsheet each step.
- `ExamplesMemory`: in-context examples (question and answer pairs) from the stream.
- `NoMemory`: no context.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from reasonlab.llm import LLM
from reasonlab.llm.embed import Embedder
from reasonlab.systems.ace import prompts
from reasonlab.systems.ace.delta import apply_delta, apply_tags
from reasonlab.systems.ace.playbook import Playbook, TokenCounter
from reasonlab.systems.ace.refinement import refine
from reasonlab.systems.ace.roles import (
    BulletTag,
    Curator,
    Generator,
    ReflectorOutput,
    RoleOutcome,
    RoleSettings,
    reflection_text,
    run_program,
)
from reasonlab.systems.ace.tasks import Feedback, Sample, Task

__all__ = [
    "Attempt",
    "ExamplesMemory",
    "FeedbackFn",
    "FrozenPlaybook",
    "Memory",
    "NoMemory",
    "OracleReflector",
    "PlaybookMemory",
    "RewriteMemory",
    "answer",
    "fact_retained",
]

FeedbackFn = Callable[[Sample, str], Feedback]


@dataclass
class Attempt:
    """One Generator answer with its feedback (answer '' when the Generator's output never parsed)."""

    answer: str
    cited: list[str]
    feedback: Feedback
    parsed: bool = True


class Memory(Protocol):
    name: str

    def context(self) -> str: ...

    def ids(self) -> list[str]: ...

    def tokens(self) -> int: ...

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]: ...

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


def answer(generator: Generator, memory: Memory, task: Task, sample: Sample, feedback: FeedbackFn,
           reflection: str = "") -> Attempt:
    """Run the Generator with the memory as context and get feedback on its answer."""
    outcome = generator(memory.context(), sample.question, memory.ids(), task.answer_schema(sample), reflection)
    if outcome.value is None:
        return Attempt("", [], Feedback(False, f"error: no parsable answer ({outcome.error})"), parsed=False)
    value = outcome.value
    return Attempt(value.final_answer, value.bullet_ids, feedback(sample, value.final_answer))


def fact_retained(fact: str, text: str) -> bool:
    """A seeded fact survives if its words appear, in order and adjacent, in the memory text (case-insensitive)."""
    return " ".join(fact.lower().split()) in " ".join(text.lower().split())


class OracleReflector:
    """A scripted Reflector that states the true rule of the sample's family and tags cited bullets by whether
    they state it: it isolates the Curator and the merge from the small model's weak diagnosis."""

    def __init__(self, task: Task):
        self.task = task

    def __call__(self, question: str, answer: str, feedback: str, playbook: Playbook, cited_ids: list[str],
                 sample: Sample | None = None) -> RoleOutcome[ReflectorOutput]:
        rule = self.task.rule(sample.family) if sample is not None else None
        rule = rule or prompts.ORACLE_NO_RULE
        tags = [BulletTag(id=i, tag="helpful" if (b := playbook.get(i)) and fact_retained(rule, b.content) else "harmful")
                for i in cited_ids]
        return RoleOutcome(ReflectorOutput(key_insight=rule, correct_approach=prompts.ORACLE_APPROACH,
                                           bullet_tags=tags))


class _PlaybookContext:
    """The context side shared by every playbook-backed memory: render, ids, size, snapshot and restore."""

    playbook: Playbook
    count: TokenCounter

    def context(self) -> str:
        return self.playbook.render()

    def ids(self) -> list[str]:
        return self.playbook.ids

    def tokens(self) -> int:
        return self.playbook.tokens(self.count)

    def snapshot(self) -> Playbook:
        return self.playbook.copy()

    def restore(self, state: Playbook) -> None:
        self.playbook = state.copy()


@dataclass
class PlaybookMemory(_PlaybookContext):
    """ACE: an itemized playbook grown by Reflector + Curator deltas and a deterministic merge."""

    generator: Generator
    reflector: Callable[..., RoleOutcome[ReflectorOutput]]
    curator: Curator
    task: Task
    feedback: FeedbackFn
    count: TokenCounter
    budget: int = 2000
    prune: bool = True
    rounds: int = 3
    curator_frequency: int = 1
    embedder: Embedder | None = None
    dedup_threshold: float = 0.72
    dedup_within_section: bool = False
    playbook: Playbook = field(default_factory=Playbook)
    failures: list[dict[str, Any]] = field(default_factory=list)
    name: str = "ace"

    def _reflect(self, sample: Sample, attempt: Attempt) -> ReflectorOutput | None:
        outcome = self.reflector(question=sample.question, answer=attempt.answer or prompts.NONE,
                                 feedback=attempt.feedback.message, playbook=self.playbook,
                                 cited_ids=attempt.cited, sample=sample)
        if outcome.value is None:
            self._fail("reflector", sample, outcome)
            return None
        self.playbook, _ = apply_tags(self.playbook, [(t.id, t.tag) for t in outcome.value.bullet_tags])
        return outcome.value

    def _fail(self, role: str, sample: Sample, outcome: RoleOutcome[Any]) -> None:
        self.failures.append({"role": role, "sample": sample.id, "error": outcome.error, "raw": outcome.raw})

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]:
        """One adaptation step; returns what happened (rounds, adds, merges, skips, failures)."""
        record: dict[str, Any] = {"rounds": 0, "added": 0, "merged": 0, "pruned": 0, "rejected": 0, "skipped": 0}
        # paper: Reflector, then the Generator retries with the reflection, for up to `rounds` rounds
        attempt = first
        reflection = self._reflect(sample, attempt)
        while attempt.feedback.correct is False and reflection is not None and record["rounds"] < self.rounds:
            record["rounds"] += 1
            attempt = answer(self.generator, self, self.task, sample, self.feedback, reflection_text(reflection))
            if attempt.feedback.correct is not False or record["rounds"] == self.rounds:
                break
            reflection = self._reflect(sample, attempt)
        record["solved_after_reflection"] = first.feedback.correct is False and attempt.feedback.correct is True
        if reflection is not None and step % self.curator_frequency == 0:
            record.update(self._curate(sample, reflection, step, total))
        return record

    def _curate(self, sample: Sample, reflection: ReflectorOutput, step: int, total: int) -> dict[str, int]:
        outcome = self.curator(self.playbook, sample.question, reflection.key_insight, self.budget, step, total)
        if outcome.value is None:
            self._fail("curator", sample, outcome)
            return {"curator_failed": 1}
        self.playbook, report = apply_delta(self.playbook, outcome.value.operations, self.count, self.budget,
                                            self.prune)
        merged = 0
        if self.embedder is not None and report.added:
            self.playbook, refined = refine(self.playbook, self.embedder, self.dedup_threshold,
                                            self.dedup_within_section)
            merged = refined.merged
        return {"added": len(report.added), "merged": merged, "pruned": len(report.pruned),
                "rejected": int(report.rejected is not None), "skipped": len(report.skipped)}


class _Cheatsheet(BaseModel):
    cheatsheet: str


@dataclass
class RewriteMemory:
    """Dynamic Cheatsheet (cumulative): after each sample the LLM returns the whole new cheatsheet."""

    llm: LLM
    settings: RoleSettings
    count: TokenCounter
    demo: str = "default"
    max_chars: int = 800
    insight: Callable[[Sample], str] | None = None
    cheatsheet: str = ""
    failures: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    name: str = "dc"

    def context(self) -> str:
        return self.cheatsheet or prompts.EMPTY_CONTEXT

    def ids(self) -> list[str]:
        return []

    def tokens(self) -> int:
        return self.count(self.cheatsheet) if self.cheatsheet else 0

    def snapshot(self) -> str:
        return self.cheatsheet

    def restore(self, state: str) -> None:
        self.cheatsheet = state

    def prompt(self, sample: Sample, attempt: Attempt) -> str:
        demo = prompts.DEMONSTRATIONS.get(self.demo, prompts.DEMONSTRATIONS["default"])
        rewrite = json.dumps({"cheatsheet": f"- {demo['rule']}"}, separators=(",", ":"))
        feedback = attempt.feedback.message
        if self.insight is not None:
            feedback = prompts.RULE_HINT.format(feedback=feedback, rule=self.insight(sample))
        return prompts.REWRITE.format(
            demo_cheatsheet=prompts.EMPTY_CONTEXT, demo_question=demo["question"], demo_answer=demo["wrong"],
            demo_feedback=prompts.RULE_HINT.format(feedback=demo["feedback"], rule=demo["rule"]),
            demo_rewrite=rewrite,
            cheatsheet=self.context(), question=sample.question, answer=attempt.answer or prompts.NONE, feedback=feedback)

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]:
        schema = {"type": "object", "properties": {"cheatsheet": {"type": "string", "maxLength": self.max_chars}},
                  "required": ["cheatsheet"], "additionalProperties": False}
        settings = self.settings.model_copy(update={"max_tokens": max(self.settings.max_tokens, self.max_chars // 2)})
        outcome = run_program(self.llm, self.prompt(sample, first), schema, _Cheatsheet, settings, stats=self.stats)
        if outcome.value is None:
            self.failures.append({"role": "rewrite", "sample": sample.id, "error": outcome.error, "raw": outcome.raw})
            return {"rewrite_failed": 1}
        before = self.tokens()
        self.cheatsheet = outcome.value.cheatsheet.strip()
        return {"shrink": round(1 - self.tokens() / before, 4) if before else 0.0}


@dataclass
class ExamplesMemory:
    """In-context examples: the last k (question, answer) pairs seen, with the gold answer when labels are
    allowed, else the model's own answer when execution accepted it."""

    count: TokenCounter
    k: int = 4
    labels: bool = True
    examples: list[tuple[str, str]] = field(default_factory=list)
    name: str = "icl"

    def context(self) -> str:
        if not self.examples:
            return prompts.EMPTY_CONTEXT
        return "\n".join(prompts.EXAMPLE_LINE.format(question=q, answer=a) for q, a in self.examples)

    def ids(self) -> list[str]:
        return []

    def tokens(self) -> int:
        return self.count(self.context()) if self.examples else 0

    def snapshot(self) -> list[tuple[str, str]]:
        return list(self.examples)

    def restore(self, state: list[tuple[str, str]]) -> None:
        self.examples = list(state)

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]:
        if self.labels:
            self.examples.append((sample.question, str(sample.label)))
        elif first.feedback.correct is not False and first.answer:
            self.examples.append((sample.question, first.answer))
        self.examples = self.examples[-self.k:]
        return {}


@dataclass
class NoMemory:
    """The no-context baseline."""

    name: str = "none"

    def context(self) -> str:
        return prompts.EMPTY_CONTEXT

    def ids(self) -> list[str]:
        return []

    def tokens(self) -> int:
        return 0

    def snapshot(self) -> None:
        return None

    def restore(self, state: None) -> None:
        return None

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]:
        return {}


@dataclass
class FrozenPlaybook(_PlaybookContext):
    """A playbook used as a fixed context (evaluation, the no-learning arm)."""

    playbook: Playbook
    count: TokenCounter
    name: str = "playbook"

    def learn(self, sample: Sample, first: Attempt, step: int, total: int) -> dict[str, Any]:
        return {}
