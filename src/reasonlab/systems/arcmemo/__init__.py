"""ArcMemo (arXiv 2509.04439): abstract concept memory for ARC. Concepts are written from verified solutions
(the write), chosen per puzzle (the read) and shown to the solver as hints; the memory can grow while solving.

    from reasonlab.systems.arcmemo import EXPERIMENT_PRESETS, PRESETS, run_eval, run_experiment

    run_dir = run_experiment(EXPERIMENT_PRESETS["quick"], "runs/arcmemo", "arclite-quick")   # ARC-lite, no LLM
    run_dir = run_eval(PRESETS["embedded"], "runs/arcmemo", "eval")      # the LLM loop on ARC-AGI-1 tasks

Modules: memory (the OE and PS formats, merge rules, rendering, atomic JSON), tasks (ARC-AGI-1/2 splits with the
paper's 100-task subset, task files, official and strict scoring), execution (the model's `transform` in the
sandbox), seeds (our seed solutions), prompts and programs (every LLM step as a typed program), continual (the
batched loop with train-only write gates), pipeline (build-memory, solve, eval), arclite (the ARC-lite world:
primitives, tasks, enumerative search, features), arms (memory arms of the ARC-lite experiment), config,
evaluation, experiment (ARC-lite over seeds, the plot, the quick demo), cli (`reasonlab arcmemo ...`).
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "memory": ["Concept", "ConceptMemory", "Lesson", "LessonMemory", "Parameter", "Solution", "load_memory",
               "save_memory"],
    "tasks": ["EVAL_100_IDS", "ArcTask", "Attempt", "load_split", "load_task_json", "official_score", "score_tasks",
              "strict_correct", "train_correct"],
    "execution": ["extract_code", "run_transform"],
    "seeds": ["SEEDS", "SeedSolution"],
    "programs": ["abstract_concepts", "extract_lessons", "select_by_embedding", "select_concepts", "select_lessons",
                 "solve", "summarize_solution"],
    "continual": ["Step", "run_continual"],
    "pipeline": ["build_memory", "run_build", "run_eval", "solve_tasks"],
    "arclite": ["PRIMITIVES", "ArcLiteTask", "generate_tasks", "search"],
    "arms": ["ARMS", "ConceptArm", "InstanceArm", "NoMemoryArm"],
    "config": ["EXPERIMENT_PRESETS", "PRESETS", "ArcLiteConfig", "ArcMemoConfig"],
    "evaluation": ["lite_headline", "rates", "summarize_lite", "summarize_pipeline"],
    "experiment": ["run_experiment"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
