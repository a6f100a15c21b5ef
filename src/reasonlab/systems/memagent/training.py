"""RL for the memory agent: GSPO (`reasonlab.train.rl`) over the mem-agent environment, one segment per turn.

    reasonlab memagent train --preset smoke --policy hf:embedded --out runs/memagent
    reasonlab memagent train --policy hf:PATH --set rl.iterations=50 --out runs/memagent --name long

The policy is any trainable model spec (`load_llm`, the hf backend); the run directory holds the config, the
per-iteration metrics and the RL checkpoint, so `--resume` continues from the last iteration. The `smoke`
preset (2 iterations, 2 tasks x 2 episodes, 2 turns, a grammar that forces short turns) checks the pipeline;
it does not train a useful agent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.progress import eta, heartbeat, phase, say
from reasonlab.runs import Run
from reasonlab.systems.memagent.config import TrainConfig
from reasonlab.threads import current_threads

__all__ = ["rl_config", "train", "training_setup"]


def rl_config(config: TrainConfig, resume: bool = False) -> Any:
    """`config.rl` as a validated `RLConfig` (unknown keys refused), seeded by `config.seed`."""
    from pydantic import ValidationError

    from reasonlab.config import check_keys, config_error
    from reasonlab.train.rl import RLConfig

    check_keys(RLConfig, config.rl, "rl", prefix="rl.")  # nested keys too (rl.sampling.temperature)
    try:
        return RLConfig.model_validate({**config.rl, "seed": config.seed, "resume": resume,
                                        "max_segments": config.environment.agent.max_turns})
    except ValidationError as err:
        raise config_error(err, "rl") from None


def training_setup(config: TrainConfig, policy: Any = None) -> tuple[Any, Any, list[Any]]:
    """(policy, environment, tasks): the policy loaded through `reasonlab.llm` unless given."""
    from reasonlab.llm import TrainablePolicy, load_llm
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.environment import MemAgentEnvironment

    policy = policy if policy is not None else load_llm(config.policy)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"--policy {config.policy} is not a trainable model: use hf:embedded or hf:PATH")
    memories, tasks = generate_bench(config.seed, config.memories, config.tasks_per_category)
    tasks = [task for task in tasks if task.category in config.categories]
    return policy, MemAgentEnvironment(policy, memories, config.environment), tasks


def train(config: TrainConfig, out: str | Path, name: str = "train", *, resume: bool = False,
          overwrite: bool = False, policy: Any = None) -> Path:
    """Train with RL into the run `out/name` (checkpointed every iteration); returns the run directory."""
    import torch

    from reasonlab.train.rl import CHECKPOINT_NAME
    from reasonlab.train.rl import train as rl_train

    rl = rl_config(config, resume)  # bad rl options fail before a model is loaded
    checkpoint = Path(out) / name / "checkpoints" / CHECKPOINT_NAME
    if resume and not overwrite and not checkpoint.is_file():
        raise UserError(f"--resume: {Path(out) / name} has no RL checkpoint to continue: drop --resume to start it")
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
    torch.set_num_threads(config.torch_threads or current_threads())
    with heartbeat("memagent train"):
        with phase(f"mem-agent: loading the policy {config.policy}"):
            policy, environment, tasks = training_setup(config, policy)
        try:
            with phase(f"mem-agent: {rl.loss_type} RL, {rl.iterations} iterations of {rl.tasks_per_iteration} tasks "
                       f"x {rl.group_size} episodes"):
                history = rl_train(rl, policy, environment, tasks, run=run,
                                   on_iteration=_iteration_line(rl.iterations, time.monotonic()))
        finally:
            environment.close()
    run.write_summary({"iterations": len(history), "last": history[-1] if history else None})
    return run.dir


def _iteration_line(iterations: int, started: float) -> Any:
    """`on_iteration` for `rl.train`: one line per iteration with its mean reward and the ETA."""
    first: list[int] = []  # the first iteration of this process (a resumed run starts later)

    def on_iteration(iteration: int, metrics: dict[str, Any]) -> None:
        if not first:
            first.append(iteration)
        done, left = iteration + 1 - first[0], iterations - first[0]
        say(f"mem-agent RL: iteration {iteration + 1}/{iterations}, reward {metrics['reward_mean']:.3f}, "
            f"{eta(done, left, started)}")

    return on_iteration
