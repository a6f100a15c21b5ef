"""The exact-match reward (extraction, normalisation, numbers vs versions) and closed-book accuracy."""

from __future__ import annotations

import doctest

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams, ScriptedLLM
from reasonlab.stats import wilson_interval
from reasonlab.systems.webscale_rl import reward
from reasonlab.systems.webscale_rl.reward import (
    answers_match,
    closed_book_accuracy,
    closed_book_prompt,
    exact_match_reward,
    extract_answer,
    parse_number,
)


def test_doctests() -> None:
    assert doctest.testmod(reward).failed == 0


@pytest.mark.parametrize(("completion", "expected"), [
    (" 42\n\nQuestion: what next?\nAnswer: 7", "42"),  # the first line, never the model's next question
    ("\n\n  pack()  \nmore", "pack()"),  # leading blank lines skipped
    (" Answer: the os module", "the os module"),  # a repeated cue
    (" The answer is 3.11", "3.11"),
    (" 3.7 Question: why?", "3.7"),  # a next question on the same line
    ("", ""),
])
def test_extract_answer(completion: str, expected: str) -> None:
    assert extract_answer(completion) == expected


@pytest.mark.parametrize(("prediction", "answer", "match"), [
    # numbers compare by value
    ("1,000", "1000", True),
    ("1000", "1,000", True),
    ("0.5", ".5", True),
    ("1e3", "1000", True),
    ("-2", "2", False),
    ("1,000 bytes", "1000 bytes", True),  # inside text, thousands commas go
    # versions (two dots, or a written trailing zero) compare as written
    ("3.1", "3.10", False),
    ("310", "3.10", False),
    ("3.10", "3.1", False),
    ("3.10", "3.10", True),
    ("v3.10", "3.10", True),
    ("3.11.2", "3.11.2", True),
    ("3.11.1", "3.11.2", False),
    ("2.5", "2.50", False),
    # case, articles, punctuation
    ("The GitHub", "github", True),
    ("an Integer.", "integer", True),
    ("`pack()`", "pack()", True),
    ("xml.etree.ElementTree", "xml.etree.elementtree", True),
    ("TypeError", "ValueError", False),
    ("Python", "Python 3", False),
    # nothing matches an empty answer
    ("", "", False),
    ("anything", "  ", False),
])
def test_answers_match(prediction: str, answer: str, match: bool) -> None:
    assert answers_match(prediction, answer) is match


def test_parse_number_refuses_versions_and_words() -> None:
    assert parse_number("1,234.5") == pytest.approx(1234.5)
    assert parse_number("1,23") is None  # not a thousands grouping
    assert parse_number("3.11.2") is None
    assert parse_number("10.0") is None
    assert parse_number("e5") is None
    assert parse_number("12 monkeys") is None


def test_exact_match_reward_reads_the_first_line_only() -> None:
    assert exact_match_reward(" 1,000\nQuestion: x?\nAnswer: 7", "1000") == 1.0
    assert exact_match_reward(" 1,000\nQuestion: x?\nAnswer: 7", "7") == 0.0
    assert exact_match_reward("\nAnswer: The Expat parser.", "Expat parser") == 1.0


SHOTS = [{"qa_id": "a#0", "question": "Which year?", "answer": "1991"},
         {"qa_id": "b#0", "question": " Which module? ", "answer": "os "}]


def test_closed_book_prompt_lists_the_shots_then_the_question() -> None:
    prompt = closed_book_prompt("What fills the blank?", SHOTS)
    assert prompt.startswith(reward.INSTRUCTION + "\n\n")
    assert prompt.endswith("\n\nQuestion: What fills the blank?\nAnswer:")
    assert "Question: Which year?\nAnswer: 1991\n\nQuestion: Which module?\nAnswer: os\n\n" in prompt
    assert prompt.count("Question:") == 3
    assert closed_book_prompt("Q?", []) == f"{reward.INSTRUCTION}\n\nQuestion: Q?\nAnswer:"


def test_closed_book_accuracy_counts_batches_and_interval() -> None:
    answers = {f"q{i}?": str(i) for i in range(7)}

    def reply(prompt: str) -> str:
        question = prompt.rsplit("Question: ", 1)[1].split("\n")[0]
        value = int(answers[question])
        return f" {value if value % 2 == 0 else value + 100}\nQuestion: next"  # right on even questions

    calls: list[int] = []

    class Counting(ScriptedLLM):
        def generate(self, prompts, params):  # type: ignore[no-untyped-def]
            calls.append(len(prompts))
            return super().generate(prompts, params)

    llm = Counting(reply)
    qas = [{"qa_id": str(i), "question": q, "answer": a} for i, (q, a) in enumerate(answers.items())]
    result = closed_book_accuracy(llm, qas, SHOTS, SamplingParams(temperature=0.0, max_tokens=8), batch_size=3,
                                  examples=2)
    assert calls == [3, 3, 1]
    assert (result["k"], result["n"]) == (4, 7)
    assert result["rate"] == pytest.approx(4 / 7)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(wilson_interval(4, 7))
    assert [e["correct"] for e in result["examples"]] == [True, False]
    assert result["examples"][1]["prediction"] == "101"
    with pytest.raises(UserError, match="no QA pairs"):
        closed_book_accuracy(llm, [], SHOTS, SamplingParams())
