"""DelethinkConfig: the budget formula, test-time scaling of I, and refusal of bad parameters."""

from __future__ import annotations

import pytest
from delethink_fakes import WalkOracle

from reasonlab.errors import UserError
from reasonlab.systems.delethink import DelethinkConfig, carryover_ids, chunk_prompt, chunked_rollout


def test_paper_budget_is_24k():
    config = DelethinkConfig()
    assert (config.chunk_size, config.carryover, config.iterations) == (8192, 4096, 5)
    assert config.budget == 24_576
    assert [config.chunk_tokens(i) for i in range(3)] == [8192, 4096, 4096]
    assert DelethinkConfig(iterations=23).budget == 8192 + 22 * 4096  # Delethink-96K


def test_with_budget_picks_the_fewest_iterations_that_reach_it():
    config = DelethinkConfig(chunk_size=32, carryover=16, iterations=5)
    assert config.with_budget(96).iterations == 5
    assert config.with_budget(97).iterations == 6
    assert config.with_budget(256).budget == 256
    assert config.with_budget(10).iterations == 1


def test_longcot_is_one_chunk_of_the_whole_budget():
    config = DelethinkConfig.longcot(300)
    assert (config.chunk_size, config.carryover, config.iterations, config.budget) == (300, 0, 1, 300)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 64, "carryover": 64}, "carryover m=64 must be smaller than the chunk size C=64"),
        ({"chunk_size": 64, "carryover": 80}, "carryover m=80 must be smaller"),
        ({"iterations": 0}, "iterations I=0 must be at least 1"),
        ({"chunk_size": 64, "carryover": 32, "head_tokens": 32}, "head_tokens=32 must be smaller than the carryover"),
    ],
    ids=["m-equals-C", "m-above-C", "I-zero", "head-too-big"],
)
def test_bad_parameters_are_refused_with_a_clear_message(options, message):
    with pytest.raises(UserError, match=message):
        DelethinkConfig(**options)


def test_chunk_larger_than_the_model_context_is_refused(world):
    small = WalkOracle(world, context_length=40)
    with pytest.raises(UserError, match="chunk size C=64 is larger than the context length 40"):
        chunked_rollout(small, ["1 > 2 :"], DelethinkConfig(chunk_size=64, carryover=32))
    with pytest.raises(UserError, match=r"query of 4 tokens \+ chunk size C=40 exceeds the context length 40"):
        chunked_rollout(small, ["1 > 2 :"], DelethinkConfig(chunk_size=40, carryover=20))


def test_carryover_is_head_plus_tail_of_the_thinking_so_far():
    generated = list(range(100, 120))
    assert carryover_ids(generated, 8) == generated[-8:]
    assert carryover_ids(generated, 8, head_tokens=3) == generated[:3] + generated[-5:]
    assert carryover_ids(generated[:5], 8, head_tokens=3) == generated[:5]  # all of it while it fits
    assert carryover_ids(generated, 0) == []
    config = DelethinkConfig(chunk_size=16, carryover=8, iterations=3, head_tokens=2)
    assert chunk_prompt([7, 7], generated, config) == [7, 7, 100, 101, *generated[-6:]]
