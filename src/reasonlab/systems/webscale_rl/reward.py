"""The verifiable reward of Webscale-RL QA and closed-book accuracy: a short answer compared after normalisation.

The paper scores RL rollouts with an LLM judge (1 iff the final answer matches the ground truth) and flags the
judge as its cost bottleneck (spec section 5); spec section 7 warns that a plain exact match fails answers that
are right in another format. Our answers are short spans (numbers, versions, identifiers, names), so a
normalising exact match does the judge's work here:
- case, punctuation and the articles a/an/the are ignored (`checks.normalize_answer`, SQuAD's normalisation);
- numbers compare by value (`1,000` == `1000`, `0.5` == `.5`), but a version stays a string: `3.10` != `3.1`
  (two dots, or a decimal written with a trailing zero, reads as a version or a stated precision);
- the answer is the first non-empty line of the completion (the prompt ends in "Answer:"), after a repeated
  "Answer:" if the model wrote one.

    >>> exact_match_reward(" 1,000 bytes\\nQuestion: next", "1000 bytes")
    1.0
    >>> exact_match_reward("3.1", "3.10")
    0.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM, SamplingParams
from reasonlab.stats import Rate
from reasonlab.systems.webscale_rl.checks import normalize_answer
from reasonlab.systems.webscale_rl.config import CLOSED_BOOK_INSTRUCTION

__all__ = [
    "ANSWER_CUE",
    "answers_match",
    "closed_book_accuracy",
    "closed_book_prompt",
    "exact_match_reward",
    "extract_answer",
    "parse_number",
]

ANSWER_CUE = "Answer:"
INSTRUCTION = CLOSED_BOOK_INSTRUCTION  # the default; `TrainConfig.instruction` names another corpus's subject

_ANSWER_PREFIX = re.compile(r"^\s*(?:the\s+)?answer\s*(?:is|:)\s*", re.IGNORECASE)
_NEXT_QUESTION = re.compile(r"\s*\bQuestion\s*:.*$", re.IGNORECASE)
# a plain number: optional sign, digits with optional thousands commas, optional decimals and exponent
_NUMBER = re.compile(r"^[-+]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:e[-+]?\d+)?$", re.IGNORECASE)
_VERSION = re.compile(r"^v?\d+(?:\.\d+){2,}$|^v?\d+\.\d*0$", re.IGNORECASE)


def extract_answer(completion: str) -> str:
    """The answer a completion gives: its first non-empty line, after an "Answer:" the model repeated.

    >>> extract_answer(" 42\\n\\nQuestion: what next?\\nAnswer: 7")
    '42'
    >>> extract_answer("\\nAnswer: the os module.")
    'the os module.'
    """
    line = next((line for line in completion.splitlines() if line.strip()), "")
    line = _NEXT_QUESTION.sub("", line)
    return _ANSWER_PREFIX.sub("", line).strip()


def parse_number(text: str) -> Fraction | None:
    """The value of a plain number (`1,000`, `-2.5`, `1e-9`); None for anything else, versions included.

    >>> parse_number("1,000")
    Fraction(1000, 1)
    >>> parse_number("3.10") is None  # a version: compared as written
    True
    """
    text = text.strip().rstrip(".")
    if not text or _is_version(text) or not _NUMBER.match(text):
        return None
    return Fraction(text.replace(",", ""))


def answers_match(prediction: str, answer: str) -> bool:
    """Whether an extracted prediction gives `answer`: equal values for two plain numbers, the same text for a
    version (`3.10` is neither `3.1` nor `310`), else equal normalised text (an empty answer matches nothing)."""
    predicted, expected = parse_number(prediction), parse_number(answer)
    if predicted is not None and expected is not None:
        return predicted == expected
    if _is_version(prediction) or _is_version(answer):
        return _version_text(prediction) == _version_text(answer)
    gold = normalize_answer(answer)
    return bool(gold) and normalize_answer(prediction) == gold


def _version_text(text: str) -> str:
    return text.strip().rstrip(".").lower().removeprefix("v")


def _is_version(text: str) -> bool:
    return bool(_VERSION.match(text.strip().rstrip(".")))


def exact_match_reward(completion: str, answer: str) -> float:
    """1.0 iff the completion's answer (`extract_answer`) matches `answer` after normalisation, else 0.0."""
    return float(answers_match(extract_answer(completion), answer))


def closed_book_prompt(question: str, shots: Sequence[dict[str, Any]], instruction: str = INSTRUCTION) -> str:
    """A few-shot completion prompt for a base model: `instruction`, the solved `shots` (QA records), then the
    question and "Answer:" (the model sees no document: closed book)."""
    blocks = [instruction]
    blocks += [f"Question: {shot['question'].strip()}\n{ANSWER_CUE} {shot['answer'].strip()}" for shot in shots]
    blocks.append(f"Question: {question.strip()}\n{ANSWER_CUE}")
    return "\n\n".join(blocks)


def closed_book_accuracy(llm: LLM, qas: Sequence[dict[str, Any]], shots: Sequence[dict[str, Any]],
                         params: SamplingParams, batch_size: int = 32, examples: int = 5,
                         instruction: str = INSTRUCTION) -> dict[str, Any]:
    """Share of `qas` whose closed-book answer matches, with its 95% Wilson interval: `{k, n, rate, ci_low,
    ci_high, examples}` (the first `examples` predictions, for reading); generations go `batch_size` at a time."""
    if not qas:
        raise UserError("no QA pairs to evaluate: give at least one held-out question")
    if batch_size < 1:
        raise UserError(f"batch_size={batch_size}: give at least 1")
    predictions: list[str] = []
    for start in range(0, len(qas), batch_size):
        batch = qas[start : start + batch_size]
        generations = llm.generate([closed_book_prompt(qa["question"], shots, instruction) for qa in batch], params)
        predictions += [extract_answer(group[0].text) for group in generations]
    correct = [answers_match(p, qa["answer"]) for p, qa in zip(predictions, qas, strict=True)]
    shown = [{"question": qa["question"], "answer": qa["answer"], "prediction": p, "correct": c}
             for qa, p, c in zip(qas[:examples], predictions, correct, strict=False)]
    return {**Rate(sum(correct), len(qas)).as_dict(), "examples": shown}
