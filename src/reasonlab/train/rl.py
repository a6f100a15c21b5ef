"""The RL trainer: rollout, group advantages and a fixed number of optimizer steps per iteration, with
checkpoint/resume and metrics; `train(config, policy, environment, tasks)` is the entry point.

Pinned semantics and deviations:
- Mini-batches (one per optimizer step) and micro-batches (gradient accumulation) hold whole episodes, so
  per-episode normalisation and GSPO ratios are exact within a step. (Delethink's code splits rows instead.)
- With one optimizer step per iteration the old policy is the current one (ratio 1, as in TRL); with more,
  old logprobs are recomputed for every row before the first step.
- Under torchrun / accelerate launch each process rolls out `tasks[rank::world_size]`; a step's loss is the
  mean over the episodes of all processes (gradients summed, each process dividing by the global count), and
  metrics are totals over all processes divided by global counts. One process gives the same update.

The losses live in `losses.py`, the engine and the episode model in `rollout.py`; their names are re-exported
here, so `from reasonlab.train.rl import Episode, RLConfig, train` keeps working.

    config = RLConfig(loss_type="grpo", iterations=40, tasks_per_iteration=16, group_size=8)
    history = train(config, policy, environment, tasks, run=Run.create("runs", "grpo", config))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from reasonlab.errors import UserError
from reasonlab.llm.base import TrainablePolicy
from reasonlab.runs import Run, atomic_write
from reasonlab.train.distributed import (
    all_reduce_max,
    all_reduce_sum,
    barrier,
    init_distributed,
    is_main_process,
)
from reasonlab.train.losses import (
    LossInputs,
    episode_loss_reference,
    episode_losses,
    group_advantages,
    statistic_units,
)
from reasonlab.train.rl_config import LossType, RLConfig
from reasonlab.train.rollout import Environment, Episode, Segment, Step, rollout, tasks_for_iteration

__all__ = [
    "Environment",
    "Episode",
    "LossInputs",
    "LossType",
    "RLConfig",
    "RLTrainer",
    "Segment",
    "Step",
    "episode_loss_reference",
    "episode_losses",
    "group_advantages",
    "has_checkpoint",
    "rollout",
    "tasks_for_iteration",
    "train",
]

CHECKPOINT_NAME = "rl_state.pt"
TaskSource = Sequence[Any] | Callable[[int], Sequence[Any]]


class RLTrainer:
    """Holds the policy, environment, optimizer and reference; `iteration(i, tasks)` is one rollout + update."""

    def __init__(self, config: RLConfig, policy: TrainablePolicy, environment: Environment) -> None:
        self.config = config
        self.policy = policy
        self.environment = environment
        self.rank, self.world_size, _ = init_distributed()
        self.parameters = [p for p in policy.module.parameters() if p.requires_grad]
        if not self.parameters:
            raise UserError("the policy has no trainable parameters: unfreeze the model or enable LoRA")
        if self.world_size > 1:
            # every process starts from rank 0's weights, as DDP does
            for tensor in policy.module.state_dict().values():
                dist.broadcast(tensor, src=0)
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

    # one iteration

    def iteration(self, iteration: int, tasks: Sequence[Any]) -> dict[str, Any]:
        """Roll out this process's share of the iteration's `tasks` (tasks[rank::world_size]) and take the fixed
        number of optimizer steps; the metrics cover the episodes of every process."""
        started = time.perf_counter()
        episodes = rollout(
            self.policy,
            self.environment,
            list(tasks)[self.rank :: self.world_size],
            self.config.group_size,
            self.config.sampling,
            self.config.max_segments,
            seed=self.config.seed * 100_003 + iteration * self.world_size + self.rank,
        )
        rollout_seconds = time.perf_counter() - started
        metrics = self.update(episodes, iteration)
        train_seconds = time.perf_counter() - started - rollout_seconds
        metrics.update(_episode_metrics(episodes))
        # the iteration takes as long as its slowest process
        metrics.update(
            all_reduce_max(
                {
                    "rollout_seconds": rollout_seconds,
                    "train_seconds": train_seconds,
                    "seconds": time.perf_counter() - started,
                }
            )
        )
        tokens = metrics["completion_tokens_mean"] * metrics["episodes"]
        metrics["tokens_per_second"] = tokens / max(metrics["rollout_seconds"], 1e-9)
        return metrics

    def advantages(self, episodes: Sequence[Episode]) -> torch.Tensor:
        """Group-relative advantages (E,); a group's episodes are always on one process."""
        rewards = torch.tensor([ep.total_reward for ep in episodes], dtype=torch.float64)
        groups = torch.tensor([ep.group for ep in episodes], dtype=torch.long)
        advantages = group_advantages(
            rewards, groups, self.config.loss_type, self.config.advantage_epsilon, self.config.advantage_std
        )
        return advantages.float()

    def update(self, episodes: Sequence[Episode], iteration: int = 0) -> dict[str, Any]:
        """Fixed optimizer steps over `episodes`; returns loss, grad norm, clip fraction, KL, TIS weight.

        Under several processes every process calls this with its own episodes: each step averages the loss
        over the step's episodes of all processes."""
        config = self.config
        advantages = self.advantages(episodes)
        order = torch.randperm(
            len(episodes), generator=torch.Generator().manual_seed(config.seed + iteration)
        ).tolist()
        minibatches = _split_by_rows(
            [episodes[i] for i in order], order, config.optimizer_steps_per_iteration
        )
        old = self._old_logprobs(episodes) if config.optimizer_steps_per_iteration > 1 else None
        units = statistic_units(config)
        totals = {name: 0.0 for name in units}  # statistic x items, summed over micro-batches
        counts = {name: 0.0 for name in units}
        loss_total, grad_norms = 0.0, []
        for members in minibatches:
            # zero-advantage episodes add nothing to the gradient unless a KL term is on: count them, skip them
            active = [i for i in members if config.beta > 0 or advantages[i] != 0]
            sizes = all_reduce_sum({"members": len(members), "active": len(active)})
            if sizes["members"] == 0:
                continue
            if sizes["active"] == 0:
                # nothing to learn on any process: no step (a zero-gradient AdamW step would still move weights)
                grad_norms.append(0.0)
                continue
            self.optimizer.zero_grad(set_to_none=True)
            for micro in _micro_batches(active, episodes, config.micro_batch_size):
                losses, stats = self.loss(episodes, micro, advantages, old)
                loss = losses.sum() / sizes["members"]
                loss.backward()
                loss_total += float(loss.detach())
                items = {"tokens": sum(episodes[i].trained_tokens for i in micro), "episodes": len(micro)}
                for name, unit in units.items():
                    totals[name] += float(stats[name]) * items[unit]
                    counts[name] += items[unit]
            grad_norms.append(self._step())
        summed = all_reduce_sum(
            {
                "loss": loss_total,
                **{f"{n}/total": v for n, v in totals.items()},
                **{f"{n}/count": v for n, v in counts.items()},
            }
        )
        steps = max(len(grad_norms), 1)
        metrics = {"loss": summed["loss"] / steps, "grad_norm": sum(grad_norms) / steps}
        for name in units:
            metrics[name] = summed[f"{name}/total"] / max(summed[f"{name}/count"], 1.0)
        return metrics

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
        """Sum the gradients over processes (each already divided by the global count), clip, step."""
        if self.world_size > 1:
            for p in self.parameters:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
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
        """Write trainable weights, optimizer state and metrics history to the run, atomically."""
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
        if not has_checkpoint(run):
            return False
        state = torch.load(run.checkpoint_dir / CHECKPOINT_NAME, map_location="cpu", weights_only=False)
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
        """Run iterations start_iteration .. config.iterations - 1; checkpoint and log into `run` (rank 0).

        `on_iteration(iteration, metrics)` runs on every process; what it returns is added to the metrics."""
        config = self.config
        self._open(run)
        from rich.progress import Progress

        with Progress(disable=not config.progress or not is_main_process(), transient=True) as progress:
            bar = progress.add_task(
                f"RL {config.loss_type}", total=config.iterations, completed=self.start_iteration
            )
            for iteration in range(self.start_iteration, config.iterations):
                if callable(tasks):
                    batch = list(tasks(iteration))
                else:
                    batch = tasks_for_iteration(tasks, iteration, config.tasks_per_iteration, config.seed)
                metrics = {"iteration": iteration, **self.iteration(iteration, batch)}
                if on_iteration is not None:
                    metrics.update(on_iteration(iteration, metrics) or {})
                self.history.append(metrics)
                if run is not None and is_main_process():
                    run.log({"kind": "rl", **metrics}, step=iteration)
                    if (iteration + 1) % config.checkpoint_every == 0 or iteration + 1 == config.iterations:
                        self.save_checkpoint(run, iteration)
                progress.update(
                    bar, advance=1, description=f"RL {config.loss_type} reward {metrics['reward_mean']:.2f}"
                )
        barrier()  # no process returns before rank 0 has written the last checkpoint
        return self.history

    def _open(self, run: Run | None) -> None:
        """Check `resume` against the run's checkpoint; when resuming, restore it and drop later metrics."""
        if run is None:
            if self.config.resume:
                raise UserError(
                    "resume=True needs the run to resume: pass run=Run.open(path), or drop resume"
                )
            return
        if not self.config.resume:
            if has_checkpoint(run):
                raise UserError(
                    f"run {run.dir} already has an RL checkpoint: pass resume=True to continue it, or a new run name"
                )
            return
        if not self.load_checkpoint(run):
            raise UserError(
                f"run {run.dir} has no RL checkpoint to resume: drop resume (--resume) to start it from the beginning"
            )
        if is_main_process():
            _truncate_metrics(run, self.start_iteration)
        barrier()


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


def has_checkpoint(run: Run) -> bool:
    """Whether `run` holds an RL checkpoint to resume from."""
    return (run.checkpoint_dir / CHECKPOINT_NAME).is_file()


# helpers


def _pad(rows: Sequence[torch.Tensor], value: float = 0.0) -> torch.Tensor:
    """Right-pad 1-D tensors into (R, T)."""
    return torch.nn.utils.rnn.pad_sequence(
        [r.reshape(-1) for r in rows], batch_first=True, padding_value=value
    )


def _split_by_rows(episodes: Sequence[Episode], indices: Sequence[int], parts: int) -> list[list[int]]:
    """Split episodes (in order) into `parts` contiguous mini-batches of about equal row counts (some may be
    empty; every process keeps all `parts`, so that they take their steps together)."""
    total = sum(len(ep.segments) for ep in episodes)
    target = total / parts
    minibatches: list[list[int]] = [[] for _ in range(parts)]
    seen = 0
    for ep, index in zip(episodes, indices, strict=True):
        part = min(int(seen // target) if target > 0 else 0, parts - 1)
        minibatches[part].append(index)
        seen += len(ep.segments)
    return minibatches


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


def _episode_metrics(episodes: Sequence[Episode]) -> dict[str, Any]:
    """Reward, length and truncation metrics over the episodes of every process (totals / global counts)."""
    rewards = [ep.total_reward for ep in episodes]
    groups: dict[int, list[float]] = {}
    for ep in episodes:
        groups.setdefault(ep.group, []).append(ep.total_reward)
    totals = all_reduce_sum(
        {
            "episodes": len(episodes),
            "reward": sum(rewards),
            "groups": len(groups),
            "signal_groups": sum(1 for values in groups.values() if max(values) != min(values)),
            "completion_tokens": sum(ep.completion_tokens for ep in episodes),
            "segments": sum(len(ep.segments) for ep in episodes),
            "truncated": sum(1 for ep in episodes if ep.segments[-1].finish_reason == "length"),
        }
    )
    count = max(totals["episodes"], 1.0)
    reward_mean = totals["reward"] / count
    # population std over all episodes, in two passes as torch.std does
    squares = all_reduce_sum({"squares": sum((r - reward_mean) ** 2 for r in rewards)})["squares"]
    longest = all_reduce_max({"tokens": max((ep.completion_tokens for ep in episodes), default=0)})["tokens"]
    return {
        "reward_mean": reward_mean,
        "reward_std": math.sqrt(squares / count),
        "signal_group_fraction": totals["signal_groups"] / max(totals["groups"], 1.0),
        "completion_tokens_mean": totals["completion_tokens"] / count,
        "completion_tokens_max": int(longest),
        "segments_mean": totals["segments"] / count,
        "truncated_fraction": totals["truncated"] / count,
        "episodes": int(totals["episodes"]),
    }


def _truncate_metrics(run: Run, start_iteration: int) -> None:
    """Drop RL records at or after `start_iteration` (logged by a killed run after its last checkpoint)."""
    run.drop_metrics("rl", "iteration", start_iteration)
