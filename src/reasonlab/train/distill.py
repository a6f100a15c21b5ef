"""Distillation into a few trainable parameters of a frozen model (AHN's self-distillation, spec ahn §3).

The caller owns the models: `batch_loss(step)` runs teacher and student on that step's batch and returns the loss
(usually `forward_kl` over the positions that count) and its metrics. This loop owns the rest: AdamW on the
parameters that require gradients (the paper: lr 1e-4, weight decay 0.1), linear warm-up then cosine decay,
gradient clipping, a progress bar, metrics into the run, and a checkpoint of the trainable parameters, optimizer,
schedule and history every `checkpoint_every` steps that `resume=True` continues from.

    history = train_distill(DistillConfig(steps=300), student, lambda step: loss_and_metrics(step), run)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import nn

from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write

__all__ = ["DISTILL_CHECKPOINT", "DistillConfig", "forward_kl", "has_distill_checkpoint", "train_distill"]

DISTILL_CHECKPOINT = "distill_state.pt"


class DistillConfig(BaseModel):
    """The optimisation of a distillation run (the AHN paper: AdamW lr 1e-4, cosine, 10% warm-up, wd 0.1)."""

    steps: int = Field(300, ge=1, description="optimizer steps")
    learning_rate: float = Field(1e-3, gt=0, description="peak learning rate (the paper: 1e-4 at 3B-14B)")
    weight_decay: float = Field(0.1, ge=0, description="AdamW weight decay")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="share of steps of linear warm-up")
    grad_clip: float = Field(1.0, gt=0, description="global gradient-norm clip")
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    resume: bool = Field(False, description="continue from the run's checkpoint")
    progress: bool = Field(True, description="show a progress bar")


def forward_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(p_teacher || p_student) summed over the vocabulary, averaged over the positions where `mask` is True."""
    teacher_logp = teacher_logits.float().log_softmax(-1)
    student_logp = student_logits.float().log_softmax(-1)
    per_position = (teacher_logp.exp() * (teacher_logp - student_logp)).sum(-1)
    selected = per_position[mask]
    if selected.numel() == 0:
        return per_position.sum() * 0.0  # keeps the graph: a batch with no position past the window
    return selected.mean()


def _schedule(config: DistillConfig) -> Callable[[int], float]:
    warmup = int(config.warmup_ratio * config.steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, config.steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def has_distill_checkpoint(run: Run) -> bool:
    return (run.checkpoint_dir / DISTILL_CHECKPOINT).is_file()


def _save(run: Run, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int,
          history: list[dict[str, Any]]) -> None:
    state = {"step": step, "history": history, "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(),
             "parameters": {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad}}
    with atomic_write(run.checkpoint_dir / DISTILL_CHECKPOINT, "wb") as handle:
        torch.save(state, handle)


def _load(run: Run, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple[int, list]:
    path = run.checkpoint_dir / DISTILL_CHECKPOINT
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds on a torn or foreign file
        raise UserError(f"{path} is unreadable ({type(error).__name__}): start again with --overwrite") from None
    named = dict(module.named_parameters())
    missing = sorted(set(state["parameters"]) - set(named))
    if missing:
        raise UserError(f"the checkpoint in {run.dir} has parameters this model lacks ({missing[:3]}): it was "
                        "made for another model; start a new run")
    with torch.no_grad():
        for name, value in state["parameters"].items():
            named[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["step"] + 1, list(state["history"])


def train_distill(config: DistillConfig, module: nn.Module,
                  batch_loss: Callable[[int], tuple[torch.Tensor, dict[str, float]]],
                  run: Run | None = None) -> list[dict[str, Any]]:
    """Optimise the parameters of `module` that require gradients on `batch_loss(step)`; returns the metrics."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise UserError("nothing to distill into: no parameter of the model requires gradients")
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    start, history = 0, []
    if config.resume:
        if run is None or not has_distill_checkpoint(run):
            raise UserError("resume: there is no distillation checkpoint to continue; drop --resume to start")
        start, history = _load(run, module, optimizer, scheduler)
        run.drop_metrics("distill", "step", start)
    elif run is not None and has_distill_checkpoint(run):
        raise UserError(f"{run.dir} already has a distillation checkpoint: pass --resume, or a new run name")
    elif run is not None:
        run.drop_metrics("distill", "step", 0)  # rows of an attempt that died before its first checkpoint
    from rich.progress import Progress

    with Progress(disable=not config.progress, transient=True) as progress:
        bar = progress.add_task("distilling", total=config.steps, completed=start)
        for step in range(start, config.steps):
            loss, metrics = batch_loss(step)
            learning_rate = optimizer.param_groups[0]["lr"]  # this step's rate (the scheduler moves it after)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip))
            optimizer.step()
            scheduler.step()
            row = {"step": step, "loss": float(loss.detach()), "grad_norm": norm,
                   "lr": learning_rate, **metrics}
            history.append(row)
            if run is not None:
                run.log({"kind": "distill", **row}, step=step)
                if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                    _save(run, module, optimizer, scheduler, step, history)
            progress.update(bar, advance=1, description=f"distilling, KL {row['loss']:.4f}")
    return history
