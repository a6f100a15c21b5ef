"""`chunked_rollout`: Delethink tracing over any `LLM` (tinylm, hf, llamacpp, an OpenAI-compatible server).

    x_1 = q
    for l in 1..I:
        y_l = sample(prompt=x_l, max_new = C if l == 1 else C - m)   # a fresh request: positions from 0
        if y_l ended (EOS or a stop string): break
        x_{l+1} = q + carryover(y_1 ... y_l)                          # token ids, never re-tokenized
    trace = y_1 + ... + y_L

Every round is one batched `generate` over all live traces. LongCoT is `longcot_rollout`: the same call with
one chunk of the whole budget, so the two differ only in the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM, BaseLLM, Prompt, SamplingParams, prompt_kind, truncate_at_stop
from reasonlab.systems.delethink.carryover import chunk_prompt
from reasonlab.systems.delethink.config import DelethinkConfig

__all__ = ["Chunk", "ChunkCallback", "Trace", "chunked_rollout", "longcot_rollout", "query_ids"]

# tokens of the previous chunk re-read to catch a stop string cut in two by a chunk boundary
BOUNDARY_WINDOW = 16


@dataclass
class Chunk:
    """One chunk: the prompt it was generated from (query + carryover) and what was sampled."""

    prompt_ids: list[int]
    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str  # eos | stop | length
    text: str

    @property
    def max_position(self) -> int:
        """Largest position id of this request (positions restart at 0 in every chunk)."""
        return len(self.prompt_ids) + len(self.token_ids) - 1


@dataclass
class Trace:
    """A whole reasoning trace y_1 + ... + y_L with the text the answer is read from."""

    query_ids: list[int]
    chunks: list[Chunk] = field(default_factory=list)
    finished: bool = False  # ended by EOS / stop string before the iteration cap
    text: str = ""  # the full thinking, detokenized, cut at a stop string
    reconstructed: str = ""  # last prompt's carryover + last chunk: an answer split by a boundary survives

    @property
    def token_ids(self) -> list[int]:
        return [t for chunk in self.chunks for t in chunk.token_ids]

    @property
    def num_tokens(self) -> int:
        return sum(len(chunk.token_ids) for chunk in self.chunks)

    @property
    def max_position(self) -> int:
        return max(chunk.max_position for chunk in self.chunks)


ChunkCallback = Callable[[int, int, Chunk], None]  # (query index, sample index, chunk)


def query_ids(llm: LLM, query: Prompt) -> list[int]:
    """Token ids of a query exactly as the backend would feed them (BOS and chat template included)."""
    if prompt_kind(query) == "tokens":
        return [int(t) for t in query]  # type: ignore[union-attr]
    if isinstance(llm, BaseLLM):
        return llm.prompt_ids(query)
    return llm.tokenize(query)  # type: ignore[arg-type]


def check_fits(llm: LLM, config: DelethinkConfig, longest_query: int) -> None:
    """Refuse a chunk that cannot fit the model: |q| + C must stay within its context."""
    if config.chunk_size > llm.context_length:
        raise UserError(
            f"chunk size C={config.chunk_size} is larger than the context length {llm.context_length} of "
            f"{llm.name}: lower --chunk"
        )
    if longest_query + config.chunk_size > llm.context_length:
        raise UserError(
            f"query of {longest_query} tokens + chunk size C={config.chunk_size} exceeds the context length "
            f"{llm.context_length} of {llm.name}: shorten the query or lower --chunk"
        )


def chunked_rollout(
    llm: LLM,
    queries: Sequence[Prompt],
    config: DelethinkConfig,
    sampling: SamplingParams | None = None,
    n: int = 1,
    on_chunk: ChunkCallback | None = None,
) -> list[list[Trace]]:
    """`n` Delethink traces per query; each round is one batched generate over every live trace."""
    sampling = sampling or SamplingParams()
    queries_ids = [query_ids(llm, q) for q in queries]
    check_fits(llm, config, max(len(q) for q in queries_ids))
    traces = [[Trace(query_ids=q) for _ in range(n)] for q in queries_ids]
    live = [(i, j) for i in range(len(queries)) for j in range(n)]
    for index in range(config.iterations):
        if not live:
            break
        prompts = [chunk_prompt(traces[i][j].query_ids, traces[i][j].token_ids, config) for i, j in live]
        params = sampling.model_copy(
            update={"n": 1, "max_tokens": config.chunk_tokens(index), "seed": _round_seed(sampling.seed, index)}
        )
        generations = llm.generate(prompts, params)
        still_live = []
        for (i, j), prompt, (generation,) in zip(live, prompts, generations, strict=True):
            trace = traces[i][j]
            chunk = Chunk(prompt, list(generation.token_ids), generation.logprobs, generation.finish_reason,
                          generation.text)
            ended = _ended(llm, trace, chunk, sampling.stop)
            trace.chunks.append(chunk)
            if on_chunk is not None:
                on_chunk(i, j, chunk)
            if ended:
                trace.finished = True
            else:
                still_live.append((i, j))
        live = still_live
    for group in traces:
        for trace in group:
            _finalise(llm, trace, sampling.stop)
    return traces


def longcot_rollout(
    llm: LLM,
    queries: Sequence[Prompt],
    budget: int,
    sampling: SamplingParams | None = None,
    n: int = 1,
    on_chunk: ChunkCallback | None = None,
) -> list[list[Trace]]:
    """The LongCoT baseline: one chunk of `budget` new tokens, the whole trace in one context."""
    return chunked_rollout(llm, queries, DelethinkConfig.longcot(budget), sampling, n, on_chunk)


def _round_seed(seed: int | None, index: int) -> int | None:
    # round 0 keeps the caller's seed, so a trace that ends in its first chunk is exactly the LongCoT sample
    return None if seed is None else seed + index * 1_000_003


def _ended(llm: LLM, trace: Trace, chunk: Chunk, stop: Sequence[str]) -> bool:
    """Did this chunk end the trace: EOS, a stop string, or a stop string spanning the chunk boundary?"""
    if chunk.finish_reason in ("eos", "stop"):
        return True
    if not stop or not trace.chunks:
        return False
    window = trace.token_ids[-BOUNDARY_WINDOW:] + chunk.token_ids
    if truncate_at_stop(llm.detokenize(window), stop)[1]:
        chunk.finish_reason = "stop"
        return True
    return False


def _finalise(llm: LLM, trace: Trace, stop: Sequence[str]) -> None:
    """Fill the trace's full text and its reconstructed tail (the text answers are extracted from)."""
    last = trace.chunks[-1]
    carried = last.prompt_ids[len(trace.query_ids) :]
    trace.text = truncate_at_stop(llm.detokenize(trace.token_ids), stop)[0]
    trace.reconstructed = truncate_at_stop(llm.detokenize(carried + last.token_ids), stop)[0]
