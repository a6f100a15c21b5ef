import pytest
import torch

from reasonlab.systems.trm.layers import (
    Attention,
    Block,
    MLPMixer,
    attention_reference,
    rms_norm,
    swiglu_inner_size,
    trunc_normal_,
)


def test_rms_norm_has_unit_rms_and_no_weight():
    x = torch.randn(3, 5, 8) * 7
    y = rms_norm(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(3, 5), atol=1e-4)


def test_swiglu_inner_size_matches_the_paper_configs():
    assert swiglu_inner_size(512, 4, 256) == 1536
    assert swiglu_inner_size(97, 4, 256) == 512  # Sudoku MLP mixer over P+L = 16+81 positions


def test_truncated_normal_init_has_the_requested_std_and_bounds():
    w = trunc_normal_(torch.empty(200_000), std=0.1)
    assert abs(float(w.std()) - 0.1) < 0.002
    assert float(w.abs().max()) <= 2 * 0.1 / 0.8796256610342398 + 1e-6


@pytest.mark.parametrize(("batch", "seq", "heads", "dim"), [(2, 7, 2, 16), (3, 63, 4, 32)], ids=["short", "odd63"])
def test_sdpa_attention_matches_the_reference_values_and_grads(batch, seq, heads, dim):
    torch.manual_seed(42)
    fast = Attention(dim, heads, seq, fast=True)
    slow = Attention(dim, heads, seq, fast=False)
    slow.load_state_dict(fast.state_dict())
    x1 = torch.randn(batch, seq, dim, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = fast(x1), slow(x2)
    torch.testing.assert_close(y1, y2, atol=1e-5, rtol=1e-4)
    y1.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-4, rtol=1e-3)
    for (name, p1), p2 in zip(fast.named_parameters(), slow.parameters(), strict=True):
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-4, rtol=1e-3, msg=name)


def test_reference_attention_is_a_softmax_average():
    q = torch.zeros(1, 1, 3, 4)
    k = torch.randn(1, 1, 3, 4)
    v = torch.randn(1, 1, 3, 4)
    # zero queries give uniform weights
    torch.testing.assert_close(attention_reference(q, k, v), v.mean(-2, keepdim=True).expand(1, 1, 3, 4))


def test_rope_makes_attention_depend_on_relative_position_only():
    torch.manual_seed(0)
    att = Attention(16, 2, 10)
    q = torch.randn(1, 2, 1, 8).expand(1, 2, 10, 8).contiguous()
    rq = att.rotary(q)
    # <R_i q, R_j q> depends on i - j only
    dots = (rq[0, 0] @ rq[0, 0].T)
    assert torch.allclose(dots[0, 2], dots[3, 5], atol=1e-5)
    assert not torch.allclose(dots[0, 1], dots[0, 3], atol=1e-3)


def test_mlp_mixer_mixes_positions_and_normalises_over_them():
    torch.manual_seed(0)
    mixer = MLPMixer(seq_len=6, expansion=4, multiple=8, eps=1e-5)
    h = torch.randn(2, 6, 5)
    out = mixer(h)
    assert out.shape == (2, 6, 5)
    assert torch.allclose(out.pow(2).mean(1), torch.ones(2, 5), atol=1e-4)  # rms over positions
    h2 = h.clone()
    h2[:, 0] += 1.0
    assert not torch.allclose(mixer(h2)[:, 3], out[:, 3])  # position 0 influences position 3


def test_block_is_post_norm():
    torch.manual_seed(0)
    block = Block(16, 2, 5, "attention", 4, 16, 1e-5)
    out = block(torch.randn(2, 5, 16) * 10)
    assert torch.allclose(out.pow(2).mean(-1), torch.ones(2, 5), atol=1e-4)
    with pytest.raises(ValueError, match="mixer must be"):
        Block(16, 2, 5, "conv", 4, 16, 1e-5)
