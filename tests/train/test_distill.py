"""`reasonlab.train.distill`: forward KL, the loop trains only what requires gradients, resume == uninterrupted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.train.distill import DistillConfig, forward_kl, train_distill


def test_forward_kl_matches_the_definition_and_the_mask():
    torch.manual_seed(0)
    teacher, student = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 3:] = True
    p = teacher.softmax(-1)
    manual = (p * (p.log() - student.log_softmax(-1))).sum(-1)[mask].mean()
    torch.testing.assert_close(forward_kl(teacher, student, mask), manual)
    assert forward_kl(teacher, teacher, mask).abs() < 1e-6
    empty = forward_kl(teacher, student.requires_grad_(), torch.zeros(2, 5, dtype=torch.bool))
    assert empty.item() == 0.0 and empty.requires_grad


class Toy(nn.Module):
    """A frozen linear map plus a trainable correction: the student of a fixed teacher map."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.frozen = nn.Linear(4, 6).requires_grad_(False)
        self.correction = nn.Linear(4, 6)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frozen(x) + self.correction(x)


def toy_loss(model: Toy, teacher: nn.Linear):
    def loss(step: int):
        x = torch.randn(8, 3, 4, generator=torch.Generator().manual_seed(step))
        with torch.no_grad():
            target = teacher(x)
        return forward_kl(target, model(x), torch.ones(8, 3, dtype=torch.bool)), {"seen": float(step)}
    return loss


def test_training_lowers_the_kl_and_touches_only_trainable_parameters():
    model, teacher = Toy(), nn.Linear(4, 6)
    frozen = model.frozen.weight.clone()
    history = train_distill(DistillConfig(steps=60, learning_rate=0.05, progress=False), model,
                            toy_loss(model, teacher))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert torch.equal(model.frozen.weight, frozen)
    assert history[5]["seen"] == 5.0 and history[0]["lr"] < history[10]["lr"]  # warm-up


def test_resume_continues_to_the_uninterrupted_result(tmp_path):
    teacher = nn.Linear(4, 6)
    config = DistillConfig(steps=20, learning_rate=0.05, checkpoint_every=5, progress=False)
    whole = Toy()
    train_distill(config, whole, toy_loss(whole, teacher), Run.create(tmp_path, "whole"))

    run = Run.create(tmp_path, "parts")
    first = Toy()
    with pytest.raises(KeyboardInterrupt):
        train_distill(config, first, _stop_after(toy_loss(first, teacher), 12), run)
    second = Toy()  # a fresh process: weights come from the checkpoint (step 9)
    history = train_distill(config.model_copy(update={"resume": True}), second, toy_loss(second, teacher), run)
    torch.testing.assert_close(second.correction.weight, whole.correction.weight)
    assert [row["step"] for row in history] == list(range(20))
    # steps 10 and 11, logged by the interrupted run after its last checkpoint, are logged once
    assert [r["step"] for r in run.metrics() if r.get("kind") == "distill"] == list(range(20))
    with pytest.raises(UserError, match="already has a distillation checkpoint"):
        train_distill(config, Toy(), toy_loss(Toy(), teacher), run)


def _stop_after(loss, step_limit):
    def wrapped(step):
        if step == step_limit:
            raise KeyboardInterrupt
        return loss(step)
    return wrapped


def test_nothing_trainable_is_an_error():
    model = Toy().requires_grad_(False)
    with pytest.raises(UserError, match="nothing to distill"):
        train_distill(DistillConfig(steps=1, progress=False), model, lambda step: (torch.zeros(()), {}))


def test_a_fresh_start_drops_rows_of_an_attempt_that_died_before_its_first_checkpoint(tmp_path):
    teacher = nn.Linear(4, 6)
    config = DistillConfig(steps=6, learning_rate=0.05, checkpoint_every=5, progress=False)
    run = Run.create(tmp_path, "run")
    first = Toy()
    with pytest.raises(KeyboardInterrupt):
        train_distill(config, first, _stop_after(toy_loss(first, teacher), 3), run)  # no checkpoint yet
    history = train_distill(config, Toy(), toy_loss(Toy(), teacher), run)
    assert [r["step"] for r in run.metrics() if r.get("kind") == "distill"] == list(range(6))
    assert history[0]["lr"] == pytest.approx(0.05)  # no warm-up in 6 steps: the logged rate is step 0's own


def test_a_torn_checkpoint_is_a_one_line_error(tmp_path):
    run = Run.create(tmp_path, "run")
    (run.checkpoint_dir / "distill_state.pt").parent.mkdir(parents=True, exist_ok=True)
    (run.checkpoint_dir / "distill_state.pt").write_bytes(b"not a checkpoint")
    config = DistillConfig(steps=2, resume=True, progress=False)
    with pytest.raises(UserError, match="unreadable"):
        train_distill(config, Toy(), toy_loss(Toy(), nn.Linear(4, 6)), run)
