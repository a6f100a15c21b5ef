"""TRM: Tiny Recursive Model (arXiv 2510.04871) with the HRM baseline, deep supervision and ablations.

    from reasonlab.systems.trm import PRESETS, run_experiment, solve_puzzle, train
    from reasonlab.systems.trm.config import TRAIN_PRESETS
    run_dir = train(TRAIN_PRESETS["cpu"].model_copy(update={"name": "sudoku6"}))  # 6x6 Sudoku, 120 CPU-s
    print(solve_puzzle(run_dir, ".2..5.|......|.5....|.3..24|5.32..|24.1..").text)
    summary = run_experiment(PRESETS["quick"], "runs/trm-quick")  # TRM vs. deep supervision at equal steps
    print(summary["arms"]["trm"]["mean"], summary["arms"]["deep_supervision"]["mean"])

Modules: config (TRMTrainConfig, ExperimentConfig, PRESETS), layers (blocks), model (TRM/HRM step), losses
(stablemax, halting), optim (AdamATan2, sign-SGD, EMA), supervision (carry, reference loop), data (tasks as
tensors), training, evaluation (accuracy by step, ARC pass@k), inference, experiment (three-arm run), cli.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "config": ["PRESETS", "ExperimentConfig", "TRMTrainConfig"],
    "evaluation": ["EvalResult", "arc_pass_at_k", "evaluate", "evaluate_split"],
    "experiment": ["run_experiment"],
    "inference": ["SolveResult", "eval_checkpoint", "solve_puzzle"],
    "losses": ["stablemax_cross_entropy", "trm_loss"],
    "model": ["ModelConfig", "RecursiveReasoner"],
    "optim": ["EMA", "AdamATan2", "SignSGD"],
    "supervision": [
        "Carry",
        "SupervisionConfig",
        "deep_supervision_reference",
        "supervision_step",
    ],
    "training": ["load_checkpoint", "load_model", "train"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
