import copy

import pytest
import torch

from reasonlab.systems.trm.optim import AdamATan2
from reasonlab.systems.trm.supervision import (
    SupervisionConfig,
    deep_supervision_reference,
    initial_carry,
    supervision_step,
)


def batch(seed, size=4):
    """Inputs and labels for the tiny model of conftest (V=7, L=9)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 7, (size, 9), generator=g)
    return x, (x + 1) % 7, torch.zeros(size, dtype=torch.long)


def test_carry_is_detached_between_supervision_steps(tiny):
    model = tiny()
    x, t, ids = batch(0)
    carry = initial_carry(model, x, t, ids)
    carry, loss1, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=4, exploration=0))
    assert not carry.y.requires_grad and not carry.z.requires_grad
    loss1.total.backward()
    first = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_in, z_in = carry.y.clone(), carry.z.clone()
    carry, loss2, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=4, exploration=0))
    loss2.total.backward()  # would fail or mix graphs if step 1 were still attached
    second = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    # step 2's gradient equals a fresh call on the carried (constant) state
    out = model(x, ids, y_in, z_in)
    from reasonlab.systems.trm.losses import trm_loss

    trm_loss(out.logits, t, out.q_halt).total.backward()
    for a, b in zip(second, [p.grad for p in model.parameters()], strict=True):
        torch.testing.assert_close(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(first, second, strict=True))


def test_halted_slots_take_new_samples_and_the_rest_keep_theirs(tiny):
    model = tiny()
    x0, t0, ids = batch(0)
    x1, t1, _ = batch(1)
    config = SupervisionConfig(n_sup=2, exploration=0)
    carry = initial_carry(model, x0, t0, ids)
    carry, _, _ = supervision_step(model, carry, x0, t0, ids, config)
    assert carry.steps.tolist() == [1, 1, 1, 1] and not carry.halted.any()
    carry.halted = torch.tensor([True, False, False, True])
    kept_y = carry.y[1].clone()
    carry, _, _ = supervision_step(model, carry, x1, t1, ids, config)
    assert torch.equal(carry.inputs[0], x1[0]) and torch.equal(carry.inputs[3], x1[3])
    assert torch.equal(carry.inputs[1], x0[1]) and torch.equal(carry.labels[2], t0[2])
    assert carry.steps.tolist() == [1, 2, 2, 1]
    assert carry.halted.tolist() == [False, True, True, False]  # N_sup = 2 reached
    assert not torch.equal(carry.y[1], kept_y)


def test_halting_head_stops_a_sample_and_exploration_delays_it(tiny):
    model = tiny()
    with torch.no_grad():
        model.q_head.bias.fill_(5.0)  # q_halt > 0 everywhere
    x, t, ids = batch(0, size=512)
    carry = initial_carry(model, x, t, ids)
    carry, _, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=16, exploration=0.0))
    assert carry.halted.all()
    g = torch.Generator().manual_seed(0)
    carry = initial_carry(model, x, t, ids)
    carry, _, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=16, exploration=0.5), g)
    # exactly the samples whose draw fell under 0.5 must reach a minimum in 2..16 > 1 step, so they run on
    replay = torch.Generator().manual_seed(0)
    draw = torch.rand(512, generator=replay)
    floor = torch.randint(2, 17, (512,), generator=replay)
    assert torch.equal(~carry.halted, draw < 0.5) and bool((floor >= 2).all())
    assert int((~carry.halted).sum()) == int((draw < 0.5).sum())


def test_carry_training_equals_the_papers_reference_loop(tiny):
    model_a = tiny()
    model_b = copy.deepcopy(model_a)
    x, t, ids = batch(3, size=6)
    opt_a = AdamATan2(model_a.parameters(), lr=1e-3, weight_decay=0.1)
    opt_b = AdamATan2(model_b.parameters(), lr=1e-3, weight_decay=0.1)
    n_sup = 3
    carry = initial_carry(model_a, x, t, ids)
    losses_a = []
    for _ in range(n_sup):
        carry, loss, _ = supervision_step(model_a, carry, x, t, ids, SupervisionConfig(n_sup=n_sup, exploration=0))
        opt_a.zero_grad()
        (loss.total / 6).backward()
        opt_a.step()
        losses_a.append(float(loss.total.detach()))
    assert carry.halted.all()

    def step(loss):
        opt_b.zero_grad()
        loss.backward()
        opt_b.step()

    losses_b = deep_supervision_reference(model_b, x, t, ids, n_sup, step)
    assert losses_a == pytest.approx(losses_b, rel=1e-6)
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_hrm_continue_loss_adds_a_q_learning_term(tiny):
    model = tiny(arch="hrm", num_layers=1)
    x, t, ids = batch(0)
    carry = initial_carry(model, x, t, ids)
    _, plain, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=4, exploration=0))
    carry = initial_carry(model, x, t, ids)
    _, with_q, _ = supervision_step(model, carry, x, t, ids, SupervisionConfig(n_sup=4, exploration=0, act_continue=True))
    # the extra term: 0.5 * BCE(q_continue, sigmoid(max(q_halt, q_continue) of the next step)), step 1 of 4
    y, z = model.initial_state(4)
    out = model(x, ids, y, z)
    nxt = model(x, ids, out.y, out.z)
    target = torch.sigmoid(torch.maximum(nxt.q_halt, nxt.q_continue)).detach()
    q_loss = torch.nn.functional.binary_cross_entropy_with_logits(out.q_continue, target, reduction="sum")
    extra = float(with_q.total.detach()) - float(plain.total.detach())
    assert extra == pytest.approx(0.5 * float(q_loss.detach()), rel=1e-5)

