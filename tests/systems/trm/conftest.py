from collections.abc import Callable

import pytest
import torch

from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner

TINY_MODEL = dict(vocab_size=7, seq_len=9, hidden_size=16, num_heads=2, n=2, T=3, prefix_len=3, ffn_multiple=8)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""


@pytest.fixture
def tiny() -> Callable[..., RecursiveReasoner]:
    """Builds a seeded tiny model (V=7, L=9, D=16, 2 heads, n=2, T=3, P=3); keywords override the config."""

    def build(**overrides) -> RecursiveReasoner:
        torch.manual_seed(0)
        return RecursiveReasoner(ModelConfig(**{**TINY_MODEL, **overrides}))

    return build
