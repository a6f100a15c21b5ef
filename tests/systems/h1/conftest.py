"""h1 tests run tiny models on one torch thread (2 shared cores in CI)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""
