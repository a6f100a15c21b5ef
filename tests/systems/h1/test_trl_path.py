"""h1 on TRL: the chains become rows whose solution reaches the reward, each curriculum stage is one
`reasonlab.train.trl_grpo.train_grpo` call in depth order on the same policy, with h1's Dr.GRPO settings.
(The GRPOTrainer run itself is tested in tests/train/test_trl_grpo.py.)"""

from __future__ import annotations

import doctest

import pytest

import reasonlab.systems.h1.trl_path as trl_path
from reasonlab.systems.h1.modular import make_modular_chains
from reasonlab.systems.h1.trl_path import chain_reward, chain_rows, h1_grpo_config, train_curriculum_with_trl


def test_rows_carry_the_solution_that_the_reward_checks():
    chains = make_modular_chains(2, 3, seed=0)
    rows = chain_rows(chains)
    assert rows[0] == {"prompt": chains[0].prompt, "solution": str(chains[0].answer), "depth": 2}
    assert chain_reward([c.target for c in chains], [r["solution"] for r in rows]) == [1.0, 1.0, 1.0]
    wrong = [f"ans = {(c.answer + 1) % 31}" for c in chains]
    assert chain_reward(wrong, [r["solution"] for r in rows]) == [0.0, 0.0, 0.0]


def test_each_stage_is_one_grpo_run_in_depth_order(monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_train_grpo(policy, rows, reward, args, tokenizer):
        calls.append((policy, [r["depth"] for r in rows], reward, args, tokenizer))
        return [{"step": len(calls)}]

    monkeypatch.setattr(trl_path, "train_grpo", fake_train_grpo)
    stages = {3: make_modular_chains(3, 2, seed=3), 1: make_modular_chains(1, 4, seed=1)}
    histories = train_curriculum_with_trl("policy", stages, lambda depth: f"args-h{depth}", tokenizer="tok")
    assert histories == [[{"step": 1}], [{"step": 2}]]
    assert calls == [("policy", [1, 1, 1, 1], chain_reward, "args-h1", "tok"),
                     ("policy", [3, 3], chain_reward, "args-h3", "tok")]


def test_h1_grpo_config_is_dr_grpo_with_the_spec_values(tmp_path):
    pytest.importorskip("trl")
    args = h1_grpo_config(str(tmp_path), max_steps=5, use_cpu=True, bf16=False)
    assert (args.loss_type, args.beta, args.scale_rewards, args.num_generations) == ("dr_grpo", 0.0, "none", 8)
    assert (args.learning_rate, args.max_completion_length, args.max_steps) == (1e-6, 3072, 5)


def test_reward_doctest():
    result = doctest.testmod(trl_path)
    assert result.attempted == 1 and result.failed == 0
