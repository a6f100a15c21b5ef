"""Optimizers of the official recipe: AdamATan2 (pure PyTorch), sign-SGD for puzzle embeddings, EMA, warmup.

AdamATan2 (Everett et al. 2024, the `adam-atan2` package the official code uses) replaces m / (sqrt(v) + eps)
by atan2(m, sqrt(v)): no epsilon, bounded update. Written here in plain PyTorch, so there is no CUDA
extension to build (users' most frequent install error: "No module named 'adam_atan2_backend'").
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn

from reasonlab.systems.trm.model import PuzzleEmbedding

__all__ = ["EMA", "AdamATan2", "SignSGD", "warmup_lr"]


class AdamATan2(torch.optim.Optimizer):
    """p <- p(1 - lr*wd); m, v Adam moments; p <- p - lr/(1-b1^t) * atan2(m, sqrt(v/(1-b2^t)))."""

    def __init__(
        self, params: Iterable, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.1
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.lerp_(p.grad, 1 - beta1)
                v.lerp_(p.grad.square(), 1 - beta2)
                denom = (v / (1 - beta2**t)).sqrt()
                p.add_(torch.atan2(m, denom), alpha=-lr / (1 - beta1**t))


class SignSGD:
    """Sign-SGD with decoupled weight decay on the puzzle-embedding rows used in the last batch.

    Under torch.distributed the rows' ids and grads are gathered from every rank first, so all ranks apply
    the same update to their copy of the table.
    """

    def __init__(self, embedding: PuzzleEmbedding, lr: float, weight_decay: float) -> None:
        self.embedding, self.lr, self.weight_decay = embedding, lr, weight_decay

    @torch.no_grad()
    def step(self) -> None:
        local, ids = self.embedding.local, self.embedding.local_ids
        if local is None or local.grad is None:
            return
        grad = local.grad
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            world = dist.get_world_size()
            all_ids = [torch.empty_like(ids) for _ in range(world)]
            all_grads = [torch.empty_like(grad) for _ in range(world)]
            dist.all_gather(all_ids, ids.contiguous())
            dist.all_gather(all_grads, grad.contiguous())
            ids, grad = torch.cat(all_ids), torch.cat(all_grads)
        unique, inverse = ids.unique(return_inverse=True)
        summed = torch.zeros(len(unique), grad.shape[-1], dtype=grad.dtype, device=grad.device)
        summed.index_add_(0, inverse, grad)
        weight = self.embedding.weight
        weight[unique] = weight[unique] * (1 - self.lr * self.weight_decay) - self.lr * summed.sign()
        self.embedding.local = self.embedding.local_ids = None


def warmup_lr(step: int, base_lr: float, warmup_steps: int) -> float:
    """Linear warmup from 0 to base_lr over warmup_steps, then constant (the paper's schedule)."""
    if warmup_steps <= 0:
        return base_lr
    return base_lr * min(1.0, (step + 1) / warmup_steps)


class EMA:
    """Exponential moving average of trainable parameters (decay 0.999 in the paper), init = weights."""

    def __init__(self, module: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for name, p in module.named_parameters():
            self.shadow[name].lerp_(p.detach(), 1 - self.decay)

    def copy_to(self, module: nn.Module) -> nn.Module:
        """A deep copy of `module` with the averaged parameters (buffers, e.g. puzzle embeddings, as is)."""
        averaged = copy.deepcopy(module)
        with torch.no_grad():
            for name, p in averaged.named_parameters():
                p.copy_(self.shadow[name])
        return averaged

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) ^ set(state)
        if missing:
            raise KeyError(f"EMA state does not match the model: {sorted(missing)[:3]}")
        self.shadow = {k: v.clone() for k, v in state.items()}

