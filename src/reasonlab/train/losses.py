"""GRPO / Dr.GRPO / GSPO losses over episodes of segments, beside the plain per-token loop they are tested against.

A micro-batch is padded rows (one per segment) with the episode each row belongs to. Every row of an episode
carries the episode's advantage; the loss is normalised per episode over all its segments (Delethink's per-trace
rule), or by one constant for Dr.GRPO. GSPO's "sequence" is the whole episode: its importance ratio is the
geometric mean over all trained tokens of all segments.

Papers: GRPO (DeepSeekMath, arXiv 2402.03300), Dr.GRPO (arXiv 2503.20783), GSPO (arXiv 2507.18071);
dual-clip PPO (arXiv 1912.09729); truncated importance sampling as in Delethink (arXiv 2510.06557).

    losses, stats = episode_losses(inputs, config)  # (E,) and detached means; a mini-batch loss is their mean
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from reasonlab.train.rl_config import RLConfig, check_loss_options

__all__ = ["LossInputs", "episode_loss_reference", "episode_losses", "group_advantages", "statistic_units"]


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
    """Loss of each episode (E,) and detached statistics (means, see `statistic_units`); a mini-batch loss is
    their mean."""
    check_loss_options(config.loss_type, config.dual_clip)
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


def statistic_units(config: RLConfig) -> dict[str, str]:
    """The statistics `episode_losses` reports under `config`, each with what it is a mean over: "tokens" (trained
    tokens) or "episodes" (GSPO's sequence ratios). Weighting by these counts gives exact means over micro-batches
    and processes."""
    ratio_unit = "episodes" if config.loss_type == "gspo" else "tokens"
    units = {"clip_fraction": ratio_unit}
    if config.tis_cap is not None:
        units["tis_weight"] = ratio_unit
    if config.beta > 0:
        units["kl"] = "tokens"
    return units


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
    check_loss_options(config.loss_type, config.dual_clip)
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
