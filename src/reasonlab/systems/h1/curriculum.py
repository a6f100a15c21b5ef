"""Depth curriculum for h1: which chain depth each RL iteration trains on, and when to move on.

Schedules (one `schedule` string):
- `fixed`: depths min_depth..max_depth, `steps_per_stage` iterations each (the paper's stagewise schedule);
- `adaptive`: advance once the mean train reward of the last `window` iterations reaches
  `advance_threshold`, or after `steps_per_stage` iterations at most;
- `direct`: max_depth only (the paper's Only-Long baseline);
- `uniform`: every task's depth drawn from U{min_depth..max_depth} (Uniform-Mix).

Stage gate: a curriculum enters depth h+1 only when the policy already solves at least `gate_threshold` of
probe chains there (sampled at the training temperature); otherwise it holds at depth h and probes again
after `window` more iterations. Without a foothold the reward at h+1 vanishes too (spec section 6).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["Curriculum", "CurriculumConfig", "StageEvent"]

Schedule = Literal["fixed", "adaptive", "direct", "uniform"]


class CurriculumConfig(BaseModel):
    """How chain depth grows over RL iterations."""

    schedule: Schedule = Field("fixed", description="fixed | adaptive | direct | uniform")
    min_depth: int = Field(1, ge=1, description="first stage's depth (uniform: smallest depth)")
    max_depth: int = Field(5, ge=1, description="H: last stage's depth (paper: 5)")
    steps_per_stage: int = Field(200, ge=1, description="fixed: iterations per stage; adaptive: the cap (paper: ~200)")
    advance_threshold: float = Field(0.5, ge=0, le=1, description="adaptive: mean train reward that ends a stage")
    window: int = Field(5, ge=1, description="iterations averaged for the adaptive test; gate retry interval")
    gate_threshold: float = Field(0.05, ge=0, le=1, description="stage gate: least probe accuracy at the next depth")
    gate: bool = Field(True, description="hold a stage until the next depth has a foothold")

    @model_validator(mode="after")
    def _check(self) -> CurriculumConfig:
        if self.min_depth > self.max_depth:
            raise ValueError(f"min_depth {self.min_depth} is above max_depth {self.max_depth}: swap them")
        return self


@dataclass(frozen=True)
class StageEvent:
    """What `Curriculum.observe` decided after an iteration."""

    action: Literal["hold", "advance", "gated"]
    depth: int  # the depth of the next iteration
    probe: float | None = None  # accuracy at the next depth when the gate was checked


@dataclass
class Curriculum:
    """Mutable schedule state: the current depth and when its stage began."""

    config: CurriculumConfig
    depth: int = 0
    stage_start: int = 0
    next_probe: int = 0  # no gate probe before this iteration (after a failed gate)
    rewards: list[float] = field(default_factory=list)
    events: list[tuple[int, StageEvent]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.depth == 0:
            direct = self.config.schedule == "direct"
            self.depth = self.config.max_depth if direct else self.config.min_depth

    def depths(self, count: int, rng: random.Random) -> list[int]:
        """Depths of the next iteration's `count` tasks."""
        if self.config.schedule == "uniform":
            return [rng.randint(self.config.min_depth, self.config.max_depth) for _ in range(count)]
        return [self.depth] * count

    def observe(self, iteration: int, reward_mean: float, probe: Callable[[int], float]) -> StageEvent:
        """Record iteration `iteration`'s mean train reward; maybe advance (`probe(depth)` is the gate test)."""
        self.rewards.append(reward_mean)
        event = self._decide(iteration, probe)
        if event.action != "hold":
            self.events.append((iteration, event))
        return event

    def _decide(self, iteration: int, probe: Callable[[int], float]) -> StageEvent:
        config = self.config
        if config.schedule in ("direct", "uniform") or self.depth >= config.max_depth:
            return StageEvent("hold", self.depth)
        if iteration < self.next_probe or not self._stage_done(iteration + 1 - self.stage_start):
            return StageEvent("hold", self.depth)
        accuracy = probe(self.depth + 1) if config.gate else None
        if accuracy is not None and accuracy < config.gate_threshold:
            self.next_probe = iteration + config.window  # keep training here, probe again a window later
            return StageEvent("gated", self.depth, accuracy)
        self.depth += 1
        self.stage_start = iteration + 1
        self.rewards = []
        return StageEvent("advance", self.depth, accuracy)

    def _stage_done(self, steps: int) -> bool:
        config = self.config
        if config.schedule == "fixed":
            return steps >= config.steps_per_stage
        recent = self.rewards[-config.window :]
        reached = len(recent) == config.window and sum(recent) / config.window >= config.advance_threshold
        return reached or steps >= config.steps_per_stage
