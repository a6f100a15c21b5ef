"""ACE: Agentic Context Engineering (arXiv 2510.04618): an evolving playbook for any LLM.

    from reasonlab.systems.ace import ACEConfig, run_adaptation
    run_dir = run_adaptation(ACEConfig(llm="llamacpp:embedded", task="formula", mode="offline"), "runs/ace")
    # or: reasonlab ace adapt --task formula --out runs/ace; reasonlab ace experiment --preset mini

Modules: config (ACEConfig, ExperimentConfig, PRESETS), playbook (bullets, ids, counters, JSON), delta
(deterministic merge, budget), refinement (MiniLM de-duplication), calibration (its threshold), prompts, roles
(Generator, Reflector, Curator), memory (ACE and the baselines), tasks (generated suites, FiNER/Formula
loaders), adaptation (offline/online loops), evaluation (every metric), experiment, cli. See docs/ace.md.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "adaptation": ["adapt", "build_memory", "run_adaptation"],
    "config": ["PRESETS", "ACEConfig", "AdaptationSettings", "ExperimentConfig"],
    "delta": ["DeltaOperation", "MergeReport", "apply_delta", "apply_tags", "fit_to_budget"],
    "memory": [
        "ExamplesMemory",
        "NoMemory",
        "OracleReflector",
        "PlaybookMemory",
        "RewriteMemory",
        "fact_retained",
    ],
    "evaluation": ["collapse_stats", "compare_arms", "evaluate"],
    "experiment": ["run_experiment"],
    "playbook": ["Bullet", "Playbook", "parse_playbook"],
    "refinement": ["duplicate_groups", "refine"],
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
