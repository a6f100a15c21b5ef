"""ACE: Agentic Context Engineering (arXiv 2510.04618): an evolving playbook for any LLM.

    from reasonlab.systems.ace import ACEConfig, run_adaptation
    run_dir = run_adaptation(ACEConfig(llm="llamacpp:embedded", task="formula", mode="offline"))

Modules: playbook (bullets, ids, counters, JSON), delta (deterministic merge, budget), refine (MiniLM
de-duplication), prompts, roles (Generator, Reflector, Curator), memory (ACE and the baselines), tasks
(generated suites, FiNER/Formula loaders), adapt (offline/online loops), experiment, cli. See docs/ace.md.
"""

from reasonlab.systems.ace.adapt import (
    ACEConfig,
    adapt,
    build_memory,
    collapse_stats,
    evaluate,
    run_adaptation,
)
from reasonlab.systems.ace.delta import DeltaOperation, MergeReport, apply_delta, apply_tags, fit_to_budget
from reasonlab.systems.ace.memory import (
    ExamplesMemory,
    NoMemory,
    OracleReflector,
    PlaybookMemory,
    RewriteMemory,
    fact_retained,
)
from reasonlab.systems.ace.playbook import Bullet, Playbook, parse_playbook
from reasonlab.systems.ace.refine import duplicate_groups, refine
from reasonlab.systems.ace.roles import (
    Curator,
    CuratorOutput,
    Generator,
    GeneratorOutput,
    Reflector,
    ReflectorOutput,
    RoleOutcome,
    RoleSettings,
)
from reasonlab.systems.ace.tasks import (
    Feedback,
    FormulaSuite,
    JsonlTask,
    Sample,
    Task,
    ToolSuite,
    load_finance_jsonl,
    load_task,
)

__all__ = [
    "ACEConfig",
    "Bullet",
    "Curator",
    "CuratorOutput",
    "DeltaOperation",
    "ExamplesMemory",
    "Feedback",
    "FormulaSuite",
    "Generator",
    "GeneratorOutput",
    "JsonlTask",
    "MergeReport",
    "NoMemory",
    "OracleReflector",
    "Playbook",
    "PlaybookMemory",
    "Reflector",
    "ReflectorOutput",
    "RewriteMemory",
    "RoleOutcome",
    "RoleSettings",
    "Sample",
    "Task",
    "ToolSuite",
    "adapt",
    "apply_delta",
    "apply_tags",
    "build_memory",
    "collapse_stats",
    "duplicate_groups",
    "evaluate",
    "fact_retained",
    "fit_to_budget",
    "load_finance_jsonl",
    "load_task",
    "parse_playbook",
    "refine",
    "run_adaptation",
]
