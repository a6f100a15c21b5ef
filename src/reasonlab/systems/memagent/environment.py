"""The mem-agent RL environment for reasonlab.train.rl (spec §7, §8, §12): one segment per assistant turn.

`reset(task)` gives the first prompt; `step(episode, completion)` parses the turn, runs its code on the
episode's own copy of the memory, and returns the next prompt (holding the <result>, so tool output is never
a trained token) or the end of the episode. Prompts come from the agent's own `Agent.build_prompt` and turns
go through `Agent.act`, so training and inference see identical text.

Rewards, with T the turn cap and t the 0-based turn:
- success (the deterministic judges of judges.py) times `success_reward` = 2 (the paper doubled it);
- a python step earns `0.15 * max(floor, 1 - 2t/T)`: it decays to zero at T/2 and, with the default floor
  -1, turns negative after that (the paper's final form); floor 0 gives the early code's `max(0, .)`;
  turns without a valid python block get only the negative part, so late garbage is no escape;
- `0.2` once when turn 0 reads (or checks) user.md without error;
- `-0.2` when the episode hits the cap without a reply;
- the episode's cumulative shaping is clipped to [shaping_min, shaping_max].
A policy that never replies and calls tools to the cap (reward farming) ends with less than one that replies
in two turns, right or wrong: see `reward_table`.

Deviations: update success is the fact check alone (no fresh retrieval agent inside RL rollouts); tokens
the model wrote after its action (cut by `cut_action`) are masked, since they never enter the history.
"""

from __future__ import annotations

import ast
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.llm import LLM, Generation, Message
from reasonlab.systems.memagent.agent import Agent, TurnRecord
from reasonlab.systems.memagent.config import MemAgentEnvConfig
from reasonlab.systems.memagent.data import BenchTask, MemoryScenario
from reasonlab.systems.memagent.judges import JudgeCase, judge_case
from reasonlab.systems.memagent.memory import Memory
from reasonlab.systems.memagent.turns import cut_action
from reasonlab.train.rl import Episode, Step

__all__ = [
    "MemAgentEnvironment",
    "action_mask",
    "clip_shaping",
    "reward_table",
    "turn_shaping",
]


def turn_shaping(t: int, max_turns: int, valid_python: bool, reads_user_md: bool, config: MemAgentEnvConfig) -> float:
    """The shaping reward of turn t (before the cap penalty and the clip).

    >>> round(turn_shaping(0, 8, True, True, MemAgentEnvConfig()), 3)
    0.35
    >>> round(turn_shaping(6, 8, True, False, MemAgentEnvConfig()), 3)
    -0.075
    """
    factor = max(config.decay_floor, 1 - 2 * t / max_turns)
    reward = config.python_step_reward * (factor if valid_python else min(0.0, factor))
    if t == 0 and valid_python and reads_user_md:
        reward += config.user_md_bonus * max(0.0, factor)
    return reward


def clip_shaping(total: float, shaping: float, config: MemAgentEnvConfig) -> tuple[float, float]:
    """(this turn's reward, the new cumulative shaping) with the cumulative shaping kept in the clip range."""
    clipped = min(config.shaping_max, max(config.shaping_min, total + shaping))
    return clipped - total, clipped


def _valid_python(record: TurnRecord) -> bool:
    if record.turn.problem is not None or not record.turn.python:
        return False
    try:
        ast.parse(record.turn.python)
    except SyntaxError:
        return False
    return True


def action_mask(completion: Generation, detokenize: Any) -> list[int] | None:
    """1 on the tokens up to the end of the action, 0 on tokens that wrote text after it; None = all 1."""
    text, ids = completion.text, completion.token_ids
    end = len(cut_action(text))
    if end >= len(text.rstrip()) or not ids:
        return None
    # smallest prefix of tokens whose text covers the action (prefix text length grows with the prefix)
    low, high = 1, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(detokenize(ids[:middle])) >= end:
            high = middle
        else:
            low = middle + 1
    return [1] * low + [0] * (len(ids) - low)


@dataclass
class _EpisodeState:
    memory: Memory
    before: dict[str, str]
    records: list[TurnRecord] = field(default_factory=list)
    shaping: float = 0.0


class MemAgentEnvironment:
    """Step-wise environment over generated memories; `llm` is the policy (it renders the prompts)."""

    def __init__(self, llm: LLM, memories: Sequence[MemoryScenario], config: MemAgentEnvConfig | None = None,
                 workdir: str | Path | None = None) -> None:
        self.llm = llm
        self.config = config or MemAgentEnvConfig()
        self.memories = {m.memory_id: m for m in memories}
        self._scratch = tempfile.TemporaryDirectory(prefix="reasonlab-memagent-env-")
        self.root = Path(workdir or self._scratch.name)
        self._templates: dict[str, Memory] = {}
        self._episodes = 0

    @property
    def max_turns(self) -> int:
        return self.config.agent.max_turns

    def _template(self, memory_id: str) -> Memory:
        if memory_id not in self._templates:
            self._templates[memory_id] = Memory.from_files(self.root / "templates" / memory_id,
                                                           self.memories[memory_id].files)
        return self._templates[memory_id]

    def _agent(self, memory: Memory) -> Agent:
        return Agent(self.llm, memory, self.config.agent)

    def reset(self, task: BenchTask) -> list[Message]:
        return self._agent(self._template(task.memory_id)).build_prompt(task.question, [], task.filters)

    def _state(self, episode: Episode) -> _EpisodeState:
        state = episode.info.get("memagent")
        if state is None:
            self._episodes += 1
            memory = self._template(episode.task.memory_id).copy_to(self.root / "episodes" / str(self._episodes))
            state = _EpisodeState(memory, memory.files())
            episode.info["memagent"] = state
        return state

    def step(self, history: Episode, completion: Generation) -> Step:
        task: BenchTask = history.task
        state = self._state(history)
        t = len(history.segments) - 1
        agent = self._agent(state.memory)
        record = agent.act(completion.text, completion.prompt_tokens, completion.completion_tokens)
        state.records.append(record)
        if self.config.mask_after_action:
            history.segments[-1].mask = action_mask(completion, self.llm.detokenize)
        reads_user_md = "user.md" in record.turn.python and record.tool_run is not None and not record.tool_run.error
        shaping = turn_shaping(t, self.max_turns, _valid_python(record), reads_user_md, self.config)
        replied = record.turn.reply is not None and record.turn.problem is None
        if not replied and t + 1 >= self.max_turns:
            shaping -= self.config.cap_penalty
        segment_reward, state.shaping = clip_shaping(state.shaping, shaping, self.config)
        if replied or t + 1 >= self.max_turns:
            success = replied and self.success(task, state, record.turn.reply)
            history.info.update(success=bool(success), turns=t + 1, replied=replied)
            self._close(history, state)
            return Step.finish(self.config.success_reward * float(success), segment_reward=segment_reward)
        return Step.next(agent.build_prompt(task.question, state.records, task.filters), segment_reward=segment_reward)

    def success(self, task: BenchTask, state: _EpisodeState, reply: str | None) -> bool:
        """The deterministic judge of the task's category; an update is judged on its facts alone."""
        case = JudgeCase(category=task.category, question=task.question, reply=reply,
                         answer=None if task.category == "update" else task.answer, filters=task.filters,
                         blocked=list(task.blocked), allowed=list(task.allowed), memory_before=state.before,
                         memory_after=state.memory.files(), expected_facts=list(task.expected_facts))
        return judge_case(case).correct

    def _close(self, episode: Episode, state: _EpisodeState) -> None:
        episode.info.pop("memagent", None)
        shutil.rmtree(state.memory.root, ignore_errors=True)

    def close(self) -> None:
        self._scratch.cleanup()


def reward_table(config: MemAgentEnvConfig | None = None) -> dict[str, float]:
    """Cumulative reward of typical behaviours under `config` (the spec asks to tabulate it against farming):
    solve (or answer wrongly) after k-1 tool turns that start by reading user.md, and farm to the cap."""
    config = config or MemAgentEnvConfig()
    T = config.agent.max_turns

    def episode(tool_turns: int, replies: bool, correct: bool) -> float:
        shaping = 0.0
        for t in range(tool_turns):
            reward = turn_shaping(t, T, True, t == 0, config)
            _, shaping = clip_shaping(shaping, reward - (config.cap_penalty if t + 1 >= T else 0.0), config)
        if replies:
            _, shaping = clip_shaping(shaping, turn_shaping(tool_turns, T, False, False, config), config)
        return round(shaping + config.success_reward * correct, 4)

    table = {f"solve_in_{k}_turns": episode(k - 1, True, True) for k in range(1, T + 1)}
    table.update({f"wrong_in_{k}_turns": episode(k - 1, True, False) for k in (1, 2, 4)})
    table["farm_to_cap"] = episode(T, False, False)
    return table
