"""The RL environment of Webscale-RL QA: one closed-book completion per episode, reward 1 iff its answer matches.

The paper's episode is the same (the model never sees the document; a judge compares the final answer with the
ground truth); the prompt here is the few-shot completion prompt of the closed-book evaluation, so a base model
is trained on exactly the format it is tested in, and the reward is `exact_match_reward` instead of an LLM judge.

    environment = QAEnvironment(shots)
    history = rl.train(config, policy, environment, qa_records)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation
from reasonlab.systems.webscale_rl.reward import INSTRUCTION, closed_book_prompt, exact_match_reward
from reasonlab.train.rl import Episode, Step

__all__ = ["QAEnvironment"]


class QAEnvironment:
    """Single-segment episodes over QA records (`question`, `answer`, `qa_id`): the prompt is the closed-book
    few-shot prompt, the episode's reward the exact-match reward of the completion."""

    def __init__(self, shots: Sequence[dict[str, Any]], instruction: str = INSTRUCTION) -> None:
        self.shots = list(shots)
        self.instruction = instruction

    def reset(self, task: dict[str, Any]) -> str:
        if not str(task.get("question", "")).strip() or not str(task.get("answer", "")).strip():
            raise UserError(f"QA record {task.get('qa_id', '?')} has no question or answer: drop it from the RL tasks")
        # a task never sees itself as a solved example (its answer would be in the prompt)
        shots = [shot for shot in self.shots if shot.get("qa_id") != task.get("qa_id")]
        return closed_book_prompt(task["question"], shots, self.instruction)

    def step(self, history: Episode, completion: Generation) -> Step:
        return Step.finish(exact_match_reward(completion.text, history.task["answer"]))
