import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""
