"""h1: long-horizon reasoning from composed easy problems, outcome-only reward and a depth curriculum.

Motwani, Ivanova et al., arXiv 2510.07312. Chains and the numeric reward live in `reasonlab.tasks.arithmetic`
(shared); this package holds the tinylm's modular chains, the curriculum, the environment, the training loop
on `reasonlab.train.rl`, the curriculum on TRL's GRPOTrainer (`trl_path`) and the CPU experiment. See docs/h1.md.

    from reasonlab.systems.h1 import PRESETS, H1Config, train, train_preset
    config = H1Config.model_validate({**train_preset(PRESETS["quick"]), "policy": "runs/h1/warm", "name": "quick"})
    run_dir = train(config)                        # Dr.GRPO under the depth curriculum; policy in run_dir/policy
    from reasonlab.systems.h1 import run_experiment
    run_experiment(PRESETS["quick"], "runs/h1-quick", seeds=(0,))   # curriculum vs direct vs uniform
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "config": ["ChainFormat", "EvalConfig", "ExperimentConfig", "H1Config", "PRESETS", "eval_preset", "train_preset"],
    "curriculum": ["Curriculum", "CurriculumConfig", "StageEvent"],
    "environment": ["ChainEnvironment"],
    "evaluation": ["accuracy", "accuracy_by_depth", "evaluate"],
    "experiment": ["run_experiment"],
    "modular": ["ModularChain", "make_modular_chains", "modular_tokenizer", "solve_modular"],
    "training": ["train", "train_policy"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
