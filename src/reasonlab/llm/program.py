"""Typed LLM programs: build a prompt, decode under a JSON schema (or regex), parse a typed value.

ACE's roles and ArcMemo's abstraction, selection and solve steps share this runner. A reply that does not parse
(or fails the caller's check) is retried with a fresh seed at a higher temperature; after the last retry the
program returns `ProgramOutcome(value=None, error=...)` with every raw reply, so callers record and skip.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field, ValidationError

from reasonlab.llm.base import LLM, SamplingParams

__all__ = ["ProgramOutcome", "ProgramSettings", "run_program"]

T = TypeVar("T")


class ProgramSettings(BaseModel):
    """Decoding bounds of one LLM program: first try, retries after a malformed reply, tokens per call."""

    temperature: float = Field(0.0, ge=0, description="decoding temperature of the first try")
    retry_temperature: float = Field(0.7, ge=0, description="temperature of retries after a malformed reply")
    retries: int = Field(2, ge=0, description="extra tries after a malformed reply, then record and skip")
    max_tokens: int = Field(512, ge=16, description="new tokens per call")


@dataclass
class ProgramOutcome(Generic[T]):
    """A program's parsed value, or None with the error and every raw reply."""

    value: T | None
    raw: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def run_program(
    llm: LLM, prompt: str, schema: dict[str, Any] | None, output: type[T] | Callable[[str], T],
    settings: ProgramSettings, check: Callable[[T], str | None] | None = None,
    stats: dict[str, int] | None = None, regex: str | None = None, stop: list[str] | None = None,
) -> ProgramOutcome[T]:
    """Decode under `schema` (or `regex`), parse into `output`, then `check(value)` -> error or None; retry,
    then give up. `output` is a pydantic model (parsed from JSON) or a function text -> value that raises
    ValueError. `stats` (if given) counts calls, LLM tries and failures."""
    outcome: ProgramOutcome[T] = ProgramOutcome(None)
    try:
        for attempt in range(settings.retries + 1):
            params = SamplingParams(
                temperature=settings.temperature if attempt == 0 else settings.retry_temperature,
                seed=attempt, max_tokens=settings.max_tokens, json_schema=schema, regex=regex,
                stop=list(stop or []), logprobs=False)
            text = llm.complete(prompt, params).text
            outcome.raw.append(text)
            outcome.error = _parse(text, output, check, outcome)
            if outcome.error is None:
                return outcome
        return outcome
    finally:
        if stats is not None:
            stats["calls"] = stats.get("calls", 0) + 1
            stats["tries"] = stats.get("tries", 0) + len(outcome.raw)
            stats["failures"] = stats.get("failures", 0) + int(outcome.value is None)


def _parse(text: str, output: Any, check: Any, outcome: ProgramOutcome[Any]) -> str | None:
    try:
        if isinstance(output, type) and issubclass(output, BaseModel):
            value = output.model_validate(json.loads(text))
        else:
            value = output(text)
        problem = check(value) if check is not None else None
    except (json.JSONDecodeError, ValidationError, ValueError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    if problem:
        return problem
    outcome.value = value
    return None
