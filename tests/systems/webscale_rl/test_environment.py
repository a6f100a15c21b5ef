"""QAEnvironment: the closed-book prompt, the exact-match reward on scripted completions, and a real rollout."""

from __future__ import annotations

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import Generation, SamplingParams, ScriptedLLM
from reasonlab.systems.webscale_rl.environment import QAEnvironment
from reasonlab.systems.webscale_rl.reward import closed_book_prompt
from reasonlab.train.rl import Episode, rollout

SHOTS = [{"qa_id": "shot#0", "question": "Which year was Python first released?", "answer": "1991"},
         {"qa_id": "shot#1", "question": "Which module joins paths?", "answer": "os.path"}]
TASKS = [{"qa_id": "t#0", "question": "Since which version are dicts ordered?", "answer": "3.7"},
         {"qa_id": "t#1", "question": "How many bytes in a kibibyte?", "answer": "1,024"}]


def _generation(text: str) -> Generation:
    return Generation(text=text, token_ids=[1], logprobs=[0.0], finish_reason="stop", prompt_tokens=1,
                      completion_tokens=1, latency_s=0.0)


def test_reset_is_the_closed_book_prompt_without_the_task_among_its_shots() -> None:
    environment = QAEnvironment(SHOTS)
    assert environment.reset(TASKS[0]) == closed_book_prompt(TASKS[0]["question"], SHOTS)
    own = environment.reset(SHOTS[1])
    assert own == closed_book_prompt(SHOTS[1]["question"], SHOTS[:1])
    assert "os.path" not in own


@pytest.mark.parametrize(("completion", "reward"), [
    (" 3.7\nQuestion: next?", 1.0),
    (" Python 3.7", 0.0),
    (" 3.70", 0.0),  # a version with another digit
    ("\nAnswer: 3.7.", 1.0),
    ("", 0.0),
])
def test_step_finishes_with_the_exact_match_reward(completion: str, reward: float) -> None:
    step = QAEnvironment(SHOTS).step(Episode(task=TASKS[0], group=0), _generation(completion))
    assert step.done
    assert step.reward == reward


def test_a_record_without_answer_is_refused() -> None:
    with pytest.raises(UserError, match="t#9 has no question or answer"):
        QAEnvironment(SHOTS).reset({"qa_id": "t#9", "question": "Why?", "answer": " "})


def test_rollout_scores_every_episode_of_every_group() -> None:
    def reply(prompt: str) -> str:  # right about dicts, wrong about kibibytes
        return " 3.7\n" if "dicts" in prompt.rsplit("Question:", 1)[1] else " 1000\n"

    episodes = rollout(ScriptedLLM(reply), QAEnvironment(SHOTS), TASKS, group_size=3,
                       sampling=SamplingParams(temperature=1.0, max_tokens=8))
    assert [(ep.group, ep.reward, ep.done) for ep in episodes] == [(0, 1.0, True)] * 3 + [(1, 0.0, True)] * 3
    assert all(len(ep.segments) == 1 for ep in episodes)


def test_the_instruction_names_the_corpus_subject() -> None:
    """Another corpus than the Python docs: `TrainConfig.instruction` opens every RL and evaluation prompt."""
    from reasonlab.systems.webscale_rl.config import TrainConfig

    instruction = TrainConfig(instruction="Answer each question about bridges in a few words.").instruction
    prompt = QAEnvironment(SHOTS, instruction).reset(TASKS[0])
    assert prompt.startswith(instruction + "\n\n") and prompt == closed_book_prompt(TASKS[0]["question"], SHOTS,
                                                                                     instruction)
    assert QAEnvironment(SHOTS).reset(TASKS[0]).startswith("Answer each question about Python")
