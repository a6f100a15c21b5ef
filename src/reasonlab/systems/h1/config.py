"""h1's configs: `H1Config` (`reasonlab h1 train`, the method), `EvalConfig` (`reasonlab h1 eval`),
`ExperimentConfig` (`reasonlab h1 experiment`), and `PRESETS` (the first, `values`, is the run of record).

A preset is an `ExperimentConfig`; `train` and `eval` take the same presets for their chain format, warm start
and RL settings (`train_preset`, `eval_preset`), so a policy trained under one preset is evaluated in its format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.h1.curriculum import CurriculumConfig
from reasonlab.systems.h1.modular import ModularChain, make_modular_chains, modular_tokenizer
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName
from reasonlab.train.rl import RLConfig
from reasonlab.train.tinylm import Tokenizer

__all__ = ["CHECK_SEED", "EVAL_SEED", "PRESETS", "ChainFormat", "EvalConfig", "ExperimentConfig", "H1Config",
           "arm_config", "eval_preset", "train_preset"]

EVAL_SEED = 10_000  # evaluation chains use seeds far from the training draws
CHECK_SEED = 20_000  # the warm start's stopping test: other held-out chains


class ChainFormat(BaseModel):
    """How modular chains look (`modular.make_modular_chains`): values, step operations and layout."""

    modulus: int = Field(31, ge=2, description="M: values live in Z_M (a guess is right 1/M of the time)")
    max_constant: int = Field(4, ge=1, description="step constants are 1..max_constant")
    ops: str = Field("+-", description="step operations: '+-', or '+-*' (products leave no 'stay near x0' guess)")
    labelled: bool = Field(False, description="labelled serial chains ('5 k + 3 d - 7 ?'); else the rewrite format")
    width: int = Field(0, ge=0, description="slot layout with this many slots per row (> H); 0: rewrite format")
    rotate: bool = Field(False, description="slot layout: rotate the row (s1 moves to the end) instead of a blank entering")
    lines: Literal["row", "value"] = Field("row", description="slot layout: each worked line holds the value and the "
                                           "moved row, or the value alone")

    def chains(self, depth: int, count: int, seed: int, skip_rate: float = 0.0, max_skips: int = 1) -> list[ModularChain]:
        """`count` depth-`depth` chains in this format (blank steps only with `skip_rate`, for warm starts)."""
        return make_modular_chains(depth, count, seed, self.modulus, self.max_constant, labelled=self.labelled,
                                   ops=self.ops, width=self.width, skip_rate=skip_rate, rotate=self.rotate,
                                   max_skips=max_skips, lines=self.lines)

    def tokenizer(self, max_depth: int) -> Tokenizer:
        """The word tokenizer of these chains (`max_depth` sizes the x_j names, as the warm start's did)."""
        return modular_tokenizer(self.modulus, max_depth + 3, self.ops, self.max_constant if self.width else 0)

    def token_cap(self, depth: int) -> int:
        """Completion tokens that hold a worked chain of this depth and EOS, with a little room."""
        # worked targets: 2h + 3 tokens (labelled), h (h + 1) + 3 (rewrite), h (width + 2) + 3 (slot rows), h + 3 (values)
        if self.width:
            return depth + 6 if self.lines == "value" else depth * (self.width + 2) + 6
        return 2 * depth + 8 if self.labelled else depth * (depth + 1) + 6

    def chain_format(self) -> ChainFormat:
        """The format fields alone (an `ExperimentConfig` is a format with more fields)."""
        return ChainFormat(**{name: getattr(self, name) for name in ChainFormat.model_fields})


class ExperimentConfig(ChainFormat):
    """Sizes of the CPU experiment (defaults: the `main` preset); `run_experiment` also takes the seeds."""

    n_layer: int = Field(3, ge=1, description="tinylm blocks")
    d_model: int = Field(96, ge=8, description="tinylm width")
    position_encoding: str = Field("rope", description="tinylm positions: rope | none (NoPE; RESULTS.md, h1 follow-up)")
    sft_chains_per_depth: int = Field(3000, ge=1, description="warm-start chains at depths 1 and 2 each")
    sft_skip_rate: float = Field(0.0, ge=0, le=1, description="slot layout: warm-start chains with one blank step "
                                 "(a line that changes nothing), so that 'the second line is the last' is no cue")
    sft_max_skips: int = Field(1, ge=1, description="slot layout: blank steps per warm-start chain that has any "
                               "(1..this many, as the row holds), so that it sees worked chains of every length")
    sft_steps: int = Field(400, ge=1, description="warm-start optimizer steps (with sft_stop_accuracy: the cap)")
    sft_stop_accuracy: float | None = Field(None, gt=0, le=1, description="end the warm start once its greedy "
                                            "accuracy on held-out depth-1 chains reaches this (the spec's 'train to "
                                            "a given atomic accuracy'); None: all sft_steps")
    sft_check_every: int = Field(50, ge=1, description="warm-start steps between sft_stop_accuracy checks")
    sft_learning_rate: float = Field(3e-3, gt=0, description="warm-start AdamW learning rate")
    max_depth: int = Field(4, ge=2, description="H: the curriculum's last depth; direct trains here")
    min_depth: int = Field(2, ge=1, description="the curriculum's first stage")
    schedule: Literal["fixed", "adaptive"] = Field("fixed", description="the curriculum arm's schedule")
    steps_per_stage: int = Field(40, ge=1, description="RL iterations per curriculum stage (adaptive: the cap)")
    advance_threshold: float = Field(0.5, ge=0, le=1, description="adaptive: mean train reward that ends a stage")
    window: int = Field(0, ge=0, description="iterations of the adaptive test and between gate probes; 0: stage / 4")
    tasks_per_iteration: int = Field(8, ge=1, description="groups per RL iteration")
    group_size: int = Field(8, ge=2, description="G")
    learning_rate: float = Field(2e-4, gt=0, description="RL AdamW learning rate")
    loss_type: str = Field("dr_grpo", description="grpo | dr_grpo | gspo")
    eval_chains: int = Field(128, ge=1, description="held-out chains per evaluated depth")
    gate_threshold: float = Field(0.05, ge=0, le=1, description="stage gate")
    probe_chains: int = Field(32, ge=1, description="chains per gate probe")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if self.width and self.width <= self.max_depth:
            raise ValueError(f"width={self.width} must exceed H = {self.max_depth}: a row holds depth < width")
        return self

    @property
    def eval_depths(self) -> list[int]:
        """1..H + 2 (a slot row holds depths below its width only)."""
        deepest = self.max_depth + 2 if not self.width else min(self.max_depth + 2, self.width - 1)
        return list(range(1, deepest + 1))

    @property
    def max_tokens(self) -> int:
        """The token cap of every completion: a worked chain of the deepest evaluated depth fits."""
        return self.token_cap(max(self.eval_depths))


PRESETS: dict[str, ExperimentConfig] = {
    # values-only lines over Z_61: the k-th worked value reads the prompt's k-th slot. Three in four warm-start chains
    # carry one blank step, so it writes up to three lines; accuracy then falls off softly past depth 4 and is near 0
    # at depth 10 (RESULTS.md, h1, the run of record)
    "values": ExperimentConfig(modulus=61, max_constant=6, ops="+-*", width=13, lines="value",
                               sft_chains_per_depth=20000, sft_skip_rate=0.75, sft_steps=2500, max_depth=10,
                               min_depth=1, schedule="adaptive", steps_per_stage=60, window=10, learning_rate=2e-4,
                               probe_chains=64, gate_threshold=0.1),
    # the slot layout, rotated, with blank steps in the warm start: accuracy falls off softly past depth 3 and is
    # 0 at depth 6 (RESULTS.md, h1, "Slot layout"); H + 2 = 8 does not fit in a row of 8 slots
    "slots": ExperimentConfig(ops="+-*", width=8, rotate=True, sft_chains_per_depth=20000, sft_skip_rate=0.5,
                              sft_steps=4000, max_depth=6, min_depth=1, schedule="adaptive", steps_per_stage=60,
                              window=10, learning_rate=2e-4, probe_chains=64, gate_threshold=0.1),
    "main": ExperimentConfig(),
    "quick": ExperimentConfig(n_layer=2, d_model=64, sft_chains_per_depth=1500, sft_steps=400, max_depth=3,
                              steps_per_stage=6, tasks_per_iteration=6, eval_chains=48, probe_chains=16),
    # the quick demo (`reasonlab demo --only h1`): the run of record in miniature. The values format and its warm
    # start (seed 1, shipped in assets/), H = 10, the curriculum 1 -> 10 in 320 iterations (stages of at most 32),
    # lr 4e-4, no uniform arm, 256 held-out chains per depth (RESULTS.md, h1, "The quick demo")
    "demo": ExperimentConfig(modulus=61, max_constant=6, ops="+-*", width=13, lines="value",
                             sft_chains_per_depth=20000, sft_skip_rate=0.75, sft_steps=2500, max_depth=10,
                             min_depth=1, schedule="adaptive", steps_per_stage=32, window=5, learning_rate=4e-4,
                             probe_chains=64, gate_threshold=0.1, eval_chains=256),
}


def _default_rl() -> RLConfig:
    return RLConfig(loss_type="dr_grpo", iterations=100, tasks_per_iteration=16, group_size=8, learning_rate=1e-4,
                    sampling=SamplingParams(temperature=1.0, max_tokens=64), progress=False)


class H1Config(BaseModel):
    """One h1 RL run (`training.train`): a tinylm, the chains, the curriculum, the RL core, the budget, the run."""

    task: ChainFormat = Field(default_factory=ChainFormat, description="the modular chains trained on")
    policy: str | None = Field(None, description="tinylm folder to start from (the CLI's default: the preset's "
                               "warm start, made once and reused)")
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig, description="depth schedule")
    rl: RLConfig = Field(default_factory=_default_rl, description="RL core (paper: dr_grpo, beta 0, G 8)")
    probe_chains: int = Field(64, ge=1, description="chains sampled at the next depth for the stage gate")
    token_budget: int | None = Field(None, ge=1, description="stop once this many tokens were generated")
    eval_every: int | None = Field(None, ge=1, description="iterations between per-depth greedy evaluations")
    eval_max_tokens: int = Field(64, ge=1, description="token cap of evaluation completions")
    out: str = Field("runs/h1", description="root folder of runs")
    name: str = Field("train", description="run name: the run directory is out/name")
    resume: bool = Field(False, description="continue the run from its last checkpoint (an error if it has none)")
    overwrite: bool = Field(False, description="delete an existing run of that name and start clean")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


class EvalConfig(BaseModel):
    """`reasonlab h1 eval`: greedy accuracy per depth of a tinylm on held-out chains."""

    policy: str = Field(description="tinylm folder (a run's policy/)")
    task: ChainFormat = Field(default_factory=ChainFormat, description="the chains' format (as in training)")
    depths: int = Field(6, ge=1, description="evaluate depths 1..depths")
    chains: int = Field(128, ge=1, description="held-out chains per depth")
    seed: int = Field(EVAL_SEED, description="seed of the held-out chains (the experiment's: 10000 + its seed)")
    out: str = Field("runs/h1", description="root folder of runs")
    name: str = Field("eval", description="run name: the run directory is out/name")
    resume: bool = Field(False, description="reopen an existing evaluation run of the same config")
    overwrite: bool = Field(False, description="delete an existing run of that name and start clean")

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if self.task.width and self.depths >= self.task.width:
            raise ValueError(f"depths {self.depths} does not fit the rows of {self.task.width} slots: "
                             f"use at most {self.task.width - 1}")
        return self


def arm_config(config: ExperimentConfig, arm: str, seed: int, token_budget: int | None) -> H1Config:
    """The `H1Config` of one experiment arm: curriculum, direct or uniform (the budget arms stop on tokens)."""
    stages = config.max_depth - config.min_depth + 1
    schedule = {"curriculum": config.schedule, "direct": "direct", "uniform": "uniform"}[arm]
    curriculum = CurriculumConfig(schedule=schedule, min_depth=config.min_depth if arm == "curriculum" else 1,
                                  max_depth=config.max_depth, steps_per_stage=config.steps_per_stage,
                                  advance_threshold=config.advance_threshold, gate_threshold=config.gate_threshold,
                                  window=config.window or max(config.steps_per_stage // 4, 1))
    # the budget arms may run longer than the curriculum's iterations: they stop on tokens
    iterations = config.steps_per_stage * stages * (1 if token_budget is None else 4)
    rl = RLConfig(loss_type=config.loss_type, iterations=iterations, tasks_per_iteration=config.tasks_per_iteration,
                  group_size=config.group_size, learning_rate=config.learning_rate, seed=seed,
                  sampling=SamplingParams(temperature=1.0, max_tokens=config.max_tokens), progress=False)
    return H1Config(task=config.chain_format(), curriculum=curriculum, rl=rl, probe_chains=config.probe_chains,
                    token_budget=token_budget, eval_max_tokens=config.max_tokens, report_to=config.report_to)


def train_preset(config: ExperimentConfig) -> dict[str, Any]:
    """`reasonlab h1 train --preset`: the preset's curriculum arm (format, schedule, RL settings), seed 0, with a
    progress bar."""
    arm = arm_config(config, "curriculum", 0, None)
    return arm.model_copy(update={"rl": arm.rl.model_copy(update={"progress": True})}).model_dump()


def eval_preset(config: ExperimentConfig) -> dict[str, Any]:
    """`reasonlab h1 eval --preset`: the preset's format, depths 1..H + 2 and held-out chains per depth."""
    return {"task": config.chain_format().model_dump(), "depths": max(config.eval_depths), "chains": config.eval_chains}
