"""The hf backend's token sampler (`sample_token`, inverse CDF): draws follow softmax(logits / T), masked tokens
are never drawn, nucleus sampling keeps the smallest top set reaching top_p, a seeded generator repeats."""

from __future__ import annotations

import pytest
import torch

from reasonlab.llm.hf import sample_token

LOGITS = torch.tensor([0.0, 1.0, float("-inf"), 2.0, -1.0])


def _frequencies(logits: torch.Tensor, temperature: float, top_p: float = 1.0, draws: int = 20_000) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(len(logits))
    for _ in range(draws):
        counts[sample_token(logits, temperature, top_p, generator)] += 1
    return counts / draws


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_draws_follow_the_tempered_softmax(temperature: float):
    frequencies = _frequencies(LOGITS, temperature)
    expected = torch.softmax(LOGITS / temperature, dim=-1)
    assert float((frequencies - expected).abs().max()) < 0.012  # 4 standard errors at 20k draws
    assert frequencies[2] == 0  # the masked token


def test_nucleus_keeps_the_smallest_top_set_reaching_top_p():
    probs = torch.softmax(LOGITS, dim=-1)  # 0.09, 0.24, 0, 0.66, 0.03
    frequencies = _frequencies(LOGITS, 1.0, top_p=0.8)  # the top two (0.66 + 0.24) reach 0.8
    assert frequencies[0] == 0 and frequencies[4] == 0 and frequencies[2] == 0
    assert abs(float(frequencies[3]) - float(probs[3] / (probs[3] + probs[1]))) < 0.012


def test_a_seeded_generator_repeats_and_a_tiny_temperature_is_greedy():
    logits = torch.randn(262_144, generator=torch.Generator().manual_seed(1))
    first = [sample_token(logits, 1.0, 1.0, torch.Generator().manual_seed(7)) for _ in range(3)]
    assert len(set(first)) == 1
    assert sample_token(logits, 1e-30, 1.0, torch.Generator().manual_seed(7)) == int(torch.argmax(logits))
    assert sample_token(logits, 0.0, 1.0, None) == int(torch.argmax(logits))
