"""The h1 loop on the RL core: curriculum-driven batches, token accounting, budgets, resume; the environment."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation, SamplingParams
from reasonlab.runs import Run
from reasonlab.systems.h1.curriculum import CurriculumConfig
from reasonlab.systems.h1.environment import ChainEnvironment, accuracy, accuracy_by_depth
from reasonlab.systems.h1.modular import make_modular_chains, modular_tokenizer
from reasonlab.systems.h1.train import H1Config, train_h1
from reasonlab.train.rl import Episode, RLConfig
from reasonlab.train.tinylm import TinyLM, TinyLMConfig

TIMING = {"seconds", "rollout_seconds", "train_seconds", "tokens_per_second", "time"}


def source(depth, count, seed):
    return make_modular_chains(depth, count, seed, modulus=7)


def tiny_policy() -> TinyLM:
    tokenizer = modular_tokenizer(7, max_depth=6)
    return TinyLM.create(TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer, seed=0)


def config(iterations: int, **overrides) -> H1Config:
    rl = RLConfig(loss_type="dr_grpo", iterations=iterations, tasks_per_iteration=2, group_size=2, learning_rate=1e-3,
                  sampling=SamplingParams(temperature=1.0, max_tokens=6), progress=False, seed=3)
    curriculum = CurriculumConfig(schedule="fixed", min_depth=1, max_depth=3, steps_per_stage=1, gate_threshold=0.0)
    return H1Config(curriculum=curriculum, rl=rl, probe_chains=3, **overrides)


class Oracle:
    """Answers every chain correctly, except those whose answer is 0."""

    def generate(self, prompts, params):
        chains = {c.prompt: c for d in (1, 2) for c in make_modular_chains(d, 20, 0)}
        outputs = []
        for prompt in prompts:
            chain = chains[prompt]
            text = chain.target if chain.answer != 0 else "ans = 99"
            outputs.append([Generation(text, [1] * len(text.split()), None, "eos", 0, 0, 0.0)])
        return outputs


def test_environment_rewards_only_the_final_answer():
    chain = make_modular_chains(3, 1, seed=0)[0]
    environment = ChainEnvironment()
    assert environment.reset(chain) == chain.prompt
    episode = Episode(task=chain, group=0)
    right = Generation(chain.target, [], None, "eos", 0, 0, 0.0)
    step = environment.step(episode, right)
    assert step.done and step.reward == 1.0
    intermediate = f"{chain.values[1]} ans = {chain.values[1]}"
    assert environment.step(episode, Generation(intermediate, [], None, "eos", 0, 0, 0.0)).reward == float(
        chain.values[1] == chain.answer
    )


def test_accuracy_by_depth_counts_exact_final_answers():
    sets = {d: make_modular_chains(d, 20, 0) for d in (1, 2)}
    expected = {d: sum(c.answer != 0 for c in chains) / 20 for d, chains in sets.items()}
    assert accuracy_by_depth(Oracle(), sets, max_tokens=8) == expected
    assert accuracy(Oracle(), [], 8) == (0.0, 0)


def test_curriculum_drives_depth_and_every_token_is_counted(tmp_path):
    run = Run.create(tmp_path, "h1", config(4))
    history = train_h1(config(4), tiny_policy(), source, run=run)
    assert [m["depth"] for m in history] == [1, 2, 3, 3]
    assert [m["stage_event"] for m in history] == ["advance", "advance", "hold", "hold"]
    # gate probes happen when a stage ends (3 chains at depths 2 and 3), never after the last stage
    assert [m["probe_tokens"] > 0 for m in history] == [True, True, False, False]
    total = 0
    for m in history:
        assert m["rollout_tokens"] == round(m["completion_tokens_mean"] * 4)
        total += m["rollout_tokens"] + m["probe_tokens"]
        assert m["tokens_total"] == total
        assert 0.0 <= m["signal_group_fraction"] <= 1.0
    logged = [r for r in run.metrics() if r.get("kind") == "rl"]
    assert [r["iteration"] for r in logged] == [0, 1, 2, 3]
    assert json.loads((run.checkpoint_dir / "curriculum.json").read_text())["depth"] == 3


def test_token_budget_stops_training():
    straight = train_h1(config(4), tiny_policy(), source)
    budget = straight[1]["tokens_total"]
    capped = train_h1(config(4, token_budget=budget), tiny_policy(), source)
    assert len(capped) == 2 and capped[-1]["tokens_total"] == budget


def test_resume_continues_with_the_same_curriculum_state(tmp_path):
    def strip(history):
        return [{k: v for k, v in m.items() if k not in TIMING} for m in history]

    straight = train_h1(config(4), tiny_policy(), source)
    run = Run.create(tmp_path, "h1", config(2))
    train_h1(config(2), tiny_policy(), source, run=run)
    resumed = train_h1(config(4), tiny_policy(), source, run=Run.open(run.dir), resume=True)
    assert strip(resumed) == strip(straight)


def test_a_run_with_a_checkpoint_needs_resume(tmp_path):
    run = Run.create(tmp_path, "h1", config(1))
    train_h1(config(1), tiny_policy(), source, run=run)
    with pytest.raises(UserError, match="resume"):
        train_h1(config(2), tiny_policy(), source, run=Run.open(run.dir))
