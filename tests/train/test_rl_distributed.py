"""RL under two gloo processes on CPU: the same update as one process doing the whole batch, identical weights on
both ranks, and metrics that are means over the episodes of both ranks. Rank 1 holds only a group whose rewards
are all equal (zero advantages, nothing to backpropagate): it must still join every gradient all-reduce."""

from __future__ import annotations

import os
import random
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from reasonlab.llm.base import SamplingParams
from reasonlab.runs import Run
from reasonlab.train.rl import Episode, RLConfig, RLTrainer, Segment, Step
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORLD_SIZE = 2
TIMEOUT_S = 60  # a hang (a rank skipping a collective) fails here instead of blocking the suite
# rank 0 rolls out tasks[0::2] = ("a", "b"), rank 1 tasks[1::2] = ("flat",): uneven counts, one inactive rank
TASKS = ["a", "flat", "b"]
# groups 0 and 1 (rank 0, 8 episodes) have rewards that differ; group 2 (rank 1, 4 episodes) is all 1.0
GROUPS_OF_RANK = {0: [0, 1], 1: [2]}


def tiny_policy(seed: int = 0) -> TinyLM:
    tokenizer = Tokenizer.from_texts(["0123456789+=;"])
    return TinyLM.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=2, d_model=32, n_head=4), tokenizer, seed=seed
    )


def hand_episodes(groups: list[int]) -> list[Episode]:
    """Fixed multi-segment episodes of the given groups, rollout logprobs from the seed-0 policy."""
    policy, rng, episodes = tiny_policy(0), random.Random(0), []
    for group in range(3):
        for k in range(4):
            segments = []
            for _ in range(1 + k % 3):
                prompt = [rng.randrange(4, 16) for _ in range(1 + rng.randrange(4))]
                completion = [rng.randrange(4, 16) for _ in range(1 + rng.randrange(5))]
                with torch.no_grad():
                    logprobs = policy.logprobs([prompt], [completion])[0].tolist()
                segments.append(Segment(prompt, completion, logprobs))
            reward = 1.0 if group == 2 else float(rng.random() > 0.5) + 0.25 * k
            episodes.append(Episode(task=None, group=group, segments=segments, reward=reward))
    return [ep for ep in episodes if ep.group in groups]


def update_config(**overrides) -> RLConfig:
    return RLConfig(
        loss_type="grpo", micro_batch_size=2, optimizer_steps_per_iteration=1, progress=False, **overrides
    )


def sgd_update(trainer: RLTrainer, episodes: list[Episode]) -> dict:
    # SGD: Adam's first step is sign-like and turns float noise in near-zero gradients into full steps
    trainer.optimizer = torch.optim.SGD(trainer.parameters, lr=0.5)
    return trainer.update(episodes)


class ToyEnvironment:
    """One segment; reward from the sampled token ids, except task "flat" (always 1). Records every episode."""

    def __init__(self) -> None:
        self.finished: list[dict] = []

    def reset(self, task):
        return "1+2="

    def step(self, history: Episode, completion):
        reward = 1.0 if history.task == "flat" else float(sum(completion.token_ids) % 3) / 2
        self.finished.append(
            {
                # one segment and group size 4: a rollout finishes its episodes group by group
                "group": (history.task, len(self.finished) // 4),
                "reward": reward,
                "tokens": len(completion.token_ids),
                "length_cut": completion.finish_reason == "length",
            }
        )
        return Step.finish(reward)


def train_config() -> RLConfig:
    return RLConfig(
        loss_type="grpo",
        iterations=2,
        group_size=4,
        learning_rate=1e-2,
        sampling=SamplingParams(temperature=1.0, max_tokens=3),
        progress=False,
    )


def worker(rank: int, port: int, out: str) -> None:
    """One rank, as torchrun would start it: one update on fixed episodes, then two iterations of `train`."""
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD_SIZE),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    # each rank starts from different weights: the trainer takes rank 0's
    policy = tiny_policy(seed=rank)
    trainer = RLTrainer(update_config(), policy, ToyEnvironment())
    metrics = sgd_update(trainer, hand_episodes(GROUPS_OF_RANK[rank]))
    updated = [p.detach().clone() for p in policy.module.parameters()]

    # the whole loop: metrics and checkpoints from rank 0, metrics over both ranks' episodes
    environment = ToyEnvironment()
    per_iteration = []

    def record(iteration, metrics):
        per_iteration.append(list(environment.finished))
        environment.finished.clear()

    trainer = RLTrainer(train_config(), tiny_policy(seed=rank), environment)
    history = trainer.train(lambda iteration: TASKS, run=Run.open(Path(out) / "run"), on_iteration=record)
    final = [p.detach().clone() for p in trainer.policy.module.parameters()]
    torch.save(
        {
            "metrics": metrics,
            "updated": updated,
            "history": history,
            "episodes": per_iteration,
            "final": final,
        },
        Path(out) / f"rank{rank}.pt",
    )
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_two_processes(out: Path) -> list[dict]:
    context = mp.start_processes(
        worker, args=(free_port(), str(out)), nprocs=WORLD_SIZE, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(
                f"the two RL processes did not finish within {TIMEOUT_S} s (a rank missed a collective?)"
            )
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rl-ddp")
    Run.create(out, "run", train_config())
    return out


@pytest.fixture(scope="module")
def ranks(out) -> list[dict]:
    return run_two_processes(out)


def test_two_processes_take_the_update_of_one_process_with_the_whole_batch(ranks):
    single = tiny_policy(seed=0)
    whole = hand_episodes([0, 1, 2])
    metrics = sgd_update(RLTrainer(update_config(), single, ToyEnvironment()), whole)
    before = [p.detach() for p in tiny_policy(seed=0).module.parameters()]
    # (a) identical weights on both ranks, rank 1 started elsewhere and had nothing to backpropagate
    for a, b in zip(ranks[0]["updated"], ranks[1]["updated"], strict=True):
        assert torch.equal(a, b)
    # (c) the single-process update: the loss is a mean over all 12 episodes, not a mean of per-rank means
    moved = 0
    for a, b, start in zip(ranks[0]["updated"], single.module.parameters(), before, strict=True):
        torch.testing.assert_close(a, b.detach(), atol=1e-6, rtol=1e-5)
        moved += int(not torch.equal(a, start))
    assert moved > 0
    for name in ("loss", "grad_norm", "clip_fraction"):
        assert ranks[0]["metrics"][name] == pytest.approx(metrics[name], rel=1e-5, abs=1e-7), name
        assert ranks[1]["metrics"][name] == ranks[0]["metrics"][name]
    assert metrics["loss"] != 0 and metrics["grad_norm"] > 0


def test_logged_metrics_are_means_over_the_episodes_of_both_ranks(ranks, out):
    timing = {"seconds", "rollout_seconds", "train_seconds", "tokens_per_second"}
    histories = [[{k: v for k, v in m.items() if k not in timing} for m in r["history"]] for r in ranks]
    assert histories[0] == histories[1]  # every rank holds the same (reduced) metrics
    run = Run.open(out / "run")
    logged = run.metrics()
    assert [r["iteration"] for r in logged] == [0, 1]  # rank 0 alone logs
    assert (run.checkpoint_dir / "rl_state.pt").is_file()
    for iteration, record in enumerate(logged):
        episodes = ranks[0]["episodes"][iteration] + ranks[1]["episodes"][iteration]
        assert len(ranks[0]["episodes"][iteration]) == 8 and len(ranks[1]["episodes"][iteration]) == 4
        rewards = torch.tensor([e["reward"] for e in episodes], dtype=torch.float64)
        groups: dict = {}
        for e in episodes:
            groups.setdefault(e["group"], []).append(e["reward"])
        assert record["episodes"] == 12
        assert record["reward_mean"] == pytest.approx(float(rewards.mean()), abs=1e-12)
        assert record["reward_std"] == pytest.approx(float(rewards.std(unbiased=False)), abs=1e-12)
        assert record["signal_group_fraction"] == pytest.approx(
            sum(max(v) != min(v) for v in groups.values()) / 3
        )
        assert record["completion_tokens_mean"] == pytest.approx(sum(e["tokens"] for e in episodes) / 12)
        assert record["completion_tokens_max"] == max(e["tokens"] for e in episodes)
        assert record["truncated_fraction"] == pytest.approx(sum(e["length_cut"] for e in episodes) / 12)
        # a mean of per-rank means would weigh rank 1's four 1.0 rewards like rank 0's eight
        per_rank_means = (rewards[:8].mean() + rewards[8:].mean()) / 2
        if abs(float(per_rank_means) - float(rewards.mean())) > 1e-9:
            assert record["reward_mean"] != pytest.approx(float(per_rank_means), abs=1e-9)
        assert {k: v for k, v in record.items() if k in histories[0][iteration]} == histories[0][iteration]
    for a, b in zip(ranks[0]["final"], ranks[1]["final"], strict=True):
        assert torch.equal(a, b)
