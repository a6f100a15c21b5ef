"""The public names of reasonlab.systems.h1 and reasonlab.tasks.arithmetic, pinned; the demo is registered."""

import reasonlab.systems.h1 as h1
from reasonlab.demo import discover_demos
from reasonlab.tasks import arithmetic


def test_public_api():
    assert sorted(h1.__all__) == [
        "ChainEnvironment", "Curriculum", "CurriculumConfig", "H1Config", "ModularChain", "StageEvent",
        "accuracy", "accuracy_by_depth", "make_modular_chains", "modular_tokenizer", "solve_modular", "train_h1",
    ]
    assert sorted(arithmetic.__all__) == [
        "ANSWER_INSTRUCTION", "Atom", "Chain", "ChainLink", "atom_from_gsm8k", "compose_chain", "evaluate",
        "extract_answer", "load_gsm8k_jsonl", "make_chains", "numeric_reward", "parse_number", "template_atoms",
    ]


def test_quick_demo_is_registered():
    assert "h1" in discover_demos()
