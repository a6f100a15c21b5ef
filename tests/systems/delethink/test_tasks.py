"""The counter-free permutation walk and the templated arithmetic task."""

from __future__ import annotations

import random

import pytest

from reasonlab.systems.delethink import (
    PermutationWalk,
    arithmetic_prompt,
    arithmetic_tasks,
    extract_arithmetic_answer,
    extract_walk_answer,
)
from reasonlab.systems.delethink.tasks import CONTROL_MARK, CONTROL_STEP


def test_walk_is_one_cycle_and_lengths_are_exact():
    world = PermutationWalk(num_states=127, num_letters=5, seed=0)
    x, seen = 0, set()
    for _ in range(127):
        seen.add(x)
        x = world.next_state[x]
    assert x == 0 and len(seen) == 127
    rng = random.Random(0)
    for steps in (1, 7, 60, 126):
        task = world.task(steps, rng)
        trace = world.trace(task)
        assert len(trace.split()) + 1 == world.trace_length(task) == 2 * steps + 3
        assert trace.split()[-4] == str(task.target) and trace.split()[-2] == "</think>"
        assert world.reward(task, trace) == 1.0


def test_long_traces_use_no_token_that_short_ones_lack():
    world = PermutationWalk(num_states=127, num_letters=5, seed=0)
    short = {w for t in world.tasks(400, 1, 30, seed=1) for w in (world.query(t) + " " + world.trace(t)).split()}
    long = {w for t in world.tasks(50, 100, 126, seed=2) for w in (world.query(t) + " " + world.trace(t)).split()}
    assert long <= short


def test_control_answer_needs_an_early_step():
    world = PermutationWalk(num_states=31, num_letters=5, seed=3)
    task = world.task(20, random.Random(0), control=True)
    states = world.states(task)
    assert world.answer(task) == world.letters[states[CONTROL_STEP - 1][1]]
    assert world.query(task).endswith("?")
    words = world.trace(task).split()
    # the mark follows the letter of step CONTROL_STEP, and only there
    assert words.index(CONTROL_MARK) == 2 * CONTROL_STEP and words.count(CONTROL_MARK) == 1
    assert words[2 * CONTROL_STEP - 1] == world.answer(task) and len(words) + 1 == world.trace_length(task)
    plain = world.task(20, random.Random(0))
    assert CONTROL_MARK not in world.trace(plain) and len(world.trace(plain).split()) + 1 == world.trace_length(plain)


def test_walk_answer_extraction():
    assert extract_walk_answer("3 a 4 b </think> b") == "b"
    assert extract_walk_answer("3 a </think> c 4 b </think> d") == "d"
    assert extract_walk_answer("3 a 4 b") is None
    assert extract_walk_answer("3 a </think>") is None


@pytest.mark.parametrize(("text", "answer"), [(" 1 + 2 = 3. Answer: 3", 3), ("Answer: 4 Answer: 12\n", 12), ("3 + 4", None)])
def test_arithmetic_answer_extraction(text, answer):
    assert extract_arithmetic_answer(text) == answer


def test_arithmetic_prompt_is_a_few_shot_completion():
    task = arithmetic_tasks(1, 6, seed=0)[0]
    prompt = arithmetic_prompt(task)
    assert prompt.endswith("Problem: " + " + ".join(map(str, task.operands)) + "\nWork:")
    assert prompt.count("Answer:") == 2 and task.answer == sum(task.operands)
