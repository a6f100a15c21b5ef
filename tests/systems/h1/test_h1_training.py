"""h1 training: the loop on the RL core (curriculum-driven batches, token accounting, budgets, resume), the
environment, and `train(config)` with its run directory."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation, SamplingParams
from reasonlab.runs import Run
from reasonlab.systems.h1.config import ChainFormat, H1Config
from reasonlab.systems.h1.curriculum import CurriculumConfig
from reasonlab.systems.h1.environment import ChainEnvironment
from reasonlab.systems.h1.modular import make_modular_chains, modular_tokenizer
from reasonlab.systems.h1.training import has_checkpoint, rl_history, train, train_policy
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


def test_curriculum_drives_depth_and_every_token_is_counted(tmp_path):
    run = Run.create(tmp_path, "h1", config(4))
    history = train_policy(config(4), tiny_policy(), source, run=run)
    assert [m["depth"] for m in history] == [1, 2, 3, 3]
    assert [m["stage_event"] for m in history] == ["advance", "advance", "hold", "hold"]
    # gate probes happen when a stage ends (3 chains at depths 2 and 3), never after the last stage
    assert [m["probe_tokens"] > 0 for m in history] == [True, True, False, False]
    total = 0
    for m in history:
        assert m["rollout_tokens"] == round(m["completion_tokens_mean"] * 4)
        total += m["rollout_tokens"] + m["probe_tokens"]
        assert m["tokens_total"] == total
    # seeded: the probes (3 chains) hit the cap of 6 tokens; the untrained policy is never right, so no group
    # of the 2 per iteration carries an advantage
    assert [(m["rollout_tokens"], m["probe_tokens"]) for m in history] == [(21, 18), (24, 18), (24, 0), (24, 0)]
    assert [(m["reward_mean"], m["signal_group_fraction"]) for m in history] == [(0.0, 0.0)] * 4
    logged = [r for r in run.metrics() if r.get("kind") == "rl"]
    assert [r["iteration"] for r in logged] == [0, 1, 2, 3]
    assert json.loads((run.checkpoint_dir / "curriculum.json").read_text())["depth"] == 3


def test_token_budget_stops_training():
    straight = train_policy(config(4), tiny_policy(), source)
    budget = straight[1]["tokens_total"]
    capped = train_policy(config(4, token_budget=budget), tiny_policy(), source)
    assert len(capped) == 2 and capped[-1]["tokens_total"] == budget


def test_resume_continues_with_the_same_curriculum_state(tmp_path):
    def strip(history):
        return [{k: v for k, v in m.items() if k not in TIMING} for m in history]

    straight = train_policy(config(4), tiny_policy(), source)
    run = Run.create(tmp_path, "h1", config(2))
    train_policy(config(2), tiny_policy(), source, run=run)
    resumed = train_policy(config(4), tiny_policy(), source, run=Run.open(run.dir), resume=True)
    assert strip(resumed) == strip(straight)


def test_a_run_with_a_checkpoint_needs_resume(tmp_path):
    run = Run.create(tmp_path, "h1", config(1))
    train_policy(config(1), tiny_policy(), source, run=run)
    with pytest.raises(UserError, match="resume"):
        train_policy(config(2), tiny_policy(), source, run=Run.open(run.dir))


def run_config(tmp_path, policy_dir, **overrides) -> H1Config:
    base = config(3)
    return H1Config.model_validate({**base.model_dump(), "task": {"modulus": 7}, "policy": str(policy_dir),
                                    "out": str(tmp_path / "runs"), "name": "run", **overrides})


def test_train_writes_a_run_with_the_policy_and_resumes_it(tmp_path):
    tiny_policy().save(str(tmp_path / "start"))
    run_dir = train(run_config(tmp_path, tmp_path / "start"))
    assert run_dir == tmp_path / "runs" / "run" and has_checkpoint(run_dir)
    assert [m["iteration"] for m in rl_history(run_dir)] == [0, 1, 2]
    assert Run.open(run_dir).config()["task"]["modulus"] == 7
    trained = TinyLM.load(run_dir / "policy")
    # no group had signal (see above): with beta 0 no weight moves
    assert all((a == b).all() for a, b in zip(trained.module.parameters(), tiny_policy().module.parameters(), strict=True))
    # the same config again is refused; --resume continues it (nothing left: 3 of 3 iterations done)
    with pytest.raises(UserError, match="already exists: pass --resume"):
        train(run_config(tmp_path, tmp_path / "start"))
    longer = run_config(tmp_path, tmp_path / "start", resume=True, rl={**config(5).rl.model_dump()})
    with pytest.raises(UserError, match=r"differs in rl\.iterations"):
        train(longer)
    assert train(run_config(tmp_path, tmp_path / "start", resume=True)) == run_dir
    assert [m["iteration"] for m in rl_history(run_dir)] == [0, 1, 2]


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    tiny_policy().save(str(tmp_path / "start"))
    with pytest.raises(UserError, match="has no h1 checkpoint to continue: drop --resume"):
        train(run_config(tmp_path, tmp_path / "start", resume=True))
    assert not (tmp_path / "runs" / "run").exists()
    with pytest.raises(UserError, match="no policy to train"):
        train(run_config(tmp_path, tmp_path / "start").model_copy(update={"policy": None}))


def test_eval_every_logs_greedy_accuracy_per_depth(tmp_path):
    tiny_policy().save(str(tmp_path / "start"))
    run_dir = train(run_config(tmp_path, tmp_path / "start", eval_every=2, eval_max_tokens=6))
    evaluated = [sorted(k for k in m if k.startswith("accuracy_d")) for m in rl_history(run_dir)]
    assert evaluated == [[], [f"accuracy_d{d}" for d in range(1, 6)], []]  # after iteration 2 of 3; depths 1..H + 2
    assert all(rl_history(run_dir)[1][f"accuracy_d{d}"] == 0.0 for d in range(1, 6))  # untrained (see above)


def test_rl_history_keeps_the_last_record_of_an_iteration_logged_twice(tmp_path):
    run = Run.create(tmp_path, "h1", {"a": 1})
    for iteration, reward in [(0, 0.1), (1, 0.2), (1, 0.3)]:  # killed after logging 1, then 1 redone on resume
        run.log({"kind": "rl", "iteration": iteration, "reward_mean": reward}, step=iteration)
    run.log({"kind": "eval", "iteration": 1})
    assert [m["reward_mean"] for m in rl_history(run.dir)] == [0.1, 0.3]


def test_chain_format_token_cap_holds_every_worked_chain():
    for task in (ChainFormat(), ChainFormat(labelled=True), ChainFormat(ops="+-*", width=9),
                 ChainFormat(ops="+-*", width=9, lines="value")):
        tokenizer = task.tokenizer(6)
        for depth in (1, 4, 8):
            longest = max(len(tokenizer.encode(c.target)) for c in task.chains(depth, 20, seed=0))
            assert longest + 1 <= task.token_cap(depth) <= longest + 6


def test_train_makes_its_run_folder_before_the_warm_start_and_says_what_it_does(tmp_path, monkeypatch, capsys):
    from reasonlab.systems.h1 import training

    monkeypatch.setattr(training, "REPORT_SECONDS", 0.0)  # a progress line after every iteration
    run_dir = tmp_path / "runs" / "run"

    def warm_start() -> str:
        assert (run_dir / "config.yaml").is_file()  # the run folder exists while the warm start trains
        tiny_policy().save(str(tmp_path / "warm"))
        return str(tmp_path / "warm")

    assert train(run_config(tmp_path, "unused").model_copy(update={"policy": None}), warm_start=warm_start) == run_dir
    assert Run.open(run_dir).config()["policy"] is None  # the config as asked: the preset's warm start
    assert [m["policy"] for m in Run.open(run_dir).metrics() if m.get("kind") == "warm_start"] == [str(tmp_path / "warm")]
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"h1 train: run folder {run_dir}" and lines[1] == "warm start ..."
    assert lines[2].startswith("warm start: done in ")
    iterations = [line for line in lines if line.startswith("RL iteration ")]
    assert [line.split(":")[0] for line in iterations] == ["RL iteration 1/3", "RL iteration 2/3", "RL iteration 3/3"]
    assert "depth 1.0, reward 0.000, advances to depth 2 (probe 0.00), tokens " in iterations[0] and iterations[-1].endswith("done")
