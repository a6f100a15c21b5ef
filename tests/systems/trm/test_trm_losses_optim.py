import math

import pytest
import torch

from reasonlab.systems.trm.losses import IGNORE, log_stablemax, stablemax, stablemax_cross_entropy, trm_loss
from reasonlab.systems.trm.model import PuzzleEmbedding
from reasonlab.systems.trm.optim import EMA, AdamATan2, SignSGD, warmup_lr


def test_stablemax_matches_its_formula():
    v = torch.tensor([-3.0, -0.5, 0.0, 2.0], dtype=torch.float64)
    assert stablemax(v).tolist() == pytest.approx([1 / 4, 1 / 1.5, 1.0, 3.0])
    s = [1 / 4, 1 / 1.5, 1.0, 3.0]
    expected = [math.log(x / sum(s)) for x in s]
    assert log_stablemax(v).tolist() == pytest.approx(expected)


def test_stablemax_gradient_is_finite_at_a_logit_of_exactly_one():
    # regression: a training run turned NaN when a float32 logit hit 1.0 exactly
    v = torch.tensor([[[1.0, -2.0, 0.5, 0.0]]], requires_grad=True)
    stablemax_cross_entropy(v, torch.tensor([[0]])).sum().backward()
    assert torch.isfinite(v.grad).all()
    s = [2.0, 1 / 3, 1.5, 1.0]
    # d/dv0 of -log(s0 / sum s) with s0 = v0 + 1: -1/s0 + 1/sum
    assert float(v.grad[0, 0, 0]) == pytest.approx(-1 / 2.0 + 1 / sum(s))


def test_stablemax_cross_entropy_picks_the_label_and_ignores_pad():
    logits = torch.tensor([[[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]]])
    labels = torch.tensor([[0, IGNORE]])
    loss = stablemax_cross_entropy(logits, labels)
    assert loss.dtype == torch.float64
    s = [3.0, 0.5, 1.5]
    assert float(loss[0, 0]) == pytest.approx(-math.log(3.0 / sum(s)))
    assert float(loss[0, 1]) == 0.0


def test_trm_loss_normalises_per_sequence_then_sums_over_the_batch():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[1, 2, 3, 4], [0, 1, IGNORE, IGNORE]])
    q = torch.tensor([0.3, -0.2])
    out = trm_loss(logits, labels, q, halt_weight=0.5)
    per_token = stablemax_cross_entropy(logits, labels)
    expected_lm = per_token[0].sum() / 4 + per_token[1].sum() / 2
    assert float(out.lm) == pytest.approx(float(expected_lm))
    target = out.correct.double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(q.double(), target, reduction="sum")
    assert float(out.total) == pytest.approx(float(expected_lm + 0.5 * bce), rel=1e-5)


def test_halting_target_is_whole_answer_correct():
    labels = torch.tensor([[1, 2, IGNORE], [1, 2, 0], [0, 0, 0]])
    logits = torch.nn.functional.one_hot(torch.tensor([[1, 2, 0], [1, 2, 1], [0, 0, 0]]), 3).float() * 5
    out = trm_loss(logits, labels, torch.zeros(3))
    # row 0: right on every valid token (the ignored one does not count); row 1: one token wrong
    assert out.correct.tolist() == [True, False, True]
    assert out.token_accuracy.tolist() == pytest.approx([1.0, 2 / 3, 1.0])


def test_adam_atan2_matches_its_update_rule():
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5))
    start = p.detach().clone()
    opt = AdamATan2([p], lr=0.1, betas=(0.9, 0.95), weight_decay=0.5)
    grads = [torch.randn(5), torch.randn(5)]
    m = torch.zeros(5)
    v = torch.zeros(5)
    expected = start.clone()
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        expected = expected * (1 - 0.1 * 0.5)
        m = 0.9 * m + 0.1 * g
        v = 0.95 * v + 0.05 * g * g
        expected = expected - 0.1 / (1 - 0.9**t) * torch.atan2(m, (v / (1 - 0.95**t)).sqrt())
    torch.testing.assert_close(p.detach(), expected)
    # a huge first gradient moves p by lr/(1-b1) * atan(1-b1) = 0.0997 for lr 0.1: bounded, no epsilon
    q = torch.nn.Parameter(torch.zeros(1))
    q.grad = torch.tensor([1e12])
    AdamATan2([q], lr=0.1, weight_decay=0.0).step()
    assert float(q.detach()) == pytest.approx(-0.1 / 0.1 * math.atan2(0.1, 1.0), rel=1e-5)


def test_sign_sgd_updates_only_the_rows_in_the_batch():
    emb = PuzzleEmbedding(4, 3)
    with torch.no_grad():
        emb.weight.fill_(1.0)
    emb.train()
    rows = emb(torch.tensor([1, 3, 1]))
    (rows * torch.tensor([[1.0, -2.0, 0.0], [3.0, 0.0, -1.0], [1.0, 1.0, 0.0]])).sum().backward()
    SignSGD(emb, lr=0.1, weight_decay=0.5).step()
    decayed = 1 - 0.1 * 0.5
    # row 1 got grad (1,-2,0) + (1,1,0) = (2,-1,0)
    torch.testing.assert_close(emb.weight[1], torch.tensor([decayed - 0.1, decayed + 0.1, decayed]))
    torch.testing.assert_close(emb.weight[3], torch.tensor([decayed - 0.1, decayed, decayed + 0.1]))
    torch.testing.assert_close(emb.weight[0], torch.ones(3))
    torch.testing.assert_close(emb.weight[2], torch.ones(3))


def test_ema_tracks_parameters_and_copies_into_a_model():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    ema.update(model)
    averaged = ema.copy_to(model)
    torch.testing.assert_close(averaged.weight, torch.full((1, 2), 1 - 0.9**2))
    torch.testing.assert_close(model.weight, torch.ones(1, 2))  # the live model is untouched


def test_warmup_is_linear_then_constant():
    assert warmup_lr(0, 1.0, 4) == 0.25
    assert warmup_lr(3, 1.0, 4) == 1.0
    assert warmup_lr(100, 1.0, 4) == 1.0
