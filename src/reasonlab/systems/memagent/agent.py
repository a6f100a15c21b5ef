"""The agent loop (spec §3): think, run Python on the memory, read the result, until a reply or the turn cap.

    from reasonlab.llm import load_llm
    agent = Agent(load_llm("hf:embedded"), Memory("memory"))
    result = agent.run("Where does my sister work?", filters="never reveal salaries")
    result.reply, result.stopped, len(result.turns)

Works with any `LLM`. The prompt is a list of chat messages (system, few-shot episodes, the question, then
one assistant/user pair per turn), which the LLM renders with its chat template or, for a base model such
as Gemma-3-270M, as a plain `User:` / `Assistant:` transcript. `build_prompt` and `act` are the same code
the RL environment uses, so training and inference see identical turns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from reasonlab.llm import LLM, Message
from reasonlab.systems.memagent import prompts
from reasonlab.systems.memagent.config import AgentConfig
from reasonlab.systems.memagent.memory import Memory
from reasonlab.systems.memagent.prompts import few_shot_messages, question_message, system_message
from reasonlab.systems.memagent.tools import ToolRun, run_tools, sandbox_limits
from reasonlab.systems.memagent.turns import AgentTurn, cut_action, drop_think, parse_turn, turn_sampling

__all__ = ["Agent", "AgentConfig", "AgentResult", "TurnRecord", "agent_prompt"]


@dataclass
class TurnRecord:
    """One assistant turn: the (cut) completion, how it parsed, and the tool run it caused."""

    completion: str
    turn: AgentTurn
    tool_run: ToolRun | None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def feedback(self, max_chars: int | None = None) -> str | None:
        """The user message that answers this turn: the result block, a format hint, or None after a reply."""
        if self.tool_run is not None:
            return self.tool_run.result_block(max_chars)
        if self.turn.problem is not None:
            return prompts.FORMAT_ERROR.format(problem=self.turn.problem)
        return None


@dataclass
class AgentResult:
    """One episode: the reply (None at the turn cap), every turn, and its cost."""

    reply: str | None
    turns: list[TurnRecord]
    stopped: Literal["reply", "turn_cap"]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    changed: list[str] = field(default_factory=list)


def agent_prompt(config: AgentConfig, question: str, history: Sequence[TurnRecord],
                 filters: str | None = None) -> list[Message]:
    """The chat messages for the next turn: instructions, examples, question, then each earlier turn. The agent
    and the SFT examples (trajectories.py) both build prompts here, so they see identical text."""
    messages = [system_message(config.tool_wall_seconds, config.system)]
    if config.few_shot:
        messages += few_shot_messages()
    messages.append(question_message(question, filters))
    for record in history:
        completion = drop_think(record.completion) if config.drop_old_think else record.completion
        messages.append(Message("assistant", completion))
        feedback = record.feedback(config.max_result_chars)
        if feedback is not None:
            messages.append(Message("user", feedback))
    return messages


class Agent:
    """Answers questions about (and updates) one memory folder through sandboxed Python tool calls."""

    def __init__(self, llm: LLM, memory: Memory, config: AgentConfig | None = None) -> None:
        self.llm = llm
        self.memory = memory
        self.config = config or AgentConfig()

    def build_prompt(self, question: str, history: list[TurnRecord], filters: str | None = None) -> list[Message]:
        """The chat messages for the next turn: instructions, examples, question, then each earlier turn."""
        return agent_prompt(self.config, question, history, filters)

    def act(self, completion: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> TurnRecord:
        """Parse one completion and run its code on the memory (nothing runs for a reply or a format error)."""
        completion = cut_action(completion)
        turn = parse_turn(completion)
        tool_run = None
        if turn.problem is None and turn.reply is None:
            limits = sandbox_limits(self.memory.limits, self.config.tool_wall_seconds, self.config.tool_cpu_seconds,
                                    self.config.tool_memory_mb)
            tool_run = run_tools(turn.python, self.memory, limits, mode=self.config.sandbox_mode)
        return TurnRecord(completion, turn, tool_run, prompt_tokens, completion_tokens)

    def run(self, question: str, filters: str | None = None,
            on_turn: Callable[[TurnRecord], None] | None = None) -> AgentResult:
        """Run turns until the model replies or the turn cap; `on_turn` sees each turn as it ends."""
        started = time.perf_counter()
        config = self.config
        history: list[TurnRecord] = []
        for index in range(config.max_turns):
            # a different seed per turn: the same seed on a grown prompt would correlate the samples
            seed = None if config.seed is None else config.seed + index
            params = turn_sampling(config.max_tokens_per_turn, config.temperature, seed, config.constrained)
            generation = self.llm.complete(self.build_prompt(question, history, filters), params)
            record = self.act(generation.text, generation.prompt_tokens, generation.completion_tokens)
            history.append(record)
            if on_turn is not None:
                on_turn(record)
            if record.turn.reply is not None and record.turn.problem is None:
                return self._result(record.turn.reply, history, "reply", started)
        return self._result(None, history, "turn_cap", started)

    @staticmethod
    def _result(reply: str | None, history: list[TurnRecord], stopped: Literal["reply", "turn_cap"],
                started: float) -> AgentResult:
        changed = sorted({path for record in history if record.tool_run for path in record.tool_run.changed})
        return AgentResult(reply=reply, turns=history, stopped=stopped,
                           prompt_tokens=sum(r.prompt_tokens for r in history),
                           completion_tokens=sum(r.completion_tokens for r in history),
                           seconds=time.perf_counter() - started, changed=changed)
