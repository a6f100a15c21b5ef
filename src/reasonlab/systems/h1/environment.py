"""The h1 RL environment and evaluation: one completion per chain, reward 1 iff its final answer is y_h."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from reasonlab.llm.base import Generation, SamplingParams, TrainablePolicy
from reasonlab.tasks.arithmetic import numeric_reward
from reasonlab.train.rl import Episode, Step

__all__ = ["ChainEnvironment", "ChainTask", "accuracy", "accuracy_by_depth"]


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


def accuracy(
    policy: TrainablePolicy, chains: Sequence[Any], max_tokens: int, temperature: float = 0.0, seed: int = 0
) -> tuple[float, int]:
    """(share of chains whose completion has the right final answer, generated tokens); greedy by default."""
    if not chains:
        return 0.0, 0
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    generations = policy.generate([c.prompt for c in chains], params)
    correct = sum(numeric_reward(g[0].text, c.answer) for g, c in zip(generations, chains, strict=True))
    tokens = sum(len(g[0].token_ids) for g in generations)
    return correct / len(chains), tokens


def accuracy_by_depth(
    policy: TrainablePolicy, chains_by_depth: dict[int, Sequence[Any]], max_tokens: int
) -> dict[int, float]:
    """Greedy accuracy on fixed evaluation chains, per depth."""
    return {depth: accuracy(policy, chains, max_tokens)[0] for depth, chains in sorted(chains_by_depth.items())}
