"""Fixtures of the Delethink tests: the walk world and its perfect Markovian oracle."""

from __future__ import annotations

import pytest
from delethink_fakes import WalkOracle

from reasonlab.systems.delethink.tasks import PermutationWalk


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """2 shared cores in CI: one torch thread per test."""


@pytest.fixture
def world() -> PermutationWalk:
    return PermutationWalk(num_states=31, num_letters=5, seed=3)


@pytest.fixture
def oracle(world: PermutationWalk) -> WalkOracle:
    return WalkOracle(world)
