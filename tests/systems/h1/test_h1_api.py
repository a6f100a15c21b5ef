"""The public names of reasonlab.systems.h1 and reasonlab.tasks.arithmetic, pinned; the demo is registered."""

import reasonlab.systems.h1 as h1
from reasonlab.demo import discover_demos
from reasonlab.tasks import arithmetic


def test_public_api():
    assert sorted(h1.__all__) == [
        "ChainEnvironment", "ChainFormat", "Curriculum", "CurriculumConfig", "EvalConfig", "ExperimentConfig",
        "H1Config", "ModularChain", "PRESETS", "StageEvent", "accuracy", "accuracy_by_depth", "eval_preset", "evaluate",
        "make_modular_chains", "modular_tokenizer", "run_experiment", "solve_modular", "train", "train_policy",
        "train_preset",
    ]
    from reasonlab.systems.h1.training import train

    assert h1.train is train  # the function, never the module
    assert sorted(arithmetic.__all__) == [
        "ANSWER_INSTRUCTION", "Atom", "Chain", "ChainLink", "atom_from_gsm8k", "compose_chain", "evaluate",
        "extract_answer", "load_gsm8k_jsonl", "make_chains", "numeric_reward", "parse_number", "template_atoms",
    ]


def test_quick_demo_is_registered():
    assert "h1" in discover_demos()
