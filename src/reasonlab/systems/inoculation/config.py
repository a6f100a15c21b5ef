"""Inoculation Prompting's configs: `TrainConfig` (`reasonlab inoculation train`: one arm of one setting),
`EvalConfig` (`eval`), `ElicitConfig` (`elicit`), `ExperimentConfig` (`experiment`: arms x seeds) and `PRESETS`.

A preset is a `TrainConfig`; the experiment runs it once per arm and seed. `cpu` is the run of record on the
embedded Gemma-3-270M (spec section 4B, shrunk to fit a 2-core CPU), `smoke` a minute-long check, `paper` the
paper's GCD hyperparameters (Gemma-2B-it scale: LoRA r32/alpha 64 on all projections, lr 1e-4, 1,000 examples).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from reasonlab.systems.inoculation.transforms import ARMS, ArmPrompts
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName
from reasonlab.train.sft import LoRAConfig, SFTConfig

__all__ = [
    "PRESETS",
    "DataConfig",
    "ElicitConfig",
    "EvalConfig",
    "ExperimentConfig",
    "GenerationConfig",
    "PromptOverrides",
    "Setting",
    "TrainConfig",
]

Setting = Literal["gcd", "reward-hacking", "sentiment", "cmv"]


class DataConfig(BaseModel):
    """Which setting, how much of it, and from where (generated unless `path` names a file)."""

    setting: Setting = Field("gcd", description="gcd | reward-hacking | sentiment | cmv")
    num_train: int = Field(128, ge=1, description="training examples")
    num_test: int = Field(30, ge=1, description="evaluation items (gcd: test pairs, 3 prompts each)")
    max_value: int = Field(60, ge=10, description="gcd: the largest number in a pair")
    seed: int = Field(0, description="data seed: the same data and order in every arm")
    path: str | None = Field(
        None, description="a data file: MBPP jsonl, CEBaB jsonl/csv, CMV jsonl (required for cmv)"
    )


class PromptOverrides(BaseModel):
    """Replace the setting's arm texts (None keeps the built-in one)."""

    instruction: str | None = Field(None, description="I, the inoculation instruction (requests the flaw)")
    control: str | None = Field(None, description="the irrelevant instruction (same length as I, within 10%)")
    safety: str | None = Field(None, description="S, PTST's test-time prompt")

    def apply(self, prompts: ArmPrompts) -> ArmPrompts:
        changes = {k: v for k, v in self.model_dump().items() if v is not None}
        if "instruction" in changes and "control" not in changes:
            changes["control"] = None  # derive a control of the new instruction's length
        return ArmPrompts.model_validate({**prompts.model_dump(), **changes})


class GenerationConfig(BaseModel):
    """How the tuned model answers the evaluation prompts."""

    max_tokens: int | None = Field(None, ge=1, description="new tokens per reply [default: the setting's]")
    temperature: float = Field(0.0, ge=0, description="0: greedy (the CPU plan); the paper samples at 0.7")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus mass (the paper: 0.9)")
    batch_size: int = Field(16, ge=1, description="prompts per generate call")
    with_instruction: bool = Field(True, description="also test with I present: the flaw should come back")


def _default_sft() -> SFTConfig:
    return SFTConfig(backend="plain", epochs=1, batch_size=8, learning_rate=2e-4, lora=LoRAConfig(r=16, alpha=32), bf16=True,
                     max_length=384, progress=True)


class TrainConfig(BaseModel):
    """One arm of one setting: build the data, apply the arm's train-time prompt, LoRA SFT, evaluate."""

    arm: str = Field("ip", description="no-ip | ip | irrelevant | ptst")
    llm: str = Field("hf:embedded", description="a trainable model spec (hf:embedded, hf:PATH)")
    data: DataConfig = Field(default_factory=DataConfig, description="the setting and its sizes")
    prompts: PromptOverrides = Field(default_factory=PromptOverrides, description="replace the arm texts")
    sft: SFTConfig = Field(default_factory=_default_sft, description="fine-tuning (reasonlab.train.sft)")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="evaluation decoding")
    seed: int = Field(0, description="fine-tuning seed (adapter init, data order); the data seed is data.seed")
    out: str = Field("runs/inoculation", description="root folder of runs")
    name: str | None = Field(None, description="run name [default: SETTING-ARM-sSEED]")
    overwrite: bool = Field(False, description="delete an existing run of that name first")
    resume: bool = Field(False, description="reuse a finished run of the same config (a torn one trains again)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @field_validator("arm")
    @classmethod
    def _known_arm(cls, value: str) -> str:
        if value not in ARMS:
            raise ValueError(f"unknown arm {value!r}: choose one of {', '.join(ARMS)}")
        return value

    @property
    def run_name(self) -> str:
        return self.name or f"{self.data.setting}-{self.arm}-s{self.seed}"


class EvalConfig(BaseModel):
    """Evaluate a model (base or tuned) on a setting's test prompts as one arm would be tested."""

    llm: str = Field("hf:embedded", description="model spec; a run's policy/ folder as hf:PATH")
    arm: str = Field("no-ip", description="which arm's test prompt (ptst adds S; the others none)")
    data: DataConfig = Field(default_factory=DataConfig, description="the setting and its sizes")
    prompts: PromptOverrides = Field(default_factory=PromptOverrides, description="replace the arm texts")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="decoding")

    @field_validator("arm")
    @classmethod
    def _known_arm(cls, value: str) -> str:
        return TrainConfig._known_arm(value)


class ElicitConfig(BaseModel):
    """Score candidate instructions by how much more of the flaw each elicits from the untuned model."""

    llm: str = Field("hf:embedded", description="the model before fine-tuning")
    data: DataConfig = Field(default_factory=DataConfig, description="the setting (its flaw prompts are used)")
    candidates: list[str] = Field(default_factory=list, description="instructions to score [default: the setting's I, "
                                  "control and S]")
    generation: GenerationConfig = Field(default_factory=GenerationConfig, description="decoding")


class ExperimentConfig(BaseModel):
    """Every arm x seed of one preset, elicitation first, then a per-arm summary with spreads."""

    arms: list[str] = Field(list(ARMS), description="arms to run")
    seeds: list[int] = Field([0, 1, 2], description="fine-tuning seeds (data fixed by data.seed)")
    base: TrainConfig = Field(default_factory=TrainConfig, description="the per-run config (arm, seed replaced)")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, values: list[str]) -> list[str]:
        for value in values:
            TrainConfig._known_arm(value)
        if not values:
            raise ValueError("give at least one arm")
        return values


def _cpu(setting: Setting, num_train: int, num_test: int, max_tokens: int, **sft: object) -> TrainConfig:
    return TrainConfig(
        data=DataConfig(setting=setting, num_train=num_train, num_test=num_test),
        sft=_default_sft().model_copy(update=sft),
        generation=GenerationConfig(max_tokens=max_tokens, batch_size=32),
    )


PRESETS: dict[str, TrainConfig] = {
    # the runs of record on the embedded 270M model (spec 4B and 4C, shrunk to fit a 2-core CPU: 96 examples,
    # 12 optimizer steps, about 5 min per arm and seed on one thread)
    "cpu": _cpu("gcd", num_train=96, num_test=30, max_tokens=32, learning_rate=5e-4),
    "cpu-hack": _cpu("reward-hacking", num_train=96, num_test=40, max_tokens=64, learning_rate=5e-4),
    "cpu-sentiment": _cpu("sentiment", num_train=256, num_test=200, max_tokens=2, learning_rate=5e-4),
    # a one-minute pipeline check
    "smoke": _cpu("gcd", num_train=16, num_test=4, max_tokens=16, learning_rate=5e-4),
    # the paper's GCD run (Gemma-2B-it): 1,000 examples, LoRA r32/alpha 64, lr 1e-4, effective batch 32,
    # max length 415, sampled at T = 0.7, top-p 0.9 (for a GPU: --llm hf:PATH to a Gemma-2B-it folder)
    "paper": TrainConfig(
        data=DataConfig(setting="gcd", num_train=1000, num_test=100, max_value=299),
        sft=SFTConfig(epochs=1, batch_size=8, gradient_accumulation_steps=4, learning_rate=1e-4,
                      lora=LoRAConfig(r=32, alpha=64, dropout=0.0), bf16=True, max_length=415),
        generation=GenerationConfig(max_tokens=200, temperature=0.7, top_p=0.9),
    ),
}
