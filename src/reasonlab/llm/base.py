"""The one interface to language models: `LLM`, `TrainablePolicy`, and the values they exchange.

Every system talks to a model through these types. A prompt is text, token ids (so that a carried-over
piece of a trace is never re-tokenized), or a list of chat `Message`s (rendered with the model's chat
template when it has one, else as a plain completion transcript).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Union, runtime_checkable

from pydantic import BaseModel, Field, model_validator

from reasonlab.errors import UserError

__all__ = [
    "LLM",
    "BaseLLM",
    "Generation",
    "Message",
    "Prompt",
    "SamplingParams",
    "StreamDelta",
    "TextStream",
    "TrainablePolicy",
    "Usage",
    "prompt_kind",
]


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str


Prompt = Union[str, Sequence[int], Sequence[Message]]


def prompt_kind(prompt: Prompt) -> Literal["text", "tokens", "chat"]:
    """Say whether a prompt is text, token ids, or chat messages."""
    if isinstance(prompt, str):
        return "text"
    if len(prompt) == 0:
        raise ValueError("empty prompt: give text, token ids, or at least one Message")
    first = prompt[0]
    if isinstance(first, Message):
        return "chat"
    if isinstance(first, int) or hasattr(first, "__index__"):
        return "tokens"
    raise TypeError(f"unsupported prompt element {type(first).__name__}: use str, list[int] or list[Message]")


class SamplingParams(BaseModel):
    """How to sample. Structured output goes through `json_schema`, `grammar` or `regex` (constrained decoding)."""

    temperature: float = Field(1.0, ge=0.0, description="0 means greedy decoding")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_tokens: int = Field(256, ge=1, description="new tokens per completion")
    stop: list[str] = Field(default_factory=list, description="stop strings (not included in the text)")
    seed: int | None = Field(None, description="same seed and params give the same text (hf backend)")
    n: int = Field(1, ge=1, description="completions per prompt")
    json_schema: dict[str, Any] | None = Field(None, description="constrain the output to this JSON schema")
    grammar: str | None = Field(None, description="constrain the output to a grammar (GBNF/EBNF)")
    regex: str | None = Field(None, description="constrain the output to a regular expression")
    logprobs: bool = Field(True, description="return per-token logprobs where the backend has them")
    top_logprobs: int = Field(0, ge=0, le=20, description="also return the k most likely tokens per position (hf, llamacpp)")

    @model_validator(mode="after")
    def _one_constraint(self) -> SamplingParams:
        given = [name for name in ("json_schema", "grammar", "regex") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of json_schema, grammar, regex (got {', '.join(given)})")
        return self

    @property
    def constrained(self) -> bool:
        return self.json_schema is not None or self.grammar is not None or self.regex is not None


@dataclass
class Generation:
    """One completion. `logprobs[i]` is the log-probability of `token_ids[i]` under the sampling distribution
    (logits / temperature; the raw distribution when temperature is 0), before top-p and constraint masks."""

    text: str
    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: Literal["stop", "length", "eos"]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    top_logprobs: list[dict[int, float]] | None = None  # per position: the k most likely token ids -> logprob


@dataclass
class StreamDelta:
    """One step of a streamed completion: the new text and the token ids (with logprobs) it came from.
    Only the last delta has a `finish_reason`; the deltas join to the `Generation` that `complete` returns."""

    text: str
    token_ids: list[int]
    logprobs: list[float] | None = None
    top_logprobs: list[dict[int, float]] | None = None
    finish_reason: Literal["stop", "length", "eos"] | None = None
    prompt_tokens: int = 0


@dataclass
class Usage:
    """Token accounting of one LLM object: calls, tokens, seconds. Thread-safe."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, prompt_tokens: int, completion_tokens: int, seconds: float, calls: int = 1) -> None:
        with self._lock:
            self.calls += calls
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.seconds += seconds

    def as_dict(self) -> dict[str, float]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
        }


@runtime_checkable
class LLM(Protocol):
    """Anything that generates text. `generate` returns, per prompt, `params.n` generations."""

    name: str
    usage: Usage

    @property
    def context_length(self) -> int: ...

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]: ...

    def complete(self, prompt: Prompt, params: SamplingParams | None = None) -> Generation: ...

    def tokenize(self, text: str) -> list[int]: ...

    def detokenize(self, token_ids: Sequence[int]) -> str: ...


@runtime_checkable
class TrainablePolicy(LLM, Protocol):
    """An LLM whose weights reasonlab.train can update.

    `logprobs` is differentiable and computes the same numbers as `Generation.logprobs` for the same tokens
    and temperature. `reference()` is a frozen policy for KL terms (a copy, or the model with LoRA disabled).
    """

    @property
    def module(self) -> Any: ...  # torch.nn.Module

    @property
    def eos_token_id(self) -> int: ...

    @property
    def pad_token_id(self) -> int: ...

    def logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], temperature: float = 1.0
    ) -> list[Any]: ...  # one 1-D tensor of length len(completion_ids[i]) per row, with grad

    def prompt_ids(self, prompt: Prompt) -> list[int]: ...  # token ids exactly as generate() would see them

    def reference(self) -> TrainablePolicy: ...

    def save(self, path: str) -> None: ...


class BaseLLM:
    """Shared plumbing for backends: single-prompt helper, chat rendering fallback, usage accounting."""

    name: str = "llm"

    def __init__(self) -> None:
        self.usage = Usage()

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        raise NotImplementedError

    def complete(self, prompt: Prompt, params: SamplingParams | None = None) -> Generation:
        """Generate one completion for one prompt."""
        params = (params or SamplingParams()).model_copy(update={"n": 1})
        return self.generate([prompt], params)[0][0]

    def stream(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[StreamDelta]:
        """One completion as it is decoded. This default decodes it whole and yields it as one delta; the hf
        and llamacpp backends yield one delta per token."""
        generation = self.complete(prompt, params)
        yield StreamDelta(
            text=generation.text, token_ids=list(generation.token_ids), logprobs=generation.logprobs,
            top_logprobs=generation.top_logprobs, finish_reason=generation.finish_reason,
            prompt_tokens=generation.prompt_tokens,
        )

    def chat(self, messages: Sequence[Message], params: SamplingParams | None = None) -> Generation:
        return self.complete(list(messages), params)

    def render_chat(self, messages: Sequence[Message]) -> str:
        """Plain transcript for base models without a chat template; ends ready for the assistant's turn."""
        lines = [f"{m.role.capitalize()}: {m.content}" for m in messages]
        return "\n\n".join([*lines, "Assistant:"])

    bos_text: str = ""
    vocab_size: int | None = None  # backends that know it refuse token ids outside [0, vocab_size)

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        raise NotImplementedError

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """Token ids of a prompt: ids pass through untouched, text gets BOS, chat goes through the template."""
        kind = prompt_kind(prompt)
        if kind == "tokens":
            return self.check_token_ids(prompt, "prompt")  # type: ignore[arg-type]
        if kind == "chat":
            text = self.render_chat(prompt)  # type: ignore[arg-type]
            # chat templates write their own BOS
            return self.tokenize(text, add_special_tokens=not (self.bos_text and text.startswith(self.bos_text)))
        return self.tokenize(prompt)  # type: ignore[arg-type]

    def check_token_ids(self, token_ids: Sequence[int], what: str = "prompt") -> list[int]:
        """The ids as ints; a one-line UserError names the first one outside the vocabulary (native code would crash)."""
        ids = [int(t) for t in token_ids]
        size = self.vocab_size
        bad = next((t for t in ids if size is not None and not 0 <= t < size), None)
        if bad is not None:
            raise UserError(f"{what} token id {bad} is outside the vocabulary of {self.name} "
                            f"(0..{size - 1}): pass ids that tokenize() returned")  # type: ignore[operator]
        return ids

    def check_fits(self, prompt_length: int, max_tokens: int) -> None:
        """Raise a one-line UserError when a prompt plus its completion cannot fit the context."""
        if prompt_length + max_tokens > self.context_length:  # type: ignore[attr-defined]
            raise UserError(
                f"prompt of {prompt_length} tokens + max_tokens {max_tokens} exceeds the context length "
                f"{self.context_length} of {self.name}: shorten the prompt or lower max_tokens"  # type: ignore[attr-defined]
            )

    def stream_setup(self, prompt: Prompt, params: SamplingParams | None) -> tuple[SamplingParams, list[int]]:
        """The one-completion params and the checked prompt ids a backend's `stream` decodes from."""
        params = (params or SamplingParams()).model_copy(update={"n": 1})
        ids = self.prompt_ids(prompt)
        if not ids:
            raise UserError(f"a prompt is empty after tokenization by {self.name}: give it at least one token")
        self.check_fits(len(ids), params.max_tokens)
        return params, ids

    def _record(self, generations: list[list[Generation]], started: float) -> None:
        flat = [g for group in generations for g in group]
        self.usage.add(
            prompt_tokens=sum(group[0].prompt_tokens for group in generations if group),
            completion_tokens=sum(g.completion_tokens for g in flat),
            seconds=time.perf_counter() - started,
            calls=len(generations),
        )


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` at the first stop string; say whether one was found."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class TextStream:
    """Text deltas of a growing completion that no later token can take back: text a stop string may still
    cut (the longest tail that begins a stop string) and a character still missing bytes are held back."""

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str]) -> None:
        self.decode, self.stop = decode, [s for s in stop if s]
        self.sent = ""

    def push(self, token_ids: list[int]) -> str:
        """The new safe text once the completion holds `token_ids` (without an end-of-sequence token)."""
        text, stopped = truncate_at_stop(self.decode(token_ids), self.stop)
        if not stopped:
            text = text.rstrip("\ufffd")  # a multi-byte character split across tokens
            text = text[: len(text) - _held_back(text, self.stop)]
        return self._advance(text)

    def finish(self, text: str) -> str:
        """The rest of the final `text` (what `complete` returns for the same completion)."""
        return self._advance(text)

    def _advance(self, text: str) -> str:
        # never take back what was sent: a decoding that does not extend it waits for one that does
        if len(text) <= len(self.sent) or not text.startswith(self.sent):
            return ""
        delta, self.sent = text[len(self.sent) :], text
        return delta


def _held_back(text: str, stop: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper beginning of some stop string."""
    longest = 0
    for s in stop:
        for size in range(min(len(s) - 1, len(text)), longest, -1):
            if text.endswith(s[:size]):
                longest = size
                break
    return longest
