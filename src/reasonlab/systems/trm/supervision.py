"""Deep supervision with a persistent carry (as the official code) and its plain reference loop.

Training (`supervision_step`): a carry (y, z, step count, halted flag, current sample) lives across
optimizer steps. Each step, halted slots take the loader's next sample and restart from (y_init, z_init);
the others keep their sample and their detached y, z. After the step a sample halts when it has used
N_sup steps or its halting logit is > 0; with probability `exploration` it must first reach a random
minimum in 2..N_sup. HRM's Q-learning "continue" target (`act_continue=True`) needs one more no-grad pass.

`deep_supervision_reference` is the paper's pseudocode (Fig. 3): one batch, N_sup optimizer steps in a
loop. With exploration off and nobody halting early, the two give the same weights (tested).
Evaluation (every step, no halting) is in `evaluation.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from reasonlab.systems.trm.losses import LossOutput, trm_loss
from reasonlab.systems.trm.model import RecursiveReasoner, StepOutput

__all__ = [
    "Carry",
    "SupervisionConfig",
    "deep_supervision_reference",
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
    core = _core(model)
    # the (D,) initial states broadcast in torch.where: no (B, P+L, D) copies of them per step
    return Carry(
        torch.where(h[:, None, None], core.y_init, carry.y),
        torch.where(h[:, None, None], core.z_init, carry.z),
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
