"""The public API of reasonlab.systems.ace is pinned."""

from __future__ import annotations

import reasonlab.systems.ace as ace


def test_public_api_is_pinned() -> None:
    assert sorted(ace.__all__) == sorted([
        "ACEConfig", "AdaptationSettings", "Bullet", "Curator", "CuratorOutput", "DeltaOperation", "ExamplesMemory", "ExperimentConfig", "Feedback",
        "FormulaSuite", "Generator", "GeneratorOutput", "JsonlTask", "MergeReport", "NoMemory", "OracleReflector",
        "PRESETS", "Playbook", "PlaybookMemory", "Reflector", "ReflectorOutput", "RewriteMemory", "RoleOutcome",
        "RoleSettings", "Sample", "Task", "ToolSuite", "adapt", "apply_delta", "apply_tags", "build_memory",
        "collapse_stats", "compare_arms", "duplicate_groups", "evaluate", "fact_retained", "fit_to_budget", "load_finance_jsonl",
        "load_task", "parse_playbook", "refine", "run_adaptation", "run_experiment",
    ])
    assert all(hasattr(ace, name) for name in ace.__all__)
