"""AHN self-distillation: the budget sampler's rules, the KL counts only positions past the budget, and a short
distillation lowers the student's KL against the teacher beyond the window while the base stays frozen."""

from __future__ import annotations

import random

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.systems.ahn.distillation import BudgetSampler, distillation_loss
from reasonlab.systems.ahn.model import AHNStudent
from reasonlab.train.distill import DistillConfig, train_distill
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer


def student(kind: str = "gdn") -> AHNStudent:
    torch.manual_seed(0)
    base = TinyTransformer(TinyLMConfig(vocab_size=24, n_layer=2, n_head=2, d_model=32)).eval()
    return AHNStudent(base, kind=kind, sinks=2, window=6)


def test_budget_sampler_follows_the_papers_rules():
    sampler = BudgetSampler(budgets=(4, 16, 32, 64, 256), sinks=(0, 4, 32), min_share=1 / 8)
    rng = random.Random(0)
    draws = [sampler.draw(rng, 128) for _ in range(300)]
    assert {s + w for s, w in draws} == {32, 64}  # 128/8 < T < 128
    every = [BudgetSampler(budgets=(16, 32, 64)).draw(rng, 256) for _ in range(100)]
    assert {s + w for s, w in every} == {16, 32, 64}  # the CPU plan draws each of its budgets
    assert all(s <= (s + w) // 2 for s, w in draws) and {s for s, _ in draws} == {0, 4, 32}
    with pytest.raises(UserError, match="shorter than"):
        BudgetSampler(budgets=(64,)).draw(rng, 32)


def test_kl_is_zero_within_the_budget_and_counts_only_positions_past_it():
    model = student()
    tokens = torch.randint(0, 24, (2, 20))
    loss, metrics = distillation_loss(model, tokens, sinks=2, window=30)
    assert loss.item() == 0.0 and metrics["positions"] == 0
    loss, metrics = distillation_loss(model, tokens, sinks=2, window=6)
    assert loss.item() > 0 and metrics["positions"] == 2 * (20 - 8)


def test_a_short_distillation_lowers_the_kl_past_the_window_and_keeps_the_base():
    model = student()
    base = {n: p.clone() for n, p in model.base.named_parameters()}
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 24, (8, 40), generator=generator)
    before, _ = distillation_loss(model, tokens, 2, 6)
    train_distill(DistillConfig(steps=40, learning_rate=3e-3, progress=False), model,
                  lambda step: distillation_loss(model, tokens, 2, 6))
    after, _ = distillation_loss(model, tokens, 2, 6)
    assert after.item() < 0.9 * before.item()
    assert all(torch.equal(p, base[n]) for n, p in model.base.named_parameters())
