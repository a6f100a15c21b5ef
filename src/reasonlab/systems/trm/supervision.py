"""Deep supervision with a persistent carry (as the official code), its plain reference loop, and evaluation.

Training (`supervision_step`): a carry (y, z, step count, halted flag, current sample) lives across
optimizer steps. Each step, halted slots take the loader's next sample and restart from (y_init, z_init);
the others keep their sample and their detached y, z. After the step a sample halts when it has used
N_sup steps or its halting logit is > 0; with probability `exploration` it must first reach a random
minimum in 2..N_sup. HRM's Q-learning "continue" target (`act_continue=True`) needs one more no-grad pass.

`deep_supervision_reference` is the paper's pseudocode (Fig. 3): one batch, N_sup optimizer steps in a
loop. With exploration off and nobody halting early, the two give the same weights (tested).
Evaluation runs every step without halting (as the official eval) and records accuracy after each one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from reasonlab.systems.trm.losses import IGNORE, LossOutput, trm_loss
from reasonlab.systems.trm.model import RecursiveReasoner, StepOutput

__all__ = [
    "Carry",
    "EvalResult",
    "SupervisionConfig",
    "deep_supervision_reference",
    "evaluate",
    "initial_carry",
    "supervision_step",
]


@dataclass(frozen=True)
class SupervisionConfig:
    n_sup: int = 16  # N_sup, maximum supervision steps per sample
    exploration: float = 0.1  # probability of a random minimum number of steps before halting
    halt_weight: float = 0.5
    act_continue: bool = False  # HRM's Q-learning continue loss (TRM drops it)
    loss_type: str = "stablemax"


@dataclass
class Carry:
    y: torch.Tensor  # (B, P+L, D)
    z: torch.Tensor  # (B, P+L, D)
    steps: torch.Tensor  # (B,) supervision steps used by the current sample
    halted: torch.Tensor  # (B,) bool: slot takes a new sample at the next step
    inputs: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B, L)
    puzzle_ids: torch.Tensor  # (B,)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> Carry:
        return cls(**state)


def _core(model: torch.nn.Module) -> RecursiveReasoner:
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        return model.module
    return model


def initial_carry(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor) -> Carry:
    """All slots halted, so the first step loads a full batch."""
    y, z = _core(model).initial_state(inputs.shape[0])
    batch = inputs.shape[0]
    steps = torch.zeros(batch, dtype=torch.long, device=inputs.device)
    halted = torch.ones(batch, dtype=torch.bool, device=inputs.device)
    return Carry(y, z, steps, halted, inputs, labels, ids)


def _refill(model: torch.nn.Module, carry: Carry, inputs: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor) -> Carry:
    h = carry.halted
    y0, z0 = _core(model).initial_state(h.shape[0])
    return Carry(
        torch.where(h[:, None, None], y0, carry.y),
        torch.where(h[:, None, None], z0, carry.z),
        torch.where(h, 0, carry.steps),
        h,
        torch.where(h[:, None], inputs, carry.inputs),
        torch.where(h[:, None], labels, carry.labels),
        torch.where(h, ids, carry.puzzle_ids),
    )


def supervision_step(
    model: torch.nn.Module,
    carry: Carry,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    puzzle_ids: torch.Tensor,
    config: SupervisionConfig,
    generator: torch.Generator | None = None,
) -> tuple[Carry, LossOutput, StepOutput]:
    """One supervision step on the carried batch; returns the new carry, the (summed) loss and the outputs.

    The caller divides `loss.total` by the batch size, back-propagates and steps the optimizers.
    """
    carry = _refill(model, carry, inputs, labels, puzzle_ids)
    out = model(carry.inputs, carry.puzzle_ids, carry.y, carry.z)
    loss = trm_loss(out.logits, carry.labels, out.q_halt, config.halt_weight, config.loss_type)
    with torch.no_grad():
        steps = carry.steps + 1
        last = steps >= config.n_sup
        halted = last
        if config.n_sup > 1:
            halted = halted | ((out.q_halt > out.q_continue) if config.act_continue else (out.q_halt > 0))
            draw = torch.rand(steps.shape, generator=generator, device="cpu").to(steps.device)
            floor = torch.randint(2, config.n_sup + 1, steps.shape, generator=generator, device="cpu").to(steps.device)
            min_steps = (draw < config.exploration).long() * floor
            halted = halted & (steps >= min_steps)
    if config.act_continue and config.n_sup > 1:
        with torch.no_grad():
            nxt = model(carry.inputs, carry.puzzle_ids, out.y, out.z)
            target = torch.sigmoid(torch.where(last, nxt.q_halt, torch.maximum(nxt.q_halt, nxt.q_continue)))
        q_loss = F.binary_cross_entropy_with_logits(out.q_continue, target, reduction="sum")
        loss.total = loss.total + config.halt_weight * q_loss
    new = Carry(out.y, out.z, steps, halted, carry.inputs, carry.labels, carry.puzzle_ids)
    return new, loss, out


def deep_supervision_reference(
    model: RecursiveReasoner,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    puzzle_ids: torch.Tensor,
    n_sup: int,
    optimizer_step: Callable[[torch.Tensor], None],
    halt_weight: float = 0.5,
) -> list[float]:
    """The paper's loop: N_sup steps on one batch, detaching (y, z) between steps; returns the losses."""
    y, z = model.initial_state(inputs.shape[0])
    losses = []
    for _ in range(n_sup):
        out = model(inputs, puzzle_ids, y, z)
        loss = trm_loss(out.logits, labels, out.q_halt, halt_weight)
        optimizer_step(loss.total / inputs.shape[0])
        losses.append(float(loss.total.detach()))
        y, z = out.y.detach(), out.z.detach()
        if bool((out.q_halt > 0).all()):
            break
    return losses


@dataclass
class EvalResult:
    exact_by_step: list[float]  # fraction of puzzles fully right after step k = 1..steps
    token_by_step: list[float]  # fraction of valid tokens right after step k
    halted_exact: float  # exact accuracy reading each answer at its first step with q_halt > 0 (or the last)
    mean_halt_step: float
    count: int
    predictions: torch.Tensor | None = None  # (N, L) argmax at step n_sup, if requested
    confidences: torch.Tensor | None = None  # (N,) sigmoid(q_halt) at step n_sup

    def exact_at(self, step: int) -> float:
        return self.exact_by_step[min(step, len(self.exact_by_step)) - 1]


@torch.no_grad()
def evaluate(
    model: RecursiveReasoner,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    puzzle_ids: torch.Tensor,
    steps: int,
    batch_size: int = 256,
    keep_predictions: bool = False,
    read_step: int | None = None,
) -> EvalResult:
    """Run `steps` supervision steps on every puzzle without halting; accuracy after each step.

    Counts are sums over this process's rows; `merge` them across ranks with `EvalResult` fields x count.
    """
    model.eval()
    device = next(model.parameters()).device
    read_step = read_step or steps
    exact = torch.zeros(steps, dtype=torch.float64)
    tokens = torch.zeros(steps, dtype=torch.float64)
    halted_hits, halt_steps, total_valid = 0.0, 0.0, 0.0
    preds, confs = [], []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size].to(device)
        t = labels[start : start + batch_size].to(device)
        ids = puzzle_ids[start : start + batch_size].to(device)
        valid = t != IGNORE
        total_valid += float(valid.sum())
        y, z = model.initial_state(len(x))
        halted_at = torch.full((len(x),), steps, dtype=torch.long, device=device)
        halted_right = torch.zeros(len(x), dtype=torch.bool, device=device)
        for k in range(steps):
            out = model(x, ids, y, z)
            y, z = out.y, out.z
            hits = (out.logits.argmax(-1) == t) & valid
            right = hits.sum(-1) == valid.sum(-1)
            exact[k] += float(right.sum())
            tokens[k] += float(hits.sum())
            newly = (halted_at == steps) & ((out.q_halt > 0) | (k == steps - 1))
            halted_at = torch.where(newly, k + 1, halted_at)
            halted_right |= newly & right
            if keep_predictions and k == read_step - 1:
                preds.append(out.logits.argmax(-1).cpu())
                confs.append(torch.sigmoid(out.q_halt).cpu())
        halted_hits += float(halted_right.sum())
        halt_steps += float(halted_at.sum())
    n = max(len(inputs), 1)
    return EvalResult(
        exact_by_step=(exact / n).tolist(),
        token_by_step=(tokens / max(total_valid, 1.0)).tolist(),
        halted_exact=halted_hits / n,
        mean_halt_step=halt_steps / n,
        count=len(inputs),
        predictions=torch.cat(preds) if preds else None,
        confidences=torch.cat(confs) if confs else None,
    )
