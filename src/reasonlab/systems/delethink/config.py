"""Delethink's configs: the method (`DelethinkConfig`: C, m, I), and one pydantic model per command.

Budget = C + (I - 1)(C - m): the first chunk gets C new tokens, every later one C - m, because its prompt
already holds m carried-over tokens. LongCoT is the same object with one chunk of the whole budget.

`WalkSetup` is what makes a trained arm of the tinylm experiment (walk, model, SFT base, RL settings);
`TrainConfig` adds the arm and seed (`reasonlab delethink train`), `ExperimentConfig` the seeds and the test
(`reasonlab delethink experiment` / `control`). `PRESETS` holds the experiment's run of record first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, model_validator

from reasonlab.errors import UserError
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

if TYPE_CHECKING:
    from reasonlab.systems.delethink.tasks import PermutationWalk

__all__ = [
    "ARITHMETIC_PRESETS",
    "DEMO",
    "PRESETS",
    "QUICK",
    "SFT_FIELDS",
    "ArithmeticConfig",
    "DelethinkConfig",
    "ExperimentConfig",
    "RunConfig",
    "TrainConfig",
    "WalkSetup",
]

Arm = Literal["delethink", "longcot"]


class DelethinkConfig(BaseModel):
    """Delethink environment parameters; defaults are the paper's Delethink-24K (C=8192, m=4096, I=5)."""

    chunk_size: int = Field(8192, ge=1, description="C: context of one chunk (new tokens of the first chunk)")
    carryover: int = Field(4096, ge=0, description="m: tokens of the previous thinking carried into the next prompt")
    iterations: int = Field(5, description="I: cap on chunks per trace (raise it at test time to think longer)")
    head_tokens: int = Field(
        0, ge=0, description="first tokens of chunk 1 kept in every later prompt (official code: 100; paper: 0)"
    )

    @model_validator(mode="after")
    def _check(self) -> DelethinkConfig:
        if self.iterations < 1:
            raise UserError(f"iterations I={self.iterations} must be at least 1: a trace needs one chunk")
        if self.carryover >= self.chunk_size:
            raise UserError(
                f"carryover m={self.carryover} must be smaller than the chunk size C={self.chunk_size}: "
                "each later chunk generates C - m new tokens"
            )
        if self.head_tokens and self.head_tokens >= self.carryover:
            raise UserError(
                f"head_tokens={self.head_tokens} must be smaller than the carryover m={self.carryover}: "
                "the head is part of the carryover"
            )
        return self

    @classmethod
    def longcot(cls, budget: int) -> DelethinkConfig:
        """LongCoT as a special case: one chunk of `budget` new tokens, nothing carried."""
        return cls(chunk_size=budget, carryover=0, iterations=1)

    @property
    def budget(self) -> int:
        """Thinking-token budget C + (I - 1)(C - m)."""
        return self.chunk_size + (self.iterations - 1) * (self.chunk_size - self.carryover)

    def chunk_tokens(self, index: int) -> int:
        """New-token budget of chunk `index` (0-based): C for the first, C - m after."""
        return self.chunk_size if index == 0 else self.chunk_size - self.carryover

    def with_budget(self, budget: int) -> DelethinkConfig:
        """The same C and m with the fewest iterations whose budget reaches `budget` (test-time scaling)."""
        extra = max(budget - self.chunk_size, 0)
        step = self.chunk_size - self.carryover
        return self.model_copy(update={"iterations": 1 + -(-extra // step)})


class RunConfig(BaseModel):
    """Options of `reasonlab delethink run` (chunked inference on one query)."""

    llm: str = Field("hf:embedded", description="model spec")
    chunk: int = Field(8192, description="C: chunk context (new tokens of the first chunk)")
    carryover: int = Field(4096, description="m: tokens carried into the next chunk")
    iterations: int = Field(5, description="I: cap on chunks")
    head_tokens: int = Field(0, description="first tokens of the trace kept in every later prompt")
    temperature: float = Field(0.6, ge=0, description="sampling temperature (paper: 0.6)")
    seed: int | None = Field(0, description="sampling seed")
    stop: list[str] = Field(default_factory=list, description="stop strings (end the trace)")
    longcot: bool = Field(False, description="run LongCoT with the same token budget instead")


# the fields that make the SFT base (its cache key): walk, model shape, SFT data and optimizer
SFT_FIELDS = ("num_states", "num_letters", "world_seed", "n_layer", "d_model", "n_head", "sft_examples",
              "sft_max_steps", "sft_control_fraction", "sft_steps", "sft_stop_accuracy", "sft_check_every",
              "sft_check_tasks", "sft_batch_size", "sft_learning_rate")


class WalkSetup(BaseModel):
    """What makes a trained arm of the tinylm experiment: the walk, the tinylm, its SFT base, the RL settings."""

    num_states: int = Field(127, description="N: states of the permutation walk")
    num_letters: int = Field(5, description="K: accumulator alphabet")
    world_seed: int = Field(0, description="seed of the permutation and weights")
    n_layer: int = Field(2, description="tinylm blocks")
    d_model: int = Field(128, description="tinylm width")
    n_head: int = Field(4, description="tinylm heads")
    sft_examples: int = Field(6000, description="SFT traces")
    sft_max_steps: int = Field(46, description="longest walk T in SFT: the whole training budget (2T+3 <= 96)")
    sft_control_fraction: float = Field(0.25, description="share of non-Markovian control traces in SFT")
    sft_steps: int = Field(5000, ge=1, description="SFT optimizer steps (with sft_stop_accuracy: the cap)")
    sft_stop_accuracy: float | None = Field(
        0.85, gt=0, le=1, description="end SFT once its greedy accuracy on check walks (T in 1..sft_max_steps) "
        "reaches this; None: all sft_steps")
    sft_check_every: int = Field(250, ge=1, description="SFT steps between accuracy checks")
    sft_check_tasks: int = Field(64, ge=1, description="check walks of each SFT check (drawn with seed 777 from a small "
                                 "walk space: most also occur in the SFT data)")
    sft_batch_size: int = Field(32, description="SFT batch")
    sft_learning_rate: float = Field(2e-3, description="SFT AdamW learning rate")
    chunk_size: int = Field(32, description="Delethink C during RL (paper: 8192)")
    carryover: int = Field(16, description="Delethink m (paper: 4096)")
    iterations: int = Field(5, description="Delethink I during RL: budget C + (I-1)(C-m)")
    rl_min_steps: int = Field(4, description="shortest walk in RL")
    rl_max_steps: int = Field(44, description="longest walk in RL (2T+3 must fit the training budget)")
    rl_iterations: int = Field(80, description="RL iterations per arm")
    rl_tasks_per_iteration: int = Field(8, description="queries per RL iteration (paper: 128)")
    rl_group_size: int = Field(8, description="G: traces per query (paper: 8)")
    rl_learning_rate: float = Field(1e-4, description="RL AdamW learning rate (paper: 1e-6)")
    temperature: float = Field(0.6, description="sampling temperature, train and eval (paper: 0.6)")

    @property
    def train_budget(self) -> int:
        """Thinking tokens of both arms during RL: C + (I-1)(C-m)."""
        return self.chunk_size + (self.iterations - 1) * (self.chunk_size - self.carryover)

    def sft_fields(self) -> dict[str, Any]:
        """The fields that make the SFT base (the key of its cache)."""
        return self.model_dump(include=set(SFT_FIELDS))

    def setup_fields(self) -> dict[str, Any]:
        """The `WalkSetup` part of this config (what a `TrainConfig` shares with it)."""
        return self.model_dump(include=set(WalkSetup.model_fields))

    def environment(self, arm: str) -> DelethinkConfig:
        """The environment of an arm at the training budget: Delethink (C, m, I) or one LongCoT chunk."""
        if arm == "delethink":
            return DelethinkConfig(chunk_size=self.chunk_size, carryover=self.carryover, iterations=self.iterations)
        if arm == "longcot":
            return DelethinkConfig.longcot(self.train_budget)
        raise UserError(f"arm {arm!r} is unknown: use delethink or longcot")

    def world(self) -> PermutationWalk:
        """The permutation walk every model of the experiment is trained and tested on."""
        from reasonlab.systems.delethink.tasks import PermutationWalk

        return PermutationWalk(self.num_states, self.num_letters, self.world_seed)


class TrainConfig(WalkSetup):
    """`reasonlab delethink train`: RL of the walk tinylm in one arm, from its SFT base (cached beside the run)."""

    arm: Arm = Field("delethink", description="environment during RL: delethink (C, m, I) or longcot (one chunk)")
    seed: int = Field(0, description="RL seed (data order and sampling)")
    out: str = Field("runs/delethink-train", description="run directory (the SFT base is cached in its parent)")
    resume: bool = Field(False, description="continue the run from its last RL checkpoint")
    overwrite: bool = Field(False, description="delete the run directory and start clean")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


class ExperimentConfig(WalkSetup):
    """`reasonlab delethink experiment` / `control`: both arms for every seed, then accuracy vs walk length."""

    seeds: list[int] = Field([0, 1, 2], description="RL seeds; every arm is trained once per seed")
    test_budget: int = Field(256, description="thinking tokens at test time for both arms")
    test_steps: list[int] = Field([8, 16, 24, 32, 40, 48, 64, 80, 96, 120], description="walk lengths T tested")
    control_steps: list[int] = Field([8, 12, 16, 24, 32], description="control walk lengths tested")
    eval_tasks: int = Field(32, description="tasks per length")
    eval_n: int = Field(4, description="samples per task (avg@N)")
    control_sft_steps: int = Field(2500, description="SFT steps of the dedicated control model")
    control_head_tokens: int = Field(8, description="head tokens kept by the head+tail carryover in the control")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @property
    def budget_steps(self) -> int:
        """Longest walk T whose trace (2T+3 tokens) fits the training budget."""
        return (self.train_budget - 3) // 2

    def test_environment(self, mode: str) -> DelethinkConfig:
        """Inference `mode` (delethink or longcot) at the test budget: Delethink raises I, LongCoT its one chunk."""
        if mode == "longcot":
            return DelethinkConfig.longcot(self.test_budget)
        return self.environment(mode).with_budget(self.test_budget)


QUICK = ExperimentConfig(seeds=[0], sft_examples=1500, sft_steps=300, rl_iterations=6, test_steps=[8, 40, 96],
                         control_steps=[24], eval_tasks=8, eval_n=2)
PRESETS: dict[str, ExperimentConfig] = {"main": ExperimentConfig(), "quick": QUICK}
# the demo: no training (it traces the shipped RL models of the run of record); every walk of each length once
# (a length has num_states = 127 walks, one per start state), avg@3
DEMO = ExperimentConfig(seeds=[0], test_steps=[16, 32, 64, 96], eval_tasks=127, eval_n=3)


class ArithmeticConfig(BaseModel):
    """`reasonlab delethink arithmetic`: zero-shot Delethink tracing vs LongCoT on templated sums, equal budget."""

    llm: str = Field("hf:embedded", description="model spec")
    operands: int = Field(6, ge=2, description="numbers per sum")
    problems: int = Field(12, ge=1, description="problems (all decoded in one batch)")
    n: int = Field(2, ge=1, description="samples per problem (avg@N)")
    chunk_size: int = Field(32, description="C")
    carryover: int = Field(16, description="m")
    iterations: int = Field(4, description="I")
    temperature: float = Field(0.6, ge=0, description="sampling temperature")
    seed: int = Field(0, description="task and sampling seed")


ARITHMETIC_PRESETS: dict[str, ArithmeticConfig] = {
    "sums6": ArithmeticConfig(),
    "sums4": ArithmeticConfig(operands=4, problems=24, chunk_size=16, carryover=8, iterations=6),
}
