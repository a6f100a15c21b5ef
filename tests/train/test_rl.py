"""The RL engine: batched multi-segment rollouts, accumulation invariance, and end-to-end GRPO / Dr.GRPO / GSPO
on a toy verifiable task (sum of two digits) from a weak SFT warm start, with kill-and-resume."""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.runs import Run
from reasonlab.train import rl, sft
from reasonlab.train.rl import (
    Episode,
    RLConfig,
    RLTrainer,
    Segment,
    Step,
    rollout,
    tasks_for_iteration,
    train,
)
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

N = 5  # operands 0..4: 25 tasks, answers 0..8
TASKS = [(a, b) for a in range(N) for b in range(N)]
TIMING_KEYS = {"seconds", "rollout_seconds", "train_seconds", "tokens_per_second", "time"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class SumEnvironment:
    """One segment: the prompt "a+b=", reward 1 iff the completion is the sum."""

    def reset(self, task):
        return f"{task[0]}+{task[1]}="

    def step(self, history: Episode, completion):
        return Step.finish(float(completion.text == str(sum(history.task))))


class RecordingTinyLM(TinyLM):
    """A tinylm that records the batch size and token budget of every generate call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, int]] = []

    def generate(self, prompts, params):
        self.calls.append((len(prompts), params.max_tokens))
        return super().generate(prompts, params)


def tiny_policy(cls=TinyLM, seed: int = 0) -> TinyLM:
    tokenizer = Tokenizer.from_texts(["0123456789+=;"])
    return cls.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=2, d_model=64, n_head=4), tokenizer, seed=seed
    )


class CarryEnvironment:
    """Delethink-shaped: each chunk's prompt is the query plus the last 2 tokens of the previous chunk;
    chunk 1 gets 4 new tokens, later chunks 3; the episode ends after task['chunks'] chunks."""

    def reset(self, task):
        return [5, 6, 7][: task["query"]]

    def step(self, history: Episode, completion):
        if len(history.segments) == history.task["chunks"]:
            return Step.finish(reward=float(history.task["chunks"]), segment_reward=0.5)
        query = self.reset(history.task)
        return Step.next(query + completion.token_ids[-2:], segment_reward=0.5, max_tokens=3)


def test_rollout_batches_all_live_episodes_per_round():
    policy = tiny_policy(RecordingTinyLM)
    tasks = [{"query": 1, "chunks": 1}, {"query": 2, "chunks": 3}, {"query": 3, "chunks": 2}]
    params = SamplingParams(temperature=1.0, max_tokens=4)
    episodes = rollout(
        policy, CarryEnvironment(), tasks, group_size=2, sampling=params, max_segments=5, seed=0
    )
    # round 1: all 6 episodes at budget 4; round 2: the 4 live ones at budget 3; round 3: the 2 longest
    assert policy.calls == [(6, 4), (4, 3), (2, 3)]
    assert [len(ep.segments) for ep in episodes] == [1, 1, 3, 3, 2, 2]
    assert [ep.group for ep in episodes] == [0, 0, 1, 1, 2, 2]
    long = episodes[2]
    # every segment keeps its own prompt: the query plus the carried-over tail of the previous chunk
    assert long.segments[0].prompt_ids == [5, 6]
    for previous, segment in zip(long.segments, long.segments[1:], strict=False):
        assert segment.prompt_ids == [5, 6, *previous.completion_ids[-2:]]
        assert len(segment.completion_ids) <= 3
    # rollout logprobs come with every token; per-segment rewards add to the episode reward
    assert all(len(s.logprobs) == len(s.completion_ids) for ep in episodes for s in ep.segments)
    assert long.total_reward == 3.0 + 3 * 0.5 and long.done


def test_max_segments_caps_an_episode():
    policy = tiny_policy()
    episodes = rollout(
        policy,
        CarryEnvironment(),
        [{"query": 2, "chunks": 9}],
        group_size=1,
        sampling=SamplingParams(max_tokens=4),
        max_segments=2,
    )
    assert len(episodes[0].segments) == 2
    assert episodes[0].info["truncated"] is True
    # a cut episode has no outcome reward; its per-segment shaping still counts
    assert episodes[0].done and episodes[0].reward == 0.0 and episodes[0].total_reward == 2 * 0.5


def test_data_order_is_a_seeded_function_of_the_iteration():
    first = [tasks_for_iteration(TASKS, i, 16, seed=3) for i in range(4)]
    assert first == [tasks_for_iteration(TASKS, i, 16, seed=3) for i in range(4)]
    # consecutive iterations walk through whole epochs: the first 25 draws are a permutation of the tasks
    flat = [t for batch in first for t in batch]
    assert sorted(flat[:25]) == sorted(TASKS)
    with pytest.raises(UserError, match="empty"):
        tasks_for_iteration([], 0, 4, 0)


def _episodes(policy, count: int = 12) -> list[Episode]:
    """Hand-made multi-segment episodes with rollout logprobs from the policy itself."""
    rng = random.Random(0)
    episodes = []
    for i in range(count):
        segments = []
        for _ in range(1 + i % 3):
            prompt = [rng.randrange(4, 16) for _ in range(1 + rng.randrange(4))]
            completion = [rng.randrange(4, 16) for _ in range(1 + rng.randrange(5))]
            with torch.no_grad():
                logprobs = policy.logprobs([prompt], [completion])[0].tolist()
            segments.append(Segment(prompt, completion, logprobs))
        episodes.append(Episode(task=None, group=i // 4, segments=segments, reward=float(rng.random() > 0.5)))
    return episodes


@pytest.mark.parametrize("loss_type", ["grpo", "gspo"])
@pytest.mark.parametrize("steps", [1, 2])
def test_batch_equals_micro_batches_with_accumulation(loss_type, steps):
    """One forward of every row gives the same update as micro-batches of one row with accumulation."""
    results = []
    for micro_batch_size in (64, 1):
        policy = tiny_policy()
        config = RLConfig(
            loss_type=loss_type,
            learning_rate=1e-2,
            micro_batch_size=micro_batch_size,
            optimizer_steps_per_iteration=steps,
            progress=False,
        )
        trainer = RLTrainer(config, policy, SumEnvironment())
        # SGD: Adam's first step is sign-like and turns float noise in near-zero gradients into full steps
        trainer.optimizer = torch.optim.SGD(trainer.parameters, lr=0.1)
        before = [p.detach().clone() for p in policy.module.parameters()]
        metrics = trainer.update(_episodes(policy))
        after = [p.detach().clone() for p in policy.module.parameters()]
        results.append((after, metrics))
        assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    (whole, m_whole), (micro, m_micro) = results
    for a, b in zip(whole, micro, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert m_whole["loss"] == pytest.approx(m_micro["loss"], abs=1e-6)
    assert m_whole["grad_norm"] == pytest.approx(m_micro["grad_norm"], rel=1e-5)
    # statistics are weighted by what they average over, so micro-batching leaves them unchanged too
    assert m_whole["clip_fraction"] == pytest.approx(m_micro["clip_fraction"], abs=1e-6)


# end to end: weak SFT warm start, then RL alone


@pytest.fixture(scope="module")
def warm_start() -> TinyLM:
    """A tinylm fine-tuned on a noisy teacher that is right 3 times in 10: every task gets a foothold."""
    policy = tiny_policy()
    rng = random.Random(1)
    examples = [
        sft.Example(f"{a}+{b}=", str(a + b) if k < 3 else str(rng.randrange(2 * N - 1)))
        for a, b in TASKS
        for k in range(10)
    ]
    sft.train(
        sft.SFTConfig(max_steps=150, batch_size=32, learning_rate=3e-3, progress=False), policy, examples
    )
    return policy


def copy_policy(policy: TinyLM) -> TinyLM:
    return TinyLM(copy.deepcopy(policy.module), policy.tokenizer)


def rl_config(loss_type: str, iterations: int, **overrides) -> RLConfig:
    return RLConfig(
        loss_type=loss_type,
        iterations=iterations,
        tasks_per_iteration=16,
        group_size=8,
        learning_rate=1e-3,
        optimizer_steps_per_iteration=2,
        sampling=SamplingParams(temperature=1.0, max_tokens=4),
        progress=False,
        **overrides,
    )


RL_ITERATIONS = 60  # measured here: the 5-iteration mean first reaches 0.9 by iterations 20 (grpo), 30 (dr_grpo), 22 (gspo)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "gspo"])
def test_rl_lifts_a_weak_warm_start_to_high_reward(warm_start, loss_type):
    policy = copy_policy(warm_start)
    history = train(rl_config(loss_type, RL_ITERATIONS), policy, SumEnvironment(), TASKS)
    rewards = [m["reward_mean"] for m in history]
    assert len(history) == RL_ITERATIONS
    assert 0.15 <= rewards[0] <= 0.45  # the warm start is right about 30% of the time
    rolling = [sum(rewards[i : i + 5]) / 5 for i in range(len(rewards) - 4)]
    assert max(rolling) >= 0.9, f"{loss_type}: best 5-iteration mean reward {max(rolling):.2f}"
    first = history[0]
    for key in (
        "reward_std",
        "signal_group_fraction",
        "completion_tokens_mean",
        "clip_fraction",
        "grad_norm",
        "seconds",
    ):
        assert key in first
    assert first["signal_group_fraction"] > 0.5 and first["episodes"] == 128


class Killed(Exception):
    pass


class KillingEnvironment(SumEnvironment):
    """Raises in the middle of a rollout after `calls` steps: a kill between checkpoints."""

    def __init__(self, calls: int) -> None:
        self.calls = calls

    def step(self, history, completion):
        self.calls -= 1
        if self.calls == 0:
            raise Killed
        return super().step(history, completion)


def test_resume_after_a_kill_reproduces_the_uninterrupted_run(warm_start, tmp_path):
    iterations = 6
    config = rl_config("grpo", iterations, seed=7)
    straight_policy = copy_policy(warm_start)
    straight_run = Run.create(tmp_path, "straight", config)
    straight = train(config, straight_policy, SumEnvironment(), TASKS, run=straight_run)

    run = Run.create(tmp_path, "killed", config)
    with pytest.raises(Killed):  # dies inside iteration 3, after checkpoint 2
        train(config, copy_policy(warm_start), KillingEnvironment(calls=3 * 128 + 40), TASKS, run=run)
    with pytest.raises(UserError, match="resume"):
        train(config, copy_policy(warm_start), SumEnvironment(), TASKS, run=Run.open(run.dir))
    with open(run.metrics_path, "a") as handle:  # a torn last line, as a kill during a write leaves
        handle.write('{"kind": "rl", "iteration": 3, "rew')
    resumed_policy = copy_policy(warm_start)
    resumed = train(
        config.model_copy(update={"resume": True}),
        resumed_policy,
        SumEnvironment(),
        TASKS,
        run=Run.open(run.dir),
    )

    def strip(records):
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]

    assert strip(resumed) == strip(straight)
    assert strip(Run.open(run.dir).metrics()) == strip(straight_run.metrics())
    assert [r["iteration"] for r in Run.open(run.dir).metrics()] == list(range(iterations))
    for a, b in zip(resumed_policy.module.parameters(), straight_policy.module.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_needs_a_checkpoint_and_a_run(tmp_path):
    config = rl_config("grpo", 2, resume=True)
    run = Run.create(tmp_path, "fresh", config)
    with pytest.raises(UserError, match=f"run {run.dir} has no RL checkpoint to resume"):
        train(config, tiny_policy(), SumEnvironment(), TASKS, run=run)
    with pytest.raises(UserError, match="resume=True needs the run"):
        train(config, tiny_policy(), SumEnvironment(), TASKS)


class NoLogprobsTinyLM(TinyLM):
    """A policy whose sampler reports no logprobs (as a backend asked for none would)."""

    def generate(self, prompts, params):
        return [[dataclasses.replace(g, logprobs=None) for g in row] for row in super().generate(prompts, params)]


def test_missing_rollout_logprobs_are_an_error_not_zeros():
    with pytest.raises(UserError, match="returned no logprobs"):
        rollout(tiny_policy(NoLogprobsTinyLM), SumEnvironment(), [(1, 2)], 2, SamplingParams(max_tokens=3))


def test_update_with_kl_truncated_importance_and_dual_clip_reports_them(monkeypatch):
    policy = tiny_policy()
    episodes = _episodes(policy)
    for ep in episodes:  # the sampler disagrees with the trainer: rollout logprobs are off by 0.5 on odd tokens
        for segment in ep.segments:
            segment.logprobs = [x - 0.5 * (i % 2) for i, x in enumerate(segment.logprobs)]
    config = RLConfig(
        beta=0.1,
        tis_cap=1.2,
        dual_clip=3.0,
        optimizer_steps_per_iteration=2,
        learning_rate=1e-2,
        progress=False,
    )
    seen = []  # (trained tokens, statistics) of every micro-batch
    original = rl.episode_losses

    def spy(inputs, config):
        losses, stats = original(inputs, config)
        seen.append((float(inputs.mask.sum()), stats))
        return losses, stats

    monkeypatch.setattr(rl, "episode_losses", spy)
    metrics = RLTrainer(config, policy, SumEnvironment()).update(episodes)
    # pi_old / pi_rollout is 1 on even tokens and e^0.5 = 1.65, truncated at 1.2, on odd ones; with beta > 0
    # every episode is trained, so the metric is the mean over all tokens of all episodes
    odd = [i % 2 for ep in episodes for s in ep.segments for i in range(len(s.completion_ids))]
    assert metrics["tis_weight"] == pytest.approx((odd.count(0) + 1.2 * odd.count(1)) / len(odd), abs=1e-6)
    # one micro-batch per step: the reference equals the policy in the first step, and differs after it
    assert len(seen) == 2
    assert seen[0][1]["kl"].item() == pytest.approx(0.0, abs=1e-7) and seen[1][1]["kl"].item() > 1e-6
    tokens = seen[0][0] + seen[1][0]
    assert tokens == len(odd)
    assert metrics["kl"] == pytest.approx(seen[1][0] * seen[1][1]["kl"].item() / tokens, rel=1e-6)
    assert set(metrics) == {"loss", "grad_norm", "clip_fraction", "kl", "tis_weight"}
