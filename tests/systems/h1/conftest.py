"""h1 tests run tiny models on one torch thread (2 shared cores in CI); `tiny_tinylm` builds one for a chain format."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reasonlab.systems.h1.config import ChainFormat
from reasonlab.train.tinylm import TinyLM, TinyLMConfig


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""


@pytest.fixture
def tiny_tinylm() -> Callable[..., TinyLM]:
    """`tiny_tinylm(task, max_depth)`: a 1-layer, d = 32 tinylm (seed 0) whose tokenizer covers `task`'s chains."""

    def build(task: ChainFormat, max_depth: int = 4) -> TinyLM:
        tokenizer = task.tokenizer(max_depth)
        config = TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2)
        return TinyLM.create(config, tokenizer, seed=0)

    return build
