"""ACE: Agentic Context Engineering (arXiv 2510.04618): an evolving playbook for any LLM.

    from reasonlab.systems.ace import ACEConfig, run_adaptation
    run_dir = run_adaptation(ACEConfig(llm="llamacpp:embedded", task="formula", mode="offline"))

Modules: playbook (bullets, ids, counters, JSON), delta (deterministic merge, budget), refine (MiniLM
de-duplication), prompts, roles (Generator, Reflector, Curator), memory (ACE and the baselines), tasks
(generated suites, FiNER/Formula loaders), adapt (offline/online loops), experiment, cli. See docs/ace.md.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "adapt": ["ACEConfig", "adapt", "build_memory", "collapse_stats", "evaluate", "run_adaptation"],
    "delta": ["DeltaOperation", "MergeReport", "apply_delta", "apply_tags", "fit_to_budget"],
    "memory": [
        "ExamplesMemory",
        "NoMemory",
        "OracleReflector",
        "PlaybookMemory",
        "RewriteMemory",
        "fact_retained",
    ],
    "playbook": ["Bullet", "Playbook", "parse_playbook"],
    "refine": ["duplicate_groups", "refine"],
    "roles": [
        "Curator",
        "CuratorOutput",
        "Generator",
        "GeneratorOutput",
        "Reflector",
        "ReflectorOutput",
        "RoleOutcome",
        "RoleSettings",
    ],
    "tasks": [
        "Feedback",
        "FormulaSuite",
        "JsonlTask",
        "Sample",
        "Task",
        "ToolSuite",
        "load_finance_jsonl",
        "load_task",
    ],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
