"""AHN training: self-distillation of the memory into a frozen base (spec section 3).

`distill_recall_student` is the CPU plan's student (a tinylm teacher on recall); `train(config)` is the same
recipe on a Hugging Face decoder and long documents (`reasonlab ahn distill`): wrap, score the held-out windows,
self-distill (forward KL at positions >= T against the unchanged model), save the memories, score again.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reasonlab import progress
from reasonlab.demo import write_headline
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.ahn.config import DocumentsConfig, StudentConfig
from reasonlab.systems.ahn.distillation import BudgetSampler, distillation_loss
from reasonlab.systems.ahn.evaluation import documents_headline, scores_between, window_scores
from reasonlab.systems.ahn.hf import save_hf_ahn
from reasonlab.systems.ahn.longtext import AHN_FILE, load_wrapped, prepare_windows
from reasonlab.systems.ahn.model import AHNStudent
from reasonlab.tasks.recall import IGNORE, RecallConfig, make_batch
from reasonlab.train.distill import forward_kl, has_distill_checkpoint, train_distill
from reasonlab.train.tinylm import TinyTransformer

__all__ = ["distill_recall_student", "train"]

WINDOWS_FILE = "windows.json"


def distill_recall_student(config: StudentConfig, teacher: TinyTransformer, recall: RecallConfig, kind: str,
                           seed: int, run: Run | None = None, resume: bool = False) -> AHNStudent:
    """Train one memory type on the frozen `teacher` by forward KL beyond the window; returns the student set to
    the evaluation budget."""
    torch.manual_seed(seed)
    student = AHNStudent(teacher, kind=kind, sinks=config.sinks, window=config.window,
                         chunk_size=config.chunk_size)
    sampler = BudgetSampler(tuple(config.budgets), tuple(config.sink_choices))

    def batch_loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        # batch and budget depend on (seed, step) only, so a resumed run sees what the uninterrupted one saw
        batch = make_batch(recall, config.batch_size, np.random.default_rng([seed, 29, step]))
        sinks, window = sampler.draw(random.Random(seed * 1_000_003 + step), recall.seq_len)
        label_mask = None
        if config.answers_only:  # logits at t - 1 predict the label at t
            label_mask = torch.zeros_like(batch.labels, dtype=torch.bool)
            label_mask[:, :-1] = batch.labels[:, 1:] != IGNORE
        return distillation_loss(student, batch.tokens, sinks, window, label_mask)

    settings = config.distill.model_copy(update={"resume": resume})
    student.train()
    train_distill(settings, student, batch_loss, run)
    student.set_budget(config.sinks, config.window)
    return student.eval()


def _batch_loss(config: DocumentsConfig, wrapped: Any, train: list[list[int]]):
    sampler = BudgetSampler(tuple(config.budgets), tuple(config.sink_choices), min_share=1 / 8)  # the paper's

    def batch_loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rows = [train[(step * config.batch_size + i) % len(train)] for i in range(config.batch_size)]
        ids = torch.tensor(rows, device=next(wrapped.memories.parameters()).device)
        sinks, window = sampler.draw(random.Random(config.seed * 1_000_003 + step), config.seq_len)
        wrapped.set_budget(sinks, window)
        keep = config.seq_len - (sinks + window)  # only positions >= T carry the loss
        with torch.no_grad():
            teacher = wrapped(ids, full_attention=True, logits_to_keep=keep).logits
        student = wrapped(ids, logits_to_keep=keep).logits
        loss = forward_kl(teacher, student, torch.ones(teacher.shape[:2], dtype=torch.bool, device=ids.device))
        return loss, {"budget": float(sinks + window)}

    return batch_loss


def train(config: DocumentsConfig) -> Path:
    """Wrap, score before training, self-distill, score again; returns the run directory (ahn.pt, summary)."""
    name = config.name or f"ahn-{config.kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    if config.resume:
        Run.require_existing(Path(config.out) / name)
    run = Run.create(config.out, name, config, resume=config.resume, overwrite=config.overwrite,
                     ignore=("resume", "overwrite"))
    with progress.phase(f"loading {config.model} and wrapping it with {config.kind} memories"):
        policy, wrapped = load_wrapped(config)
    with progress.phase(f"tokenising {config.documents}"):
        windows = prepare_windows(config, policy)
    atomic_write_json(run.dir / WINDOWS_FILE, {k: v for k, v in windows.items() if k.endswith("documents")})
    progress.say(f"{len(windows['train'])} training and {len(windows['held_out'])} held-out windows of "
                 f"{config.seq_len} tokens; memories on layers {wrapped.layer_indices}")
    before_path = run.dir / "before.json"
    if before_path.is_file():
        before = json.loads(before_path.read_text())
    else:
        with progress.phase("scoring held-out windows before training"):
            before = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
        atomic_write_json(before_path, before)
    resume = config.resume and has_distill_checkpoint(run)
    wrapped.train()
    with progress.heartbeat("ahn distill"):
        history = train_distill(config.distill.model_copy(update={"resume": resume}), wrapped,
                                _batch_loss(config, wrapped, windows["train"]), run)
    wrapped.eval()
    save_hf_ahn(wrapped, run.dir / AHN_FILE)
    with progress.phase("scoring held-out windows after training"):
        after = window_scores(wrapped, windows["held_out"], config.sinks, config.window)
    summary = {"model": config.model, "kind": config.kind, "layers": list(wrapped.layer_indices),
               "budget": config.sinks + config.window, "seq_len": config.seq_len,
               "documents": config.documents, "train_windows": len(windows["train"]),
               "eval_windows": len(windows["held_out"]), "steps": config.distill.steps,
               "final_kl": history[-1]["loss"] if history else None, "before": before, "after": after,
               "between": scores_between(after)}
    run.write_summary(summary)
    write_headline(run.dir, documents_headline(summary))
    return run.dir
