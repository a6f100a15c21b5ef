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
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from reasonlab.errors import UserError
from reasonlab.runs import Run, config_hash
from reasonlab.systems.delethink.config import TrainConfig, WalkSetup

if TYPE_CHECKING:
    from reasonlab.train.tinylm import TinyLM

__all__ = ["build_policy", "sft_base", "train"]

console = Console(stderr=True)
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
    """The SFT base on LongCoT-format traces, trained once per SFT settings into `root/sft-base-<hash>/`."""
    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM

    fields = setup.sft_fields()
    name = f"sft-base-{config_hash(fields)}"
    model_dir = Path(root) / name / "model"
    if (model_dir / "model.pt").is_file():
        console.print(f"reusing the SFT base from {model_dir}")
        return TinyLM.load(model_dir)
    world, policy = setup.world(), build_policy(setup)
    rng = random.Random(1234)
    examples = []
    for _ in range(setup.sft_examples):
        task = world.task(rng.randint(1, setup.sft_max_steps), rng, control=rng.random() < setup.sft_control_fraction)
        examples.append(sft.Example(policy.tokenize(world.query(task)), policy.tokenize(world.trace(task))))
    # SFT keeps no checkpoint: a base left unfinished by a killed process is started again
    run = Run.create(root, name, fields, overwrite=True)
    console.print(f"training the SFT base into {run.dir} ({setup.sft_steps} steps)")
    started = time.perf_counter()
    result = sft.train(sft.SFTConfig(backend="plain", max_steps=setup.sft_steps, batch_size=setup.sft_batch_size,
                                     learning_rate=setup.sft_learning_rate, warmup_ratio=0.05, progress=False),
                       policy, examples, run=run)
    run.write_summary({"final_loss": result.train_losses[-1], "seconds": time.perf_counter() - started})
    policy.save(str(model_dir))
    return policy


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
    console.print(f"RL {config.arm} seed {config.seed}: {config.rl_iterations} iterations into {run.dir}")
    environment = DelethinkEnvironment(delethink, policy, world.query, world.reward)
    tasks = world.tasks(4000, config.rl_min_steps, config.rl_max_steps, seed=10_000 + config.seed)
    rl.train(rl_config(delethink, base), policy, environment, tasks, run=run)
    history = [m for m in run.metrics() if m.get("kind") == "rl"]
    last = history[-20:]
    run.write_summary({"reward_last20": sum(m["reward_mean"] for m in last) / max(len(last), 1),
                       "seconds": sum(m["seconds"] for m in history), "iterations": len(history)})
    policy.save(str(run.dir / "model"))
    return run.dir
