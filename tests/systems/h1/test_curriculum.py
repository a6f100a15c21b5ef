"""The depth scheduler: fixed stages, the adaptive threshold, the stage gate, direct and uniform."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from reasonlab.systems.h1.curriculum import Curriculum, CurriculumConfig


def drive(curriculum: Curriculum, rewards, probe=lambda depth: 1.0):
    """The depth of every iteration, feeding `rewards` one per iteration; returns (depths, probed depths)."""
    depths, probed = [], []

    def recording_probe(depth):
        probed.append(depth)
        return probe(depth)

    for iteration, reward in enumerate(rewards):
        depths.append(curriculum.depths(1, random.Random(0))[0])
        curriculum.observe(iteration, reward, recording_probe)
    return depths, probed


def test_fixed_schedule_advances_every_steps_per_stage_and_stops_at_H():
    curriculum = Curriculum(CurriculumConfig(schedule="fixed", min_depth=1, max_depth=3, steps_per_stage=3))
    depths, probed = drive(curriculum, [0.0] * 12)
    assert depths == [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3]
    assert probed == [2, 3]  # the gate is checked only when a stage ends
    assert [(i, e.action, e.depth) for i, e in curriculum.events] == [(2, "advance", 2), (5, "advance", 3)]


def test_gate_holds_a_stage_until_the_next_depth_has_a_foothold():
    config = CurriculumConfig(schedule="fixed", min_depth=2, max_depth=3, steps_per_stage=2, window=3)
    answers = iter([0.0, 0.04, 0.06])  # probe accuracy at depth 3 on each check
    curriculum = Curriculum(config)
    depths, probed = drive(curriculum, [0.5] * 10, probe=lambda depth: next(answers))
    # stage ends at iteration 1 (gated, 0.0 < 5%), re-probed 3 iterations later (4: 4% gated), then 7: 6% advance
    assert depths == [2, 2, 2, 2, 2, 2, 2, 2, 3, 3]
    assert probed == [3, 3, 3]
    events = [(i, e.action, e.probe) for i, e in curriculum.events]
    assert events == [(1, "gated", 0.0), (4, "gated", 0.04), (7, "advance", 0.06)]


def test_gate_can_be_switched_off():
    config = CurriculumConfig(schedule="fixed", max_depth=2, steps_per_stage=1, gate=False)
    depths, probed = drive(Curriculum(config), [0.0] * 3, probe=lambda depth: 0.0)
    assert depths == [1, 2, 2] and probed == []


def test_adaptive_advances_on_the_window_mean_or_the_cap():
    config = CurriculumConfig(schedule="adaptive", max_depth=3, steps_per_stage=6, window=2, advance_threshold=0.5)
    curriculum = Curriculum(config)
    # depth 1: rewards 0.2, 0.6 (mean 0.4: hold), 0.6 -> mean 0.6 at iteration 2: advance
    # depth 2: never reaches 0.5, so the cap of 6 iterations (3..8) ends it
    rewards = [0.2, 0.6, 0.6] + [0.3] * 6 + [0.9, 0.9]
    depths, _ = drive(curriculum, rewards)
    assert depths == [1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3]
    assert [i for i, _ in curriculum.events] == [2, 8]


def test_adaptive_needs_a_full_window_in_the_new_stage():
    config = CurriculumConfig(schedule="adaptive", max_depth=3, steps_per_stage=50, window=3, advance_threshold=0.5)
    depths, _ = drive(Curriculum(config), [1.0] * 8)
    assert depths == [1, 1, 1, 2, 2, 2, 3, 3]  # old rewards do not carry into the next stage


def test_direct_and_uniform():
    direct = Curriculum(CurriculumConfig(schedule="direct", max_depth=5, steps_per_stage=1))
    assert drive(direct, [1.0] * 4) == ([5, 5, 5, 5], [])
    uniform = Curriculum(CurriculumConfig(schedule="uniform", min_depth=1, max_depth=4))
    depths = uniform.depths(400, random.Random(0))
    assert set(depths) == {1, 2, 3, 4}
    assert [depths.count(d) for d in range(1, 5)] == [114, 91, 99, 96]  # seeded draws from U{1..4}


def test_config_rejects_an_inverted_range():
    with pytest.raises(ValidationError, match="swap"):
        CurriculumConfig(min_depth=4, max_depth=2)
