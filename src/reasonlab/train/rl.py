"""Policy-gradient core: episodes made of segments, step-wise environments, GRPO / Dr.GRPO / GSPO losses.

One shape covers every system that trains with RL here. An `Episode` is a list of `Segment`s (prompt tokens,
completion tokens, rollout logprobs, trained-token mask) with one reward:
- h1: one segment per episode (a single completion);
- Delethink: one segment per chunk, each with its own prompt (query + carryover); all chunks share the trace's
  advantage and the loss is normalised by the trace's total length;
- mem-agent: one segment per assistant turn (tool outputs live in the next prompt, so they are never trained).

Papers: GRPO (DeepSeekMath, arXiv 2402.03300), Dr.GRPO (arXiv 2503.20783), GSPO (arXiv 2507.18071);
dual-clip PPO (arXiv 1912.09729); truncated importance sampling as in Delethink (arXiv 2510.06557).

The engine owns generation: every live episode of every group goes through one batched `policy.generate`
call per round, so no environment ever samples at batch 1. Pinned semantics and deviations:
- GSPO's "sequence" is the whole episode: its importance ratio is the geometric mean over all trained tokens
  of all segments.
- Dr.GRPO divides each episode's token sum by one constant (default: the episode token budget
  `sampling.max_tokens * max_segments`), like TRL's `max_completion_length`.
- Mini-batches (one per optimizer step) and micro-batches (gradient accumulation) hold whole episodes, so
  per-episode normalisation and GSPO ratios are exact within a step. (Delethink's code splits rows instead.)
- With one optimizer step per iteration the old policy is the current one (ratio 1, as in TRL); with more,
  old logprobs are recomputed for every row before the first step.

    config = RLConfig(loss_type="grpo", iterations=40, tasks_per_iteration=16, group_size=8)
    history = train(config, policy, environment, tasks, run=Run.create("runs", "grpo", config))
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, Field, model_validator

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation, Prompt, SamplingParams, TrainablePolicy
from reasonlab.runs import Run, atomic_write

__all__ = [
    "Environment",
    "Episode",
    "LossInputs",
    "RLConfig",
    "RLTrainer",
    "Segment",
    "Step",
    "episode_loss_reference",
    "episode_losses",
    "group_advantages",
    "rollout",
    "tasks_for_iteration",
    "train",
]

LossType = Literal["grpo", "dr_grpo", "gspo"]
CHECKPOINT_NAME = "rl_state.pt"


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


class RLConfig(BaseModel):
    """Hyperparameters of one RL run; defaults are the papers' unless a field says otherwise."""

    loss_type: LossType = Field(
        "grpo",
        description="grpo: (R-mean)/(std+eps), per-episode token mean; dr_grpo: R-mean, token sum / constant; "
        "gspo: (R-mean)/(std+eps), episode-level importance ratio and clipping",
    )
    iterations: int = Field(100, ge=1, description="RL iterations (rollout + update)")
    tasks_per_iteration: int = Field(16, ge=1, description="groups (distinct tasks) per iteration")
    group_size: int = Field(8, ge=1, description="G: episodes per task")
    max_segments: int = Field(
        1, ge=1, description="cap on segments per episode (Delethink I, mem-agent turns)"
    )
    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(temperature=1.0, max_tokens=256),
        description="rollout sampling; seeds are set per round by the engine, n is ignored",
    )
    learning_rate: float = Field(1e-6, gt=0, description="AdamW learning rate (Delethink, h1: 1e-6)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient-norm clip; None disables")
    optimizer_steps_per_iteration: int = Field(
        1, ge=1, description="fixed optimizer steps per iteration (Delethink: 2), whatever the row count"
    )
    micro_batch_size: int = Field(64, ge=1, description="rows per forward pass (gradient accumulation unit)")
    epsilon_low: float = Field(0.2, ge=0, description="PPO clip 1 - epsilon_low (GSPO paper: 3e-4)")
    epsilon_high: float = Field(
        0.2, ge=0, description="PPO clip 1 + epsilon_high (Delethink: 0.26; GSPO: 4e-4)"
    )
    dual_clip: float | None = Field(
        None, gt=1, description="dual-clip bound c for negative advantages (Delethink: 3)"
    )
    tis_cap: float | None = Field(
        None, gt=0, description="truncated importance weight min(pi_old / pi_rollout, cap) (Delethink: 2)"
    )
    beta: float = Field(0.0, ge=0, description="KL weight to the frozen reference (k3 estimator); 0 disables")
    advantage_epsilon: float = Field(1e-6, ge=0, description="eps in (R-mean)/(std+eps); TRL uses 1e-4")
    advantage_std: Literal["sample", "population"] = Field(
        "sample", description="std of a group: sample (Bessel, as TRL and verl) or population"
    )
    dr_grpo_norm: int | None = Field(
        None, ge=1, description="Dr.GRPO constant divisor; None: sampling.max_tokens * max_segments"
    )
    seed: int = Field(0, description="seeds data order and rollout sampling")
    checkpoint_every: int = Field(1, ge=1, description="iterations between checkpoints (needs a run)")
    resume: bool = Field(False, description="continue from the run's last checkpoint")
    progress: bool = Field(True, description="show a progress bar")

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        if self.loss_type != "gspo" and self.epsilon_low >= 1:
            raise ValueError(f"epsilon_low={self.epsilon_low} must be below 1 so that 1 - epsilon_low > 0")
        return self

    @property
    def episode_token_budget(self) -> int:
        return self.dr_grpo_norm or self.sampling.max_tokens * self.max_segments


# advantages and losses


def group_advantages(
    rewards: torch.Tensor,
    groups: torch.Tensor,
    loss_type: str,
    epsilon: float = 1e-6,
    std: Literal["sample", "population"] = "sample",
) -> torch.Tensor:
    """Advantages (N,) of episode rewards (N,) within their groups (N,): R - mean, divided by std + eps
    except for dr_grpo. A group of one has std 0."""
    _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    counts_f = counts.to(rewards.dtype)
    mean = torch.zeros_like(counts_f).index_add_(0, inverse, rewards) / counts_f
    centered = rewards - mean[inverse]
    if loss_type == "dr_grpo":
        return centered
    if loss_type in ("grpo", "gspo"):
        squares = torch.zeros_like(counts_f).index_add_(0, inverse, centered**2)
        dof = (counts_f - 1).clamp(min=1) if std == "sample" else counts_f
        group_std = (squares / dof).sqrt()
        return centered / (group_std[inverse] + epsilon)
    raise ValueError(f"unknown loss_type {loss_type!r}: use grpo, dr_grpo or gspo")


@dataclass
class LossInputs:
    """A micro-batch of rows (segments) padded to (R, T), with the episode each row belongs to."""

    logprobs: torch.Tensor  # (R, T) current policy, with grad
    old_logprobs: torch.Tensor  # (R, T) policy before this iteration's update
    rollout_logprobs: torch.Tensor  # (R, T) what the sampler reported
    mask: torch.Tensor  # (R, T) 1.0 on trained tokens
    row_episode: torch.Tensor  # (R,) index in [0, E)
    advantages: torch.Tensor  # (E,)
    episode_tokens: torch.Tensor  # (E,) trained tokens of each episode over all its rows
    ref_logprobs: torch.Tensor | None = None  # (R, T) frozen reference, when beta > 0


def _per_episode(values: torch.Tensor, row_episode: torch.Tensor, num_episodes: int) -> torch.Tensor:
    """Sum (R, T) token values into (E,) episode totals."""
    return values.new_zeros(num_episodes).index_add(0, row_episode, values.sum(-1))


def episode_losses(inputs: LossInputs, config: RLConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of each episode (E,) and detached statistics; a mini-batch loss is their mean."""
    mask, row_episode = inputs.mask, inputs.row_episode
    E = inputs.advantages.shape[0]
    tokens = inputs.episode_tokens.clamp(min=1)  # (E,)
    advantage = inputs.advantages[row_episode][:, None]  # (R, 1)
    log_ratio = inputs.logprobs - inputs.old_logprobs  # (R, T)
    low, high = 1 - config.epsilon_low, 1 + config.epsilon_high
    stats: dict[str, torch.Tensor] = {}

    if config.loss_type in ("grpo", "dr_grpo"):
        ratio = log_ratio.exp()
        per_token = -torch.min(ratio * advantage, ratio.clamp(low, high) * advantage)  # (R, T)
        if config.dual_clip is not None:
            per_token = torch.where(
                advantage < 0, per_token.clamp(max=-config.dual_clip * advantage), per_token
            )
        if config.tis_cap is not None:
            weight = (inputs.old_logprobs - inputs.rollout_logprobs).exp().clamp(max=config.tis_cap).detach()
            per_token = per_token * weight
            stats["tis_weight"] = (weight * mask).sum() / mask.sum().clamp(min=1)
        clipped = ((ratio < low) & (advantage < 0)) | ((ratio > high) & (advantage > 0))
        stats["clip_fraction"] = (clipped * mask).sum() / mask.sum().clamp(min=1)
    elif config.loss_type == "gspo":
        # one importance ratio per episode: the geometric mean of token ratios over all its segments
        sequence_ratio = (_per_episode(log_ratio * mask, row_episode, E) / tokens).exp()  # (E,)
        sequence_loss = -torch.min(
            sequence_ratio * inputs.advantages, sequence_ratio.clamp(low, high) * inputs.advantages
        )
        if config.tis_cap is not None:
            drift = (
                _per_episode((inputs.old_logprobs - inputs.rollout_logprobs) * mask, row_episode, E) / tokens
            )
            weight = drift.exp().clamp(max=config.tis_cap).detach()
            sequence_loss = sequence_loss * weight
            stats["tis_weight"] = weight.mean()
        # every token of an episode carries its sequence loss, so the per-episode token mean below gives it back
        per_token = sequence_loss[row_episode][:, None].expand_as(mask)  # (R, T)
        clipped = ((sequence_ratio < low) & (inputs.advantages < 0)) | (
            (sequence_ratio > high) & (inputs.advantages > 0)
        )
        stats["clip_fraction"] = clipped.float().mean()
    else:
        raise ValueError(f"unknown loss_type {config.loss_type!r}: use grpo, dr_grpo or gspo")

    if config.beta > 0:
        if inputs.ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs")
        delta = inputs.ref_logprobs - inputs.logprobs
        kl = delta.exp() - delta - 1  # (R, T) k3 estimator, >= 0
        per_token = per_token + config.beta * kl
        stats["kl"] = (kl * mask).sum().detach() / mask.sum().clamp(min=1)

    token_sum = _per_episode(per_token * mask, row_episode, E)  # (E,)
    # Dr.GRPO: one constant for every episode; GRPO and GSPO: the episode's own trained-token count
    normalizer = config.episode_token_budget if config.loss_type == "dr_grpo" else tokens
    losses = token_sum / normalizer
    return losses, {name: value.detach() for name, value in stats.items()}


def episode_loss_reference(
    logprobs: Sequence[torch.Tensor],
    old_logprobs: Sequence[torch.Tensor],
    rollout_logprobs: Sequence[torch.Tensor],
    masks: Sequence[Sequence[int]],
    advantage: float,
    config: RLConfig,
    ref_logprobs: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Plain per-token loop over one episode's segments (1-D tensors each); `episode_losses` is tested against it."""
    low, high = 1 - config.epsilon_low, 1 + config.epsilon_high
    trained = [(s, t) for s, m in enumerate(masks) for t, keep in enumerate(m) if keep]
    length = max(len(trained), 1)
    total = torch.zeros(())
    if config.loss_type == "gspo":
        log_ratio_sum = sum((logprobs[s][t] - old_logprobs[s][t] for s, t in trained), torch.zeros(()))
        ratio = torch.exp(log_ratio_sum / length)
        total = -torch.min(ratio * advantage, torch.clamp(ratio, low, high) * advantage) * length
        if config.tis_cap is not None:
            drift = sum((old_logprobs[s][t] - rollout_logprobs[s][t] for s, t in trained), torch.zeros(()))
            total = total * torch.clamp(torch.exp(drift / length), max=config.tis_cap).detach()
    for s, t in trained:
        if config.loss_type in ("grpo", "dr_grpo"):
            ratio = torch.exp(logprobs[s][t] - old_logprobs[s][t])
            term = -torch.min(ratio * advantage, torch.clamp(ratio, low, high) * advantage)
            if config.dual_clip is not None and advantage < 0:
                term = torch.clamp(term, max=-config.dual_clip * advantage)
            if config.tis_cap is not None:
                term = (
                    term
                    * torch.clamp(
                        torch.exp(old_logprobs[s][t] - rollout_logprobs[s][t]), max=config.tis_cap
                    ).detach()
                )
            total = total + term
        if config.beta > 0 and ref_logprobs is not None:
            delta = ref_logprobs[s][t] - logprobs[s][t]
            total = total + config.beta * (torch.exp(delta) - delta - 1)
    if config.loss_type == "dr_grpo":
        return total / config.episode_token_budget
    return total / length


# rollout engine


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
                        logprobs=list(gen.logprobs or [0.0] * len(gen.token_ids)),
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


# trainer


TaskSource = Sequence[Any] | Callable[[int], Sequence[Any]]


class RLTrainer:
    """Holds the policy, environment, optimizer and reference; `iteration(i)` is one rollout + update."""

    def __init__(self, config: RLConfig, policy: TrainablePolicy, environment: Environment) -> None:
        self.config = config
        self.policy = policy
        self.environment = environment
        self.parameters = [p for p in policy.module.parameters() if p.requires_grad]
        if not self.parameters:
            raise UserError("the policy has no trainable parameters: unfreeze the model or enable LoRA")
        self.optimizer = torch.optim.AdamW(
            self.parameters,
            lr=config.learning_rate,
            betas=config.adam_betas,
            weight_decay=config.weight_decay,
        )
        self.reference = policy.reference() if config.beta > 0 else None
        self.temperature = config.sampling.temperature or 1.0
        self.history: list[dict[str, Any]] = []
        self.start_iteration = 0
        self.world_size, self.rank = _distributed()

    # one iteration

    def iteration(self, iteration: int, tasks: Sequence[Any]) -> dict[str, Any]:
        """Roll out `tasks` (this process's share) and take the fixed number of optimizer steps."""
        started = time.perf_counter()
        episodes = rollout(
            self.policy,
            self.environment,
            tasks,
            self.config.group_size,
            self.config.sampling,
            self.config.max_segments,
            seed=self.config.seed * 100_003 + iteration * self.world_size + self.rank,
        )
        rollout_seconds = time.perf_counter() - started
        metrics = self.update(episodes, iteration)
        metrics.update(_episode_metrics(episodes, self.config))
        metrics["rollout_seconds"] = rollout_seconds
        metrics["train_seconds"] = time.perf_counter() - started - rollout_seconds
        metrics["seconds"] = time.perf_counter() - started
        metrics["tokens_per_second"] = sum(ep.completion_tokens for ep in episodes) / max(
            rollout_seconds, 1e-9
        )
        return metrics

    def advantages(self, episodes: Sequence[Episode]) -> torch.Tensor:
        rewards = torch.tensor([ep.total_reward for ep in episodes], dtype=torch.float64)
        groups = torch.tensor([ep.group for ep in episodes])
        advantages = group_advantages(
            rewards, groups, self.config.loss_type, self.config.advantage_epsilon, self.config.advantage_std
        )
        return advantages.float()

    def update(self, episodes: Sequence[Episode], iteration: int = 0) -> dict[str, Any]:
        """Fixed optimizer steps over `episodes`; returns loss, grad norm, clip fraction, KL, TIS weight."""
        config = self.config
        advantages = self.advantages(episodes)
        order = torch.randperm(
            len(episodes), generator=torch.Generator().manual_seed(config.seed + iteration)
        ).tolist()
        minibatches = _split_by_rows(
            [episodes[i] for i in order], [i for i in order], config.optimizer_steps_per_iteration
        )
        old = self._old_logprobs(episodes) if config.optimizer_steps_per_iteration > 1 else None
        totals: dict[str, list[float]] = {}
        for members in minibatches:
            self.optimizer.zero_grad(set_to_none=True)
            # zero-advantage episodes add nothing to the gradient unless a KL term is on: count them, skip them
            active = [i for i in members if config.beta > 0 or advantages[i] != 0]
            loss_total = 0.0
            for micro in _micro_batches(active, episodes, config.micro_batch_size):
                losses, stats = self.loss(episodes, micro, advantages, old)
                loss = losses.sum() / len(members)
                loss.backward()
                loss_total += float(loss.detach())
                for name, value in stats.items():
                    totals.setdefault(name, []).append(float(value))
            grad_norm = self._step()
            totals.setdefault("loss", []).append(loss_total)
            totals.setdefault("grad_norm", []).append(grad_norm)
        return {name: sum(values) / len(values) for name, values in totals.items()}

    def loss(
        self,
        episodes: Sequence[Episode],
        members: Sequence[int],
        advantages: torch.Tensor,
        old: dict[int, list[torch.Tensor]] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-episode losses of `episodes[members]` in one forward pass of all their rows."""
        rows = [(k, s) for k, i in enumerate(members) for s in episodes[i].segments]
        new = self.policy.logprobs(
            [s.prompt_ids for _, s in rows], [s.completion_ids for _, s in rows], self.temperature
        )
        device = new[0].device if new else torch.device("cpu")
        # one optimizer step per iteration: the old policy is the current one (ratio 1, as TRL does)
        old_rows = [x.detach() for x in new] if old is None else [x for i in members for x in old[i]]
        ref_rows = None
        if self.reference is not None:
            with torch.no_grad():
                ref_rows = self.reference.logprobs(
                    [s.prompt_ids for _, s in rows], [s.completion_ids for _, s in rows], self.temperature
                )
        inputs = LossInputs(
            logprobs=_pad(new),
            old_logprobs=_pad(old_rows).to(device),
            rollout_logprobs=_pad([torch.tensor(s.logprobs) for _, s in rows]).to(device),
            mask=_pad([torch.tensor(s.token_mask, dtype=torch.float32) for _, s in rows]).to(device),
            row_episode=torch.tensor([k for k, _ in rows], device=device),
            advantages=advantages[list(members)].to(device),
            episode_tokens=torch.tensor([float(episodes[i].trained_tokens) for i in members], device=device),
            ref_logprobs=None if ref_rows is None else _pad(ref_rows).to(device),
        )
        return episode_losses(inputs, self.config)

    @torch.no_grad()
    def _old_logprobs(self, episodes: Sequence[Episode]) -> dict[int, list[torch.Tensor]]:
        old: dict[int, list[torch.Tensor]] = {}
        for micro in _micro_batches(list(range(len(episodes))), episodes, self.config.micro_batch_size):
            rows = [s for i in micro for s in episodes[i].segments]
            values = self.policy.logprobs(
                [s.prompt_ids for s in rows], [s.completion_ids for s in rows], self.temperature
            )
            cursor = 0
            for i in micro:
                count = len(episodes[i].segments)
                old[i] = [v.detach() for v in values[cursor : cursor + count]]
                cursor += count
        return old

    def _step(self) -> float:
        if self.world_size > 1:
            for p in self.parameters:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.AVG)
        if self.config.max_grad_norm is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm))
        else:
            norm = float(
                torch.sqrt(sum((p.grad.float() ** 2).sum() for p in self.parameters if p.grad is not None))
            )
        self.optimizer.step()
        return norm

    # checkpoints

    def save_checkpoint(self, run: Run, iteration: int) -> None:
        state = {
            "iteration": iteration,
            "parameters": {
                n: p.detach().cpu() for n, p in self.policy.module.named_parameters() if p.requires_grad
            },
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
        }
        with atomic_write(run.checkpoint_dir / CHECKPOINT_NAME, "wb") as handle:
            torch.save(state, handle)

    def load_checkpoint(self, run: Run) -> bool:
        """Restore weights, optimizer and history from `run`; False when it has no checkpoint."""
        path = run.checkpoint_dir / CHECKPOINT_NAME
        if not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        named = dict(self.policy.module.named_parameters())
        with torch.no_grad():
            for name, value in state["parameters"].items():
                named[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state["history"])
        self.start_iteration = state["iteration"] + 1
        return True

    # the loop

    def train(
        self,
        tasks: TaskSource,
        run: Run | None = None,
        on_iteration: Callable[[int, dict], dict | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run iterations start_iteration .. config.iterations - 1; checkpoint and log into `run`."""
        config = self.config
        if run is not None:
            has_checkpoint = (run.checkpoint_dir / CHECKPOINT_NAME).is_file()
            if has_checkpoint and not config.resume:
                raise UserError(
                    f"run {run.dir} already has an RL checkpoint: pass resume=True to continue it, or a new run name"
                )
            if config.resume and self.load_checkpoint(run):
                _truncate_metrics(run, self.start_iteration)
        from rich.progress import Progress

        with Progress(disable=not config.progress or self.rank != 0, transient=True) as progress:
            bar = progress.add_task(
                f"RL {config.loss_type}", total=config.iterations, completed=self.start_iteration
            )
            for iteration in range(self.start_iteration, config.iterations):
                if callable(tasks):
                    batch = list(tasks(iteration))
                else:
                    batch = tasks_for_iteration(tasks, iteration, config.tasks_per_iteration, config.seed)
                metrics = {
                    "iteration": iteration,
                    **self.iteration(iteration, batch[self.rank :: self.world_size]),
                }
                if on_iteration is not None:
                    metrics.update(on_iteration(iteration, metrics) or {})
                self.history.append(metrics)
                if run is not None and self.rank == 0:
                    run.log({"kind": "rl", **metrics}, step=iteration)
                    if (iteration + 1) % config.checkpoint_every == 0 or iteration + 1 == config.iterations:
                        self.save_checkpoint(run, iteration)
                progress.update(
                    bar, advance=1, description=f"RL {config.loss_type} reward {metrics['reward_mean']:.2f}"
                )
        return self.history


def train(
    config: RLConfig,
    policy: TrainablePolicy,
    environment: Environment,
    tasks: TaskSource,
    run: Run | None = None,
    on_iteration: Callable[[int, dict], dict | None] | None = None,
) -> list[dict[str, Any]]:
    """Train `policy` with RL on `tasks` (a list, cycled in seeded epochs, or iteration -> tasks); returns metrics."""
    return RLTrainer(config, policy, environment).train(tasks, run, on_iteration)


# helpers


def _distributed() -> tuple[int, int]:
    """(world size, rank): joins the process group `accelerate launch` / torchrun set up; (1, 0) alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        from accelerate import PartialState

        PartialState()  # initialises torch.distributed from the launcher's environment (gloo on CPU, nccl on GPU)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def _average_across_processes(metrics: dict[str, Any]) -> dict[str, Any]:
    """Mean of every numeric metric over the processes (each rolled out its own share of the tasks)."""
    keys = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)) and k != "iteration")
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    world = torch.distributed.get_world_size()
    return {**metrics, **{k: float(v) / world for k, v in zip(keys, values.tolist(), strict=True)}}


def _pad(rows: Sequence[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    """Right-pad 1-D tensors into (R, T)."""
    return torch.nn.utils.rnn.pad_sequence(
        [r.reshape(-1) for r in rows], batch_first=True, padding_value=value
    )


def _split_by_rows(episodes: Sequence[Episode], indices: Sequence[int], parts: int) -> list[list[int]]:
    """Split episodes (in order) into `parts` contiguous mini-batches of about equal row counts."""
    total = sum(len(ep.segments) for ep in episodes)
    target = total / parts
    minibatches: list[list[int]] = [[] for _ in range(parts)]
    seen = 0
    for ep, index in zip(episodes, indices, strict=True):
        part = min(int(seen // target) if target > 0 else 0, parts - 1)
        minibatches[part].append(index)
        seen += len(ep.segments)
    return [m for m in minibatches if m]


def _micro_batches(members: Sequence[int], episodes: Sequence[Episode], rows: int) -> list[list[int]]:
    """Group whole episodes into micro-batches of at most `rows` segments (a longer episode goes alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    count = 0
    for i in members:
        size = len(episodes[i].segments)
        if current and count + size > rows:
            batches.append(current)
            current, count = [], 0
        current.append(i)
        count += size
    if current:
        batches.append(current)
    return batches


def _episode_metrics(episodes: Sequence[Episode], config: RLConfig) -> dict[str, float]:
    rewards = torch.tensor([ep.total_reward for ep in episodes], dtype=torch.float64)
    groups: dict[int, list[float]] = {}
    for ep in episodes:
        groups.setdefault(ep.group, []).append(ep.total_reward)
    signal = sum(1 for values in groups.values() if max(values) != min(values)) / max(len(groups), 1)
    lengths = [ep.completion_tokens for ep in episodes]
    return {
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std(unbiased=False)),
        "signal_group_fraction": signal,
        "completion_tokens_mean": sum(lengths) / len(lengths),
        "completion_tokens_max": max(lengths),
        "segments_mean": sum(len(ep.segments) for ep in episodes) / len(episodes),
        "truncated_fraction": sum(1 for ep in episodes if ep.segments[-1].finish_reason == "length")
        / len(episodes),
        "episodes": len(episodes),
    }


def _truncate_metrics(run: Run, start_iteration: int) -> None:
    """Drop RL records at or after `start_iteration` (logged by a killed run after its last checkpoint)."""
    if not run.metrics_path.exists():
        return
    kept = []
    for line in run.metrics_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if not (record.get("kind") == "rl" and record.get("iteration", 0) >= start_iteration):
            kept.append(line + "\n")
    with atomic_write(run.metrics_path) as handle:
        handle.write("".join(kept))
