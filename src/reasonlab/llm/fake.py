"""`ScriptedLLM`: a deterministic stand-in for tests of LLM programs (no model, no network); `HashingEmbedder`: the
same for sentence embeddings (bag of hashed words, so texts sharing words are similar).

It answers from a list of scripted replies (in order) or from a function of the prompt text, tokenizes by
characters, and counts usage like a real backend. It does not stream token by token: `stream` (the `BaseLLM`
default) yields the whole reply as one delta.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence

import numpy as np

from reasonlab.llm.base import BaseLLM, Generation, Prompt, SamplingParams, prompt_kind, truncate_at_stop

__all__ = ["HashingEmbedder", "ScriptedLLM"]


class ScriptedLLM(BaseLLM):
    """Replies come from `script`: a list consumed in order, or a callable `prompt_text -> reply`."""

    def __init__(self, script: Sequence[str] | Callable[[str], str], name: str = "scripted") -> None:
        super().__init__()
        self.name = name
        self._script = script if callable(script) else list(script)
        self.prompts: list[str] = []

    @property
    def context_length(self) -> int:
        return 1_000_000

    vocab_size = 0x110000  # token ids are Unicode code points

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return "".join(chr(t) for t in self.check_token_ids(token_ids, "detokenize"))

    def _prompt_text(self, prompt: Prompt) -> str:
        kind = prompt_kind(prompt)
        if kind == "tokens":
            return self.detokenize(self.check_token_ids(prompt, "prompt"))  # type: ignore[arg-type]
        if kind == "chat":
            return self.render_chat(prompt)  # type: ignore[arg-type]
        return prompt  # type: ignore[return-value]

    def _next_reply(self, text: str) -> str:
        if callable(self._script):
            return self._script(text)
        if not self._script:
            raise RuntimeError("ScriptedLLM ran out of scripted replies")
        return self._script.pop(0)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        grouped = []
        for prompt in prompts:
            text = self._prompt_text(prompt)
            self.prompts.append(text)
            group = []
            for _ in range(params.n):
                reply, stopped = truncate_at_stop(self._next_reply(text), params.stop)
                ids = self.tokenize(reply)[: params.max_tokens]
                finish = "stop" if stopped else ("length" if len(ids) < len(reply) else "eos")
                group.append(Generation(
                    text=self.detokenize(ids), token_ids=ids, logprobs=[0.0] * len(ids), finish_reason=finish,
                    prompt_tokens=len(text), completion_tokens=len(ids), latency_s=0.0,
                ))
            grouped.append(group)
        self._record(grouped, started)
        return grouped


class HashingEmbedder:
    """A deterministic `Embedder` for tests: lower-cased words hashed into `dim` buckets, L2-normalised."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts])
