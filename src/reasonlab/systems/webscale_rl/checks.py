"""Stage 4, the checker: is a QA pair grounded in its document, free of leakage, and self-contained?

Paper: GPT-4.1-mini answers three Y/N questions (answer_correctness = grounded in the source document,
info_leakage = answer readable off the question, has_context = the question stands alone); keep iff correct, not
leaking and with context. CPU plan (spec section 9), deterministic: grounding is the rapidfuzz partial ratio of the
normalised answer in the normalised document, its window widened to whole words ("3" is not found in "3.11");
leakage is the normalised answer inside the question (at word
boundaries), a large share of its tokens there, or a high question-answer embedding cosine; context is no deictic
phrase ("the text", "this article") and a minimum length. `annotate_checks` only records the verdicts (the engine
keeps every candidate for the hand-labelled audit); `check_stage` also splits kept from rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from reasonlab.llm.embed import Embedder
from reasonlab.systems.webscale_rl.config import CheckConfig
from reasonlab.systems.webscale_rl.records import Record, StageOutput, rejection

__all__ = [
    "DEICTIC_PATTERNS",
    "annotate_checks",
    "answer_overlap",
    "check_qa",
    "check_stage",
    "deictic_phrases",
    "grounding_score",
    "leak_tokens",
    "normalize_answer",
    "passes",
    "rejection_reason",
    "split_checked",
]

# punctuation and symbols (any character that is neither a word character nor a space), and the underscore
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_LEAK_TOKEN = re.compile(r"\d+(?:\.\d+)+|[^\W_]+")

# nouns that name the source itself: "the"/"this" before them points into a document the RL model never sees
# (unless a compound follows: "the text mode", "the Document object")
_SOURCE_NOUNS = r"text|article|passage|document|page|excerpt|paragraph|material|snippet|section|chapter|table|figure"
_COMPOUND = r"(?!\s+(?:object|element|node|root|mode|type|class|file|field|encoding|size|attribute)\b)"
# nouns that are fine after "the" ("the function len()") but point back into the document after "this"/"these"
_REFERENT_NOUNS = r"module|function|method|class|example|code|library|package|feature|command|option|version"
DEICTIC_PATTERNS: tuple[str, ...] = (
    rf"\b(?:according\s+to\s+)?(?:the|this|these)\s+(?:{_SOURCE_NOUNS})s?\b{_COMPOUND}",
    rf"\b(?:this|these|the\s+above|the\s+following)\s+(?:{_REFERENT_NOUNS})s?\b",
    r"\b(?:the|this)\s+above\b",
    r"\bthe\s+following\b",
    r"\b(?:mentioned|described|shown|listed|stated|discussed)\s+(?:above|below|earlier|here)\b",
    r"\babove[- ]mentioned\b",
    r"\baforementioned\b",
)
_DEICTIC = re.compile("|".join(f"(?:{pattern})" for pattern in DEICTIC_PATTERNS), re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse spaces (SQuAD's answer normalisation).

    >>> normalize_answer("The  Python 3.11.")
    'python 311'
    """
    text = _PUNCTUATION.sub("", text.lower().replace("/", " ").replace("\\", " "))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _contains_words(needle: str, haystack: str) -> bool:
    """`needle` inside `haystack` at word boundaries (both normalised), so "11" is not found in "311"."""
    return f" {needle} " in f" {haystack} "


def _whole_words(text: str, start: int, end: int) -> str:
    """`text[start:end]` without its edge spaces, widened to the words it cuts (`text` is normalised)."""
    while start < end and text[start] == " ":
        start += 1
    while end > start and text[end - 1] == " ":
        end -= 1
    start = text.rfind(" ", 0, start) + 1
    stop = text.find(" ", end)
    return text[start:stop if stop >= 0 else len(text)]


def _grounding(normalized_answer: str, normalized_document: str) -> float:
    if not normalized_answer or not normalized_document:
        return 0.0
    # the plain substring test settles most answers without the alignment search
    if _contains_words(normalized_answer, normalized_document):
        return 100.0
    if len(normalized_answer) >= len(normalized_document):
        return float(fuzz.ratio(normalized_answer, normalized_document))
    # the best-matching window, widened to whole words, so "3" does not match inside "311"
    window = fuzz.partial_ratio_alignment(normalized_answer, normalized_document)
    return float(fuzz.ratio(normalized_answer, _whole_words(normalized_document, window.dest_start,
                                                            window.dest_end)))


def grounding_score(answer: str, document_text: str) -> float:
    """How well the answer is found in the document, 0-100: the normalised answer against the rapidfuzz
    partial-ratio window of the normalised document widened to whole words (100 for an exact word-aligned
    substring, 0 for an empty answer).

    >>> grounding_score("python 3.11.", "Python 3.11 was released in 2022.")
    100.0
    >>> grounding_score("3", "Python 3.11 was released in 2022.")
    50.0
    """
    return _grounding(normalize_answer(answer), normalize_answer(document_text))


def leak_tokens(text: str) -> list[str]:
    """Lower-cased words for the leakage check: runs of letters and digits, a dotted number kept whole ("3.11"),
    identifiers split at punctuation ("constructor_ob=None" -> constructor, ob, none), articles dropped.
    Unlike `normalize_answer` it does not glue an identifier to its neighbours, so "ScrolledCanvas" is found in
    "class turtle.ScrolledCanvas(master)".

    >>> leak_tokens("The obj_or_type of ctypes.alignment() in 3.4.2")
    ['obj', 'or', 'type', 'of', 'ctypes', 'alignment', 'in', '3.4.2']
    """
    return [token for token in _LEAK_TOKEN.findall(text.lower()) if token not in ("a", "an", "the")]


def answer_overlap(answer: str, question: str) -> float:
    """1.0 when the answer's `leak_tokens` appear in a row among the question's (the answer inside an identifier
    or heading of the question counts); else the share of the answer's normalised words (`normalize_answer`)
    that occur in the normalised question; 0.0 for an empty answer."""
    tokens, question_tokens = leak_tokens(answer), leak_tokens(question)
    width = len(tokens)
    if width and any(question_tokens[i:i + width] == tokens for i in range(len(question_tokens) - width + 1)):
        return 1.0
    words = normalize_answer(answer).split()
    if not words:
        return 0.0
    present = set(normalize_answer(question).split())
    return sum(word in present for word in words) / len(words)


def deictic_phrases(question: str) -> list[str]:
    """The phrases of `question` that point into a document it does not carry ("according to the text", "this
    article", "the following"), lower-cased, each once, in order."""
    found: list[str] = []
    for match in _DEICTIC.finditer(question):
        phrase = " ".join(match.group(0).lower().split())
        if phrase not in found:
            found.append(phrase)
    return found


def _verdicts(qa: Record, normalized_document: str, config: CheckConfig, similarity: float | None) -> dict[str, Any]:
    question, answer = qa["question"], qa["answer"]
    grounding = _grounding(normalize_answer(answer), normalized_document)
    overlap = answer_overlap(answer, question)
    deictic = deictic_phrases(question)
    similar = similarity is not None and similarity > config.max_answer_similarity
    return {
        "grounding": round(grounding, 2),
        "grounded": grounding >= config.min_grounding,
        "answer_overlap": round(overlap, 4),
        "qa_similarity": None if similarity is None else round(float(similarity), 4),
        "leakage": overlap >= config.max_answer_overlap or similar,
        "self_contained": not deictic and len(question.split()) >= config.min_question_words,
        "deictic": deictic,
    }


def check_qa(qa: Record, document_text: str, config: CheckConfig, similarity: float | None = None) -> dict[str, Any]:
    """The three verdicts on one QA pair, with the numbers behind them; `similarity` is the question-answer
    embedding cosine (None: leakage from token overlap only)."""
    return _verdicts(qa, normalize_answer(document_text), config, similarity)


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row of `a` with the same row of `b`, shape (n,)."""
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return (a * b).sum(axis=1) / norms


def annotate_checks(qas: Sequence[Record], documents: dict[str, Record], config: CheckConfig,
                    embedder: Embedder) -> list[Record]:
    """Fill `qa["checks"]` of every QA pair in place (rejects nothing) and return them; questions and answers are
    embedded in one batch each, and each document is normalised once."""
    qas = list(qas)
    if not qas:
        return qas
    missing = sorted({qa["doc_id"] for qa in qas} - documents.keys())
    if missing:
        raise ValueError(f"QA pairs name documents that were not passed to the checker: {missing[:3]}")
    similarities = _row_cosines(embedder.embed([qa["question"] for qa in qas]),
                                embedder.embed([qa["answer"] for qa in qas]))
    normalized: dict[str, str] = {}
    for qa, similarity in zip(qas, similarities, strict=True):
        doc_id = qa["doc_id"]
        if doc_id not in normalized:
            normalized[doc_id] = normalize_answer(documents[doc_id]["text"])
        qa["checks"] = {**qa.get("checks", {}), **_verdicts(qa, normalized[doc_id], config, float(similarity))}
    return qas


def rejection_reason(checks: dict[str, Any]) -> str | None:
    """The first failed verdict: "ungrounded", "leakage", "no-context" or "llm-check" (the LLM checker's no, when it
    ran); None when all pass (the spec's rule)."""
    if not checks["grounded"]:
        return "ungrounded"
    if checks["leakage"]:
        return "leakage"
    if not checks["self_contained"]:
        return "no-context"
    if not checks.get("llm", {}).get("passed", True):
        return "llm-check"
    return None


def passes(checks: dict[str, Any]) -> bool:
    """Keep iff grounded, not leaking, self-contained and (when it ran) passed by the LLM checker."""
    return rejection_reason(checks) is None


def _detail(checks: dict[str, Any], reason: str) -> str:
    if reason == "ungrounded":
        return f"grounding {checks['grounding']:.1f}"
    if reason == "leakage":
        return f"answer overlap {checks['answer_overlap']:.2f}, similarity {checks['qa_similarity']}"
    if reason == "llm-check":
        verdict = checks["llm"]
        if "error" in verdict:
            return f"unparsable verdict: {verdict['error']}"
        return ", ".join(f"{key} {verdict.get(key)}" for key in ("has_context", "answer_correctness", "info_leakage"))
    return f"deictic {checks['deictic']}" if checks["deictic"] else "question too short"


def split_checked(checked: Sequence[Record]) -> StageOutput:
    """Annotated QA pairs into kept and rejected (stage "check", the first failing reason)."""
    output = StageOutput()
    for qa in checked:
        reason = rejection_reason(qa["checks"])
        if reason is None:
            output.kept.append(qa)
        else:
            output.rejected.append(rejection(qa["qa_id"], "check", reason, _detail(qa["checks"], reason)))
    return output


def check_stage(qas: Sequence[Record], documents: dict[str, Record], config: CheckConfig,
                embedder: Embedder) -> StageOutput:
    """Stage 4: annotate every QA pair (`qa["checks"]`, set on rejected ones too), keep those that pass."""
    return split_checked(annotate_checks(qas, documents, config, embedder))
