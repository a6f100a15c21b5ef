"""h1: long-horizon reasoning from composed easy problems, outcome-only reward and a depth curriculum.

Motwani, Ivanova et al., arXiv 2510.07312. Chains and the numeric reward live in `reasonlab.tasks.arithmetic`
(shared); this package holds the tinylm's modular chains, the curriculum, the environment, the training loop
on `reasonlab.train.rl`, the TRL GRPOTrainer path and the CPU experiment. See docs/h1.md.
"""

from reasonlab.systems.h1.curriculum import Curriculum, CurriculumConfig, StageEvent
from reasonlab.systems.h1.environment import ChainEnvironment, accuracy, accuracy_by_depth
from reasonlab.systems.h1.modular import ModularChain, make_modular_chains, modular_tokenizer, solve_modular
from reasonlab.systems.h1.train import H1Config, train_h1

__all__ = [
    "ChainEnvironment",
    "Curriculum",
    "CurriculumConfig",
    "H1Config",
    "ModularChain",
    "StageEvent",
    "accuracy",
    "accuracy_by_depth",
    "make_modular_chains",
    "modular_tokenizer",
    "solve_modular",
    "train_h1",
]
