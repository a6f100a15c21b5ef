"""The configs of ACE: `ACEConfig` (one adaptation), `ExperimentConfig` (arms x seeds) and `PRESETS`.

`AdaptationSettings` holds everything an adaptation needs but the context method and the task seed, so an
experiment shares it between its arms and seeds without fields that it would have to ignore.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from reasonlab.systems.ace.roles import RoleSettings
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName

__all__ = ["PRESETS", "ACEConfig", "AdaptationSettings", "ExperimentConfig", "Method"]

Method = Literal["ace", "dc", "icl", "none"]


class AdaptationSettings(BaseModel):
    """How to adapt a context (paper/repo defaults noted in each description); shared by an experiment's arms."""

    llm: str = Field("llamacpp:embedded", description="model spec for all three roles (paper: one frozen LLM)")
    task: str = Field("formula", description="formula | tools (generated) | finer | formula-jsonl (needs data)")
    data: dict[str, str] = Field(default_factory=dict, description="JSONL paths for finer/formula-jsonl: train, val, test")
    task_options: dict[str, Any] = Field(default_factory=dict, description="generated suites: families, per_family, split")
    mode: Literal["offline", "online"] = Field("offline", description="offline (train split) or online (test stream)")
    labels: bool = Field(True, description="use gold labels as feedback; False = execution feedback only")
    oracle_reflector: bool = Field(False, description="scripted Reflector stating the true rule (generated suites)")
    epochs: int = Field(1, ge=1, description="offline epochs (paper <= 5, repo 1)")
    reflector_rounds: int = Field(3, ge=0, description="Reflector rounds on a wrong answer (paper <= 5, repo 3)")
    curator_frequency: int = Field(1, ge=1, description="run the Curator every this many steps (paper 1)")
    eval_steps: int = Field(100, ge=1, description="offline: validate every this many steps (repo 100)")
    window: int = Field(15, ge=1, description="online: samples scored before the context learns from them (repo 15)")
    token_budget: int = Field(2000, ge=1, description="playbook token budget, enforced (repo 80,000, not enforced)")
    prune: bool = Field(True, description="over budget: prune least useful bullets (else reject the delta)")
    dedup: bool = Field(True, description="grow-and-refine: MiniLM de-duplication after each delta")
    dedup_threshold: float = Field(0.72, gt=0, le=1, description="cosine threshold of de-duplication (MiniLM-"
                                   "calibrated, see ace.calibration; the repo's 0.90 was tuned for mpnet)")
    dedup_within_section: bool = Field(False, description="only merge bullets of the same section")
    icl_examples: int = Field(4, ge=1, description="icl baseline: examples kept in context")
    rewrite_chars: int = Field(800, ge=16, description="dc baseline: bound of the rewritten cheatsheet")
    seed_facts: bool = Field(False, description="seed both memories with reference facts (collapse probe)")
    playbook: str | None = Field(None, description="initial playbook JSON (e.g. an offline warm-up for online)")
    train_size: int | None = Field(None, ge=1, description="use the first N training samples")
    val_size: int | None = Field(None, ge=0, description="use the first N validation samples (0: no validation)")
    test_size: int | None = Field(None, ge=1, description="use the first N test samples")
    eval_before: bool = Field(True, description="offline: also score the test split with the initial context")
    roles: RoleSettings = Field(default_factory=RoleSettings, description="decoding and schema bounds of the roles")
    n_threads: int | None = Field(None, ge=1, description="llamacpp threads (default: the global `reasonlab "
                                  "--threads`, REASONLAB_THREADS or cores - 1)")


class ACEConfig(AdaptationSettings):
    """Options of `reasonlab ace adapt` / `eval`: the settings plus the context method and the task seed."""

    method: Method = Field("ace", description="ace, or a baseline: dc (full rewrite), icl, none")
    seed: int = Field(0, description="task generation seed")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


class ExperimentConfig(BaseModel):
    """`reasonlab ace experiment`: every arm adapts the same task with the same settings, once per seed."""

    adaptation: AdaptationSettings = Field(default_factory=AdaptationSettings,
                                           description="settings shared by every arm and seed")
    arms: list[Method] = Field(default_factory=lambda: ["ace", "dc"], min_length=1,
                               description="context methods compared (the first also scores the initial context)")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="task generation seeds")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)


_ROLES = RoleSettings(retries=2, max_tokens=160, field_chars=60, content_chars=80, max_operations=1, max_citations=2)
# 4 invented metrics; 2 training and 2 test questions per metric; no validation split (each evaluation costs
# as much as the adaptation itself at this scale; best-by-validation is covered by the tests)
_FORMULA = AdaptationSettings(task="formula", seed_facts=True, reflector_rounds=1, eval_steps=100, dedup=True,
                              rewrite_chars=400, token_budget=1500, train_size=8, val_size=0, test_size=8,
                              roles=_ROLES)


def _formula(**changes: Any) -> ExperimentConfig:
    return ExperimentConfig(adaptation=_FORMULA.model_copy(update=changes))


# the collapse protocol (the demo and the run of record): 2 invented metrics are taught, one training question
# each (2 updates); 6 others are seeded as true rules into both memories and never taught; the test asks one
# question per seeded metric, so accuracy measures what losing a seeded rule costs. The rewrite may write 400
# characters, room for all 8 rules (~330 characters). No retry rounds, no evaluation before adapting: about
# 10 LLM calls per arm and seed.
_COLLAPSE = _FORMULA.model_copy(update={
    "oracle_reflector": True, "task_options": {"families": 2, "per_family": 1, "split": [1, 0], "seeded_test": 1},
    "train_size": 2, "test_size": 6, "reflector_rounds": 0, "rewrite_chars": 400, "eval_before": False})

PRESETS: dict[str, ExperimentConfig] = {
    # the run of record: the collapse protocol on three task seeds
    "mini": ExperimentConfig(adaptation=_COLLAPSE, seeds=[0, 1, 2]),
    "quick": ExperimentConfig(adaptation=_COLLAPSE, seeds=[0, 1]),  # the demo
    "oracle": _formula(oracle_reflector=True),
    "model": _formula(task_options={"families": 3}, train_size=6, test_size=6),
    # the served hf backend was ~10x slower than in-process llama.cpp on the shared CPU: the smallest run
    "endpoint": _formula(task_options={"families": 2}, train_size=2, test_size=2),
    "tools": _formula(task="tools", oracle_reflector=True, train_size=3, test_size=6),
}
