"""The full-attention teacher of the CPU plan (spec 8.2): a 2-layer tinylm trained with cross-entropy on recall.

`train_recall_teacher` runs an induction warm-up, then the recall curriculum; `cached_teacher` keeps the result in
a folder keyed by the hash of everything that made it, so seeds and experiments reuse it and never under another
config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from reasonlab.errors import UserError
from reasonlab.progress import say
from reasonlab.runs import atomic_write, atomic_write_json, config_hash
from reasonlab.systems.ahn.config import TeacherConfig
from reasonlab.systems.ahn.model import causal_logits
from reasonlab.tasks.recall import IGNORE, RecallBatch, RecallConfig, induction_batch, make_batch
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer

__all__ = ["cached_teacher", "teacher_model", "train_recall_teacher"]

RECENT = 25  # steps averaged for TeacherConfig.target_accuracy


def teacher_model(config: TeacherConfig, recall: RecallConfig, seed: int) -> TinyTransformer:
    """A fresh RoPE tinylm shaped as the config says, initialised from `seed`."""
    torch.manual_seed(seed)
    return TinyTransformer(TinyLMConfig(vocab_size=recall.vocab_size, n_layer=config.n_layer, n_head=config.n_head,
                                        d_model=config.d_model, context_length=recall.seq_len))


def _recall_loss(model: TinyTransformer, batch: RecallBatch) -> tuple[torch.Tensor, float]:
    logits = causal_logits(model, batch.tokens)
    targets = batch.labels[:, 1:]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)
    hits = (logits[:, :-1].argmax(-1) == targets) & (targets != IGNORE)
    return loss, float(hits.sum()) / max(1, int((targets != IGNORE).sum()))


def _schedule(config: TeacherConfig, recall: RecallConfig) -> list[tuple[str, int, float | None, Callable]]:
    """(name, steps, target accuracy, make(rng) -> batch) per phase: the warm-up, then each curriculum stage."""
    phases: list[tuple[str, int, float | None, Callable]] = [(
        "induction warm-up", config.warmup_steps,
        config.target_accuracy if config.warmup_target is None else config.warmup_target,
        lambda rng: induction_batch(recall.vocab_size, config.warmup_seq_len, config.warmup_batch_size, rng))]
    for i, stage in enumerate(config.stages):
        task = recall.model_copy(update={"seq_len": stage.seq_len, "min_pairs": stage.min_pairs,
                                         "max_pairs": stage.max_pairs, "queries_per_sequence": None})
        task = RecallConfig.model_validate(task.model_dump())
        phases.append((f"recall stage {i + 1} (L={stage.seq_len}, {stage.min_pairs}-{stage.max_pairs} pairs)",
                       stage.steps, config.target_accuracy,
                       lambda rng, task=task, size=stage.batch_size: make_batch(task, size, rng)))
    return phases


def train_recall_teacher(config: TeacherConfig, recall: RecallConfig, seed: int,
                         log: Callable[[str], None] = say) -> tuple[TinyTransformer, list[dict[str, float]]]:
    """Train the teacher from scratch; returns it (eval mode) and its training curve."""
    model = teacher_model(config, recall, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    rng = np.random.default_rng([seed, 17])
    curve, step = [], 0
    for name, steps, target, make in _schedule(config, recall):
        recent: list[float] = []
        for i in range(steps):
            loss, accuracy = _recall_loss(model, make(rng))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            recent = [*recent[-(RECENT - 1):], accuracy]
            reached = target is not None and len(recent) == RECENT and sum(recent) / RECENT >= target
            if i % 50 == 0 or i == steps - 1 or reached:
                curve.append({"step": step, "phase": name, "loss": loss.item(), "accuracy": accuracy})
            if i == steps - 1 or reached:
                log(f"teacher seed {seed}: {name} done after {i + 1} steps, loss {loss.item():.3f}, "
                    f"accuracy {sum(recent) / len(recent):.1%} (last {len(recent)} steps)")
                break
    return model.eval(), curve


def cached_teacher(config: TeacherConfig, recall: RecallConfig, seed: int, root: str | Path,
                   log: Callable[[str], None] = say) -> tuple[TinyTransformer, Path]:
    """The teacher for (config, recall task, seed), trained once and kept under `root/<hash>/teacher.pt`."""
    key = config_hash({"teacher": config.model_dump(mode="json"), "recall": recall.model_dump(mode="json"),
                       "seed": seed})
    folder = Path(root) / key
    path = folder / "teacher.pt"
    model = teacher_model(config, recall, seed)
    if path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as error:  # a torn or foreign file
            raise UserError(f"cached teacher {path} is unreadable ({type(error).__name__}): delete {folder}") from None
        log(f"teacher seed {seed}: reusing {path}")
        return model.eval(), path
    model, curve = train_recall_teacher(config, recall, seed, log)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "curve.json", curve)
    with atomic_write(path, "wb") as handle:
        torch.save(model.state_dict(), handle)
    return model, path
