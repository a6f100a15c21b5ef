"""Stage 1, the filter: drop documents too short, mostly boilerplate, or unlike informative prose.

The paper asks GPT-4.1 whether a document is "qualified" (leniently: only boilerplate pages and context-less
fragments fail) after a 50-token prefilter. On CPU (spec section 9) three rules stand in for it, applied in order,
the first that fails naming the rejection: `too-short` (fewer than `min_words` words), `boilerplate` (the share of
lines that look like navigation, link lists, index entries or short fragments is above `max_boilerplate`) and
`uninformative` (the MiniLM score of `InformativenessScorer` is under `min_informativeness`).

    output = filter_stage(documents, FilterConfig(), InformativenessScorer(load_embedder("minilm")))
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from reasonlab.llm.embed import Embedder
from reasonlab.systems.webscale_rl.config import FilterConfig
from reasonlab.systems.webscale_rl.records import Record, StageOutput, rejection

__all__ = [
    "BOILERPLATE_ANCHORS",
    "INFORMATIVE_ANCHORS",
    "InformativenessScorer",
    "boilerplate_ratio",
    "filter_stage",
    "word_count",
]

STAGE = "filter"
_WORD = re.compile(r"\w+(?:['’]\w+)*")
# a fragment this short without sentence punctuation is a label, a menu entry or an index entry, not prose
SHORT_LINE_WORDS = 8
_SENTENCE_END = re.compile(r"[.!?:;](?:[\"'’”)\]]*)(?:\s|$)")
# words that make up menus, breadcrumbs and page chrome
_NAVIGATION = frozenset({
    "navigation", "index", "modules", "next", "previous", "next topic", "previous topic", "table of contents",
    "contents", "this page", "show source", "report a bug", "quick search", "search", "home", "menu", "skip to content",
    "back to top", "top", "up", "prev", "go", "sign in", "log in", "login", "subscribe", "share", "related articles",
    "read more", "more", "privacy policy", "terms of use", "cookie policy", "contact us", "about us", "sitemap",
})
# lines of separators, reference marks or single letters: "|", "»", ",", "[1]", "A | B | C"
_SEPARATORS = re.compile(r"^(?:[\s|»«›‹·•,;/\\\-–—>\[\]\d]|\b\w\b)*$")
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")  # a markdown link
_BULLET = re.compile(r"^(?:[-*+•]|\d+[.)])(?:\s+|$)")
# code is neither prose nor boilerplate: a prompt, an indented line, an assignment, braces or a signature
_CODE = re.compile(
    r"^(?:>>>|\.\.\.|\$ |#|//|/\*|@\w)"  # prompts, comments, decorators
    r"|[{};]\s*$|^[{}]"  # C-style blocks
    r"|\S\s*(?:==|!=|<=|>=|->|\+=|-=|:=|=)\s*\S"  # operators and assignments
    r"|^[\w.*\s]*\w\([^()]*\)(?:\s*->.*)?:?$"  # a call or signature ending the line: f(x, y), int *g(void)
)


def word_count(text: str) -> int:
    """Words of `text` (runs of letters and digits, apostrophes inside a word kept)."""
    return len(_WORD.findall(text))


def _line_kind(raw: str) -> str:
    """The kind of a line: boilerplate (a navigation word, separators, only links, or a short fragment without
    sentence punctuation), code, prose, or "" for a bare list bullet (counted on neither side)."""
    line = _BULLET.sub("", raw.strip())
    if not line:
        return ""
    if line.strip(" |»·").lower() in _NAVIGATION or _SEPARATORS.match(line):
        return "boilerplate"
    if raw[:1] in (" ", "\t") or _CODE.search(line):
        return "code"
    if _LINK.search(line) and not _LINK.sub("", line).strip(" -*|·,;"):
        return "boilerplate"
    if word_count(line) < SHORT_LINE_WORDS and not _SENTENCE_END.search(line):
        return "boilerplate"
    return "prose"


def boilerplate_ratio(text: str) -> float:
    """Share of non-empty lines that look like boilerplate (navigation, link lists, index entries, short fragments
    without sentence punctuation); code lines count on neither side. 1.0 for a text without any line."""
    kinds = [_line_kind(line) for line in text.splitlines() if line.strip()]
    if not kinds:
        return 1.0
    counted = [kind for kind in kinds if kind in ("boilerplate", "prose")]
    return counted.count("boilerplate") / len(counted) if counted else 0.0


# anchors written for this filter (not from the paper, which has no anchors): what a page worth asking questions
# about reads like, across several domains, and what page chrome, indexes and landing pages read like
INFORMATIVE_ANCHORS: tuple[str, ...] = (
    "The function returns a new list sorted in ascending order; the original list is left unchanged, and a "
    "key argument can change how elements are compared.",
    "Photosynthesis converts light energy into chemical energy: chlorophyll absorbs sunlight, and the plant uses "
    "it to turn carbon dioxide and water into glucose and oxygen.",
    "The treaty was signed in 1648 after thirty years of war, and it established the principle that each state "
    "decides its own religion.",
    "To install the package, download the archive, unpack it and run the setup script; the installer copies the "
    "files into the library folder and records their versions.",
    "When interest rates rise, borrowing becomes more expensive, so businesses invest less and consumer spending "
    "tends to slow down.",
    "The derivative of a function measures how fast its value changes; for example, the derivative of x squared "
    "is two times x.",
    "Patients with high blood pressure are advised to reduce salt, exercise regularly and take the prescribed "
    "medicine, because untreated hypertension damages the heart.",
    "This section explains why the protocol uses a timeout: if the server does not answer within thirty seconds, "
    "the client closes the connection and reports an error.",
)
BOILERPLATE_ANCHORS: tuple[str, ...] = (
    "Home | About | Contact | Blog | Login | Sign up | Search | Menu",
    "Previous topic Next topic This page Show source Quick search Navigation index modules",
    "Table of contents: Introduction, Chapter 1, Chapter 2, Chapter 3, Appendix, Index",
    "Index – A: abs() (built-in function), abc (module), abort() (in module os), [1], [2]",
    "© 2024 All rights reserved. Privacy policy. Terms of use. Cookie settings.",
    "Welcome! Start here. Parts of this site: overview, downloads, reference, tutorials, frequently asked "
    "questions.",
    "Share on Facebook Share on Twitter Email Print Related articles Read more",
    "Page not found. The page you are looking for does not exist. Return to the home page.",
)
PASSAGE_WORDS = 100
PASSAGES = 3


def _passages(text: str, words: int = PASSAGE_WORDS, count: int = PASSAGES) -> list[str]:
    """The first `count` passages of about `words` words (MiniLM reads 256 word pieces at most)."""
    tokens = text.split()
    chunks = [" ".join(tokens[start:start + words]) for start in range(0, len(tokens), words)][:count]
    return chunks or [""]


class InformativenessScorer:
    """MiniLM score of a document: the mean similarity of its first passages to informative anchors minus their
    mean similarity to boilerplate anchors (positive: reads like prose worth asking about)."""

    def __init__(self, embedder: Embedder, informative: Sequence[str] = INFORMATIVE_ANCHORS,
                 boilerplate: Sequence[str] = BOILERPLATE_ANCHORS) -> None:
        self.embedder = embedder
        self.informative = embedder.embed(list(informative))  # (I, dim)
        self.boilerplate = embedder.embed(list(boilerplate))  # (B, dim)

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """One score per text, shape (len(texts),)."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float32)
        passages = [_passages(text) for text in texts]
        owner = np.repeat(np.arange(len(texts)), [len(chunks) for chunks in passages])  # (P,)
        vectors = self.embedder.embed([chunk for chunks in passages for chunk in chunks])  # (P, dim)
        margin = (vectors @ self.informative.T).mean(axis=1) - (vectors @ self.boilerplate.T).mean(axis=1)  # (P,)
        return (np.bincount(owner, weights=margin) / np.bincount(owner)).astype(np.float32)


def _cheap_rule(scores: dict[str, float], config: FilterConfig) -> tuple[str, str] | None:
    """(reason, detail) of the first length or boilerplate rule the scores fail, or None."""
    if scores["words"] < config.min_words:
        return "too-short", f"{scores['words']:.0f} words < min_words {config.min_words}"
    if scores["boilerplate"] > config.max_boilerplate:
        return "boilerplate", (f"{scores['boilerplate']:.2f} of its lines look like boilerplate > max_boilerplate "
                               f"{config.max_boilerplate}")
    return None


def filter_stage(documents: Sequence[Record], config: FilterConfig, scorer: InformativenessScorer) -> StageOutput:
    """Keep the documents that pass the three rules, in order; each gets `document["scores"]` (words, boilerplate,
    informativeness: None for a document that failed an earlier rule, which is never embedded)."""
    output, candidates = StageOutput(), []
    for doc in documents:
        doc["scores"] = {"words": word_count(doc["text"]), "boilerplate": round(boilerplate_ratio(doc["text"]), 4),
                         "informativeness": None}
        failed = _cheap_rule(doc["scores"], config)
        if failed is None:
            candidates.append(doc)
        else:
            output.rejected.append(rejection(doc["doc_id"], STAGE, *failed))
    informativeness = scorer.score([doc["text"] for doc in candidates])
    for doc, value in zip(candidates, informativeness, strict=True):
        score = doc["scores"]["informativeness"] = round(float(value), 4)  # the rule sees what the record shows
        if score < config.min_informativeness:
            output.rejected.append(rejection(doc["doc_id"], STAGE, "uninformative", f"informativeness {score:.4f} "
                                             f"< min_informativeness {config.min_informativeness}"))
        else:
            output.kept.append(doc)
    return output
