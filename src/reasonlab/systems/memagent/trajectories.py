"""Expert trajectories for training the memory agent: generated tasks on training seeds, played by the scripted
correct agent through the real agent loop and sandbox, and turned into SFT examples in exactly the text the
agent reads and writes at inference.

- Training memories are drawn from `data.TRAIN_POOLS`: people, companies (and their industries), cities and
  pets that no benchmark memory (BENCH_POOLS) and no hand-written task has, so other names, facts and file
  names. Training seeds start at `TRAIN_SEED_MIN` (1000; benchmark seeds are 0-999).
- Questions are reworded (`reword`, on by default) into templates the benchmark never uses, so the model
  learns the procedure rather than the benchmark's wording.
- `record_trajectory` runs `evaluation.scripted_policy(task)` with `Agent.run`, so each turn's completion and
  the `<result>` it got back are what the agent loop produced. Update tasks train on the update episode (their
  follow-up reader in evaluation.py opens the file it was told to, which a model cannot know).
- `trajectory_examples` gives one SFT example per assistant turn: the prompt is `agent_prompt(...)` for that turn
  (older `<think>` blocks dropped, as at inference), the completion is the turn, so the loss covers assistant
  turns only and never a tool result.

    memories, tasks = training_tasks(range(1000, 1040))
    trajectories = record_trajectories(tasks, memories, TRAINED_AGENT)
    examples = trajectory_examples(trajectories, TRAINED_AGENT, policy)
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reasonlab.llm import LLM, Message
from reasonlab.systems.memagent.agent import Agent, AgentConfig, TurnRecord, agent_prompt
from reasonlab.systems.memagent.config import TRAIN_SEED_MIN
from reasonlab.systems.memagent.data import TRAIN_POOLS, BenchTask, MemoryScenario, generate_bench
from reasonlab.systems.memagent.evaluation import Attempt, judge_attempt, scripted_policy
from reasonlab.systems.memagent.judges import judge_case
from reasonlab.systems.memagent.memory import Memory
from reasonlab.train.sft import Example

__all__ = [
    "TRAIN_SEED_MIN",
    "Trajectory",
    "record_trajectories",
    "record_trajectory",
    "reword",
    "training_tasks",
    "trajectory_examples",
    "trajectory_prompts",
    "write_trajectories",
]

# other wordings than the benchmark's, and none opening with the first word of a hand-written question (the
# held-out style stays unseen); "{x}" is the rest of the sentence. Questions as well as requests: a model trained
# on requests alone (commit b7378a6) took the benchmark's "What is ...?" for an update request
_QUESTION_FORMS = ("Look up {x} for me.", "I need {x}.", "Please find {x}.", "Could you check {x}?",
                   "Give me {x}.", "Find {x} in my notes.", "Could you tell me {x}?", "Any idea what {x} is?",
                   "Would you know {x}?", "May I know {x}?")
_UPDATE_FORMS = ("Note that {x}", "FYI, {x}", "Update: {x}", "Please remember that {x}", "Correction: {x}",
                 "Change my notes: {x}")
_BORN_FORMS = ("Look up when {x} was born.", "I need to know when {x} was born.", "Find the birth year of {x}.",
               "Any idea when {x} was born?", "Would you know when {x} was born?")
_PAIR_FORMS = ("I need the occupation and the {x}.", "Look up the occupation and the {x}.",
               "Could you tell me the occupation and the {x}?")
_REWORDINGS = (
    (re.compile(r"^What is (.+)\?$"), _QUESTION_FORMS),
    (re.compile(r"^Please update my memory: (.+)$"), _UPDATE_FORMS),
    (re.compile(r"^When was (.+) born\?$"), _BORN_FORMS),
    (re.compile(r"^What are the occupation and the (.+)\?$"), _PAIR_FORMS),
)


def reword(question: str, rng: random.Random) -> str:
    """The question in a randomly chosen template that the benchmark never uses ("What is my email address?"
    -> "Look up my email address for me."); every question shape of the generator has its own forms."""
    for pattern, forms in _REWORDINGS:
        if match := pattern.match(question):
            return rng.choice(forms).format(x=match.group(1))
    raise ValueError(f"no rewording for the question {question!r}: add its shape to trajectories._REWORDINGS")


def training_tasks(seeds: Iterable[int], memories_per_seed: int = 2, tasks_per_category: int = 4,
                   reworded: bool = True) -> tuple[list[MemoryScenario], list[BenchTask]]:
    """Generated memories and tasks on training seeds (each >= TRAIN_SEED_MIN, so disjoint from every benchmark
    seed), questions reworded unless `reworded=False`."""
    memories: list[MemoryScenario] = []
    tasks: list[BenchTask] = []
    for seed in seeds:
        if seed < TRAIN_SEED_MIN:
            raise ValueError(f"training seed {seed} is a benchmark seed: use seeds >= {TRAIN_SEED_MIN}")
        seed_memories, seed_tasks = generate_bench(seed, memories_per_seed, tasks_per_category, TRAIN_POOLS)
        rng = random.Random(seed)
        memories += seed_memories
        tasks += [replace(task, question=reword(task.question, rng)) if reworded else task for task in seed_tasks]
    return memories, tasks


@dataclass
class Trajectory:
    """The scripted correct agent's episode on one task: its turns (completion, parsed turn, tool run) and
    whether the deterministic judge accepts the result."""

    task: BenchTask
    turns: list[TurnRecord]
    reply: str | None
    correct: bool

    def to_dict(self) -> dict[str, Any]:
        """What the run keeps in trajectories.jsonl: the task, and per turn the completion and its feedback."""
        return {"task": self.task.to_dict(), "reply": self.reply, "correct": self.correct,
                "turns": [{"completion": r.completion, "feedback": r.feedback()} for r in self.turns]}


def record_trajectory(task: BenchTask, scenario: MemoryScenario, config: AgentConfig, workdir: str | Path) -> Trajectory:
    """Play the scripted oracle on a fresh copy of the task's memory (under `workdir`) through `Agent.run`."""
    memory = Memory.from_files(Path(workdir) / task.task_id, scenario.files)
    before = memory.files()
    # a scripted policy's "tokens" are characters: the turn budget must not cut its turns
    config = config.model_copy(update={"max_tokens_per_turn": 1 << 16})
    result = Agent(scripted_policy(task), memory, config).run(task.question, task.filters)
    case = judge_attempt(task, Attempt(result.reply), before, memory.files())
    if task.category == "update":  # judged on its facts, as in the RL environment: no follow-up episode here
        case = replace(case, answer=None)
    verdict = judge_case(case)
    return Trajectory(task, list(result.turns), result.reply, bool(verdict.correct))


def record_trajectories(tasks: Sequence[BenchTask], memories: Sequence[MemoryScenario], config: AgentConfig,
                        on_task: Callable[[int], None] | None = None) -> list[Trajectory]:
    """One trajectory per task, each on its own memory copy in a temporary folder."""
    by_id = {m.memory_id: m for m in memories}
    trajectories = []
    with tempfile.TemporaryDirectory(prefix="reasonlab-memagent-trajectories-") as workdir:
        for index, task in enumerate(tasks):
            trajectories.append(record_trajectory(task, by_id[task.memory_id], config, workdir))
            if on_task is not None:
                on_task(index + 1)
    return trajectories


def trajectory_prompts(trajectory: Trajectory, config: AgentConfig) -> list[tuple[list[Message], str]]:
    """(the chat messages before turn k, turn k's completion) for every assistant turn of the episode."""
    task = trajectory.task
    return [(agent_prompt(config, task.question, trajectory.turns[:k], task.filters), record.completion)
            for k, record in enumerate(trajectory.turns)]


def trajectory_examples(trajectories: Sequence[Trajectory], config: AgentConfig, policy: LLM) -> list[Example]:
    """SFT examples as token ids, one per assistant turn of each correct trajectory: the prompt is
    `policy.prompt_ids(messages)`, exactly what `LLM.complete` feeds the model for that turn (its chat template,
    or the plain transcript of a base model), and the completion is the turn tokenized on its own, as the model
    writes it. (Tokenizing prompt and turn as one text would merge "Assistant:" with "<think>" on Gemma's
    tokenizer, and the model would learn a prompt it never sees.)"""
    return [Example(policy.prompt_ids(messages), policy.tokenize(completion, add_special_tokens=False))
            for trajectory in trajectories if trajectory.correct
            for messages, completion in trajectory_prompts(trajectory, config)]


def write_trajectories(trajectories: Sequence[Trajectory], path: str | Path) -> None:
    """Every trajectory as one JSON line (atomically)."""
    from reasonlab.runs import atomic_write_text

    atomic_write_text(Path(path), "".join(json.dumps(t.to_dict()) + "\n" for t in trajectories))
