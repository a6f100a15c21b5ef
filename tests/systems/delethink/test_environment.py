"""The RL environment on reasonlab.train.rl: chunks as segments with their own prompts and budgets, one shared
advantage per trace, the loss of a trace normalised by its total length over all chunks (the spec's flat-batch
formula), and LongCoT-RL as the same environment with one chunk."""

from __future__ import annotations

import random

import pytest
import torch
from delethink_fakes import random_tinylm

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.delethink import DelethinkConfig, DelethinkEnvironment, carryover_ids, rl_config
from reasonlab.train import rl

CONFIG = DelethinkConfig(chunk_size=10, carryover=4, iterations=3)


def length_reward(task, text: str) -> float:
    """A reward with spread inside each group: traces that contain the letter 'a' score 1."""
    return float("a" in text.split())


def digit_share_reward(task, text: str) -> float:
    """A continuous reward, so that every group of random traces has spread: the share of state words."""
    words = text.split()
    return sum(w.isdigit() for w in words) / max(len(words), 1)


def rollout(world, policy, config: DelethinkConfig, tasks, seed: int = 0):
    environment = DelethinkEnvironment(config, policy, world.query, length_reward)
    base = rl.RLConfig(group_size=4, learning_rate=1e-3, sampling=SamplingParams(temperature=1.0), progress=False)
    settings = rl_config(config, base)
    episodes = rl.rollout(policy, environment, tasks, settings.group_size, settings.sampling, settings.max_segments,
                          seed=seed)
    return settings, environment, episodes


def test_rl_config_sets_the_chunk_budget_and_segment_cap():
    base = rl.RLConfig(learning_rate=3e-4, epsilon_high=0.26, sampling=SamplingParams(temperature=0.6, max_tokens=7))
    delethink, longcot = rl_config(CONFIG, base), rl_config(DelethinkConfig.longcot(CONFIG.budget), base)
    assert (delethink.sampling.max_tokens, delethink.max_segments) == (10, 3)
    assert (longcot.sampling.max_tokens, longcot.max_segments) == (22, 1)
    # identical settings otherwise
    for settings in (delethink, longcot):
        assert settings.model_dump(exclude={"sampling", "max_segments"}) == base.model_dump(exclude={"sampling", "max_segments"})
        assert settings.sampling.temperature == 0.6


def test_segments_are_chunks_with_reset_prompts_and_budgets(world):
    policy = random_tinylm(world)
    tasks = [world.task(5, random.Random(i)) for i in range(3)]
    _, _, episodes = rollout(world, policy, CONFIG, tasks)
    multi = [ep for ep in episodes if len(ep.segments) > 1]
    assert multi, "some traces must run past the first chunk"
    for ep in episodes:
        query = policy.tokenize(world.query(ep.task))
        generated: list[int] = []
        for index, segment in enumerate(ep.segments):
            assert segment.prompt_ids == query + carryover_ids(generated, 4)
            assert len(segment.completion_ids) <= (10 if index == 0 else 6)
            if index < len(ep.segments) - 1:
                assert segment.finish_reason == "length" and len(segment.completion_ids) == (10 if index == 0 else 6)
            generated += segment.completion_ids
        assert len(ep.segments) <= 3
        assert ep.info["trace_tokens"] == ep.completion_tokens == len(generated)
        carried = ep.segments[-1].prompt_ids[len(query):]
        assert ep.reward == length_reward(ep.task, policy.detokenize(carried + ep.segments[-1].completion_ids))


def captured_loss_inputs(monkeypatch, trainer, episodes, old=None):
    captured: list[rl.LossInputs] = []
    original = rl.episode_losses

    def spy(inputs, config):
        captured.append(inputs)
        return original(inputs, config)

    monkeypatch.setattr(rl, "episode_losses", spy)
    advantages = trainer.advantages(episodes)
    losses, _ = trainer.loss(episodes, list(range(len(episodes))), advantages, old)
    return captured[0], advantages, losses


def test_every_chunk_of_a_trace_carries_the_trace_advantage(world, monkeypatch):
    policy = random_tinylm(world)
    tasks = [world.task(5, random.Random(i)) for i in range(3)]
    settings, environment, episodes = rollout(world, policy, CONFIG, tasks)
    trainer = rl.RLTrainer(settings, policy, environment)
    inputs, advantages, _ = captured_loss_inputs(monkeypatch, trainer, episodes)
    row_advantages = inputs.advantages[inputs.row_episode]
    rows = [e for e, ep in enumerate(episodes) for _ in ep.segments]
    assert inputs.row_episode.tolist() == rows
    for e, ep in enumerate(episodes):
        mine = row_advantages[inputs.row_episode == e]
        assert len(mine) == len(ep.segments) and torch.all(mine == advantages[e])
    # the trace-level GRPO advantage: (R - group mean) / (group std + eps)
    rewards = torch.tensor([ep.reward for ep in episodes]).view(3, 4)
    expected = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)
    assert advantages.view(3, 4) == pytest.approx(expected, abs=1e-5)
    assert advantages.abs().sum() > 0


def test_loss_is_normalised_by_trace_length_over_all_chunks(world, monkeypatch):
    """rl.py's per-episode token mean equals the spec's flat-batch formula:
    L = mean over rows of rowsum / (len(trace) * N_traces / N_rows)."""
    policy = random_tinylm(world)
    tasks = [world.task(5, random.Random(i)) for i in range(3)]
    settings, environment, episodes = rollout(world, policy, CONFIG, tasks)
    settings = settings.model_copy(update={"epsilon_high": 0.26, "dual_clip": 3.0, "tis_cap": 2.0})
    trainer = rl.RLTrainer(settings, policy, environment)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        rows = policy.logprobs([s.prompt_ids for ep in episodes for s in ep.segments],
                               [s.completion_ids for ep in episodes for s in ep.segments])
    noisy = [r + 0.3 * torch.randn(r.shape, generator=generator) for r in rows]  # ratios away from 1
    old, cursor = {}, 0
    for e, ep in enumerate(episodes):
        old[e], cursor = noisy[cursor : cursor + len(ep.segments)], cursor + len(ep.segments)
    _, advantages, losses = captured_loss_inputs(monkeypatch, trainer, episodes, old)

    n_traces, n_rows = len(episodes), len(rows)
    row_losses = []
    with torch.no_grad():
        for e, ep in enumerate(episodes):
            new = policy.logprobs([s.prompt_ids for s in ep.segments], [s.completion_ids for s in ep.segments])
            length = ep.completion_tokens
            a = float(advantages[e])
            for s, segment in enumerate(ep.segments):
                ratio = (new[s] - old[e][s]).exp()
                term = -torch.min(ratio * a, ratio.clamp(0.8, 1.26) * a)
                if a < 0:
                    term = term.clamp(max=-3.0 * a)
                term = term * (old[e][s] - torch.tensor(segment.logprobs)).exp().clamp(max=2.0)
                row_losses.append(term.sum() / (length * n_traces / n_rows))
    flat_batch = torch.stack(row_losses).mean()
    assert float(losses.mean().detach()) == pytest.approx(float(flat_batch), rel=1e-4, abs=1e-6)
    # normalising per chunk instead would give a different number
    assert any(len(ep.segments) > 1 for ep in episodes)


def test_longcot_environment_equals_delethink_when_traces_fit_one_chunk(world, oracle):
    """With C at least the trace length, Delethink-RL and LongCoT-RL roll out the same segments."""
    tasks = [world.task(t, random.Random(t)) for t in (3, 6, 8)]  # traces of at most 19 tokens
    delethink = DelethinkConfig(chunk_size=20, carryover=10, iterations=4)
    reward = world.reward
    episodes = {}
    for name, config in (("delethink", delethink), ("longcot", DelethinkConfig.longcot(delethink.budget))):
        environment = DelethinkEnvironment(config, oracle, world.query, reward)
        settings = rl_config(config, rl.RLConfig(group_size=2, progress=False))
        episodes[name] = rl.rollout(oracle, environment, tasks, 2, settings.sampling, settings.max_segments)
    for d, c in zip(episodes["delethink"], episodes["longcot"], strict=True):
        assert [(s.prompt_ids, s.completion_ids) for s in d.segments] == [(s.prompt_ids, s.completion_ids) for s in c.segments]
        assert d.reward == c.reward == 1.0


def test_delethink_rl_step_changes_every_parameter(world):
    policy = random_tinylm(world, seed=1)
    tasks = [world.task(5, random.Random(i)) for i in range(4)]
    environment = DelethinkEnvironment(CONFIG, policy, world.query, digit_share_reward)
    settings = rl_config(CONFIG, rl.RLConfig(iterations=1, tasks_per_iteration=4, group_size=4, learning_rate=1e-2,
                                             sampling=SamplingParams(temperature=1.0), progress=False))
    before = {n: p.detach().clone() for n, p in policy.module.named_parameters()}
    history = rl.train(settings, policy, environment, tasks)
    assert history[0]["segments_mean"] > 1 and torch.isfinite(torch.tensor(history[0]["loss"]))
    changed = [n for n, p in policy.module.named_parameters() if not torch.equal(p, before[n])]
    assert len(changed) == len(before)
