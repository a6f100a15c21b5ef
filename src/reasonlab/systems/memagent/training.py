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
from reasonlab.systems.memagent.config import SFTTrainConfig, TrainConfig
from reasonlab.threads import current_threads

__all__ = ["expert_trajectories", "lora_config", "rl_config", "rl_cost", "sft_config", "split_held_out", "train", "train_sft", "training_setup"]


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


def lora_config(config: TrainConfig) -> Any:
    """`config.lora` as a validated `LoRAConfig` (unknown keys refused), or None for full-weight training."""
    from pydantic import ValidationError

    from reasonlab.config import check_keys, config_error
    from reasonlab.train.sft import LoRAConfig

    if config.lora is None:
        return None
    check_keys(LoRAConfig, config.lora, "lora", prefix="lora.")
    try:
        return LoRAConfig.model_validate(config.lora)
    except ValidationError as err:
        raise config_error(err, "lora") from None


def training_setup(config: TrainConfig, policy: Any = None) -> tuple[Any, Any, list[Any]]:
    """(policy, environment, tasks): the policy loaded through `reasonlab.llm` unless given, with a fresh LoRA
    adapter when `config.lora` is set."""
    from reasonlab.llm import TrainablePolicy, load_llm
    from reasonlab.systems.memagent.environment import MemAgentEnvironment
    from reasonlab.systems.memagent.trajectories import training_tasks
    from reasonlab.train.sft import add_lora

    lora = lora_config(config)
    policy = policy if policy is not None else load_llm(config.policy)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"--policy {config.policy} is not a trainable model: use hf:embedded or hf:PATH")
    if lora is not None and not hasattr(policy.module, "disable_adapter"):  # an adapter already there is trained on
        add_lora(policy, lora, config.seed)
    # training memories and wordings, never the benchmark's (trajectories.py)
    memories, tasks = training_tasks([config.seed], config.memories, config.tasks_per_category)
    tasks = [task for task in tasks if task.category in config.categories]
    return policy, MemAgentEnvironment(policy, memories, config.environment), tasks


def train(config: TrainConfig, out: str | Path, name: str = "train", *, resume: bool = False,
          overwrite: bool = False, policy: Any = None) -> Path:
    """Train with RL into the run `out/name` (checkpointed every `rl.checkpoint_every` iterations); returns the run
    directory. Under `torchrun` / `accelerate launch` every process rolls out its share of each iteration's tasks
    and rank 0 alone writes the run, the checkpoints and the model."""
    import torch

    from reasonlab.train.distributed import barrier, init_distributed, is_main_process
    from reasonlab.train.rl import CHECKPOINT_NAME
    from reasonlab.train.rl import train as rl_train
    from reasonlab.train.sft import save_model

    rl = rl_config(config, resume)  # bad rl and lora options fail before a model is loaded
    lora_config(config)
    checkpoint = Path(out) / name / "checkpoints" / CHECKPOINT_NAME
    if resume and not overwrite and not checkpoint.is_file():
        raise UserError(f"--resume: {Path(out) / name} has no RL checkpoint to continue: drop --resume to start it")
    init_distributed()
    run = _open_run(config, Path(out), name, resume, overwrite)
    torch.set_num_threads(config.torch_threads or current_threads())
    started = time.monotonic()
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
        model = None
        if hasattr(policy, "use_module") and is_main_process():  # an hf policy: a model folder that hf:PATH loads
            with phase(f"mem-agent: saving the trained model to {run.dir / 'model'}"):
                model = str(save_model(policy, run.dir / "model"))
    if is_main_process():
        run.write_summary({"iterations": len(history), "last": history[-1] if history else None,
                           **rl_cost(history, time.monotonic() - started), "model": model})
    barrier()  # every process returns once the model and the summary are written
    return run.dir


def _open_run(config: TrainConfig, out: Path, name: str, resume: bool, overwrite: bool) -> Run:
    """Rank 0 creates (or reopens) the run and the other processes open it after; an error on rank 0 (a run that
    exists without --resume, say) stops every process instead of leaving them waiting."""
    from reasonlab.train.distributed import all_reduce_max, is_main_process

    run, error = None, None
    if is_main_process():
        try:
            run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
        except UserError as err:
            error = err
    if all_reduce_max({"failed": float(error is not None)})["failed"]:
        raise error or UserError(f"rank 0 could not open the run {out / name}: see its error above")
    return run if run is not None else Run.open(out / name)


def rl_cost(history: list[dict[str, Any]], wall_seconds: float) -> dict[str, Any]:
    """What the RL run cost: episodes, generated tokens, rollout and update seconds (this process's iterations
    and those before a resume), wall time of this process, peak resident memory."""
    import resource

    return {
        "episodes": sum(m["episodes"] for m in history),
        "completion_tokens": round(sum(m["completion_tokens_mean"] * m["episodes"] for m in history)),
        "rollout_seconds": round(sum(m["rollout_seconds"] for m in history), 1),
        "train_seconds": round(sum(m["train_seconds"] for m in history), 1),
        "wall_seconds": round(wall_seconds, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


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


# supervised fine-tuning on the scripted agent's episodes


def sft_config(config: SFTTrainConfig, resume: bool = False) -> Any:
    """`config.sft` as a validated `SFTConfig` (unknown keys refused), seeded by `config.seed`."""
    from pydantic import ValidationError

    from reasonlab.config import check_keys, config_error
    from reasonlab.train.sft import SFTConfig

    check_keys(SFTConfig, config.sft, "sft", prefix="sft.")
    try:
        return SFTConfig.model_validate({**config.sft, "seed": config.seed, "resume": resume,
                                         "report_to": config.report_to})
    except ValidationError as err:
        raise config_error(err, "sft") from None


def split_held_out(trajectories: list[Any], share: float, seed: int) -> tuple[list[Any], list[Any]]:
    """(train, held out): the trajectories of a seeded share of the memories (at least one, never all) kept
    apart, so the held-out loss is measured on memories the model was not trained on."""
    import random

    memories = sorted({t.task.memory_id for t in trajectories})
    if share <= 0 or len(memories) < 2:
        return list(trajectories), []
    count = min(len(memories) - 1, max(1, round(share * len(memories))))
    held = set(random.Random(seed).sample(memories, count))
    return ([t for t in trajectories if t.task.memory_id not in held],
            [t for t in trajectories if t.task.memory_id in held])


def train_sft(config: SFTTrainConfig, out: str | Path, name: str = "sft", *, resume: bool = False,
              overwrite: bool = False, policy: Any = None) -> Path:
    """Record the scripted agent's episodes, fine-tune the policy on its turns, and save it as an HF folder in
    `out/name/model` (load it with `hf:out/name/model`); checkpointed, `resume` continues. Returns the run dir."""
    import resource

    import torch

    from reasonlab.llm import TrainablePolicy, load_llm
    from reasonlab.systems.memagent.trajectories import trajectory_examples, write_trajectories
    from reasonlab.train.sft import CHECKPOINT_NAME, save_model
    from reasonlab.train.sft import train as sft_train

    sft = sft_config(config, resume)  # bad sft options fail before any work
    run_dir = Path(out) / name
    if resume and not overwrite:
        Run.require_existing(run_dir)
        if (run_dir / "summary.json").is_file():
            Run.create(out, name, config, resume=True)  # refuses a run made with another config
            say(f"mem-agent SFT: {run_dir} already finished; its model is {run_dir / 'model'}")
            return run_dir
        sft = sft.model_copy(update={"resume": (run_dir / "checkpoints" / CHECKPOINT_NAME).is_file()})
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite)
    torch.set_num_threads(config.torch_threads or current_threads())
    started = time.monotonic()
    with heartbeat("memagent sft"):
        trajectories = expert_trajectories(config)
        write_trajectories(trajectories, run.dir / "trajectories.jsonl")
        with phase(f"mem-agent SFT: loading the policy {config.policy}"):
            policy = policy if policy is not None else load_llm(config.policy)
        if not isinstance(policy, TrainablePolicy):
            raise UserError(f"--policy {config.policy} is not a trainable model: use hf:embedded or hf:PATH")
        train_episodes, held_episodes = split_held_out(trajectories, config.held_out, config.seed)
        examples = trajectory_examples(train_episodes, config.agent, policy)
        held_examples = trajectory_examples(held_episodes, config.agent, policy)
        prompt_tokens, completion_tokens = _token_counts(policy, examples, sft.add_eos, config.agent.max_tokens_per_turn)
        with phase(f"mem-agent SFT: {len(examples)} assistant turns from {len(train_episodes)} episodes "
                   f"({prompt_tokens + completion_tokens:,} tokens, {completion_tokens:,} trained), "
                   f"{len(held_examples)} held out"):
            result = sft_train(sft, policy, examples, held_examples or None, run=run)
        with phase(f"mem-agent SFT: saving the model to {run.dir / 'model'}"):
            save_model(policy, run.dir / "model")
    summary = {
        "policy": config.policy, "episodes": len(train_episodes), "held_out_episodes": len(held_episodes),
        "examples": len(examples), "held_out_examples": len(held_examples), "steps": result.steps,
        "epochs": sft.epochs, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "tokens_per_epoch": prompt_tokens + completion_tokens,
        "held_out_loss_before": result.eval_loss_before, "held_out_loss_after": result.eval_loss_after,
        "first_loss": result.train_losses[0] if result.train_losses else None,
        "last_loss": result.train_losses[-1] if result.train_losses else None,
        "wall_seconds": round(time.monotonic() - started, 1), "threads": torch.get_num_threads(),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "model": str(run.dir / "model"),
    }
    run.write_summary(summary)
    return run.dir


def expert_trajectories(config: SFTTrainConfig) -> list[Any]:
    """The scripted correct agent's episodes on the config's training tasks (a seeded sample of `episodes`),
    every one judged correct (a failure is a bug in the generator or the scripted agent)."""
    import random

    from reasonlab.systems.memagent.trajectories import record_trajectories, training_tasks

    memories, tasks = training_tasks(config.seeds, config.memories_per_seed, config.tasks_per_category,
                                     config.reworded)
    tasks = [task for task in tasks if task.category in config.categories]
    if config.episodes is not None and config.episodes < len(tasks):
        tasks = sorted(random.Random(config.seed).sample(tasks, config.episodes), key=lambda t: t.task_id)
    with phase(f"mem-agent SFT: the scripted agent plays {len(tasks)} training tasks (sandboxed)"):
        trajectories = record_trajectories(tasks, memories, config.agent,
                                           on_task=_task_line(len(tasks), time.monotonic()))
    failed = [t.task.task_id for t in trajectories if not t.correct]
    if failed:
        raise RuntimeError(f"the scripted agent failed {len(failed)} training tasks (first {failed[0]})")
    return trajectories


def _token_counts(policy: Any, examples: list[Any], add_eos: bool, turn_budget: int) -> tuple[int, int]:
    """(prompt, completion) tokens of the examples; a one-line error when an expert turn exceeds the agent's
    turn budget (the trained agent could never write it whole)."""
    from reasonlab.train.sft import encode_example

    encoded = [encode_example(policy, example, add_eos) for example in examples]
    longest = max(len(c) for _, c in encoded) - int(add_eos)
    if longest > turn_budget:
        raise UserError(f"an expert turn has {longest} tokens, more than agent.max_tokens_per_turn={turn_budget}: "
                        f"raise it (--set agent.max_tokens_per_turn={longest}) so the trained agent can write its "
                        "turns whole")
    return sum(len(p) for p, _ in encoded), sum(len(c) for _, c in encoded)


def _task_line(total: int, started: float) -> Any:
    """`on_task` for the recorder: a line every 10 s and at the end."""
    last = [started]

    def on_task(done: int) -> None:
        if time.monotonic() - last[0] >= 10 or done == total:
            say(f"mem-agent SFT: recorded {done}/{total} episodes, {eta(done, total, started)}")
            last[0] = time.monotonic()

    return on_task
