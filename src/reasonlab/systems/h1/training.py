"""h1 training: Dr.GRPO (or GRPO / GSPO) on composed chains, with the depth curriculum deciding each batch.

`train(config)` is the entry: it loads a tinylm, trains it on `config.task`'s modular chains into the run
directory `config.out/config.name` and saves the policy there. `train_policy` is the loop itself, for any
`TrainablePolicy` and any chain source (word problems on `hf:embedded`, say). It drives
`reasonlab.train.rl.RLTrainer` one iteration at a time, so that the curriculum can see each iteration's reward,
probe the next depth for its stage gate, and stop at a rollout-token budget (equal compute between arms is
matched in generated tokens, not in steps: long chains cost more per rollout). Gate probes count towards the
curriculum's tokens. With a run, every iteration is logged and checkpointed; `resume=True` continues from the
last checkpoint with the same curriculum state.

    run_dir = train(H1Config(policy="runs/h1/warm/policy", curriculum=CurriculumConfig(max_depth=4)))
    history = train_policy(config, policy, lambda depth, count, seed: make_chains(atoms, depth, count, seed))
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import TrainablePolicy
from reasonlab.progress import eta, phase, say
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.h1.config import EVAL_SEED, H1Config
from reasonlab.systems.h1.curriculum import Curriculum
from reasonlab.systems.h1.environment import ChainEnvironment
from reasonlab.systems.h1.evaluation import accuracy, accuracy_by_depth
from reasonlab.train.distributed import is_main_process
from reasonlab.train.rl import RLConfig, RLTrainer
from reasonlab.train.tinylm import TinyLM

__all__ = ["ChainSource", "check_resume", "has_checkpoint", "rl_history", "train", "train_policy"]

ChainSource = Callable[[int, int, int], Sequence[Any]]  # (depth, count, seed) -> chains
CURRICULUM_STATE = "curriculum.json"
REPORT_SECONDS = 10.0  # at most this long between two progress lines of the RL loop


def train(config: H1Config, warm_start: Callable[[], str] | None = None) -> Path:
    """Train the tinylm `config.policy` on `config.task`'s chains; returns the run directory (policy in policy/).
    With `config.policy` None, `warm_start()` makes (or finds) the starting tinylm and returns its folder; it is
    called after the run directory exists, so a long warm start already has its run folder."""
    if config.policy is None and warm_start is None:
        raise UserError("no policy to train: pass --policy FOLDER (a tinylm saved by a run), or leave it out "
                        "to start from the preset's warm start")
    check_resume(config)
    run = Run.create(config.out, config.name, config, resume=config.resume, overwrite=config.overwrite)
    say(f"h1 train: run folder {run.dir}")
    start = config.policy
    if start is None and warm_start is not None:
        with phase("warm start"):
            start = warm_start()
        run.log({"kind": "warm_start", "policy": start})
    policy = TinyLM.load(start)
    eval_sets = _eval_sets(config) if config.eval_every else None
    with phase(f"RL: {config.rl.iterations} iterations at most, {config.curriculum.schedule} schedule, "
               f"depths {config.curriculum.min_depth}..{config.curriculum.max_depth}"):
        train_policy(config, policy, config.task.chains, run=run, eval_sets=eval_sets,
                     resume=config.resume and not config.overwrite)
    policy.save(str(run.dir / "policy"))
    return run.dir


def _eval_sets(config: H1Config) -> dict[int, Sequence[Any]]:
    """64 fixed held-out chains per depth 1..H + 2 (those a slot row holds), for `eval_every`."""
    deepest = config.curriculum.max_depth + 2
    if config.task.width:
        deepest = min(deepest, config.task.width - 1)
    return {depth: config.task.chains(depth, 64, EVAL_SEED) for depth in range(1, deepest + 1)}


def check_resume(config: H1Config) -> None:
    """A one-line UserError when `config` asks to resume a run that has no checkpoint."""
    run_dir = Path(config.out) / config.name
    if config.resume and not config.overwrite and not has_checkpoint(run_dir):
        raise UserError(f"--resume: {run_dir} has no h1 checkpoint to continue: drop --resume to start the run")


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run directory holds an h1 checkpoint to resume."""
    return (Path(run_dir) / "checkpoints" / CURRICULUM_STATE).is_file()


def rl_history(run_dir: Path) -> list[dict[str, Any]]:
    """The run's per-iteration metrics as logged (an iteration logged twice across a resume: its last record)."""
    records = {r["iteration"]: r for r in Run.open(run_dir).metrics() if r.get("kind") == "rl"}
    return [records[i] for i in sorted(records)]


def train_policy(
    config: H1Config,
    policy: TrainablePolicy,
    source: ChainSource,
    run: Run | None = None,
    eval_sets: dict[int, Sequence[Any]] | None = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Train `policy` on chains from `source` under the curriculum; returns per-iteration metrics. Reads the
    curriculum, rl and budget fields of `config` (`train` reads the rest: the policy, the task and the run)."""
    trainer = RLTrainer(config.rl, policy, ChainEnvironment())
    curriculum = Curriculum(config.curriculum)
    tokens = 0
    if run is not None and not resume and (run.checkpoint_dir / CURRICULUM_STATE).is_file():
        raise UserError(f"run {run.dir} already has an h1 checkpoint: pass resume=True to continue it, or a new run name")
    if resume and run is not None and trainer.load_checkpoint(run):
        tokens = _restore(run, curriculum)
    report = _Report(config, trainer.start_iteration, tokens)
    for iteration in range(trainer.start_iteration, config.rl.iterations):
        if config.token_budget is not None and tokens >= config.token_budget:
            break
        metrics = _iteration(config, trainer, curriculum, source, iteration)
        tokens += metrics["rollout_tokens"] + metrics["probe_tokens"]
        metrics["tokens_total"] = tokens
        if eval_sets and config.eval_every and (iteration + 1) % config.eval_every == 0:
            metrics.update(_eval_metrics(policy, eval_sets, config.eval_max_tokens))
        trainer.history.append(metrics)
        if run is not None and is_main_process():  # one writer under torchrun
            run.log({"kind": "rl", **metrics}, step=iteration)
            trainer.save_checkpoint(run, iteration)
            _save_state(run, curriculum, tokens)
        report.iteration(metrics)
    return trainer.history


class _Report:
    """Progress lines of the RL loop: one at every stage decision, and one at least every REPORT_SECONDS, with
    the reward, the depth, the tokens and an ETA (in iterations, or in tokens when a token budget ends the run)."""

    def __init__(self, config: H1Config, start_iteration: int, tokens: int) -> None:
        self.config, self.start_iteration, self.start_tokens = config, start_iteration, tokens
        self.started = self.last = time.monotonic()

    def iteration(self, metrics: dict[str, Any]) -> None:
        event = metrics["stage_event"]
        if event == "hold" and time.monotonic() - self.last < REPORT_SECONDS:
            return
        self.last = time.monotonic()
        config, iteration, tokens = self.config, metrics["iteration"], metrics["tokens_total"]
        if config.token_budget is not None:
            progress = f"tokens {tokens:,}/{config.token_budget:,}, " + eta(
                tokens - self.start_tokens, config.token_budget - self.start_tokens, self.started)
        else:
            progress = f"tokens {tokens:,}, " + eta(iteration + 1 - self.start_iteration,
                                                     config.rl.iterations - self.start_iteration, self.started)
        stage = "" if event == "hold" else f", {'advances to' if event == 'advance' else 'gate holds at'} depth {metrics['next_depth']}" + (
            f" (probe {metrics['gate_probe']:.2f})" if metrics.get("gate_probe") is not None else "")
        say(f"RL iteration {iteration + 1}/{config.rl.iterations}: depth {metrics['depth']:.1f}, "
            f"reward {metrics['reward_mean']:.3f}{stage}, {progress}")


def _iteration(
    config: H1Config, trainer: RLTrainer, curriculum: Curriculum, source: ChainSource, iteration: int
) -> dict[str, Any]:
    """One RL iteration at the curriculum's depths, then its stage decision (with any gate probe); token counts."""
    tasks = _tasks(curriculum, source, config.rl, iteration)
    metrics: dict[str, Any] = {"iteration": iteration, **trainer.iteration(iteration, tasks)}
    rollout_tokens = round(metrics["completion_tokens_mean"] * metrics["episodes"])
    probe = _GateProbe(config, trainer.policy, source, iteration)
    metrics["depth"] = sum(getattr(t, "depth", 0) for t in tasks) / len(tasks)
    event = curriculum.observe(iteration, metrics["reward_mean"], probe)
    metrics.update(rollout_tokens=rollout_tokens, probe_tokens=probe.tokens, stage_event=event.action,
                   next_depth=event.depth)
    if event.probe is not None:
        metrics["gate_probe"] = event.probe
    return metrics


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
