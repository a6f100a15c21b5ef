"""AHN training: self-distillation of the memory into a frozen base (spec section 3).

`distill_recall_student` is the CPU plan's student (a tinylm teacher on recall); `train(config)` is the same
recipe on a Hugging Face decoder and long documents (`reasonlab ahn distill`).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from reasonlab.runs import Run
from reasonlab.systems.ahn.config import StudentConfig
from reasonlab.systems.ahn.distillation import BudgetSampler, distillation_loss
from reasonlab.systems.ahn.model import AHNStudent
from reasonlab.tasks.recall import IGNORE, RecallConfig, make_batch
from reasonlab.train.distill import train_distill
from reasonlab.train.tinylm import TinyTransformer

__all__ = ["distill_recall_student"]


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


def student_path(run_dir: Path) -> Path:
    return Path(run_dir) / "ahn.pt"
