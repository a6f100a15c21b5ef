"""h1 evaluation: exact final answers counted per depth; `evaluate(config)` writes them into a run."""

from __future__ import annotations

import pytest

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation
from reasonlab.runs import Run
from reasonlab.systems.h1.config import ChainFormat, EvalConfig
from reasonlab.systems.h1.evaluation import accuracy, accuracy_by_depth, evaluate
from reasonlab.systems.h1.modular import make_modular_chains


class Oracle:
    """Answers every chain correctly, except those whose answer is 0."""

    def generate(self, prompts, params):
        chains = {c.prompt: c for d in (1, 2) for c in make_modular_chains(d, 20, 0, modulus=5)}
        outputs = []
        for prompt in prompts:
            chain = chains[prompt]
            text = chain.target if chain.answer != 0 else "ans = 99"
            outputs.append([Generation(text, [1] * len(text.split()), None, "eos", 0, 0, 0.0)])
        return outputs


def test_accuracy_by_depth_counts_exact_final_answers():
    sets = {d: make_modular_chains(d, 20, 0, modulus=5) for d in (1, 2)}
    expected = {d: sum(c.answer != 0 for c in chains) / 20 for d, chains in sets.items()}
    assert expected == {1: 0.7, 2: 0.9}
    assert accuracy_by_depth(Oracle(), sets, max_tokens=8) == expected
    assert accuracy(Oracle(), [], 8) == (0.0, 0)
    words = sum(len(c.target.split()) if c.answer else 3 for c in sets[2])
    assert accuracy(Oracle(), sets[2], 8) == (0.9, words)


def test_evaluate_writes_the_accuracy_per_depth_into_a_run(tmp_path, tiny_tinylm):
    task = ChainFormat(modulus=7)
    tiny_tinylm(task).save(str(tmp_path / "policy"))
    config = EvalConfig(policy=str(tmp_path / "policy"), task=task, depths=3, chains=4, out=str(tmp_path / "runs"))
    run_dir = evaluate(config)
    summary = Run.open(run_dir).summary()
    assert summary == {"accuracy": {"1": 0.0, "2": 0.0, "3": 0.0}, "chains_per_depth": 4}  # an untrained tinylm
    assert Run.open(run_dir).config()["depths"] == 3
    with pytest.raises(UserError, match="already exists"):
        evaluate(config)
    assert evaluate(config.model_copy(update={"resume": True})) == run_dir
    with pytest.raises(UserError, match=r"there is no run in .* to continue"):
        evaluate(config.model_copy(update={"name": "other", "resume": True}))
