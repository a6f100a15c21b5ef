"""ArcMemo's configs: `ArcMemoConfig` (the LLM pipeline: `reasonlab arcmemo build-memory | solve | eval`),
`ArcLiteConfig` (`reasonlab arcmemo experiment`: the ARC-lite mechanism experiment of spec section 10) and
their presets.

`PRESETS` (the pipeline): `embedded` runs the whole loop on the embedded Gemma-3-270M over a few ARC-AGI-1
tasks (parse and validity rates; accuracy near zero is expected); `smoke` is a one-minute pipeline check; `paper`
is the paper's setting for a served model (`--llm openai:URL#MODEL`: the 100-task split, 2 retries, PS memory
with reasoning-based selection, continual updates every 10 tasks). `EXPERIMENT_PRESETS` (ARC-lite):
`record` is the run of record, `quick` the demo's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from reasonlab.llm.program import ProgramSettings
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

__all__ = [
    "EXPERIMENT_PRESETS",
    "PRESETS",
    "ArcLiteConfig",
    "ArcMemoConfig",
    "MemoryFormat",
    "SelectionMode",
]

MemoryFormat = Literal["ps", "oe"]
SelectionMode = Literal["llm", "embedding", "all", "none"]
SPLIT_NAMES = ("arc1-eval-100", "arc1-eval", "arc1-train", "arc2-eval", "arc2-train")  # tasks.SPLITS
ARM_NAMES = ("none", "instance", "instance-continual", "concept", "concept-continual", "concept-embedding")


class ArcMemoConfig(BaseModel):
    """The LLM pipeline: build a memory from seed solutions, then solve tasks with selection, sandboxed
    execution, retries on train-pair failures and (optionally) continual writes."""

    llm: str = Field("hf:embedded", description="the model for every step (any model spec, e.g. openai:URL#MODEL)")
    format: MemoryFormat = Field("ps", description="ps (program synthesis concepts) | oe (open-ended lessons)")
    split: str = Field("arc1-eval-100", description="tasks to solve: arc1-eval-100 (the paper's) | arc1-eval | "
                       "arc1-train | arc2-eval | arc2-train")
    task_file: str | None = Field(None, description="official ARC JSON file or folder instead of a split")
    limit: int | None = Field(5, ge=1, description="solve only the first N tasks of the split (the paper: 100)")
    task_ids: list[str] = Field(default_factory=list, description="solve only these task ids")
    seeds: list[str] = Field(default_factory=list, description="seed solutions to abstract (task ids of "
                             "arcmemo.seeds; empty = all of ours; the paper: 160 BARC seeds)")
    memory: str | None = Field(None, description="a saved memory to read instead of building one")
    selection: SelectionMode = Field("llm", description="llm (reasoning-based, the paper's PS) | embedding (MiniLM "
                                     "baseline) | all (whole memory, no selection) | none (no memory)")
    top_k: int = Field(5, ge=1, description="concepts or lessons selected per task (the paper's OE: 5)")
    max_passes: int = Field(3, ge=1, description="solve attempts per task: 1 + retries (the paper: 3)")
    batch_size: int = Field(10, ge=1, description="tasks per batch sharing one memory snapshot (update interval k)")
    continual: bool = Field(True, description="write train-verified solves back into the memory after each batch")
    timeout_s: float = Field(2.0, gt=0, description="sandbox time limit per grid (the paper: 2 s)")
    abstraction: ProgramSettings = Field(default_factory=lambda: ProgramSettings(max_tokens=384),
                                         description="decoding of the write steps (the paper: T 0-0.3)")
    selecting: ProgramSettings = Field(default_factory=lambda: ProgramSettings(max_tokens=96),
                                       description="decoding of selection (the paper: T 0)")
    solving: ProgramSettings = Field(default_factory=lambda: ProgramSettings(max_tokens=256, retries=1),
                                     description="decoding of the solver (the paper: o4-mini, 32K tokens)")
    seed: int = Field(0, description="sampling seed offset")

    @field_validator("split")
    @classmethod
    def _known_split(cls, value: str) -> str:
        if value not in SPLIT_NAMES:
            raise ValueError(f"unknown split {value!r}: use one of {', '.join(SPLIT_NAMES)}")
        return value

    @model_validator(mode="after")
    def _memory_needs_selection(self) -> ArcMemoConfig:
        if self.selection == "embedding" and self.format == "oe":
            raise ValueError("selection=embedding needs format=ps (the MiniLM baseline ranks concepts)")
        return self


class ArcLiteConfig(BaseModel):
    """ARC-lite: tasks composed of 1-3 grid primitives, a bounded enumerative solver, memory arms compared at
    equal search budget (the retries analogue) over seeds."""

    seed_tasks: int = Field(160, ge=1, description="tasks with known programs the memories are built from (as the "
                            "paper's 160 seed puzzles)")
    eval_tasks: int = Field(100, ge=1, description="held-out tasks per seed (the paper: 100)")
    depths: list[int] = Field([1, 2, 3], description="program lengths of generated tasks")
    budgets: list[int] = Field([10, 30, 100, 300, 1000, 3000], description="search budgets (programs tried)")
    headline_budget: int = Field(300, ge=1, description="the budget the README claim is stated at (chosen before "
                                 "the run)")
    arms: list[str] = Field(list(ARM_NAMES), description=" | ".join(ARM_NAMES))
    top_k: int = Field(4, ge=1, description="concepts selected per task")
    unselected_weight: float = Field(0.1, gt=0, le=1, description="prior weight of a primitive that was not "
                                     "selected (1 = selection ignored)")
    batch_size: int = Field(10, ge=1, description="update interval k of the continual arms")
    seeds: list[int] = Field([0, 1, 2], description="seeds (each draws its own seed and held-out tasks)")
    embedder: str = Field("minilm", description="the embedder of the concept-embedding arm")
    jobs: int = Field(1, ge=1, description="seeds run in parallel processes")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @field_validator("arms")
    @classmethod
    def _known_arms(cls, values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in ARM_NAMES]
        if unknown or not values:
            raise ValueError(f"unknown arms {unknown}: choose from {', '.join(ARM_NAMES)}")
        return values

    @field_validator("depths")
    @classmethod
    def _depths(cls, values: list[int]) -> list[int]:
        if not values or any(d < 1 or d > 3 for d in values):
            raise ValueError(f"depths {values}: give program lengths between 1 and 3")
        return values

    @model_validator(mode="after")
    def _headline_in_budgets(self) -> ArcLiteConfig:
        if self.headline_budget not in self.budgets:
            raise ValueError(f"headline_budget {self.headline_budget} is not one of budgets {self.budgets}")
        return self


PRESETS: dict[str, ArcMemoConfig] = {
    # the whole loop on the embedded 270M: 4 seed solutions, 5 tasks of the paper's split, PS memory, one retry
    "embedded": ArcMemoConfig(seeds=["6150a2bd", "67a3c6ac", "74dd1130", "a416b8f3"], max_passes=2,
                              abstraction=ProgramSettings(max_tokens=640)),
    "smoke": ArcMemoConfig(limit=2, max_passes=1, seeds=["6150a2bd", "67a3c6ac"],
                           abstraction=ProgramSettings(max_tokens=96, retries=0),
                           solving=ProgramSettings(max_tokens=96, retries=0)),
    # the paper: o4-mini-class solver, 100 tasks, 2 retries, continual every 10 (serve a model, pass --llm)
    "paper": ArcMemoConfig(limit=None, abstraction=ProgramSettings(max_tokens=4096, temperature=0.3),
                           selecting=ProgramSettings(max_tokens=8192),
                           solving=ProgramSettings(max_tokens=32768, retries=1)),
}

EXPERIMENT_PRESETS: dict[str, ArcLiteConfig] = {
    "record": ArcLiteConfig(),
    # the run of record's three main arms at four budgets (same seeds and tasks, so the same numbers)
    "quick": ArcLiteConfig(budgets=[30, 100, 300, 1000], arms=["none", "instance", "concept"]),
}
