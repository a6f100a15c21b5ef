"""The h1 RL environment: one completion per chain, reward 1 iff its final answer is y_h."""

from __future__ import annotations

from typing import Any, Protocol

from reasonlab.llm.base import Generation
from reasonlab.tasks.arithmetic import numeric_reward
from reasonlab.train.rl import Episode, Step

__all__ = ["ChainEnvironment", "ChainTask"]


class ChainTask(Protocol):
    """Anything with a prompt, a final answer and a depth: `tasks.arithmetic.Chain`, `ModularChain`."""

    @property
    def prompt(self) -> str: ...

    @property
    def answer(self) -> int: ...

    @property
    def depth(self) -> int: ...


class ChainEnvironment:
    """Single-segment episodes: the prompt is the whole chain, the outcome reward checks only y_h."""

    def reset(self, task: Any) -> str:
        return task.prompt

    def step(self, history: Episode, completion: Generation) -> Step:
        return Step.finish(numeric_reward(completion.text, history.task.answer))
