"""`train(config)`: RL of the walk tinylm in one arm (Delethink or LongCoT) from its SFT base.

    reasonlab delethink train --arm delethink --seed 0 --out runs/delethink-train/delethink-seed0

The SFT base is trained once per `WalkSetup.sft_fields()` and cached beside the run in a folder keyed by
their `config_hash` (`sft-base-<hash>/`), so the two arms of a comparison start from the same weights and a
base made under other settings is never reused. RL goes through `reasonlab.train.rl` with the paper's PPO
details (clip-high 0.26, dual clip 3, truncated IS 2, 2 optimizer steps per iteration); the arms differ
only in the environment (`rl_config`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reasonlab.errors import UserError
from reasonlab.progress import eta, phase, say
from reasonlab.runs import Run, config_hash
from reasonlab.systems.delethink.config import DelethinkConfig, TrainConfig, WalkSetup

if TYPE_CHECKING:
    from reasonlab.train.tinylm import TinyLM

__all__ = ["SFT_CHECK_SEED", "build_policy", "sft_base", "sft_base_dir", "step_lines", "train"]

# longest silence between progress lines while the SFT base trains
PROGRESS_SECONDS = 15.0

# where a run lives and how it was started are not part of what it is
LOCATION_FIELDS = ("out",)


def build_policy(setup: WalkSetup, seed: int = 0) -> TinyLM:
    """A fresh word-level tinylm over the walk's vocabulary."""
    from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

    tokenizer = Tokenizer(setup.world().vocabulary, level="word")
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=setup.n_layer, d_model=setup.d_model,
                         n_head=setup.n_head, context_length=1024)
    return TinyLM.create(shape, tokenizer, seed=seed)


def sft_base(setup: WalkSetup, root: str | Path) -> TinyLM:
    """The SFT base on LongCoT-format traces, trained once per SFT settings into `root/sft-base-<hash>/`.

    With `sft_stop_accuracy`, training ends at the first check (every `sft_check_every` steps) whose greedy
    accuracy on `sft_check_tasks` check walks (T uniform in 1..sft_max_steps, LongCoT at the training budget)
    reaches it, and `sft_steps` is only the cap; the run's summary records every check, so the base's strength
    is stated rather than assumed."""
    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM

    fields = setup.sft_fields()
    folder = sft_base_dir(setup, root)
    name, model_dir = folder.name, folder / "model"
    if (model_dir / "model.pt").is_file():
        say(f"reusing the SFT base from {model_dir}")
        return TinyLM.load(model_dir)
    world, policy = setup.world(), build_policy(setup)
    rng = random.Random(1234)
    examples = []
    for _ in range(setup.sft_examples):
        task = world.task(rng.randint(1, setup.sft_max_steps), rng, control=rng.random() < setup.sft_control_fraction)
        examples.append(sft.Example(policy.tokenize(world.query(task)), policy.tokenize(world.trace(task))))
    # SFT keeps no checkpoint: a base left unfinished by a killed process is started again
    report_to = getattr(setup, "report_to", [])  # a TrainConfig's or ExperimentConfig's: where its run reports
    run = Run.create(root, name, {**fields, "report_to": report_to} if report_to else fields, overwrite=True)
    target = "" if setup.sft_stop_accuracy is None else f", until check accuracy {setup.sft_stop_accuracy}"
    with phase(f"SFT base into {run.dir} (at most {setup.sft_steps} steps{target})"):
        started = time.perf_counter()
        watcher = _SFTWatcher(setup, policy, run)
        result = sft.train(sft.SFTConfig(backend="plain", max_steps=setup.sft_steps, batch_size=setup.sft_batch_size,
                                         learning_rate=setup.sft_learning_rate, warmup_ratio=0.05, progress=False),
                           policy, examples, run=run, should_stop=watcher)
        checks = watcher.checks if watcher.checks and watcher.checks[-1]["step"] == result.steps else [
            *watcher.checks, watcher.check(result.steps)]
    reached = setup.sft_stop_accuracy is not None and checks[-1]["accuracy"] >= setup.sft_stop_accuracy
    run.write_summary({"final_loss": result.train_losses[-1], "seconds": time.perf_counter() - started,
                       "steps": result.steps, "check_accuracy": checks[-1]["accuracy"], "reached_target": reached,
                       "checks": checks})
    policy.save(str(model_dir))
    return policy


def sft_base_dir(setup: WalkSetup, root: str | Path) -> Path:
    """The run directory of the SFT base made by `setup`'s SFT fields under `root`."""
    return Path(root) / f"sft-base-{config_hash(setup.sft_fields())}"


SFT_CHECK_SEED = 777  # check walks of the SFT check (the experiment's test walks are seeded 50_000 + ...)


class _SFTWatcher:
    """`should_stop` of the SFT base: a progress line every few seconds, the check every
    `sft_check_every` steps, and True once the check reaches `sft_stop_accuracy`."""

    def __init__(self, setup: WalkSetup, policy: TinyLM, run: Run) -> None:
        world = setup.world()
        self.setup, self.policy, self.run, self.world = setup, policy, run, world
        self.tasks = world.tasks(setup.sft_check_tasks, 1, setup.sft_max_steps, seed=SFT_CHECK_SEED)
        self.checks: list[dict[str, float | int]] = []
        self.started = self.last_line = time.monotonic()

    def check(self, steps: int) -> dict[str, float | int]:
        """Greedy LongCoT accuracy on the check walks after `steps` optimizer steps."""
        from reasonlab.llm.base import SamplingParams
        from reasonlab.systems.delethink.evaluation import evaluate

        mode = DelethinkConfig.longcot(self.setup.train_budget)
        result = evaluate(self.policy, self.tasks, mode, self.world.query, self.world.reward,
                          SamplingParams(temperature=0.0), n=1)
        row = {"step": steps, "accuracy": round(result.accuracy, 4), "tasks": result.num_tasks}
        self.checks.append(row)
        self.run.log({"kind": "sft_check", **row}, step=steps)
        return row

    def __call__(self, step: int) -> bool:
        steps, cap = step + 1, self.setup.sft_steps
        if steps % self.setup.sft_check_every == 0:
            accuracy = self.check(steps)["accuracy"]
            target = self.setup.sft_stop_accuracy
            say(f"SFT base: step {steps}/{cap}, check accuracy {accuracy:.3f} "
                f"(target {target if target is not None else 'none'}), {eta(steps, cap, self.started)} at most")
            self.last_line = time.monotonic()
            return target is not None and accuracy >= target
        if time.monotonic() - self.last_line >= PROGRESS_SECONDS:
            say(f"SFT base: step {steps}/{cap}, {eta(steps, cap, self.started)} at most")
            self.last_line = time.monotonic()
        return False


def train(config: TrainConfig) -> Path:
    """RL of the SFT base in `config.arm`; writes the run (metrics, checkpoints, model/) and returns its folder."""
    from pydantic import ValidationError

    from reasonlab.config import config_error
    from reasonlab.llm.base import SamplingParams
    from reasonlab.systems.delethink.environment import DelethinkEnvironment, rl_config
    from reasonlab.train import rl

    out = Path(config.out)
    if config.resume and not config.overwrite and not (out / "checkpoints" / rl.CHECKPOINT_NAME).is_file():
        raise UserError(f"--resume: {out} has no RL checkpoint to continue: drop --resume to start the run")
    world, delethink = config.world(), config.environment(config.arm)  # bad C, m or I fail before any work
    try:
        base = rl.RLConfig(
            loss_type="grpo", iterations=config.rl_iterations, tasks_per_iteration=config.rl_tasks_per_iteration,
            group_size=config.rl_group_size, learning_rate=config.rl_learning_rate, epsilon_high=0.26,
            dual_clip=3.0, tis_cap=2.0, optimizer_steps_per_iteration=2, seed=config.seed, progress=False,
            checkpoint_every=20, sampling=SamplingParams(temperature=config.temperature),
            resume=config.resume and not config.overwrite,
        )
    except ValidationError as err:
        raise config_error(err, "the RL options (rl_*)") from None
    run = Run.create(out.parent, out.name, config, resume=config.resume, overwrite=config.overwrite,
                     ignore=LOCATION_FIELDS)
    policy = sft_base(config, out.parent)
    environment = DelethinkEnvironment(delethink, policy, world.query, world.reward)
    tasks = world.tasks(4000, config.rl_min_steps, config.rl_max_steps, seed=10_000 + config.seed)
    label = f"{config.arm}-RL seed {config.seed}"
    with phase(f"{label}: {config.rl_iterations} RL iterations into {run.dir}"):
        rl.train(rl_config(delethink, base), policy, environment, tasks, run=run,
                 on_iteration=_IterationLines(label, config.rl_iterations))
    history = [m for m in run.metrics() if m.get("kind") == "rl"]
    last = history[-20:]
    run.write_summary({"reward_last20": sum(m["reward_mean"] for m in last) / max(len(last), 1),
                       "seconds": sum(m["seconds"] for m in history), "iterations": len(history)})
    policy.save(str(run.dir / "model"))
    return run.dir


def step_lines(label: str, total: int) -> Callable[[int], bool]:
    """A `should_stop` for `sft.train` that never stops: a progress line with an ETA every PROGRESS_SECONDS."""
    started = last = time.monotonic()

    def line(step: int) -> bool:
        nonlocal last
        if time.monotonic() - last >= PROGRESS_SECONDS:
            say(f"{label}: step {step + 1}/{total}, {eta(step + 1, total, started)}")
            last = time.monotonic()
        return False

    return line


class _IterationLines:
    """`on_iteration` of an RL arm: one progress line per iteration, with its reward and an ETA."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, total
        self.first: int | None = None  # a resumed run starts late
        self.started = time.monotonic()

    def __call__(self, iteration: int, metrics: dict) -> None:
        if self.first is None:
            self.first, self.started = iteration, time.monotonic() - float(metrics.get("seconds", 0.0))
        done, todo = iteration + 1 - self.first, self.total - self.first
        say(f"{self.label}: RL iteration {iteration + 1}/{self.total}, reward {metrics['reward_mean']:.2f}, "
            f"{eta(done, todo, self.started)}")
