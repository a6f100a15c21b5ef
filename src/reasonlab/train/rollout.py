"""The rollout engine: episodes made of segments, step-wise environments, and batched generation over them.

An `Episode` is a list of `Segment`s (prompt tokens, completion tokens, rollout logprobs, trained-token mask)
with one reward:
- h1: one segment per episode (a single completion);
- Delethink: one segment per chunk, each with its own prompt (query + carryover);
- mem-agent: one segment per assistant turn (tool outputs live in the next prompt, so they are never trained).

The engine owns generation: every live episode of every group goes through one batched `policy.generate` call
per round and token budget, so no environment ever samples at batch 1. The environment only builds prompts and
scores.

    episodes = rollout(policy, environment, tasks, group_size=8, sampling=SamplingParams(max_tokens=64))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation, Prompt, SamplingParams, TrainablePolicy

__all__ = ["Environment", "Episode", "Segment", "Step", "rollout", "tasks_for_iteration"]


@dataclass
class Segment:
    """One generated piece of an episode: the prompt it saw and what the policy sampled."""

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]  # rollout logprobs, one per completion token
    mask: list[int] | None = None  # 1 = trained token; None trains every completion token
    reward: float | None = None  # optional per-segment (shaping) reward, added to the episode's
    text: str = ""
    finish_reason: str = "eos"

    def __post_init__(self) -> None:
        if len(self.logprobs) != len(self.completion_ids):
            raise ValueError(
                f"{len(self.logprobs)} logprobs for {len(self.completion_ids)} completion tokens"
            )
        if self.mask is not None and len(self.mask) != len(self.completion_ids):
            raise ValueError(
                f"mask has {len(self.mask)} entries for {len(self.completion_ids)} completion tokens"
            )

    @property
    def token_mask(self) -> list[int]:
        return [1] * len(self.completion_ids) if self.mask is None else list(self.mask)

    @property
    def trained_tokens(self) -> int:
        return len(self.completion_ids) if self.mask is None else int(sum(self.mask))


@dataclass
class Episode:
    """A list of segments with one reward; `group` names the task its advantage is compared within."""

    task: Any
    group: int
    segments: list[Segment] = field(default_factory=list)
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def total_reward(self) -> float:
        """The episode reward plus every per-segment reward: what the advantage is computed from."""
        return self.reward + sum(s.reward for s in self.segments if s.reward is not None)

    @property
    def trained_tokens(self) -> int:
        return sum(s.trained_tokens for s in self.segments)

    @property
    def completion_tokens(self) -> int:
        return sum(len(s.completion_ids) for s in self.segments)


@dataclass
class Step:
    """The environment's answer to a completion: the next prompt, or done with the episode's reward."""

    prompt: Prompt | None = None
    done: bool = False
    reward: float = 0.0  # the episode's reward, read when done
    segment_reward: float | None = None  # optional shaping reward for the segment just completed
    max_tokens: int | None = None  # new-token budget of the next segment (Delethink: C - m after chunk 1)

    @classmethod
    def next(cls, prompt: Prompt, segment_reward: float | None = None, max_tokens: int | None = None) -> Step:
        return cls(prompt=prompt, segment_reward=segment_reward, max_tokens=max_tokens)

    @classmethod
    def finish(cls, reward: float, segment_reward: float | None = None) -> Step:
        return cls(done=True, reward=reward, segment_reward=segment_reward)


@runtime_checkable
class Environment(Protocol):
    """Step-wise task logic. The engine generates; the environment only builds prompts and scores.

    `reset(task)` gives an episode's first prompt. `step(history, completion)` sees the episode so far (its
    task, its segments including the one just sampled, and an `info` dict for the environment's own state)
    and returns `Step.next(prompt)` or `Step.finish(reward)`.
    """

    def reset(self, task: Any) -> Prompt: ...

    def step(self, history: Episode, completion: Generation) -> Step: ...


def _prompt_tokens(policy: TrainablePolicy, prompt: Prompt) -> list[int]:
    """The token ids a prompt is generated from, and trained under: the backend's own `prompt_ids`
    (token ids pass through; text and chat get the backend's BOS and chat template)."""
    return list(policy.prompt_ids(prompt))  # type: ignore[attr-defined]


def rollout(
    policy: TrainablePolicy,
    environment: Environment,
    tasks: Sequence[Any],
    group_size: int,
    sampling: SamplingParams,
    max_segments: int = 1,
    seed: int = 0,
) -> list[Episode]:
    """Run `group_size` episodes per task to the end; each round is one batched generate per token budget.

    An episode still running after `max_segments` is cut with episode reward 0 (its segment rewards count) and
    `info["truncated"] = True`; an environment that wants a cap penalty finishes the episode at its own cap."""
    episodes = [Episode(task=task, group=g) for g, task in enumerate(tasks) for _ in range(group_size)]
    live: list[tuple[Episode, list[int], int]] = [
        (ep, _prompt_tokens(policy, environment.reset(ep.task)), sampling.max_tokens) for ep in episodes
    ]
    round_index = 0
    while live:
        budgets = sorted({budget for _, _, budget in live})
        still_live: list[tuple[Episode, list[int], int]] = []
        for budget_index, budget in enumerate(budgets):
            batch = [(ep, ids) for ep, ids, b in live if b == budget]
            params = sampling.model_copy(
                update={
                    "n": 1,
                    "max_tokens": budget,
                    "seed": seed * 1_000_003 + round_index * 101 + budget_index,
                }
            )
            generations = policy.generate([ids for _, ids in batch], params)
            for (ep, ids), (gen,) in zip(batch, generations, strict=True):
                ep.segments.append(
                    Segment(
                        prompt_ids=ids,
                        completion_ids=list(gen.token_ids),
                        logprobs=_rollout_logprobs(policy, gen),
                        text=gen.text,
                        finish_reason=gen.finish_reason,
                    )
                )
                step = environment.step(ep, gen)
                ep.segments[-1].reward = step.segment_reward
                if step.done or len(ep.segments) >= max_segments:
                    ep.done, ep.reward = True, step.reward
                    ep.info.setdefault("truncated", not step.done)
                else:
                    next_ids = _prompt_tokens(policy, step.prompt)  # type: ignore[arg-type]
                    still_live.append((ep, next_ids, step.max_tokens or sampling.max_tokens))
        live = still_live
        round_index += 1
    return episodes


def _rollout_logprobs(policy: TrainablePolicy, generation: Generation) -> list[float]:
    """The sampler's logprobs of a completion; RL cannot go on without them (zeros would bias every ratio)."""
    if generation.logprobs is None:
        if not generation.token_ids:
            return []
        name = getattr(policy, "name", type(policy).__name__)
        raise UserError(
            f"policy {name} returned no logprobs for a sampled completion: RL needs them; keep "
            "sampling.logprobs=True and use a backend that reports them (hf, tinylm)"
        )
    return list(generation.logprobs)


def tasks_for_iteration(tasks: Sequence[Any], iteration: int, count: int, seed: int) -> list[Any]:
    """Tasks of one iteration: consecutive slices of per-epoch seeded permutations (resume gives the same order)."""
    n = len(tasks)
    if n == 0:
        raise UserError("the RL task list is empty: pass at least one task")
    chosen = []
    perms: dict[int, list[int]] = {}
    for j in range(iteration * count, (iteration + 1) * count):
        epoch, position = divmod(j, n)
        if epoch not in perms:
            generator = torch.Generator().manual_seed(seed * 7919 + epoch)
            perms[epoch] = torch.randperm(n, generator=generator).tolist()
        chosen.append(tasks[perms[epoch][position]])
    return chosen
