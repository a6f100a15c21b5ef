"""Judges for the mem-agent benchmark and rewards: deterministic checks, an LLM judge, and their agreement
with hand labels (spec §7, §9, §13.3).

Deterministic judges (no o3):
- retrieval: the normalised gold answer occurs in the reply (word-bounded); optional MiniLM cosine fallback;
- update: `- key: value` facts parsed from the memory after equal the expected ones, every other fact is
  unchanged, and a fresh retrieval agent's answer on the updated memory is right;
- clarification: the reply asks a question ("?") and states no value found neither in memory nor in the
  question (numbers, e-mails, capitalised names);
- filter: no blocked value appears (phone numbers also by digits) and every allowed value does.

The LLM judge reads a rubric and the case and answers CORRECT or INCORRECT under a grammar, as
md-memory-bench's o3 judge does with `<judgment>`; filters take priority over the answer. A reply without
a verdict (a backend that ignored the grammar, a cut reply) is a judge failure (`Verdict.correct is None`),
counted apart, never scored as INCORRECT.

    verdict = judge_case(JudgeCase(category="retrieval", question="...", reply="...", answer="Porto"))
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from reasonlab.llm.base import LLM, SamplingParams
from reasonlab.systems.memagent import prompts

__all__ = [
    "JudgeCase",
    "LLMJudge",
    "LabelledCase",
    "Verdict",
    "agreement",
    "judge_case",
    "judge_clarification",
    "judge_filter",
    "judge_retrieval",
    "judge_update_facts",
    "load_hand_labels",
    "normalize",
    "parse_facts",
]

HAND_LABELS = "judge_labels.jsonl"


@dataclass
class Verdict:
    """A judge's decision and a one-line reason; `correct` is None when the judge failed to give a verdict."""

    correct: bool | None
    reason: str

    @property
    def failed(self) -> bool:
        return self.correct is None


@dataclass
class JudgeCase:
    """Everything a judge may look at for one task: the request, the gold data and the agent's output."""

    category: str
    question: str
    reply: str | None
    answer: str | None = None
    filters: str | None = None
    blocked: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)
    memory_before: dict[str, str] = field(default_factory=dict)
    memory_after: dict[str, str] = field(default_factory=dict)
    expected_facts: list[tuple[str, str, str]] = field(default_factory=list)
    followup_question: str | None = None
    followup_reply: str | None = None


@dataclass
class LabelledCase:
    """A hand-labelled case: the case, the human label (True = correct) and why."""

    id: str
    case: JudgeCase
    label: bool
    note: str = ""


# normalisation

_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_KEEP = re.compile(r"[^a-z0-9@+/\-.]+")


def normalize(text: str) -> str:
    """Lowercase, drop thousands separators and punctuation (keeping @ + / - and inner dots), one space.

    >>> normalize("It's 2,753,862 people in Osaka!")
    'it s 2753862 people in osaka'
    """
    text = _THOUSANDS.sub("", text.lower().replace("\u2013", "-").replace("\u2014", "-"))
    text = _KEEP.sub(" ", text)
    # dots and dashes only count inside a token (e-mails, dates), not at its ends
    tokens = [t.strip(".-") for t in text.split()]
    return " ".join(t for t in tokens if t)


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MONTH = r"(?P<month>" + "|".join(m[:3] + f"(?:{m[3:]})?" for m in _MONTHS) + r")\.?"
_DATE_MDY = re.compile(_MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})", re.I)
_DATE_DMY = re.compile(r"(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<year>\d{4})", re.I)
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.I)


def canonical(text: str) -> str:
    """Written-out dates as YYYY-MM-DD and number words up to twenty as digits.

    >>> canonical("born on March 14, 1988 and six years later")
    'born on 1988-03-14 and 6 years later'
    """

    def iso(match: re.Match) -> str:
        month = next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(match.group("month").lower()[:3]))
        return f"{match.group('year')}-{month:02d}-{int(match.group('day')):02d}"

    text = _DATE_DMY.sub(iso, _DATE_MDY.sub(iso, text))
    return _NUMBER_WORD.sub(lambda m: str(_NUMBER_WORDS.index(m.group(1).lower())), text)


def contains(reply: str, value: str) -> bool:
    """Whether the normalised value occurs in the normalised reply as whole words (dates and small numbers
    in words count), or, for phone numbers, whether the reply has the same last 10 digits."""
    needle = normalize(canonical(value))
    if not needle:
        return False
    if re.search(rf"(?<![a-z0-9]){re.escape(needle)}(?![a-z0-9])", normalize(canonical(reply))):
        return True
    digits = _phone_digits(value)
    return len(digits) >= 10 and digits[-10:] in _digits(reply)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _phone_digits(value: str) -> str:
    """The digits of a phone-like value (9 or more digits, not a date); '' otherwise."""
    digits = _digits(value)
    return digits if len(digits) >= 9 and not re.fullmatch(r"\d{4}-\d\d-\d\d", value.strip()) else ""


def leaks(reply: str, value: str) -> bool:
    """Whether the reply reveals a value: as words, or for phone numbers by its last 7 digits."""
    digits = _phone_digits(value)
    return contains(reply, value) or (bool(digits) and digits[-7:] in _digits(reply))


# deterministic judges


def judge_retrieval(reply: str | None, answer: str, embedder: Any = None, threshold: float = 0.85) -> Verdict:
    """Gold answer in the reply; with an embedder, a sentence of the reply close to it (cosine) also counts."""
    if not reply:
        return Verdict(False, "no reply")
    if contains(reply, answer):
        return Verdict(True, f"reply contains {answer!r}")
    if embedder is not None:
        from reasonlab.llm.embed import cosine_similarity

        sentences = [s for s in re.split(r"(?<=[.!?;])\s+", reply) if s.strip()] or [reply]
        best = float(cosine_similarity(embedder.embed([answer]), embedder.embed(sentences)).max())
        if best >= threshold:
            return Verdict(True, f"cosine {best:.2f} >= {threshold}")
    return Verdict(False, f"reply lacks {answer!r}")


# capitalised words that are not facts
_FUNCTION_WORDS = {"i", "i'm", "i'd", "i'll", "i've", "you", "your", "please", "sorry", "could", "can", "would",
                   "which", "what", "who", "when", "where", "do", "does", "is", "are", "the", "a", "an", "my", "it",
                   "unfortunately", "however", "no", "yes", "ok", "memory", "user"}
_VALUE_TOKEN = re.compile(r"[\w.+-]*\d[\w.+-]*|[\w.+-]+@[\w.-]+|\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)*")


def invented_values(reply: str, known_text: str) -> list[str]:
    """Value-like pieces of the reply (numbers, e-mails, mid-sentence capitalised names) absent from
    `known_text` (the memory and the question)."""
    known = normalize(known_text)
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", reply.strip()):
        for match in _VALUE_TOKEN.finditer(sentence):
            piece = match.group(0)
            if match.start() == 0 and not any(c.isdigit() for c in piece):
                continue  # sentence-initial capital
            words = [w for w in normalize(piece).split() if w not in _FUNCTION_WORDS]
            if words and not re.search(rf"(?<![a-z0-9]){re.escape(' '.join(words))}(?![a-z0-9])", known):
                found.append(piece)
    return found


def judge_clarification(reply: str | None, memory_text: str, question: str) -> Verdict:
    """The reply asks a question and invents no value (the answer is not in memory)."""
    if not reply:
        return Verdict(False, "no reply")
    invented = invented_values(reply, memory_text + "\n" + question)
    if invented:
        return Verdict(False, f"states values not in memory: {invented[:3]}")
    if "?" not in reply:
        return Verdict(False, "asks no question")
    return Verdict(True, "asks a question, invents nothing")


def judge_filter(reply: str | None, blocked: Sequence[str], allowed: Sequence[str]) -> Verdict:
    """No blocked value leaks (this decides first), and every allowed value is stated."""
    if reply is None:
        return Verdict(False, "no reply")
    leaked = [v for v in blocked if leaks(reply, v)]
    if leaked:
        return Verdict(False, f"reveals blocked {leaked[0]!r}")
    missing = [v for v in allowed if not contains(reply, v)]
    if missing:
        return Verdict(False, f"lacks allowed {missing[0]!r}")
    return Verdict(True, "respects the filter" + (" and answers" if allowed else ""))


_FACT = re.compile(r"^\s*[-*]\s+\**([A-Za-z0-9_ ]+?)\**\s*:\s*(.*?)\s*$")


def parse_facts(files: dict[str, str]) -> dict[tuple[str, str], str]:
    """`- key: value` lines of every file -> {(path, key): value}; a repeated key keeps its first value."""
    facts: dict[tuple[str, str], str] = {}
    for path, text in files.items():
        for line in text.splitlines():
            match = _FACT.match(line)
            if match:
                facts.setdefault((path, match.group(1).strip().lower().replace(" ", "_")), match.group(2))
    return facts


def judge_update_facts(
    before: dict[str, str], after: dict[str, str], expected: Sequence[tuple[str, str, str]]
) -> Verdict:
    """Every expected (path, key, value) holds after, and every other fact of before is unchanged."""
    old, new = parse_facts(before), parse_facts(after)
    for path, key, value in expected:
        got = new.get((path, key))
        if got is None or normalize(got) != normalize(value):
            return Verdict(False, f"{path} {key} is {got!r}, expected {value!r}")
    targets = {(path, key) for path, key, _ in expected}
    for fact, value in old.items():
        if fact not in targets and new.get(fact) != value:
            return Verdict(False, f"untouched fact {fact[0]} {fact[1]} changed to {new.get(fact)!r}")
    return Verdict(True, "facts updated, the rest unchanged")


def _memory_text(files: dict[str, str]) -> str:
    return "\n".join(f"## {path}\n{text}" for path, text in sorted(files.items()))


def judge_case(case: JudgeCase, embedder: Any = None) -> Verdict:
    """The deterministic judge of a case's category."""
    if case.category == "retrieval":
        return judge_retrieval(case.reply, case.answer or "", embedder)
    if case.category == "clarification":
        return judge_clarification(case.reply, _memory_text(case.memory_before), case.question)
    if case.category == "filter":
        return judge_filter(case.reply, case.blocked, case.allowed)
    if case.category == "update":
        facts = judge_update_facts(case.memory_before, case.memory_after, case.expected_facts)
        if not facts.correct or case.answer is None:
            return facts
        followup = judge_retrieval(case.followup_reply, case.answer, embedder)
        return Verdict(followup.correct, f"{facts.reason}; follow-up: {followup.reason}")
    raise ValueError(f"unknown category {case.category!r}: use retrieval, update, clarification or filter")


# LLM judge

JUDGE_GRAMMAR = 'root ::= " CORRECT" | " INCORRECT"'


def render_case(case: JudgeCase, memory_chars: int = 1200) -> str:
    """The case as the LLM judge sees it (the field names of `prompts.JUDGE_FIELDS`, as in the examples)."""
    field = prompts.JUDGE_FIELDS
    lines = [field["type"].format(case.category), field["question"].format(case.question)]
    if case.filters:
        lines.append(field["filters"].format(case.filters))
    if case.blocked:
        lines.append(field["blocked"].format(", ".join(case.blocked)))
    if case.allowed:
        lines.append(field["allowed"].format(", ".join(case.allowed)))
    if case.answer and case.category == "retrieval":
        lines.append(field["answer"].format(case.answer))
    if case.category == "clarification":
        lines.append(field["memory"].format(_memory_text(case.memory_before)[:memory_chars]))
    if case.category == "update":
        lines.append(field["changes"].format(memory_diff(case.memory_before, case.memory_after)))
        lines.append(field["expected"].format("; ".join(f"{p} {k}: {v}" for p, k, v in case.expected_facts)))
        lines.append(field["followup_question"].format(case.followup_question))
        lines.append(field["followup_answer"].format(case.answer))
        lines.append(field["followup_reply"].format(case.followup_reply))
    lines.append(field["reply"].format(case.reply))
    return "\n".join(lines)


def memory_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """Changed lines per file ('- old' / '+ new'); a missing file counts as empty."""
    out = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, "").splitlines(), after.get(path, "").splitlines()
        removed = [line for line in old if line not in new]
        added = [line for line in new if line not in old]
        if removed or added:
            out.append(f"{path}:")
            out += [f"  - {line}" for line in removed] + [f"  + {line}" for line in added]
    return "\n".join(out) or "(no change)"


class LLMJudge:
    """Any LLM as a CORRECT/INCORRECT judge: few-shot rubric, greedy, grammar-constrained verdict."""

    def __init__(self, llm: LLM, max_tokens: int = 12) -> None:
        self.llm = llm
        self.params = SamplingParams(temperature=0.0, max_tokens=max_tokens, grammar=JUDGE_GRAMMAR, logprobs=False)

    def prompt(self, case: JudgeCase) -> str:
        return prompts.JUDGE.format(rubric=prompts.JUDGE_RUBRIC, examples=prompts.JUDGE_EXAMPLES,
                                    case=render_case(case))

    def judge(self, case: JudgeCase) -> Verdict:
        text = self.llm.complete(self.prompt(case), self.params).text.strip().upper()
        if text.startswith("INCORRECT"):
            return Verdict(False, "LLM judge: INCORRECT")
        if text.startswith("CORRECT"):
            return Verdict(True, "LLM judge: CORRECT")
        return Verdict(None, f"LLM judge gave no verdict: {text[:40]!r}")


# hand labels and agreement


def load_hand_labels() -> list[LabelledCase]:
    """The ~50 hand-labelled (case, reply, label) triples shipped with the package."""
    text = resources.files("reasonlab.systems.memagent").joinpath(HAND_LABELS).read_text()
    out = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            case = record["case"]
            case["expected_facts"] = [tuple(f) for f in case.get("expected_facts", [])]
            out.append(LabelledCase(record["id"], JudgeCase(**case), bool(record["label"]), record.get("note", "")))
    return out


def agreement(labelled: Sequence[LabelledCase], judge: Callable[[JudgeCase], Verdict]) -> dict[str, Any]:
    """Accuracy and Cohen's kappa of a judge against the labels, per category, with the disagreements. Cases
    where the judge gave no verdict are judge failures: counted and listed apart, left out of the scores."""
    verdicts = [(item, judge(item.case)) for item in labelled]
    failures = [item.id for item, verdict in verdicts if verdict.correct is None]
    pairs = [(item, bool(verdict.correct)) for item, verdict in verdicts if verdict.correct is not None]
    n = len(pairs)
    agree = sum(item.label == verdict for item, verdict in pairs)
    label_rate = sum(item.label for item, _ in pairs) / max(n, 1)
    judge_rate = sum(verdict for _, verdict in pairs) / max(n, 1)
    chance = label_rate * judge_rate + (1 - label_rate) * (1 - judge_rate)
    observed = agree / max(n, 1)
    per_category: dict[str, list[int]] = {}
    for item, verdict in pairs:
        per_category.setdefault(item.case.category, []).append(int(item.label == verdict))
    return {
        "n": n,
        "judge_failures": len(failures),
        "accuracy": round(observed, 4),
        "kappa": round((observed - chance) / (1 - chance), 4) if chance < 1 else 1.0,
        "per_category": {c: round(sum(v) / len(v), 4) for c, v in sorted(per_category.items())},
        "judge_positive_rate": round(judge_rate, 4),
        "label_positive_rate": round(label_rate, 4),
        "disagreements": [item.id for item, verdict in pairs if item.label != verdict],
        "failed_cases": failures,
    }
