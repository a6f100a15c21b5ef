"""Train TRM / HRM with deep supervision: `train(TRMTrainConfig) -> run directory`.

    reasonlab trm train --task sudoku --size 6 --givens 10 --hidden-size 64 --n 3 --T 2 --n-sup 8
    torchrun --nproc_per_node 2 -m reasonlab.systems.trm.train --config cfg.yaml     # DDP, same script

One optimizer step = one supervision step on the carried batch (official code); the global batch is split
across processes when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU). Rank 0 writes the run directory:
config.yaml, metrics.jsonl, checkpoints/{last,best}.pt, plots/, summary.json. `resume=True` continues from
checkpoints/last.pt. The checkpoint chosen on the validation split is evaluated on the test split.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from reasonlab.config import load_config
from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write
from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.data import BatchStream, GridData, TaskData, build_task_data
from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.optim import EMA, AdamATan2, SignSGD, warmup_lr
from reasonlab.systems.trm.supervision import Carry, EvalResult, evaluate, initial_carry, supervision_step

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


def _distributed() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def _device(config: TRMTrainConfig, local_rank: int) -> torch.device:
    if config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA device is visible: use --device cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def _clock(kind: str) -> float:
    return time.process_time() if kind == "process" else time.perf_counter()


def evaluate_split(
    model: RecursiveReasoner, data: GridData, steps: int, batch_size: int, rank: int = 0, world: int = 1
) -> EvalResult:
    """Evaluate on this rank's shard (rows rank::world) and sum the counts across ranks."""
    shard = GridData(data.inputs[rank::world], data.labels[rank::world], data.puzzle_ids[rank::world])
    result = evaluate(model, shard.inputs, shard.labels, shard.puzzle_ids, steps, batch_size)
    if world == 1:
        return result
    n = result.count
    vec = torch.tensor(
        [n, result.halted_exact * n, result.mean_halt_step * n, *[a * n for a in result.exact_by_step]],
        dtype=torch.float64,
    )
    dist.all_reduce(vec)
    total = max(float(vec[0]), 1.0)
    return EvalResult(
        exact_by_step=(vec[3:] / total).tolist(), token_by_step=result.token_by_step,
        halted_exact=float(vec[1]) / total, mean_halt_step=float(vec[2]) / total, count=int(vec[0]),
    )


def arc_pass_at_k(model: RecursiveReasoner, task_data: TaskData, steps: int, batch_size: int, k: int = 2) -> float:
    """Predict every augmented test input, undo each augmentation, vote per test pair, score pass@k."""
    from reasonlab.tasks import arc as arc_task

    puzzles = task_data.arc
    assert puzzles is not None
    test = task_data.test
    result = evaluate(model, test.inputs, test.labels, test.puzzle_ids, steps, batch_size, keep_predictions=True)
    candidates: dict[tuple[str, int], list] = {}
    for example, tokens, confidence in zip(puzzles.test, result.predictions, result.confidences, strict=True):
        _, augmentation = puzzles.identifiers[example.puzzle_id]
        grid = augmentation.invert(arc_task.crop(tokens.numpy()))
        candidates.setdefault((example.task_id, example.test_index), []).append((grid, float(confidence)))
    ranked = {key: arc_task.vote(preds) for key, preds in candidates.items()}
    return arc_task.pass_at_k(ranked, puzzles.test_truth, k)


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


def train(config: TRMTrainConfig) -> Path:
    """Train according to `config`; returns the run directory (on every rank)."""
    rank, world, local_rank = _distributed()
    device = _device(config, local_rank)
    if config.threads:
        torch.set_num_threads(config.threads)
    task = build_task_data(config.data_spec())
    model_config = config.model_spec(task.vocab_size, task.seq_len, task.num_puzzle_ids)
    supervision = config.supervision()
    name = config.name or f"trm-{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"
    if world > 1:
        holder = [name]
        dist.broadcast_object_list(holder, src=0)
        name = holder[0]
    run_dir = Path(config.out) / name
    run = Run.create(config.out, name, config, exist_ok=config.resume) if rank == 0 else Run(run_dir)
    if world > 1:
        dist.barrier()

    torch.manual_seed(config.seed)
    model = RecursiveReasoner(model_config).to(device)
    ema = EMA(model, config.ema) if config.ema else None
    params = list(model.parameters())
    if config.optimizer == "adam_atan2":
        optimizer: torch.optim.Optimizer = AdamATan2(params, config.lr, (config.beta1, config.beta2), config.weight_decay)
    elif config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
    else:
        raise UserError(f"optimizer {config.optimizer!r} is not known: use adam_atan2 or adamw")
    sign_sgd = SignSGD(model.puzzle_emb, config.puzzle_emb_lr, config.puzzle_emb_weight_decay)
    stream = BatchStream(len(task.train_examples), config.batch_size, config.seed, rank, world)
    augment_rng = np.random.default_rng((config.seed, rank, 1))
    halt_gen = torch.Generator().manual_seed(config.seed * 1000 + rank)
    local_batch = config.batch_size // world
    step, train_seconds, best_val, best_step = 0, 0.0, -1.0, 0
    carry: Carry | None = None

    last_path = run_dir / "checkpoints" / "last.pt"
    if config.resume and last_path.is_file():
        state = load_checkpoint(last_path, task.signature, model_config.to_dict())
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        stream.load_state_dict(state["stream"][rank] if world == len(state["stream"]) else state["stream"][0])
        step, train_seconds = state["step"], state["train_seconds"]
        best_val, best_step = state["best_val"], state["best_step"]
        if world == 1 and state.get("carry") is not None:
            carry = Carry.from_state_dict({k: v.to(device) for k, v in state["carry"].items()})
        if state.get("augment_rng") is not None and world == 1:
            augment_rng.bit_generator.state = state["augment_rng"]
            halt_gen.set_state(state["halt_gen"])
    elif config.resume and rank == 0:
        print(f"no checkpoint in {last_path.parent}: starting from scratch")

    net: torch.nn.Module = model
    if world > 1:
        # every rank applies the same gathered sign-SGD update to the puzzle table: no buffer sync needed
        import inspect

        ddp = torch.nn.parallel.DistributedDataParallel
        no_sync = (
            {"forward_sync_buffers": False}
            if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
            else {"broadcast_buffers": False}
        )
        net = ddp(model, device_ids=[local_rank] if device.type == "cuda" else None, **no_sync)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and config.bf16 else contextlib.nullcontext()
    )
    eval_steps = config.eval_steps or config.n_sup

    def checkpoint_state() -> dict[str, Any]:
        streams = [stream.state_dict()]
        if world > 1:
            streams = [None] * world
            dist.all_gather_object(streams, stream.state_dict())
        return {
            "model_config": model_config.to_dict(), "data_signature": task.signature, "task": task.task,
            "task_meta": task.meta, "train_config": config.model_dump(mode="json"),
            "model": model.state_dict(), "ema": ema.state_dict() if ema else None,
            "optimizer": optimizer.state_dict(), "stream": streams, "step": step,
            "train_seconds": train_seconds, "best_val": best_val, "best_step": best_step,
            "carry": {k: v.cpu() for k, v in carry.state_dict().items()} if carry is not None else None,
            "augment_rng": augment_rng.bit_generator.state, "halt_gen": halt_gen.get_state(),
            "arc_identifiers": [(t, a.index, a.colors) for t, a in task.arc.identifiers] if task.arc else None,
        }

    def validate() -> float:
        nonlocal best_val, best_step
        eval_model = ema.copy_to(model) if ema else model
        result = evaluate_split(eval_model, task.val, config.n_sup, config.eval_batch_size, rank, world)
        model.train()
        score = result.exact_at(config.n_sup)
        state = checkpoint_state()
        if rank == 0:
            run.log({"val_exact": score, "val_halted_exact": result.halted_exact}, step)
        if score >= best_val:  # ties go to the later (longer trained) checkpoint
            best_val, best_step = score, step
            state.update(best_val=best_val, best_step=best_step)
            if rank == 0:
                save_checkpoint(run.checkpoint_dir / "best.pt", state)
        return score

    progress = None
    if rank == 0 and config.progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(
            TextColumn("[bold]trm train"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
        )
        progress.start()
        bar = progress.add_task("train", total=config.max_steps, completed=step, info="")

    model.train()
    sums: dict[str, float] = {}
    try:
        while step < config.max_steps:
            stop = config.time_budget_s is not None and train_seconds >= config.time_budget_s
            if world > 1:
                flag = torch.tensor([float(stop)])
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop = bool(flag.item())
            if stop:
                break
            start = _clock(config.budget_clock)
            batch = task.train_batch(stream.next(), augment_rng)
            inputs, labels, ids = batch.inputs.to(device), batch.labels.to(device), batch.puzzle_ids.to(device)
            if carry is None:
                carry = initial_carry(model, inputs, labels, ids)
            lr = warmup_lr(step, config.lr, config.warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            sign_sgd.lr = warmup_lr(step, config.puzzle_emb_lr, config.warmup_steps)
            with autocast:
                carry, loss, _out = supervision_step(net, carry, inputs, labels, ids, supervision, halt_gen)
            optimizer.zero_grad(set_to_none=True)
            (loss.total / local_batch).backward()
            optimizer.step()
            sign_sgd.step()
            if ema is not None:
                ema.update(model)
            step += 1
            train_seconds += _clock(config.budget_clock) - start
            for key, value in (
                ("loss", float(loss.total.detach()) / local_batch), ("lm_loss", float(loss.lm) / local_batch),
                ("halt_loss", float(loss.halt) / local_batch), ("exact", float(loss.correct.float().mean())),
                ("token_accuracy", float(loss.token_accuracy.mean())), ("steps_used", float(carry.steps.float().mean())),
            ):
                sums[key] = sums.get(key, 0.0) + value
            if rank == 0 and (step % config.log_every == 0 or step == 1):
                count = 1 if step == 1 else config.log_every
                run.log({**{k: v / count for k, v in sums.items()}, "lr": lr, "train_seconds": train_seconds}, step)
            if step % config.log_every == 0 or step == 1:
                sums = {}
            if progress is not None:
                progress.update(bar, completed=step, info=f"loss {float(loss.total.detach()) / local_batch:.3f}")
            if step % config.eval_every == 0:
                validate()
            if step % config.checkpoint_every == 0:
                state = checkpoint_state()
                if rank == 0:
                    save_checkpoint(last_path, state)
    finally:
        if progress is not None:
            progress.stop()
    if step % config.eval_every != 0 or best_val < 0:
        validate()
    state = checkpoint_state()
    if rank == 0:
        save_checkpoint(last_path, state)

    # test the checkpoint chosen on validation
    best = load_checkpoint(run.checkpoint_dir / "best.pt" if rank == 0 else run_dir / "checkpoints" / "best.pt")
    best_model = load_model(best).to(device)
    test = evaluate_split(best_model, task.test, eval_steps, config.eval_batch_size, rank, world)
    summary: dict[str, Any] = {
        "task": task.signature, "arch": config.arch, "mixer": config.mixer, "T": config.T, "n": config.n,
        "n_sup": config.n_sup, "parameters": model.num_parameters(), "world_size": world,
        "train_steps": step, "train_seconds": round(train_seconds, 2), "budget_clock": config.budget_clock,
        "samples_per_second": round(step * config.batch_size / max(train_seconds, 1e-9), 2),
        "best_step": best_step, "val_exact": best_val, "test_exact": test.exact_at(config.n_sup),
        "test_exact_by_step": test.exact_by_step, "test_token_by_step": test.token_by_step,
        "test_halted_exact": test.halted_exact, "test_mean_halt_step": test.mean_halt_step,
        "test_count": test.count,
    }
    if task.task == "arc" and rank == 0:
        summary["test_pass_at_2"] = arc_pass_at_k(best_model, task, config.n_sup, config.eval_batch_size)
    if rank == 0:
        run.write_summary(summary)
        _plots(run, test.exact_by_step, config.n_sup)
    if world > 1:
        dist.barrier()
    return run_dir


def main(argv: list[str] | None = None) -> None:
    """Entry point for `torchrun -m reasonlab.systems.trm.train --config cfg.yaml [--set key=value ...]`."""
    parser = argparse.ArgumentParser(description="Train TRM (single process or under torchrun).")
    parser.add_argument("--config", help="YAML file of TRMTrainConfig options")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one option")
    args = parser.parse_args(argv)
    import yaml

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.replace("-", "_")] = yaml.safe_load(value)
    config = load_config(TRMTrainConfig, args.config, **overrides)
    run_dir = train(config)
    if dist.is_initialized():
        dist.destroy_process_group()
    print(run_dir)


if __name__ == "__main__":
    main()
