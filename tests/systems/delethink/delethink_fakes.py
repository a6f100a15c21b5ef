"""Fakes for Delethink tests: a perfect Markovian walker (reads only its prompt) and a tiny random tinylm."""

from __future__ import annotations

import time
from collections.abc import Sequence

from reasonlab.llm.base import BaseLLM, Generation, Prompt, SamplingParams, prompt_kind
from reasonlab.systems.delethink.tasks import PermutationWalk, WalkTask
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

EOS = 2


class WalkOracle(BaseLLM):
    """Writes the reference walk trace, reading nothing but its prompt: the query, then the carryover (the
    first `head_tokens` of the trace plus a tail that it locates in the reference). Records every request."""

    def __init__(self, world: PermutationWalk, head_tokens: int = 0, context_length: int = 100_000) -> None:
        super().__init__()
        self.world = world
        self.tokenizer = Tokenizer(world.vocabulary, level="word")
        self.head_tokens = head_tokens
        self._context_length = context_length
        self.requests: list[tuple[list[int], int]] = []  # (prompt ids, max_tokens)
        self.name = "walk-oracle"

    @property
    def context_length(self) -> int:
        return self._context_length

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def reference(self, query: list[int]) -> list[int]:
        start, _, target, marker = self.tokenizer.decode(query).split()
        task = WalkTask(int(start), int(target), self._steps(int(start), int(target)), marker == "?")
        return [*self.tokenize(self.world.trace(task)), EOS]

    def _steps(self, start: int, target: int) -> int:
        x, steps = start, 0
        while True:
            x, steps = self.world.next_state[x], steps + 1
            if x == target:
                return steps

    def continuation(self, prompt: list[int]) -> list[int]:
        query, carried = prompt[:4], prompt[4:]
        ref = self.reference(query)
        if not carried:
            return ref
        tail = carried[self.head_tokens :] if len(carried) > self.head_tokens else carried
        assert carried[: self.head_tokens] == ref[: min(self.head_tokens, len(carried))]
        ends = [p for p in range(len(tail), len(ref) + 1) if ref[p - len(tail) : p] == tail]
        assert ends, "the carryover is not a piece of the reference trace"
        return ref[ends[0] :]

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        out = []
        for prompt in prompts:
            assert prompt_kind(prompt) == "tokens", "Delethink must send token ids, never re-tokenized text"
            ids = [int(t) for t in prompt]  # type: ignore[union-attr]
            self.requests.append((ids, params.max_tokens))
            tokens = self.continuation(ids)[: params.max_tokens]
            finish = "eos" if tokens and tokens[-1] == EOS else "length"
            text = self.detokenize(tokens)
            out.append([Generation(text, tokens, [0.0] * len(tokens), finish, len(ids), len(tokens), 0.0)])
        self._record(out, started)
        return out


def random_tinylm(world: PermutationWalk, seed: int = 0, context_length: int = 512) -> TinyLM:
    tokenizer = Tokenizer(world.vocabulary, level="word")
    config = TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2, context_length=context_length)
    return TinyLM.create(config, tokenizer, seed=seed)
