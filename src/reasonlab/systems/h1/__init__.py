"""h1: long-horizon reasoning from composed easy problems, outcome-only reward and a depth curriculum.

Motwani, Ivanova et al., arXiv 2510.07312. Chains and the numeric reward live in `reasonlab.tasks.arithmetic`
(shared); this package holds the tinylm's modular chains, the curriculum, the environment, the training loop
on `reasonlab.train.rl`, the TRL GRPOTrainer path and the CPU experiment. See docs/h1.md.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "curriculum": ["Curriculum", "CurriculumConfig", "StageEvent"],
    "environment": ["ChainEnvironment", "accuracy", "accuracy_by_depth"],
    "modular": ["ModularChain", "make_modular_chains", "modular_tokenizer", "solve_modular"],
    "train": ["H1Config", "train_h1"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
