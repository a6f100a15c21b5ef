"""Expert trajectories and SFT of the memory agent: training seeds disjoint from the benchmark's, the recorder
plays the scripted agent exactly, examples hold the agent's own prompts with the loss on assistant turns only,
and a tiny model trained for a few steps on them makes the expert turns more likely (and resumes)."""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil

import pytest

from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.memagent.agent import Agent
from reasonlab.systems.memagent.config import SFT_PRESETS, TRAINED_AGENT, SFTTrainConfig
from reasonlab.systems.memagent.data import generate_bench
from reasonlab.systems.memagent.evaluation import scripted_policy
from reasonlab.systems.memagent.memory import Memory
from reasonlab.systems.memagent.trajectories import (
    record_trajectories,
    reword,
    training_tasks,
    trajectory_examples,
    trajectory_prompts,
)
from reasonlab.systems.memagent.turns import clean_code

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_training_seeds_never_meet_a_benchmark_memory():
    with pytest.raises(ValueError, match="benchmark seed"):
        training_tasks([999])
    with pytest.raises(ValueError, match="benchmark seed"):
        SFTTrainConfig(seeds=[5])
    memories, tasks = training_tasks(range(1000, 1003), memories_per_seed=2, tasks_per_category=2)
    bench = [m for seed in range(10) for m in generate_bench(seed, 2, 2)[0]]
    bench_files = {json.dumps(m.files, sort_keys=True) for m in bench}
    assert not bench_files & {json.dumps(m.files, sort_keys=True) for m in memories}
    assert not {m.memory_id for m in bench} & {m.memory_id for m in memories}
    assert len(tasks) == 3 * 4 * 2


def test_reword_uses_templates_the_benchmark_never_uses():
    rng = random.Random(0)
    worded = {reword("What is the phone number of my friend Ana Reyes?", rng) for _ in range(40)}
    assert len(worded) >= 5 and all("the phone number of my friend Ana Reyes" in q for q in worded)
    assert not any(q.startswith("What is") for q in worded)
    update = reword("Please update my memory: my email address is now a@b.org.", random.Random(1))
    assert update.endswith("my email address is now a@b.org.") and not update.startswith("Please update")
    assert "Ana Reyes" in reword("When was my friend Ana Reyes born?", rng)
    with pytest.raises(ValueError, match="no rewording"):
        reword("Who is Ana?", rng)
    # every generated question has a rewording, and none keeps the benchmark's opening
    bench_openings = {" ".join(q.question.split()[:2]) for seed in range(3) for q in generate_bench(seed, 2, 3)[1]}
    _, worded_tasks = training_tasks([1000, 1001])
    assert not {" ".join(t.question.split()[:2]) for t in worded_tasks} & bench_openings


def _first_word(text: str) -> str:
    return text.split()[0].lower().strip(",:.?!")


def test_training_wordings_are_questions_too_and_never_open_like_a_handwritten_question():
    """Interrogative forms as well as requests (a model trained on requests alone took questions for updates),
    none opening with the first word of any hand-written question or follow-up (that style stays unseen)."""
    from reasonlab.systems.memagent import trajectories
    from reasonlab.systems.memagent.handwritten import load_handwritten

    forms = [form for _, group in trajectories._REWORDINGS for form in group]
    assert sum(form.endswith("?") for form in trajectories._QUESTION_FORMS) >= 4
    handwritten = {_first_word(q) for task in load_handwritten()[1]
                   for q in (task.question, task.followup_question) if q}
    assert "what" in handwritten and "what's" in handwritten  # the check below has something to bite on
    assert not {_first_word(form) for form in forms} & handwritten
    _, worded_tasks = training_tasks([1000, 1001, 1002])
    assert not {_first_word(task.question) for task in worded_tasks} & handwritten


def test_training_memories_share_no_name_with_the_benchmark_or_the_handwritten_set():
    from reasonlab.systems.memagent.data import BENCH_POOLS, TRAIN_POOLS
    from reasonlab.systems.memagent.handwritten import load_handwritten

    train_names = {*TRAIN_POOLS.first_names, *TRAIN_POOLS.last_names, *TRAIN_POOLS.pet_names,
                   *(c[0] for c in TRAIN_POOLS.companies), *(c[0] for c in TRAIN_POOLS.cities)}
    bench_names = {*BENCH_POOLS.first_names, *BENCH_POOLS.last_names, *BENCH_POOLS.pet_names,
                   *(c[0] for c in BENCH_POOLS.companies), *(c[0] for c in BENCH_POOLS.cities)}
    assert not train_names & bench_names
    memories, _ = training_tasks(range(1000, 1010))
    text = " ".join(f for m in memories for f in m.files.values())
    assert not any(re.search(rf"\b{re.escape(name)}\b", text) for name in bench_names)
    handwritten = " ".join(f for m in load_handwritten()[0] for f in m.files.values())
    assert not any(re.search(rf"\b{re.escape(name)}\b", handwritten) for name in train_names)


def test_the_recorder_plays_the_scripted_agent_exactly(tmp_path):
    memories, tasks = training_tasks([1001], tasks_per_category=2)
    trajectories = record_trajectories(tasks, memories, TRAINED_AGENT)
    assert all(t.correct for t in trajectories) and {t.task.category for t in trajectories} == {
        "retrieval", "update", "clarification", "filter"}
    by_id = {m.memory_id: m for m in memories}
    for trajectory in trajectories:
        task = trajectory.task
        # the oracle's tool calls, one per turn, then its reply; each result came from the sandboxed tools
        assert [r.turn.python for r in trajectory.turns[:-1]] == [clean_code(code) for code in task.oracle_code]
        assert trajectory.reply == task.oracle_reply == trajectory.turns[-1].turn.reply
        assert all(r.tool_run is not None and r.tool_run.error is None for r in trajectory.turns[:-1])
        # the same episode played by the agent loop on its own: identical completions and results, and the
        # prompt texts the loop rendered are exactly the SFT examples' prompts
        script = scripted_policy(task)  # keeps every prompt text it was asked to complete
        config = TRAINED_AGENT.model_copy(update={"max_tokens_per_turn": 1 << 16})
        result = Agent(script, Memory.from_files(tmp_path / task.task_id, by_id[task.memory_id].files),
                       config).run(task.question, task.filters)
        assert [r.completion for r in result.turns] == [r.completion for r in trajectory.turns]
        assert [r.feedback() for r in result.turns] == [r.feedback() for r in trajectory.turns]
        examples = trajectory_examples([trajectory], TRAINED_AGENT, script)
        assert [script.detokenize(e.prompt) for e in examples] == script.prompts
        assert [script.detokenize(e.completion) for e in examples] == [r.completion for r in trajectory.turns]


def _think(completion: str) -> str:
    return completion.split("</think>", 1)[0].removeprefix("<think>")


def test_each_thought_after_the_first_quotes_the_line_of_the_last_result_that_decides_the_move():
    memories, tasks = training_tasks([1003], tasks_per_category=3)
    for trajectory in record_trajectories(tasks, memories, TRAINED_AGENT):
        task, turns = trajectory.task, trajectory.turns
        assert "`" not in _think(turns[0].completion)  # nothing read yet, nothing to quote
        for previous, record in itertools.pairwise(turns):
            think, result = _think(record.completion), previous.feedback()
            quotes = re.findall(r"`([^`]+)`", think)
            if record.turn.reply is not None and task.category in ("clarification", "update"):
                assert quotes == []  # no line answers it (so it asks) / the update's result is True
                assert think.endswith("so I ask." if task.category == "clarification" else "the new fact.")
                continue
            # the quoted line is a line of the result that led here
            assert len(quotes) == 1 and quotes[0] in result, (think, result)
            if record.turn.reply is not None and task.category == "retrieval":
                assert task.answer in quotes[0] and think.endswith("I found it.")
            elif record.turn.reply is None:
                target = re.search(r'"(?:\[\[)?([^"\]]+)', record.turn.python or "").group(1)
                # a read quotes the link to the file it opens; an update quotes the line it replaces
                assert target in quotes[0] or quotes[0] in (record.turn.python or ""), (think, record.turn.python)


def test_prompts_drop_older_thinks_and_keep_results_out_of_completions():
    memories, tasks = training_tasks([1002], tasks_per_category=1)
    trajectory = record_trajectories([t for t in tasks if t.category == "retrieval"], memories, TRAINED_AGENT)[0]
    pairs = trajectory_prompts(trajectory, TRAINED_AGENT)
    assert len(pairs) == len(trajectory.turns) >= 2
    for k, (messages, completion) in enumerate(pairs):
        assert [m.role for m in messages] == ["system", "user"] + ["assistant", "user"] * k
        assert "<think>" not in "".join(m.content for m in messages if m.role == "assistant")
        assert completion.startswith("<think>") and "<result>" not in completion


def test_the_sft_loss_covers_only_assistant_turns(tiny_gemma_dir):
    from reasonlab.llm import load_llm
    from reasonlab.train.sft import encode_example

    policy = load_llm(f"hf:{tiny_gemma_dir}")
    memories, tasks = training_tasks([1003], tasks_per_category=1)
    trajectories = record_trajectories(tasks, memories, TRAINED_AGENT)
    examples = trajectory_examples(trajectories, TRAINED_AGENT, policy)
    assert len(examples) == sum(len(t.turns) for t in trajectories)
    turns = [(t, k) for t in trajectories for k in range(len(t.turns))]
    for example, (trajectory, k) in zip(examples, turns, strict=True):
        prompt, completion = encode_example(policy, example)
        # the prompt is exactly what generation feeds the model before turn k
        messages = trajectory_prompts(trajectory, TRAINED_AGENT)[k][0]
        assert prompt == policy.prompt_ids(messages) and policy.detokenize(prompt).endswith("Assistant:")
        # the trained tokens are the turn and the EOS that ends it, no more, no less
        assert completion[-1] == policy.eos_token_id
        assert policy.detokenize(completion[:-1]) == trajectory.turns[k].completion
        # every earlier turn and every tool result is in the prompt, never in the trained tokens
        text = policy.detokenize(prompt)
        assert text.count("<result>") == k and "<result>" not in policy.detokenize(completion)


def test_a_few_sft_steps_make_the_expert_turns_likelier_and_resume(tiny_gemma_dir, tmp_path):
    from reasonlab.llm import load_llm
    from reasonlab.systems.memagent.training import train_sft
    from reasonlab.train.sft import completion_loss

    config = SFT_PRESETS["smoke"].model_copy(update={
        "policy": f"hf:{tiny_gemma_dir}", "held_out": 0.0,
        "sft": {**SFT_PRESETS["smoke"].sft, "max_steps": 6, "learning_rate": 2e-2, "checkpoint_every": 3}})
    memories, tasks = training_tasks(config.seeds, config.memories_per_seed, config.tasks_per_category)
    base = load_llm(config.policy)
    examples = trajectory_examples(record_trajectories(tasks, memories, config.agent), config.agent, base)
    before = completion_loss(base, examples)
    run_dir = train_sft(config, tmp_path, "sft")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["examples"] == len(examples)
    assert summary["completion_tokens"] > 0 and summary["peak_rss_gb"] > 0
    assert (run_dir / "trajectories.jsonl").read_text().count("\n") == len(tasks)
    trained = load_llm(f"hf:{run_dir / 'model'}")  # the saved model loads as hf:PATH
    after = completion_loss(trained, examples)
    assert after < before - 0.5, (before, after)
    # a finished run resumes to itself; a killed one (no summary, no model) continues from its step-3
    # checkpoint to the same losses and model as the run that never stopped
    assert train_sft(config, tmp_path, "sft", resume=True) == run_dir
    (run_dir / "summary.json").unlink()
    shutil.rmtree(run_dir / "model")
    losses = [r["loss"] for r in Run.open(run_dir).metrics() if r.get("kind") == "sft" and "loss" in r]
    resumed = train_sft(config, tmp_path, "sft", resume=True)
    again = json.loads((resumed / "summary.json").read_text())
    assert again["steps"] == 6 and again["last_loss"] == pytest.approx(summary["last_loss"], rel=1e-4)
    resumed_losses = [r["loss"] for r in Run.open(run_dir).metrics() if r.get("kind") == "sft" and "loss" in r]
    assert resumed_losses == pytest.approx(losses, rel=1e-4) and len(resumed_losses) == 6
    assert completion_loss(load_llm(f"hf:{run_dir / 'model'}"), examples) == pytest.approx(after, rel=1e-4)
    with pytest.raises(UserError, match="config"):  # a finished run with another config is not reused
        train_sft(config.model_copy(update={"seed": 5}), tmp_path, "sft", resume=True)
