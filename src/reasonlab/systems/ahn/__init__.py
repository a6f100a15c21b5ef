"""AHN, Artificial Hippocampus Networks (arXiv 2510.07318): sinks + sliding-window attention, with the tokens that
leave the window written into a recurrent memory (DeltaNet, GatedDeltaNet or Mamba2) whose readout joins the
attention output; only the memory trains, by self-distillation from the unchanged full-attention model.

    from reasonlab.systems.ahn import DOCUMENT_PRESETS, PRESETS, run_experiment, train

    run_dir = run_experiment(PRESETS["quick"], "runs/ahn", "recall-quick")   # recall beyond the window (tinylm)
    run_dir = train(DOCUMENT_PRESETS["quick"])                            # AHN-GDN on hf:embedded, real documents

Modules: memory (the three recurrences, token-by-token and chunked, and `AHNMemory`), model (`AHNStudent` around a
tinylm: parallel forward, prefill, constant-size decode, checkpoints), hf (the same for transformers decoders:
Llama, Qwen2/2.5/3, Gemma-3's global layers), distillation (budget sampling, the KL loss), teacher (the recall
teacher), training (a recall student; `train`: distillation on documents), longtext (windows of documents, eval,
generate), config, evaluation,
experiment (the recall experiment over seeds, the plot, the quick demo), cli (`reasonlab ahn ...`).
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "memory": ["AHNMemory", "ahn_parameter_count", "delta_rule_chunked", "delta_rule_reference", "mamba2_chunked",
               "mamba2_reference"],
    "model": ["AHNStudent", "DecodeCache", "load_ahn", "save_ahn", "window_mask"],
    "hf": ["AHNHF", "ahn_generate", "load_hf_ahn", "save_hf_ahn", "wrap_hf"],
    "distillation": ["BudgetSampler", "distillation_loss", "teacher_logits"],
    "teacher": ["cached_teacher", "train_recall_teacher"],
    "training": ["distill_recall_student", "train"],
    "longtext": ["evaluate_run", "generate_from_run", "prepare_windows"],
    "config": ["DOCUMENT_PRESETS", "PRESETS", "DocumentsConfig", "ExperimentConfig", "StudentConfig",
               "TeacherConfig"],
    "evaluation": ["recall_accuracy", "summarize_recall", "window_scores"],
    "experiment": ["run_experiment"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
