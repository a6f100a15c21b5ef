"""h1 training: Dr.GRPO (or GRPO / GSPO) on composed chains, with the depth curriculum deciding each batch.

The loop drives `reasonlab.train.rl.RLTrainer` one iteration at a time, so that the curriculum can see each
iteration's reward, probe the next depth for its stage gate, and stop at a rollout-token budget (equal
compute between arms is matched in generated tokens, not in steps: long chains cost more per rollout).
Gate probes count towards the curriculum's tokens. With a run, every iteration is logged and checkpointed;
`resume=True` continues from the last checkpoint with the same curriculum state.

    config = H1Config(curriculum=CurriculumConfig(schedule="fixed", max_depth=4, steps_per_stage=20))
    history = train_h1(config, policy, lambda depth, count, seed: make_modular_chains(depth, count, seed))
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams, TrainablePolicy
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.h1.curriculum import Curriculum, CurriculumConfig
from reasonlab.systems.h1.environment import ChainEnvironment, accuracy, accuracy_by_depth
from reasonlab.train.rl import RLConfig, RLTrainer

__all__ = ["ChainSource", "H1Config", "train_h1"]

ChainSource = Callable[[int, int, int], Sequence[Any]]  # (depth, count, seed) -> chains
CURRICULUM_STATE = "curriculum.json"


def _default_rl() -> RLConfig:
    return RLConfig(
        loss_type="dr_grpo",
        iterations=100,
        tasks_per_iteration=16,
        group_size=8,
        learning_rate=1e-4,
        sampling=SamplingParams(temperature=1.0, max_tokens=64),
        progress=False,
    )


class H1Config(BaseModel):
    """One h1 RL run: the curriculum, the RL core's settings and the compute budget."""

    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig, description="depth schedule")
    rl: RLConfig = Field(default_factory=_default_rl, description="RL core (paper: dr_grpo, beta 0, G 8)")
    probe_chains: int = Field(64, ge=1, description="chains sampled at the next depth for the stage gate")
    token_budget: int | None = Field(None, ge=1, description="stop once this many tokens were generated")
    eval_every: int | None = Field(None, ge=1, description="iterations between per-depth greedy evaluations")
    eval_max_tokens: int = Field(64, ge=1, description="token cap of evaluation completions")


def train_h1(
    config: H1Config,
    policy: TrainablePolicy,
    source: ChainSource,
    run: Run | None = None,
    eval_sets: dict[int, Sequence[Any]] | None = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Train `policy` on chains from `source` under the curriculum; returns per-iteration metrics."""
    trainer = RLTrainer(config.rl, policy, ChainEnvironment())
    curriculum = Curriculum(config.curriculum)
    tokens = 0
    if run is not None and not resume and (run.checkpoint_dir / CURRICULUM_STATE).is_file():
        raise UserError(f"run {run.dir} already has an h1 checkpoint: pass resume=True to continue it, or a new run name")
    if resume and run is not None and trainer.load_checkpoint(run):
        tokens = _restore(run, curriculum)
    for iteration in range(trainer.start_iteration, config.rl.iterations):
        if config.token_budget is not None and tokens >= config.token_budget:
            break
        tasks = _tasks(curriculum, source, config.rl, iteration)
        metrics: dict[str, Any] = {"iteration": iteration, **trainer.iteration(iteration, tasks)}
        rollout_tokens = round(metrics["completion_tokens_mean"] * metrics["episodes"])
        probe = _GateProbe(config, policy, source, iteration)
        metrics["depth"] = sum(getattr(t, "depth", 0) for t in tasks) / len(tasks)
        event = curriculum.observe(iteration, metrics["reward_mean"], probe)
        tokens += rollout_tokens + probe.tokens
        metrics.update(rollout_tokens=rollout_tokens, probe_tokens=probe.tokens, tokens_total=tokens,
                       stage_event=event.action, next_depth=event.depth)
        if event.probe is not None:
            metrics["gate_probe"] = event.probe
        if eval_sets and config.eval_every and (iteration + 1) % config.eval_every == 0:
            metrics.update(_eval_metrics(policy, eval_sets, config.eval_max_tokens))
        trainer.history.append(metrics)
        if run is not None:
            run.log({"kind": "rl", **metrics}, step=iteration)
            trainer.save_checkpoint(run, iteration)
            _save_state(run, curriculum, tokens)
    return trainer.history


class _GateProbe:
    """Sampled accuracy at a depth on fresh chains (the stage gate's test); counts the tokens it generates."""

    def __init__(self, config: H1Config, policy: TrainablePolicy, source: ChainSource, iteration: int) -> None:
        self.config, self.policy, self.source, self.iteration = config, policy, source, iteration
        self.tokens = 0

    def __call__(self, depth: int) -> float:
        rl = self.config.rl
        chains = self.source(depth, self.config.probe_chains, _seed(rl.seed, self.iteration, depth) + 1)
        value, used = accuracy(self.policy, chains, rl.sampling.max_tokens, rl.sampling.temperature, self.iteration)
        self.tokens += used
        return value


def _seed(seed: int, iteration: int, depth: int) -> int:
    return seed * 1_000_003 + iteration * 1_009 + depth * 17


def _tasks(curriculum: Curriculum, source: ChainSource, rl: RLConfig, iteration: int) -> list[Any]:
    """This iteration's tasks: depths from the curriculum, chains drawn with a seed of (seed, iteration)."""
    depths = curriculum.depths(rl.tasks_per_iteration, random.Random(_seed(rl.seed, iteration, 0)))
    tasks: list[Any] = []
    for depth, count in sorted(Counter(depths).items()):
        tasks.extend(source(depth, count, _seed(rl.seed, iteration, depth)))
    return tasks


def _eval_metrics(policy: TrainablePolicy, eval_sets: dict[int, Sequence[Any]], max_tokens: int) -> dict[str, float]:
    return {f"accuracy_d{d}": a for d, a in accuracy_by_depth(policy, eval_sets, max_tokens).items()}


def _save_state(run: Run, curriculum: Curriculum, tokens: int) -> None:
    atomic_write_json(run.checkpoint_dir / CURRICULUM_STATE, {
        "depth": curriculum.depth, "stage_start": curriculum.stage_start, "next_probe": curriculum.next_probe,
        "rewards": curriculum.rewards, "tokens": tokens,
    })


def _restore(run: Run, curriculum: Curriculum) -> int:
    state = json.loads((run.checkpoint_dir / CURRICULUM_STATE).read_text())
    curriculum.depth, curriculum.stage_start = state["depth"], state["stage_start"]
    curriculum.next_probe, curriculum.rewards = state["next_probe"], list(state["rewards"])
    return int(state["tokens"])
