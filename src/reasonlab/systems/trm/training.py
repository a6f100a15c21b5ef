"""Train TRM / HRM with deep supervision: `train(TRMTrainConfig) -> run directory`.

    reasonlab trm train --task sudoku --size 6 --givens 10 --hidden-size 64 --n 3 --T 2 --n-sup 8
    torchrun --nproc_per_node 2 -m reasonlab.systems.trm.training --config cfg.yaml   # DDP, same options

One optimizer step = one supervision step on the carried batch (official code); the global batch is split
across processes when WORLD_SIZE > 1 (`reasonlab.train.distributed`: gloo on CPU, nccl on GPU). Rank 0 writes
the run directory: config.yaml, metrics.jsonl, checkpoints/{last,best}.pt, plots/, summary.json.
`resume=True` continues from checkpoints/last.pt (an error when there is none). The checkpoint chosen on the
validation split is evaluated on the test split. Rank 0 prints a progress line (step and total, or CPU seconds
and budget, the loss or the validation result, an ETA) at least every REPORT_SECONDS, also while it evaluates.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from reasonlab.errors import UserError
from reasonlab.progress import eta, say
from reasonlab.runs import Run, atomic_write
from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.data import BatchStream, TaskData, build_task_data
from reasonlab.systems.trm.evaluation import arc_pass_at_k, evaluate_split
from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.optim import EMA, AdamATan2, SignSGD, warmup_lr
from reasonlab.systems.trm.supervision import Carry, SupervisionConfig, initial_carry, supervision_step
from reasonlab.threads import current_threads
from reasonlab.train.distributed import all_reduce_max, barrier, init_distributed

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "load_model", "save_checkpoint", "train"]

CHECKPOINT_FORMAT = "reasonlab-trm-1"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    with atomic_write(path, "wb") as handle:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, handle)


def load_checkpoint(
    path: str | Path, expect_signature: str | None = None, expect_model: dict | None = None
) -> dict[str, Any]:
    """Read a TRM checkpoint; refuse another file type, another task (signature) or another variant."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "best.pt", path / "checkpoints" / "last.pt"):
            if candidate.is_file():
                path = candidate
                break
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: pass a .pt file or a run directory made by trm train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}): pass a file written by trm train") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a reasonlab TRM checkpoint: pass a file written by `reasonlab trm train`")
    if expect_signature is not None and state["data_signature"] != expect_signature:
        raise UserError(
            f"checkpoint {path} was trained on {state['data_signature']}, not {expect_signature}: "
            "use a checkpoint of this task, or start a new run"
        )
    if expect_model is not None and state["model_config"] != expect_model:
        diff = sorted(k for k in expect_model if state["model_config"].get(k) != expect_model[k])
        raise UserError(
            f"checkpoint {path} is a different model variant (differs in {', '.join(diff)}): "
            "use the same arch/size options, or start a new run"
        )
    return state


def load_model(state: dict[str, Any], use_ema: bool = True) -> RecursiveReasoner:
    """Rebuild the model of a checkpoint, with its EMA weights when it has them."""
    model = RecursiveReasoner(ModelConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    if use_ema and state.get("ema"):
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(state["ema"][name])
    return model.eval()


# keys a resumed run may change: a longer budget, another output root spelling, the progress bar, compilation
RESUMABLE = ("out", "max_steps", "time_budget_s", "progress", "compile")
REPORT_SECONDS = 15.0  # at most this long (wall) between two progress lines while training or evaluating


def _device(config: TRMTrainConfig, local_rank: int) -> torch.device:
    if config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA device is visible: use --device cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _clock(kind: str) -> float:
    return time.process_time() if kind == "process" else time.perf_counter()


def _plots(run: Run, test_by_step: list[float], n_sup: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = run.metrics()
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_exact" in r]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["step"] for r in train], [r["loss"] for r in train])
    ax[0].set(xlabel="optimizer step", ylabel="loss per sample", yscale="log", title="training loss")
    ax[1].plot([r["step"] for r in train], [r["exact"] for r in train], label="train (current slots)")
    ax[1].plot([r["step"] for r in val], [r["val_exact"] for r in val], "o-", label="validation (EMA)")
    ax[1].set(xlabel="optimizer step", ylabel="exact accuracy", ylim=(0, 1.02), title="accuracy")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("training_curve"), dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(range(1, len(test_by_step) + 1), test_by_step, "o-")
    ax.axvline(n_sup, color="gray", linestyle=":", label=f"N_sup = {n_sup}")
    ax.set(xlabel="supervision steps at test time", ylabel="test exact accuracy", ylim=(0, 1.02))
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("accuracy_vs_step"), dpi=120)
    plt.close(fig)


@dataclass
class _Session:
    """Where this process trains, on what data, and the run directory it reports to (rank 0 writes)."""

    config: TRMTrainConfig
    rank: int
    world: int
    device: torch.device
    task: TaskData
    model_config: ModelConfig
    supervision: SupervisionConfig
    run: Run

    @property
    def last_path(self) -> Path:
        return self.run.dir / "checkpoints" / "last.pt"

    @property
    def local_batch(self) -> int:
        return self.config.batch_size // self.world


@dataclass
class _Learner:
    """The model (and its DDP wrapper `net`), the optimizers and the EMA of the weights."""

    model: RecursiveReasoner
    net: torch.nn.Module
    ema: EMA | None
    optimizer: torch.optim.Optimizer
    sign_sgd: SignSGD


@dataclass
class _Progress:
    """Everything a checkpoint restores besides the weights: data order, RNGs, the carry and the counters."""

    stream: BatchStream
    augment_rng: np.random.Generator
    halt_gen: torch.Generator
    step: int = 0
    train_seconds: float = 0.0
    best_val: float = -1.0
    best_step: int = 0
    carry: Carry | None = None


@dataclass
class _Reporter:
    """Progress lines (stderr, rank 0): where training stands, with an ETA, at most every REPORT_SECONDS."""

    label: str
    config: TRMTrainConfig
    active: bool
    first_step: int = 0
    first_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    last_line: float = field(default_factory=time.monotonic)

    def start(self, progress: _Progress) -> None:
        self.first_step, self.first_seconds = progress.step, progress.train_seconds
        self.started = self.last_line = time.monotonic()
        config = self.config
        goal = (f"{config.time_budget_s:g} s of {config.budget_clock} time" if config.time_budget_s is not None
                else f"{config.max_steps} optimizer steps")
        resumed = f", resuming at step {progress.step}" if progress.step else ""
        self.say(f"training for {goal} (batch {config.batch_size}, validation every {config.eval_every} "
                 f"steps{resumed})")

    def position(self, progress: _Progress) -> str:
        """`step 300/1000, ETA 40 s` (a step budget) or `step 300, 12/40 CPU-s, ETA 1 min 5 s` (a time budget)."""
        config = self.config
        budget = config.time_budget_s
        if budget is not None and budget < float("inf"):
            unit = "CPU-s" if config.budget_clock == "process" else "s"
            done = progress.train_seconds - self.first_seconds
            total = budget - self.first_seconds
            clock = f"{progress.train_seconds:.0f}/{budget:g} {unit}"
            steps = f"step {progress.step}" + (f"/{config.max_steps}" if config.max_steps < 1_000_000 else "")
            return f"{steps}, {clock}, {eta(round(1000 * done), round(1000 * max(total, 1e-9)), self.started)}"
        done, total = progress.step - self.first_step, config.max_steps - self.first_step
        return f"step {progress.step}/{config.max_steps}, {eta(done, total, self.started)}"

    def due(self) -> bool:
        return self.active and time.monotonic() - self.last_line >= REPORT_SECONDS

    def say(self, message: str) -> None:
        if self.active:
            say(f"{self.label}: {message}")
            self.last_line = time.monotonic()


def train(config: TRMTrainConfig) -> Path:
    """Train according to `config`; returns the run directory (on every rank)."""
    session = _open_session(config)
    learner = _build_learner(session)
    progress = _new_progress(session)
    if config.resume:
        _restore(session, learner, progress)
    learner.net = _wrap_ddp(session, learner.model)
    reporter = _Reporter(session.run.dir.name, config, active=session.rank == 0)
    reporter.start(progress)
    _train_steps(session, learner, progress, reporter)
    if progress.step % config.eval_every != 0 or progress.best_val < 0:
        _validate(session, learner, progress, reporter)
    _save_last(session, learner, progress)
    summary = _test_best(session, learner.model.num_parameters(), progress, reporter)
    if session.rank == 0:
        session.run.write_summary(summary)
        _plots(session.run, summary["test_exact_by_step"], config.n_sup)
    barrier()
    return session.run.dir


def _open_session(config: TRMTrainConfig) -> _Session:
    """Join the process group, build the data, and create (or reopen, to resume) the run directory."""
    rank, world, local_rank = init_distributed()
    device = _device(config, local_rank)
    torch.set_num_threads(config.threads or current_threads())
    if rank == 0:
        say(f"trm train: building the {config.task} data ({config.data_path or 'generated'}) ...")
    task = build_task_data(config.data_spec())
    model_config = config.model_spec(task.vocab_size, task.seq_len, task.num_puzzle_ids)
    name = config.name or f"trm-{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if world > 1:
        holder = [name]
        dist.broadcast_object_list(holder, src=0)
        name = holder[0]
    run_dir = Path(config.out) / name
    if config.resume and not (run_dir / "checkpoints" / "last.pt").is_file():
        raise UserError(f"--resume: run directory {run_dir} has no checkpoint to resume from (checkpoints/last.pt): "
                        "drop --resume to start a new run, or pass --overwrite to start this one again")
    if rank == 0:
        run = Run.create(config.out, name, config, resume=config.resume, overwrite=config.overwrite, ignore=RESUMABLE)
        if config.resume:  # a longer budget: the saved config says what the run now trains for
            # and a summary of the shorter run no longer describes it: an extension stopped before its end must
            # read as unfinished (continued from its checkpoint), not as done at the new budget
            run.summary_path.unlink(missing_ok=True)
            run.update_config({"max_steps": config.max_steps, "time_budget_s": config.time_budget_s})
    else:
        run = Run(run_dir)
    barrier()
    return _Session(config, rank, world, device, task, model_config, config.supervision(), run)


def _build_learner(session: _Session) -> _Learner:
    """The seeded model, AdamATan2 (or AdamW) on its weights, sign-SGD on the puzzle embeddings, the EMA."""
    config = session.config
    torch.manual_seed(config.seed)
    model = RecursiveReasoner(session.model_config).to(session.device)
    if config.compile:
        model.compile_networks()
    ema = EMA(model, config.ema) if config.ema else None
    params = list(model.parameters())
    betas = (config.beta1, config.beta2)
    if config.optimizer == "adam_atan2":
        optimizer: torch.optim.Optimizer = AdamATan2(params, config.lr, betas, config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, config.lr, betas=betas, weight_decay=config.weight_decay)
    else:
        raise UserError(f"optimizer {config.optimizer!r} is not known: use adam_atan2 or adamw")
    sign_sgd = SignSGD(model.puzzle_emb, config.puzzle_emb_lr, config.puzzle_emb_weight_decay)
    return _Learner(model, model, ema, optimizer, sign_sgd)


def _new_progress(session: _Session) -> _Progress:
    config, rank = session.config, session.rank
    stream = BatchStream(len(session.task.train_examples), config.batch_size, config.seed, rank, session.world)
    augment_rng = np.random.default_rng((config.seed, rank, 1))
    halt_gen = torch.Generator().manual_seed(config.seed * 1000 + rank)
    return _Progress(stream, augment_rng, halt_gen)


def _restore(session: _Session, learner: _Learner, progress: _Progress) -> None:
    """Load checkpoints/last.pt: weights, optimizer, EMA, data order and (single process) carry and RNGs."""
    state = load_checkpoint(session.last_path, session.task.signature, session.model_config.to_dict())
    learner.model.load_state_dict(state["model"])
    learner.optimizer.load_state_dict(state["optimizer"])
    if learner.ema is not None and state.get("ema"):
        learner.ema.load_state_dict(state["ema"])
    streams = state["stream"]
    progress.stream.load_state_dict(streams[session.rank] if session.world == len(streams) else streams[0])
    progress.step, progress.train_seconds = state["step"], state["train_seconds"]
    progress.best_val, progress.best_step = state["best_val"], state["best_step"]
    if session.world == 1 and state.get("carry") is not None:
        progress.carry = Carry.from_state_dict({k: v.to(session.device) for k, v in state["carry"].items()})
    if session.world == 1 and state.get("augment_rng") is not None:
        progress.augment_rng.bit_generator.state = state["augment_rng"]
        progress.halt_gen.set_state(state["halt_gen"])


def _wrap_ddp(session: _Session, model: RecursiveReasoner) -> torch.nn.Module:
    """DDP over the ranks; every rank applies the same gathered sign-SGD update, so buffers need no sync."""
    if session.world == 1:
        return model
    import inspect

    ddp = torch.nn.parallel.DistributedDataParallel
    no_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
        else {"broadcast_buffers": False}
    )
    device_ids = [session.device.index] if session.device.type == "cuda" else None
    return ddp(model, device_ids=device_ids, **no_sync)


def _train_steps(session: _Session, learner: _Learner, progress: _Progress, reporter: _Reporter) -> None:
    """Optimizer steps until max_steps or the time budget; logs, validates and checkpoints on schedule, and
    reports progress: a rich bar in a terminal, else a line at least every REPORT_SECONDS (a validation's
    result when one falls due)."""
    config = session.config
    bar = _progress_bar(session, progress.step)
    learner.model.train()
    sums: dict[str, float] = {}
    try:
        while progress.step < config.max_steps and not _budget_spent(config, progress):
            metrics, lr = _optimizer_step(session, learner, progress)
            step = progress.step
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
            if step % config.log_every == 0 or step == 1:
                if session.rank == 0:
                    count = 1 if step == 1 else config.log_every
                    averages = {k: v / count for k, v in sums.items()}
                    session.run.log({**averages, "lr": lr, "train_seconds": progress.train_seconds}, step)
                sums = {}
            if bar is not None:
                bar[0].update(bar[1], completed=step, info=f"loss {metrics['loss']:.3f}")
            elif reporter.due():
                reporter.say(f"{reporter.position(progress)}, loss {metrics['loss']:.3f}, "
                             f"train exact {metrics['exact']:.2f}")
            if step % config.eval_every == 0:
                _validate(session, learner, progress, reporter)
            if step % config.checkpoint_every == 0:
                _save_last(session, learner, progress)
    finally:
        if bar is not None:
            bar[0].stop()


def _budget_spent(config: TRMTrainConfig, progress: _Progress) -> bool:
    """True once the time budget is used up on any rank (all ranks stop at the same step)."""
    spent = config.time_budget_s is not None and progress.train_seconds >= config.time_budget_s
    return all_reduce_max({"spent": float(spent)})["spent"] > 0


def _optimizer_step(session: _Session, learner: _Learner, progress: _Progress) -> tuple[dict[str, float], float]:
    """One supervision step on the carried batch and one optimizer update; returns its metrics and the lr."""
    config, device = session.config, session.device
    start = _clock(config.budget_clock)
    batch = session.task.train_batch(progress.stream.next(), progress.augment_rng)
    inputs, labels, ids = batch.inputs.to(device), batch.labels.to(device), batch.puzzle_ids.to(device)
    if progress.carry is None:
        progress.carry = initial_carry(learner.model, inputs, labels, ids)
    lr = warmup_lr(progress.step, config.lr, config.warmup_steps)
    for group in learner.optimizer.param_groups:
        group["lr"] = lr
    learner.sign_sgd.lr = warmup_lr(progress.step, config.puzzle_emb_lr, config.warmup_steps)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.bf16 else contextlib.nullcontext()
    with autocast:
        progress.carry, loss, _ = supervision_step(
            learner.net, progress.carry, inputs, labels, ids, session.supervision, progress.halt_gen
        )
    learner.optimizer.zero_grad(set_to_none=True)
    (loss.total / session.local_batch).backward()
    learner.optimizer.step()
    learner.sign_sgd.step()
    if learner.ema is not None:
        learner.ema.update(learner.model)
    progress.step += 1
    progress.train_seconds += _clock(config.budget_clock) - start
    batch_size = session.local_batch
    metrics = {
        "loss": float(loss.total.detach()) / batch_size, "lm_loss": float(loss.lm) / batch_size,
        "halt_loss": float(loss.halt) / batch_size, "exact": float(loss.correct.float().mean()),
        "token_accuracy": float(loss.token_accuracy.mean()), "steps_used": float(progress.carry.steps.float().mean()),
    }
    return metrics, lr


def _checkpoint_state(session: _Session, learner: _Learner, progress: _Progress) -> dict[str, Any]:
    """The resumable state (a collective under DDP: every rank must call it)."""
    streams: list[Any] = [progress.stream.state_dict()]
    if session.world > 1:
        streams = [None] * session.world
        dist.all_gather_object(streams, progress.stream.state_dict())
    task, carry = session.task, progress.carry
    return {
        "model_config": session.model_config.to_dict(), "data_signature": task.signature, "task": task.task,
        "task_meta": task.meta, "train_config": session.config.model_dump(mode="json"),
        "model": learner.model.state_dict(), "ema": learner.ema.state_dict() if learner.ema else None,
        "optimizer": learner.optimizer.state_dict(), "stream": streams, "step": progress.step,
        "train_seconds": progress.train_seconds, "best_val": progress.best_val, "best_step": progress.best_step,
        "carry": {k: v.cpu() for k, v in carry.state_dict().items()} if carry is not None else None,
        "augment_rng": progress.augment_rng.bit_generator.state, "halt_gen": progress.halt_gen.get_state(),
        "arc_identifiers": [(t, a.index, a.colors) for t, a in task.arc.identifiers] if task.arc else None,
    }


def _save_last(session: _Session, learner: _Learner, progress: _Progress) -> None:
    state = _checkpoint_state(session, learner, progress)
    if session.rank == 0:
        save_checkpoint(session.last_path, state)


def _validate(session: _Session, learner: _Learner, progress: _Progress, reporter: _Reporter) -> float:
    """Exact accuracy of the EMA weights on the validation split at N_sup; keeps the best checkpoint."""
    config = session.config
    eval_model = learner.ema.copy_to(learner.model) if learner.ema else learner.model
    result = evaluate_split(eval_model, session.task.val, config.n_sup, config.eval_batch_size, session.rank,
                            session.world, on_progress=_eval_progress(reporter, "validating"))
    learner.model.train()
    score = result.exact_at(config.n_sup)
    state = _checkpoint_state(session, learner, progress)
    if session.rank == 0:
        session.run.log({"val_exact": score, "val_halted_exact": result.halted_exact}, progress.step)
    if score >= progress.best_val:  # ties go to the later (longer trained) checkpoint
        progress.best_val, progress.best_step = score, progress.step
        state.update(best_val=score, best_step=progress.step)
        if session.rank == 0:
            save_checkpoint(session.run.checkpoint_dir / "best.pt", state)
    if reporter.due():
        reporter.say(f"{reporter.position(progress)}, val exact {score:.3f} on {result.count} puzzles "
                     f"(best {progress.best_val:.3f} at step {progress.best_step})")
    return score


def _eval_progress(reporter: _Reporter, what: str) -> Callable[[int, int], None]:
    """A callback for `evaluate`: a line `<what>: 40% of the supervision steps, ETA ...` when one is due."""
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if reporter.due():
            reporter.say(f"{what}: {100 * done // max(total, 1)}% of the supervision steps, "
                         f"{eta(done, total, started)}")

    return report


def _test_best(session: _Session, parameters: int, progress: _Progress, reporter: _Reporter) -> dict[str, Any]:
    """Score the checkpoint chosen on validation on the test split; the run's summary."""
    config, task = session.config, session.task
    best_model = load_model(load_checkpoint(session.run.dir / "checkpoints" / "best.pt")).to(session.device)
    eval_steps = config.eval_steps or config.n_sup
    reporter.say(f"testing the checkpoint of step {progress.best_step} on {len(task.test.inputs)} puzzles, "
                 f"{eval_steps} supervision steps")
    test = evaluate_split(best_model, task.test, eval_steps, config.eval_batch_size, session.rank, session.world,
                          on_progress=_eval_progress(reporter, "testing"))
    reporter.say(f"test exact {test.exact_at(config.n_sup):.3f} at N_sup={config.n_sup} on {test.count} puzzles")
    step, seconds = progress.step, progress.train_seconds
    summary: dict[str, Any] = {
        "task": task.signature, "arch": config.arch, "mixer": config.mixer, "T": config.T, "n": config.n,
        "n_sup": config.n_sup, "parameters": parameters, "world_size": session.world,
        "train_steps": step, "train_seconds": round(seconds, 2), "budget_clock": config.budget_clock,
        "samples_per_second": round(step * config.batch_size / max(seconds, 1e-9), 2),
        "best_step": progress.best_step, "val_exact": progress.best_val, "test_exact": test.exact_at(config.n_sup),
        "test_exact_by_step": test.exact_by_step, "test_token_by_step": test.token_by_step,
        "test_halted_exact": test.halted_exact, "test_mean_halt_step": test.mean_halt_step,
        "test_count": test.count,
    }
    if task.task == "arc" and session.rank == 0:
        summary["test_pass_at_2"] = arc_pass_at_k(best_model, task, config.n_sup, config.eval_batch_size)
    return summary


def _progress_bar(session: _Session, step: int) -> tuple[Any, Any] | None:
    """A rich progress bar on rank 0 in a terminal (or None: progress lines instead): (progress, task id)."""
    if session.rank != 0 or not session.config.progress or not sys.stdout.isatty():
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]trm train"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
    )
    progress.start()
    return progress, progress.add_task("train", total=session.config.max_steps, completed=step, info="")


def main() -> None:
    """`torchrun -m reasonlab.systems.trm.training [options]`: `reasonlab trm train [options]` in every process."""
    from reasonlab.cli import main as cli_main

    sys.argv = ["reasonlab", "trm", "train", *sys.argv[1:]]
    try:
        cli_main()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
