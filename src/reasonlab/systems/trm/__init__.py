"""TRM: Tiny Recursive Model (arXiv 2510.04871) with the HRM baseline, deep supervision and ablations.

    from reasonlab.systems.trm import TRMTrainConfig, train
    run_dir = train(TRMTrainConfig(task="sudoku", size=6, givens=10, hidden_size=64, n=3, T=2, n_sup=8))

Modules: layers (blocks), model (TRM/HRM step), losses (stablemax, halting), optim (AdamATan2, sign-SGD,
EMA), supervision (carry, reference loop, evaluation), data (tasks as tensors), train, inference,
experiment (three-arm reproduction), cli.
"""

from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.inference import SolveResult, eval_checkpoint, solve_puzzle
from reasonlab.systems.trm.losses import stablemax_cross_entropy, trm_loss
from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.optim import EMA, AdamATan2, SignSGD
from reasonlab.systems.trm.supervision import (
    Carry,
    SupervisionConfig,
    deep_supervision_reference,
    evaluate,
    supervision_step,
)
from reasonlab.systems.trm.train import load_checkpoint, load_model, train

__all__ = [
    "EMA",
    "AdamATan2",
    "Carry",
    "ModelConfig",
    "RecursiveReasoner",
    "SignSGD",
    "SolveResult",
    "SupervisionConfig",
    "TRMTrainConfig",
    "deep_supervision_reference",
    "eval_checkpoint",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "solve_puzzle",
    "stablemax_cross_entropy",
    "supervision_step",
    "train",
    "trm_loss",
]
