"""Delethink as a step-wise RL environment for reasonlab.train.rl: one segment per chunk.

`reset(task)` gives the query; after each chunk, `step` either finishes the trace (EOS, stop, or the
iteration cap) with its reward read from the reconstructed text, or returns the next prompt query +
carryover with a budget of C - m new tokens. The engine in rl.py does the rest exactly as Delethink needs:
every chunk of an episode carries the episode's (trace's) advantage, and GRPO's per-episode token mean
divides a trace's summed token losses by its total length over all chunks.

LongCoT-RL is the same environment with `DelethinkConfig.longcot(budget)`, and `rl_config` builds both arms'
`RLConfig` from one base, so the arms differ only in the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reasonlab.llm.base import LLM, Generation, Prompt
from reasonlab.systems.delethink.carryover import chunk_prompt
from reasonlab.systems.delethink.config import DelethinkConfig
from reasonlab.train.rl import Episode, RLConfig, Step

__all__ = ["DelethinkEnvironment", "rl_config"]


class DelethinkEnvironment:
    """Chunked thinking as an `Environment`: `query(task)` builds the prompt, `reward(task, text)` scores."""

    def __init__(
        self,
        config: DelethinkConfig,
        llm: LLM,
        query: Callable[[Any], Prompt],
        reward: Callable[[Any, str], float],
    ) -> None:
        self.config = config
        self.llm = llm
        self.query = query
        self.reward = reward

    def reset(self, task: Any) -> Prompt:
        return self.query(task)

    def step(self, history: Episode, completion: Generation) -> Step:
        segments = history.segments
        query_ids = segments[0].prompt_ids
        generated = [t for s in segments for t in s.completion_ids]
        ended = completion.finish_reason in ("eos", "stop")
        if ended or len(segments) >= self.config.iterations:
            carried = segments[-1].prompt_ids[len(query_ids) :]
            text = self.llm.detokenize(carried + list(completion.token_ids))
            reward = self.reward(history.task, text)
            history.info.update(trace_tokens=len(generated), chunks=len(segments), finished=ended, correct=reward)
            return Step.finish(reward)
        return Step.next(chunk_prompt(query_ids, generated, self.config),
                         max_tokens=self.config.chunk_tokens(len(segments)))


def rl_config(delethink: DelethinkConfig, base: RLConfig) -> RLConfig:
    """`base` with the chunk budget C as the first segment's max tokens and I as the segment cap."""
    sampling = base.sampling.model_copy(update={"max_tokens": delethink.chunk_size})
    return base.model_copy(update={"sampling": sampling, "max_segments": delethink.iterations})
