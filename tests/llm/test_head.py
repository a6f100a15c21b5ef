"""`token_logprobs`: the log-probability of each target through an output head, a block of the vocabulary at a time,
checked against the whole-vocabulary log-softmax in values and gradients (several blocks, targets on the blocks'
edges, a soft-cap, a temperature, bf16 weights as autocast would use them)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import reasonlab.llm.head as head
from reasonlab.llm.head import block_rows, token_logprobs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS, WIDTH, VOCABULARY = 29, 24, 3000


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Blocks of 700 vocabulary entries (5 blocks, the last one short), so every test crosses block edges."""
    monkeypatch.setattr(head, "_MIN_BLOCK", 1)
    monkeypatch.setattr(head, "BLOCK_BYTES", 4 * ROWS * 700)
    assert block_rows(ROWS, VOCABULARY) == 700
    return 700


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(ROWS, WIDTH, generator=generator)
    weight = torch.randn(VOCABULARY, WIDTH, generator=generator) / WIDTH**0.5
    # every block's first and last entry among the targets, and the vocabulary's last
    edges = [0, 699, 700, 1399, 1400, 2099, 2100, 2799, 2800, 2999]
    targets = torch.tensor(edges + torch.randint(0, VOCABULARY, (ROWS - len(edges),), generator=generator).tolist())
    return hidden, weight, targets


def _reference(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None,
               scale: float) -> torch.Tensor:
    logits = F.linear(hidden, weight)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return F.log_softmax(logits.float() / scale, dim=-1).gather(-1, targets[:, None]).squeeze(-1)


def _value_and_grad(function, hidden, weight, targets, softcap, scale):  # type: ignore[no-untyped-def]
    hidden = hidden.clone().requires_grad_(True)
    values = function(hidden, weight, targets, softcap, scale)
    upstream = torch.linspace(-1.0, 2.0, len(values))  # not all ones: each row's gradient weighted differently
    (values * upstream).sum().backward()
    return values.detach(), hidden.grad


@pytest.mark.parametrize(("softcap", "scale"), [(None, 1.0), (None, 0.7), (2.0, 1.0), (1.5, 1.3)])
def test_values_and_gradients_equal_the_whole_vocabulary_softmax(small_blocks: int, softcap: float | None,
                                                                  scale: float):
    hidden, weight, targets = _inputs()
    values, grad = _value_and_grad(token_logprobs, hidden, weight, targets, softcap, scale)
    expected, expected_grad = _value_and_grad(_reference, hidden, weight, targets, softcap, scale)
    assert values.dtype == torch.float32 and values.shape == (ROWS,)
    torch.testing.assert_close(values, expected, rtol=1e-5, atol=1e-5)
    assert expected_grad.abs().sum() > 0
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6)


def test_one_block_and_many_blocks_agree(monkeypatch: pytest.MonkeyPatch):
    hidden, weight, targets = _inputs(1)
    whole = token_logprobs(hidden, weight, targets)
    assert block_rows(ROWS, VOCABULARY) == VOCABULARY  # one block at the module's defaults
    monkeypatch.setattr(head, "_MIN_BLOCK", 1)
    monkeypatch.setattr(head, "BLOCK_BYTES", 4 * ROWS * 128)
    torch.testing.assert_close(token_logprobs(hidden, weight, targets), whole, rtol=1e-5, atol=1e-5)


def test_a_bf16_weight_gives_what_a_linear_layer_under_autocast_gives(small_blocks: int):
    hidden, weight, targets = _inputs(2)
    layer = torch.nn.Linear(WIDTH, VOCABULARY, bias=False).requires_grad_(False)
    layer.weight.copy_(weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        values, grad = _value_and_grad(token_logprobs, hidden, weight.to(torch.bfloat16), targets, None, 1.0)

        def through_layer(h, w, t, softcap, scale):  # type: ignore[no-untyped-def]
            return F.log_softmax(layer(h).float(), dim=-1).gather(-1, t[:, None]).squeeze(-1)

        expected, expected_grad = _value_and_grad(through_layer, hidden, weight, targets, None, 1.0)
    assert grad.dtype == torch.float32
    # the same bf16 logits; the log-sum-exp is taken in float32 in another order
    torch.testing.assert_close(values, expected, rtol=1e-4, atol=1e-4)
    # each block's share of the gradient is rounded to bf16 before the blocks are summed
    assert float((grad - expected_grad).norm() / expected_grad.norm()) < 1e-2


def test_the_largest_block_stays_under_the_byte_budget():
    assert block_rows(480, 262_144) * 480 * 4 <= head.BLOCK_BYTES  # an SFT step of 8 pitches on Gemma's head
    assert block_rows(1, 262_144) == 262_144
    assert block_rows(100_000, 262_144) == head._MIN_BLOCK  # never a block too thin to multiply well


def test_a_head_that_needs_a_gradient_is_refused():
    hidden, weight, targets = _inputs()
    with pytest.raises(ValueError, match="needs a gradient"):
        token_logprobs(hidden, weight.requires_grad_(True), targets)
