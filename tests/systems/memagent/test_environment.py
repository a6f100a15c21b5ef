"""The RL environment: the agent's own prompts, per-episode memories, rewards that stop format farming, masks,
a GSPO smoke run on a randomly initialised Gemma-3-config model with the real tokenizer, and `memagent train`."""

from __future__ import annotations

import math

import pytest
import torch

from reasonlab.llm import Generation, Message, ScriptedLLM
from reasonlab.systems.memagent.agent import Agent
from reasonlab.systems.memagent.data import generate_bench
from reasonlab.systems.memagent.environment import (
    MemAgentEnvConfig,
    MemAgentEnvironment,
    action_mask,
    reward_table,
    turn_shaping,
)
from reasonlab.systems.memagent.evaluation import turn_text
from reasonlab.systems.memagent.memory import Memory
from reasonlab.train.rl import Episode, Segment

READ_USER = turn_text("check the user", 'user = read_file("user.md")')


@pytest.fixture(scope="module")
def bench():
    return generate_bench(seed=0, n_memories=1, tasks_per_category=3)


@pytest.fixture
def env(bench):
    environment = MemAgentEnvironment(ScriptedLLM([]), bench[0])
    yield environment
    environment.close()


def _task(bench, category: str, kind: str | None = None):
    return next(t for t in bench[1] if t.category == category and (kind is None or t.kind == kind))


def play(env: MemAgentEnvironment, task, texts: list[str]) -> tuple[Episode, list, object]:
    """Feed scripted completions through reset/step as the rollout engine does; returns episode, prompts, last step."""
    episode, prompts = Episode(task=task, group=0), [env.reset(task)]
    for text in texts:
        ids = [ord(c) for c in text]
        episode.segments.append(Segment(prompt_ids=[0], completion_ids=ids, logprobs=[0.0] * len(ids), text=text))
        step = env.step(episode, Generation(text, ids, [0.0] * len(ids), "stop", 1, len(ids), 0.0))
        episode.segments[-1].reward = step.segment_reward
        if step.done:
            episode.reward, episode.done = step.reward, True
            break
        prompts.append(step.prompt)
    return episode, prompts, step


def test_shaping_constants_and_the_reward_table() -> None:
    config = MemAgentEnvConfig()
    assert [round(turn_shaping(t, 8, True, False, config), 4) for t in range(8)] == [
        0.15, 0.1125, 0.075, 0.0375, 0.0, -0.0375, -0.075, -0.1125]
    assert turn_shaping(0, 8, True, True, config) == pytest.approx(0.35)
    assert turn_shaping(5, 8, False, False, config) == pytest.approx(-0.0375)  # no escape by bad format
    table = reward_table(config)
    assert (table["solve_in_2_turns"], table["wrong_in_2_turns"], table["farm_to_cap"]) == (2.35, 0.35, 0.15)
    assert max(table, key=table.get) == "solve_in_5_turns"
    # with the early code's max(0, .) farming pays more than answering wrong in two turns
    assert reward_table(MemAgentEnvConfig(decay_floor=0.0))["farm_to_cap"] == 0.375


def test_farming_earns_less_than_replying_in_two_turns(env, bench) -> None:
    task = _task(bench, "retrieval", "0-hop")
    solved, _, _ = play(env, task, [READ_USER, turn_text("found it", reply=task.oracle_reply)])
    wrong, _, _ = play(env, task, [READ_USER, turn_text("found it", reply=task.wrong_reply)])
    farmed, _, last = play(env, task, [READ_USER] * 8)
    assert (len(solved.segments), solved.info["success"], solved.total_reward) == (2, True, pytest.approx(2.35))
    assert (len(wrong.segments), wrong.info["success"], wrong.total_reward) == (2, False, pytest.approx(0.35))
    assert (len(farmed.segments), last.done, farmed.info["replied"]) == (8, True, False)
    assert [s.reward for s in farmed.segments][-1] == pytest.approx(-0.1125 - 0.2)  # cap penalty on the last turn
    assert farmed.total_reward == pytest.approx(reward_table()["farm_to_cap"]) == pytest.approx(0.15)
    assert farmed.total_reward < wrong.total_reward < solved.total_reward


def test_prompts_are_the_agents_own_and_tool_output_only_in_prompts(env, bench) -> None:
    task = _task(bench, "retrieval", "1-hop")
    episode, prompts, _ = play(env, task, [READ_USER, "no tags at all", READ_USER])
    agent = Agent(env.llm, Memory.from_files(env.root / "check", bench[0][0].files), env.config.agent)
    records = [agent.act(s.text) for s in episode.segments]
    for turn, prompt in enumerate(prompts):
        assert prompt == agent.build_prompt(task.question, records[:turn], task.filters)
    assert prompts[1][-1] == Message("user", records[0].tool_run.result_block(env.config.agent.max_result_chars))
    assert "- user_name:" in prompts[1][-1].content and prompts[1][-2].content.startswith("<python>")  # think dropped
    assert prompts[2][-1].content.startswith("<result>\nFormat error:")
    # the completions (trained tokens) never hold environment text
    assert all("<result>" not in s.text for s in episode.segments)
    assert [s.reward for s in episode.segments] == pytest.approx([0.35, 0.0, 0.075])  # bad format: 0


def test_each_episode_updates_its_own_memory_copy(env, bench) -> None:
    task = _task(bench, "update")
    turns = [turn_text("step", code) for code in task.oracle_code] + [turn_text("done", reply="Done.")]
    episode, _, _ = play(env, task, turns)
    again, _, _ = play(env, task, turns)  # a fresh copy: the first episode's write is not there
    assert episode.info["success"] and again.info["success"] and episode.reward == 2.0
    template = env._template(task.memory_id)
    path, key, value = task.expected_facts[0]
    assert f"- {key}: {value}" not in template.read(path)
    assert not list((env.root / "episodes").iterdir())  # finished episodes clean up
    lazy, _, _ = play(env, task, turns[:-2] + turns[-1:])
    assert not lazy.info["success"] and lazy.reward == 0.0


def test_clarification_and_filter_rewards(env, bench) -> None:
    clarify = _task(bench, "clarification")
    asked, _, _ = play(env, clarify, [READ_USER, turn_text("gap", reply=clarify.oracle_reply)])
    invented, _, _ = play(env, clarify, [READ_USER, turn_text("gap", reply=clarify.wrong_reply)])
    assert (asked.reward, invented.reward) == (2.0, 0.0)
    block = _task(bench, "filter", "block")
    leaked, _, _ = play(env, block, [turn_text("x", reply=block.wrong_reply)])
    kept, _, _ = play(env, block, [turn_text("x", reply=block.oracle_reply)])
    assert (leaked.reward, kept.reward, kept.total_reward) == (0.0, 2.0, 2.0)  # no user.md read: no bonus


def test_action_mask_drops_only_text_written_after_the_action() -> None:
    def detokenize(ids):
        return "".join(chr(i) for i in ids)

    action = turn_text("t", "x = 1")
    for tail, zeros in (("", 0), ("\nmade-up result", 15), ("  \n", 0)):
        text = action + tail
        ids = [ord(c) for c in text]
        mask = action_mask(Generation(text, ids, None, "eos", 0, len(ids), 0.0), detokenize)
        assert (mask is None) if zeros == 0 else (mask == [1] * len(action) + [0] * zeros)


@pytest.mark.slow
def test_gspo_smoke_run_on_a_tiny_gemma3_with_the_real_tokenizer(one_torch_thread, tiny_gemma_dir) -> None:
    from reasonlab.llm.hf import HFPolicy
    from reasonlab.systems.memagent.config import TRAIN_PRESETS
    from reasonlab.systems.memagent.training import rl_config, training_setup
    from reasonlab.train.rl import train

    smoke = TRAIN_PRESETS["smoke"].model_copy(update={"policy": f"hf:{tiny_gemma_dir}"})
    policy, environment, tasks = training_setup(smoke)  # the policy through load_llm, as the CLI loads it
    config = rl_config(smoke)
    assert policy.vocab_size == 262144 and sum(p.numel() for p in policy.module.parameters()) == 4_199_088
    assert isinstance(policy, HFPolicy) and policy._keeps_logits()  # the 262k head only at completion positions
    finished: list[Episode] = []
    step = environment.step

    def recording_step(history, completion):
        result = step(history, completion)
        if result.done:
            finished.append(history)
        return result

    environment.step = recording_step
    before = {name: p.detach().clone() for name, p in policy.module.named_parameters()}
    history = train(config, policy, environment, tasks)  # a retrieval and a clarification task, 2 iterations
    environment.close()
    assert len(history) == 2 and len(finished) == 2 * 2 * config.group_size
    assert all(math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"]) for m in history)
    assert any(m["signal_group_fraction"] > 0 for m in history)
    changed = [name for name, p in policy.module.named_parameters() if not torch.equal(before[name], p.detach())]
    assert len(changed) == len(before)
    for episode in finished:
        assert episode.info["turns"] == len(episode.segments) <= 2
        for turn, segment in enumerate(episode.segments):
            mask = segment.token_mask
            assert len(mask) == len(segment.completion_ids) and mask[0] == 1
            assert "<result>" not in policy.detokenize(segment.completion_ids)
            if turn:  # the tool output (or format hint) of the previous turn is in this prompt, untrained
                assert "<result>" in policy.detokenize(segment.prompt_ids[-200:])


@pytest.mark.slow
def test_cli_train_saves_its_config_checkpoints_and_resumes(one_torch_thread, tiny_gemma_dir, tmp_path) -> None:
    import yaml
    from typer.testing import CliRunner

    from reasonlab.errors import UserError
    from reasonlab.runs import Run
    from reasonlab.systems.memagent.cli import app

    args = ["train", "--policy", f"hf:{tiny_gemma_dir}", "--set", "rl.iterations=1", "--set",
            "environment.success_reward=3", "--seed", "1002", "--out", str(tmp_path), "--name", "t"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 iterations; last reward 0.037, loss 0.0000\nrun: " in result.output
    run = Run.open(tmp_path / "t")
    saved = yaml.safe_load(run.config_path.read_text())
    assert (saved["policy"], saved["seed"], saved["rl"]["iterations"], saved["rl"]["loss_type"]) == (
        f"hf:{tiny_gemma_dir}", 1002, 1, "gspo")
    assert saved["environment"]["success_reward"] == 3 and saved["environment"]["agent"]["max_turns"] == 2
    assert [m["iteration"] for m in run.metrics()] == [0] and any(run.checkpoint_dir.iterdir())
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, UserError) and "already exists: pass --resume" in str(again.exception)
    resumed = CliRunner().invoke(app, [*args, "--resume"])  # the checkpoint is the last iteration: nothing to do
    assert resumed.exit_code == 0 and [m["iteration"] for m in run.metrics()] == [0]
    fresh = CliRunner().invoke(app, [*args, "--name", "u", "--resume"])
    assert isinstance(fresh.exception, UserError) and "no RL checkpoint to continue" in str(fresh.exception)
    assert not (tmp_path / "u").exists()  # refused before anything is written
    typo = CliRunner().invoke(app, ["train", "--set", "rl.iteration=1", "--out", str(tmp_path)])
    assert isinstance(typo.exception, UserError) and "has no option 'rl.iteration'" in str(typo.exception)
    nested = CliRunner().invoke(app, ["train", "--set", "rl.sampling.temprature=0.5", "--out", str(tmp_path)])
    assert isinstance(nested.exception, UserError) and "'rl.sampling.temprature'" in str(nested.exception)


@pytest.mark.slow
def test_cli_train_with_lora_trains_only_the_adapter_and_saves_a_merged_model(one_torch_thread, tiny_gemma_dir,
                                                                             tmp_path) -> None:
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from reasonlab.llm import load_llm
    from reasonlab.runs import Run
    from reasonlab.systems.memagent.cli import app
    from reasonlab.train.rl import CHECKPOINT_NAME

    args = ["train", "--policy", f"hf:{tiny_gemma_dir}", "--set", "rl.iterations=1", "--set", "rl.beta=0.04",
            "--set", "rl.learning_rate=0.01", "--set", "lora.r=4", "--set", "lora.alpha=8", "--seed", "1002",
            "--out", str(tmp_path), "--name", "lora"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "lora")
    (metrics,) = run.metrics()
    assert metrics["kl"] >= 0 and math.isfinite(metrics["kl"]) and metrics["grad_norm"] > 0
    state = torch.load(run.checkpoint_dir / CHECKPOINT_NAME, weights_only=False)
    assert state["parameters"] and all("lora_" in name for name in state["parameters"])  # the adapter alone
    base, trained = load_file(tiny_gemma_dir / "model.safetensors"), load_file(tmp_path / "lora" / "model" / "model.safetensors")
    assert set(trained) == set(base)  # merged: a plain model folder, no adapter keys
    embedding = next(name for name in base if "embed_tokens" in name)
    assert torch.equal(trained[embedding], base[embedding])  # the tied 262k-row embedding is untouched
    changed = [name for name in base if not torch.equal(trained[name], base[name])]
    assert changed and all("proj" in name for name in changed)
    policy = load_llm(f"hf:{tmp_path / 'lora' / 'model'}")
    assert sum(p.numel() for p in policy.module.parameters()) == 4_199_088
    typo = CliRunner().invoke(app, ["train", "--set", "lora.rank=4", "--out", str(tmp_path)])
    assert "'lora.rank'" in str(typo.exception) and not (tmp_path / "train-smoke").exists()  # refused before a run
