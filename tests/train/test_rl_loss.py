"""GRPO / Dr.GRPO / GSPO losses: hand-computed values, the per-trace rule, and vectorized vs per-token reference."""

from __future__ import annotations

import math

import pytest
import torch

from reasonlab.train.losses import (
    LossInputs,
    episode_loss_reference,
    episode_losses,
    group_advantages,
    statistic_units,
)
from reasonlab.train.rl_config import RLConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(rows_new, rows_old, row_episode, advantages, rollout=None, ref=None):
    """Pad per-row logprob lists into LossInputs; every listed token is trained."""
    T = max(len(r) for r in rows_new)

    def pad(rows):
        return torch.tensor([list(r) + [0.0] * (T - len(r)) for r in rows], dtype=torch.float32)

    mask = torch.tensor([[1.0] * len(r) + [0.0] * (T - len(r)) for r in rows_new])
    row_episode_t = torch.tensor(row_episode)
    tokens = torch.zeros(len(advantages)).index_add(0, row_episode_t, mask.sum(-1))
    return LossInputs(
        logprobs=pad(rows_new).requires_grad_(True),
        old_logprobs=pad(rows_old),
        rollout_logprobs=pad(rollout if rollout is not None else rows_old),
        mask=mask,
        row_episode=row_episode_t,
        advantages=torch.tensor(advantages, dtype=torch.float32),
        episode_tokens=tokens,
        ref_logprobs=None if ref is None else pad(ref),
    )


# a hand-built group of two episodes: rewards (1, 0); old logprobs 0, new logprobs log(ratio)
RATIOS_1 = [1.1, 1.3]  # episode 1, A > 0
RATIOS_2 = [0.7, 1.0, 1.25]  # episode 2, A < 0


def _hand_batch(advantage):
    new = [[math.log(r) for r in RATIOS_1], [math.log(r) for r in RATIOS_2]]
    old = [[0.0] * 2, [0.0] * 3]
    return _inputs(new, old, [0, 1], [advantage, -advantage])


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    # group 0: mean 0.5, sample std sqrt(4 * 0.25 / 3) = 0.57735; group 1: mean 0.75, sample std 0.5
    grpo = group_advantages(rewards, groups, "grpo", epsilon=0.0)
    expected = [0.5 / 0.5773503, -0.5 / 0.5773503, 0.25 / 0.5, 0.25 / 0.5, 0.25 / 0.5, -0.75 / 0.5]
    assert grpo.tolist() == pytest.approx(
        [expected[0], expected[1], expected[1], expected[0], *expected[2:]], abs=1e-6
    )
    # population std: group 0 std 0.5, group 1 std 0.4330127
    population = group_advantages(rewards, groups, "gspo", epsilon=0.0, std="population")
    assert population[:2].tolist() == pytest.approx([1.0, -1.0], abs=1e-6)
    assert population[7].item() == pytest.approx(-0.75 / 0.4330127, abs=1e-6)
    # Dr.GRPO: no std division; the epsilon is added to the std (TRL: 1e-4)
    assert group_advantages(rewards, groups, "dr_grpo").tolist() == pytest.approx(
        [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75]
    )
    assert group_advantages(rewards, groups, "grpo", epsilon=1e-4)[0].item() == pytest.approx(
        0.5 / (0.5773503 + 1e-4)
    )
    # a group with all-equal rewards has zero advantage, a group of one too
    flat = group_advantages(torch.tensor([1.0, 1.0, 3.0]), torch.tensor([0, 0, 1]), "grpo")
    assert flat.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="loss_type"):
        group_advantages(rewards, groups, "ppo")


def test_grpo_loss_by_hand():
    a = 0.5 / math.sqrt(0.5)  # rewards (1, 0): mean 0.5, sample std sqrt(0.5)
    config = RLConfig(loss_type="grpo", epsilon_low=0.2, epsilon_high=0.2)
    losses, stats = episode_losses(_hand_batch(a), config)
    # episode 1 (A>0): min(r A, clip(r, .8, 1.2) A) = (1.1 A, 1.2 A); token mean -1.15 A
    # episode 2 (A<0): -A * max(r, clip(r)) = A * (0.8, 1.0, 1.25); token mean 3.05 A / 3
    assert losses.tolist() == pytest.approx([-1.15 * a, 3.05 * a / 3], abs=1e-6)
    assert losses.mean().item() == pytest.approx((-1.15 + 3.05 / 3) * a / 2, abs=1e-6)
    # clipped tokens: 1.3 (A>0, above 1.2) and 0.7 (A<0, below 0.8); 1.25 with A<0 is not clipped
    assert stats["clip_fraction"].item() == pytest.approx(2 / 5)


def test_dr_grpo_loss_by_hand():
    config = RLConfig(loss_type="dr_grpo", dr_grpo_norm=4)
    losses, _ = episode_losses(_hand_batch(0.5), config)  # Dr.GRPO: A = R - mean = +-0.5
    # token sums -(1.1 + 1.2) * 0.5 and (0.8 + 1.0 + 1.25) * 0.5, each divided by the constant 4
    assert losses.tolist() == pytest.approx([-1.15 / 4, 1.525 / 4], abs=1e-6)


def test_gspo_loss_by_hand():
    a = 0.5 / math.sqrt(0.5)
    config = RLConfig(loss_type="gspo", epsilon_low=0.02, epsilon_high=0.1)
    losses, stats = episode_losses(_hand_batch(a), config)
    # sequence ratios: sqrt(1.1 * 1.3) = 1.19583 -> clipped to 1.1; (0.7 * 1.0 * 1.25)^(1/3) = 0.95647 -> 0.98
    assert math.sqrt(1.1 * 1.3) > 1.1 and (0.7 * 1.25) ** (1 / 3) < 0.98
    assert losses.tolist() == pytest.approx([-1.1 * a, 0.98 * a], abs=1e-6)
    assert stats["clip_fraction"].item() == pytest.approx(1.0)
    unclipped, _ = episode_losses(
        _hand_batch(a), RLConfig(loss_type="gspo", epsilon_low=0.2, epsilon_high=0.2)
    )
    assert unclipped.tolist() == pytest.approx(
        [-math.sqrt(1.1 * 1.3) * a, (0.7 * 1.25) ** (1 / 3) * a], abs=1e-6
    )


def test_dual_clip_and_truncated_importance_by_hand():
    # one episode, A = -1, token ratio 5 (far above 1 + eps): PPO gives -A * 5 = 5, dual clip caps it at 3
    inputs = _inputs([[math.log(5.0)]], [[0.0]], [0], [-1.0], rollout=[[math.log(0.25)]])
    plain, _ = episode_losses(inputs, RLConfig(loss_type="grpo"))
    assert plain.item() == pytest.approx(5.0)
    dual, _ = episode_losses(inputs, RLConfig(loss_type="grpo", dual_clip=3.0))
    assert dual.item() == pytest.approx(3.0)
    # pi_old / pi_rollout = 1 / 0.25 = 4, truncated at 2
    tis, stats = episode_losses(inputs, RLConfig(loss_type="grpo", dual_clip=3.0, tis_cap=2.0))
    assert tis.item() == pytest.approx(6.0)
    assert stats["tis_weight"].item() == pytest.approx(2.0)


def test_kl_term_by_hand():
    # k3 estimator exp(ref - new) - (ref - new) - 1 with ref - new = 0.5: 0.148721; ratio 1 and A = 0
    inputs = _inputs([[0.0, 0.0]], [[0.0, 0.0]], [0], [0.0], ref=[[0.5, 0.5]])
    losses, stats = episode_losses(inputs, RLConfig(loss_type="grpo", beta=0.1))
    k3 = math.exp(0.5) - 0.5 - 1
    assert losses.item() == pytest.approx(0.1 * k3, abs=1e-6)
    assert stats["kl"].item() == pytest.approx(k3, abs=1e-6)


def test_three_segment_episode_follows_the_per_trace_formula():
    """Delethink: chunks are rows; every token of every chunk gets the trace's advantage, divided by its length."""
    torch.manual_seed(0)
    lengths = [2, 3, 1]  # episode 0: three segments; episode 1: one segment of 4 tokens
    new = [torch.randn(n).tolist() for n in [*lengths, 4]]
    inputs = _inputs(new, new, [0, 0, 0, 1], [0.8, -0.8])  # old == new: ratio 1, no clipping
    losses, _ = episode_losses(inputs, RLConfig(loss_type="grpo"))
    # L = -(1/N) sum_traces (1/len) sum_chunks sum_t A ratio: -(0.8 * 6 / 6 - 0.8 * 4 / 4) / 2
    assert losses.tolist() == pytest.approx([-0.8, 0.8], abs=1e-6)
    losses.mean().backward()
    grad = inputs.logprobs.grad
    # d loss / d logprob = -A / (len(trace) * N) on every token of the three chunks: the same advantage
    expected = -0.8 / (6 * 2)
    for row, n in enumerate(lengths):
        assert grad[row, :n].tolist() == pytest.approx([expected] * n, abs=1e-7)
    assert grad[3].tolist() == pytest.approx([0.8 / (4 * 2)] * 4, abs=1e-7)
    # Dr.GRPO: one constant per episode, whatever its length
    dr, _ = episode_losses(
        _inputs(new, new, [0, 0, 0, 1], [0.5, -0.5]), RLConfig(loss_type="dr_grpo", dr_grpo_norm=10)
    )
    assert dr.tolist() == pytest.approx([-0.5 * 6 / 10, 0.5 * 4 / 10], abs=1e-6)
    # GSPO: the sequence is the whole episode, so one ratio spans all three chunks
    shifted = [[x + 0.1 for x in row] for row in new]
    gspo, _ = episode_losses(_inputs(shifted, new, [0, 0, 0, 1], [1.0, -1.0]), RLConfig(loss_type="gspo"))
    assert gspo[0].item() == pytest.approx(-math.exp(0.1), abs=1e-6)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "gspo"])
@pytest.mark.parametrize(
    "extras", [{}, {"dual_clip": 3.0, "tis_cap": 2.0, "beta": 0.05}], ids=["plain", "dual-tis-kl"]
)
def test_vectorized_loss_matches_per_token_reference(loss_type, extras):
    torch.manual_seed(42)
    if loss_type == "gspo":
        extras = {k: v for k, v in extras.items() if k != "dual_clip"}  # refused for GSPO (tested below)
    config = RLConfig(loss_type=loss_type, epsilon_low=0.2, epsilon_high=0.28, dr_grpo_norm=17, **extras)
    # 3 episodes with 3, 1 and 2 segments of odd lengths, some tokens masked (tool output)
    row_episode = [0, 0, 0, 1, 2, 2]
    lengths = [5, 1, 7, 3, 9, 4]
    new = [torch.randn(n, dtype=torch.float32) * 0.5 - 1 for n in lengths]
    old = [x + 0.3 * torch.randn(n) for x, n in zip(new, lengths, strict=True)]
    rollout = [x + 0.2 * torch.randn(n) for x, n in zip(old, lengths, strict=True)]
    ref = [x + 0.2 * torch.randn(n) for x, n in zip(new, lengths, strict=True)]
    masks = [[int(torch.rand(()) > 0.2) for _ in range(n)] for n in lengths]
    advantages = [0.9, -1.3, 0.4]

    T = max(lengths)
    pad = lambda rows: torch.stack([torch.cat([r, torch.zeros(T - len(r))]) for r in rows])  # noqa: E731
    mask = torch.tensor([m + [0] * (T - len(m)) for m in masks], dtype=torch.float32)
    leaf = pad(new).requires_grad_(True)
    inputs = LossInputs(
        logprobs=leaf,
        old_logprobs=pad(old),
        rollout_logprobs=pad(rollout),
        mask=mask,
        row_episode=torch.tensor(row_episode),
        advantages=torch.tensor(advantages),
        episode_tokens=torch.zeros(3).index_add(0, torch.tensor(row_episode), mask.sum(-1)),
        ref_logprobs=pad(ref),
    )
    losses, _ = episode_losses(inputs, config)
    losses.sum().backward()

    leaves = [x.clone().requires_grad_(True) for x in new]
    reference = []
    for e in range(3):
        rows = [i for i, owner in enumerate(row_episode) if owner == e]
        reference.append(
            episode_loss_reference(
                [leaves[i] for i in rows],
                [old[i] for i in rows],
                [rollout[i] for i in rows],
                [masks[i] for i in rows],
                advantages[e],
                config,
                [ref[i] for i in rows],
            )
        )
    torch.stack(reference).sum().backward()
    assert torch.allclose(losses, torch.stack(reference).detach(), atol=1e-6)
    for i, n in enumerate(lengths):
        expected = leaves[i].grad if leaves[i].grad is not None else torch.zeros(n)  # a fully masked row
        assert torch.allclose(leaf.grad[i, :n], expected, atol=1e-6)
        assert leaf.grad[i, n:].abs().sum() == 0


def test_unknown_loss_type_raises():
    config = RLConfig().model_copy(update={"loss_type": "reinforce"})
    with pytest.raises(ValueError, match="unknown loss_type"):
        episode_losses(_hand_batch(1.0), config)


def test_gspo_with_dual_clip_is_refused():
    with pytest.raises(ValueError, match="unset dual_clip for loss_type='gspo'"):
        RLConfig(loss_type="gspo", dual_clip=3.0)
    # model_copy skips validation: the loss refuses it too, rather than ignoring dual_clip
    sneaked = RLConfig(loss_type="gspo").model_copy(update={"dual_clip": 3.0})
    with pytest.raises(ValueError, match="unset dual_clip"):
        episode_losses(_hand_batch(1.0), sneaked)
    with pytest.raises(ValueError, match="unset dual_clip"):
        episode_loss_reference([torch.zeros(1)], [torch.zeros(1)], [torch.zeros(1)], [[1]], 1.0, sneaked)


def test_rollout_without_logprobs_is_refused_in_the_config():
    from reasonlab.llm.base import SamplingParams

    with pytest.raises(ValueError, match=r"sampling\.logprobs"):
        RLConfig(sampling=SamplingParams(logprobs=False))


def test_statistic_units_name_what_each_statistic_averages():
    assert statistic_units(RLConfig(loss_type="grpo")) == {"clip_fraction": "tokens"}
    assert statistic_units(RLConfig(loss_type="dr_grpo", tis_cap=2.0, beta=0.1)) == {
        "clip_fraction": "tokens",
        "tis_weight": "tokens",
        "kl": "tokens",
    }
    assert statistic_units(RLConfig(loss_type="gspo", tis_cap=2.0)) == {
        "clip_fraction": "episodes",
        "tis_weight": "episodes",
    }
