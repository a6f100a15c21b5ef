"""Stage 3, the generator: one question-answer pair per persona; and the paper's LLM checker (`llm_check`).

Paper: GPT-4.1 acts as each persona and writes a self-contained question with a short answer taken from the
document, guided by two few-shot examples from the document's domain (`mode="free"` here, for capable
endpoints). CPU plan (spec section 9), `mode="extractive"`, no LLM: split the document into sentences, find
answer spans by regex (dates, years, numbers with units, versions, dotted names and calls, quoted terms,
capitalised names), keep sentences of 8-60 words with few spans and no code, and give each persona a different
sentence: the unused one of the document's best that is closest to the persona in embedding space. The question
is a cloze: the title (and section heading) for context, then the sentence with the span blanked; the answer is
the span and the evidence the sentence. `mode="paraphrase"` asks the LLM to rewrite that cloze as a natural
question under a JSON schema; a reply that does not parse, states the answer, points at "the text" or drops the
cloze's content words (a 270M model tends to copy the prompt's demonstration) is not used: the cloze is kept with
generator="extractive-fallback" and `checks["paraphrase"]` says why, so a weak model can only cost naturalness,
never a grounded QA pair. All LLM calls of a batch go in one `llm.generate`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from reasonlab.errors import UserError
from reasonlab.llm import LLM, SamplingParams
from reasonlab.llm.embed import Embedder, cosine_similarity
from reasonlab.systems.webscale_rl import prompts
from reasonlab.systems.webscale_rl.checks import answer_overlap, deictic_phrases, normalize_answer
from reasonlab.systems.webscale_rl.config import DOMAINS, GenerateConfig
from reasonlab.systems.webscale_rl.records import Record, StageOutput, make_qa, rejection

__all__ = [
    "Candidate",
    "Cloze",
    "Span",
    "build_cloze",
    "document_context",
    "document_title",
    "extract_candidates",
    "find_spans",
    "generate_stage",
    "llm_check",
    "load_fewshot",
    "parse_reply",
    "sentence_score",
    "split_blocks",
    "split_sentences",
]

MIN_WORDS, MAX_WORDS = 8, 60
MAX_SPANS = 4  # a sentence with more answer spans is a list, not a fact
POOL_SIZE = 12  # the best sentences of a document that the personas choose from
JITTER = 0.3  # seeded noise on sentence scores: another seed asks about other sentences
MAX_LEAK_OVERLAP = 0.5  # share of the answer's tokens a question may contain
MIN_KEPT_WORDS = 3  # content words (over 3 letters) of the evidence a paraphrase must keep
DEFAULT_PERSONA = "a curious general reader"
CHECK_FIELDS = ("has_context", "answer_correctness", "info_leakage")


_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?")
_UNITS = (r"%|percent|per cent|bytes?|[KMGT]i?B|bits?|[kMG]?Hz|ns|ms|µs|seconds?|minutes?|hours?|days?|weeks?|"
          r"months?|years?|mm|cm|km|kg|mg|g|m|ml|l|°C|°F|K|V|W|kW|mph|km/h|characters?|digits?|lines?|"
          r"times|million|billion|thousand|degrees?|dollars?|euros?|entries|elements?|items?|arguments?")
_SPAN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b|"
                        rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}\b|"
                        rf"\b{_MONTH}\s+\d{{4}}\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b")),
    ("quantity", re.compile(r"[$€£]\d[\d,]*(?:\.\d+)?(?:\s(?:million|billion|thousand))?(?![\w])")),
    ("numeric", re.compile(rf"(?<![\w.\-/#@$\[])(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)*"
                           rf"(?:\s?(?:{_UNITS})(?![\w/])|-(?:bit|byte|digit|character|day|year|hour|second)s?\b)?"
                           rf"(?![\w\]/])(?!\.\d|-\w)")),
    # dotted names and calls (os.path.join, open(), f(x)), dunders, snake_case and CamelCase; never a piece of a
    # path or URL ("Lib/os.py"), which the checker's normalisation glues to its neighbours
    ("identifier", re.compile(r"(?<![\w.@/])@?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\([^()\n]{0,30}\))?(?!\w|\(|\.\w|/)|"
                              r"(?<![\w./])[A-Za-z_]\w*\([^()\n]{0,30}\)|"
                              r"(?<![\w./])__[A-Za-z]\w*?__(?!\w|\(|\.\w|/)|"
                              r"(?<![\w./])_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*(?!\w|\(|\.\w|/)|"
                              r"(?<![\w./])[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b(?!/)")),
    ("name", re.compile(r"(?<![\w/-])[A-Z][a-z][a-zA-Z]*(?:\s+(?:of\s+|the\s+|de\s+)*[A-Z][a-z][a-zA-Z]*)+\b")),
    ("term", re.compile(r"[\"“`](?P<inner>[^\"”`\n]{2,40})[\"”`]")),
)
# the answer a question asks for first, when a sentence holds several spans
_KIND_PRIORITY = {"date": 0, "quantity": 1, "year": 2, "number": 3, "version": 4, "name": 5, "identifier": 6,
                  "term": 7}
_KIND_BONUS = {"date": 0.6, "quantity": 0.6, "year": 0.5, "number": 0.4, "version": 0.4, "name": 0.3,
               "identifier": 0.2, "term": 0.1}
_VERSION_CONTEXT = re.compile(r"\b(?:version|python|release|v)\s*$", re.IGNORECASE)
# capitalised words that open a sentence rather than a name
_NAME_OPENERS = frozenset({"The", "A", "An", "This", "That", "These", "Those", "In", "On", "At", "For",
                           "If", "When", "While", "As", "It", "Its", "Since", "See", "Note", "Use", "Also",
                           "But", "And", "Or", "To", "By", "With", "From", "Each", "Every", "Some", "Many",
                           "Most", "All", "New", "Changed", "Deprecated", "Returns", "Return", "Unlike",
                           "Like", "Both", "After", "Before", "Because", "Although", "However", "Then",
                           "Thus", "Here", "There", "Such", "Other", "Any", "No", "Only", "Where", "Which",
                           "What"})
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "cf", "mr", "mrs", "dr", "prof", "fig", "no", "st",
                            "approx", "al", "ca", "jr", "sr"})


@dataclass(frozen=True)
class Span:
    """A candidate answer inside a sentence: its text, its kind (a key of `prompts.ANSWER_KINDS`), its offsets."""

    text: str
    kind: str
    start: int
    end: int


def _numeric_kind(sentence: str, start: int, text: str) -> str:
    """A bare number is a version, a year, a quantity (with a unit) or a plain number."""
    digits = re.match(r"[\d.,]+", text)
    number = digits.group(0) if digits else text
    if number.count(".") >= 2 or (_VERSION_CONTEXT.search(sentence[:start]) and "." in number):
        return "version"
    if len(number) < len(text):
        return "quantity"
    if re.fullmatch(r"1[5-9]\d\d|20\d\d", number):
        return "year"
    return "number"


def _span(sentence: str, kind: str, match: re.Match[str]) -> Span | None:
    """The span a pattern's match stands for, or None when it is not an answer (e.g., a lone opener word)."""
    if kind == "numeric":
        return Span(match.group(0), _numeric_kind(sentence, match.start(), match.group(0)), match.start(), match.end())
    if kind == "term":
        inner = match.group("inner")
        if inner != inner.strip() or len(inner.split()) > 3:
            return None
        return Span(inner, kind, match.start("inner"), match.end("inner"))
    if kind == "name":
        words = list(re.finditer(r"[A-Za-z]+", match.group(0)))
        while words and (words[0].group(0) in _NAME_OPENERS or words[0].group(0).islower()):
            words.pop(0)
        start = match.start() + words[0].start() if words else 0
        # a capitalised word that opens the sentence is too often an ordinary word ("Earlier PythonLabs ...")
        if sum(word.group(0)[0].isupper() for word in words) < 2 or not sentence[:start].strip("\"“'( "):
            return None
        return Span(sentence[start:match.end()], kind, start, match.end())
    if re.fullmatch(r"(?:\w\.)+\w?", match.group(0)):  # e.g, i.e
        return None
    return Span(match.group(0), kind, match.start(), match.end())


def _raw_spans(sentence: str) -> list[Span]:
    spans = (_span(sentence, kind, match) for kind, pattern in _SPAN_PATTERNS for match in pattern.finditer(sentence))
    return [span for span in spans if span is not None]


def find_spans(sentence: str) -> list[Span]:
    """The answer spans of a sentence, without overlaps (the preferred kind, then the longer span, wins), in
    reading order.

    >>> [(s.text, s.kind) for s in find_spans("Python 3.11 was released in October 2022 by the core team.")]
    [('3.11', 'version'), ('October 2022', 'date')]
    """
    chosen: list[Span] = []
    for span in sorted(_raw_spans(sentence), key=lambda s: (_KIND_PRIORITY[s.kind], s.start - s.end, s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


_UNDERLINE = re.compile(r"([=\-*~^#+\"'])\1{2,}")
_MARKDOWN_HEADING = re.compile(r"#{1,6}\s+")
_GENERIC_HEADINGS = frozenset({"note", "notes", "see also", "seealso", "warning", "example", "examples", "tip",
                               "important", "caution", "attention", "footnotes", "hint"})
# a line ending in one of these words is a wrapped line of running text, not a heading
_FUNCTION_WORDS = frozenset({"a", "an", "the", "of", "to", "in", "on", "for", "with", "and", "or", "by",
                             "as", "is", "are", "be", "that", "which", "from", "at", "than", "into",
                             "onto", "not", "but", "if", "when", "where", "while", "so", "because",
                             "whether", "then", "also", "can", "may", "will", "should", "must", "would",
                             "could", "has", "have", "was", "were", "its", "their", "this", "these",
                             "your", "our", "his", "her", "such", "any", "all", "each", "every", "both",
                             "either", "via", "per", "about", "over", "under", "between", "through",
                             "without", "within", "using"})
_NOT_HEADING = re.compile(r"[=/{}<>|]|\s-\w")  # paths, commands, markup
_CODE_TERM = re.compile(r"[(_@]|\w\.\w")
_HEADING_START = re.compile(r"[A-Z]|\d+(?:\.\d+)*\.?\s+[A-Z]")
_BULLET = re.compile(r"(?:[-*•]|\d+[.)])\s+")
_BOUNDARY = re.compile(r"([.!?][\"”’')\]]*)\s+(?=[\"“'(\[`]?[A-Z0-9_])")
_CODE = re.compile(r">>>|\.\.\.\s|[{};]|\bdef\s+\w+\(|\bclass\s+\w+\s*[(:]|==|\s=\s.*\s=\s|\$\s|::=|¶")


def _clean_heading(line: str) -> str:
    """A heading without markup, pilcrow or section number ("5.1. Using Lists" -> "Using Lists")."""
    line = _MARKDOWN_HEADING.sub("", _BULLET.sub("", line, count=1), count=1)
    line = line.replace("¶", "").replace("`", "").replace("**", "").strip()
    line = re.sub(r"^\d+(?:\.\d+)*\.?\s*(?=[A-Za-z])", "", line)
    return line if len(line) <= 100 else line[:97].rsplit(" ", 1)[0] + "..."


def _is_heading(raw: str, previous: str, following: str, after_break: bool) -> bool:
    line = raw.strip()
    underlined = _UNDERLINE.fullmatch(following) and len(following) >= len(line) - 2 and raw == raw.lstrip()
    # "# x" after a blank line (inside code it is a comment)
    if (_MARKDOWN_HEADING.match(line) and not previous) or line.endswith("¶") or underlined:
        return True
    words = line.split()
    if not words or line[-1] in ".,;:!?" or words[-1].lower() in _FUNCTION_WORDS:
        return False
    # a definition term: a list item without a full stop whose description is the next item (Sphinx's
    # "- @functools.cache(user_function)" then "- Simple lightweight unbounded function cache...")
    if _BULLET.match(line) and _BULLET.match(following) and len(line) <= 120 and _CODE_TERM.search(line):
        return True
    # a short line that opens after a sentence ended and is followed by a new sentence (a wrapped line of a
    # paragraph ends in a function word, or its next line goes on in lower case); not "Source code: Lib/os.py"
    return (after_break and raw == raw.lstrip() and len(words) <= 12 and len(line) <= 90
            and bool(_HEADING_START.match(line)) and not _NOT_HEADING.search(line) and following[:1].isupper())


def _ends_paragraph(previous: str, line: str) -> bool:
    """A short unpunctuated line ("Source code: Lib/os.py") ends its paragraph when a new sentence follows (a
    wrapped line of running text is longer)."""
    return 0 < len(previous) <= 50 and previous[-1] not in ".,;:!?-" and line[:1].isupper()


def split_blocks(text: str) -> list[tuple[str, str]]:
    """The document as (section heading, paragraph) pairs: hard-wrapped lines joined, a new paragraph at a blank
    line, a list item, a change of indentation (code) or after a short unpunctuated line; headings are markdown
    `#`, Sphinx `¶`, underlined lines, or short unpunctuated lines between two sentences. Generic headings ("Note",
    "See also") keep the heading before them."""
    lines = text.splitlines()
    blocks: list[tuple[str, str]] = []
    heading, current, indent, previous = "", [], -1, ""
    for index, raw in enumerate(lines):
        line = raw.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        rule = bool(_UNDERLINE.fullmatch(line))
        # a sentence, a code line or nothing ended just before (a wrapped line ends in a letter or a comma)
        after_break = not previous or not (previous[-1].isalnum() or previous[-1] in ",;-")
        is_heading = bool(line) and not rule and _is_heading(raw, previous, following, after_break)
        bullet = _BULLET.match(line)
        level = len(raw) - len(raw.lstrip())
        if not line or rule or is_heading or bullet or level != indent or _ends_paragraph(previous, line):
            if current:
                blocks.append((heading, " ".join(current)))
            # a list item's continuation lines sit under its text, not under its marker
            current, indent = [], level + (bullet.end() if bullet else 0)
        previous = line
        if is_heading:
            cleaned = _clean_heading(line)
            heading = heading if cleaned.casefold() in _GENERIC_HEADINGS else cleaned
        elif line and not rule:
            current.append(line[bullet.end():] if bullet else line)
    if current:
        blocks.append((heading, " ".join(current)))
    return blocks


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph: a cut after . ! ? (and closing quotes) before a capital, digit or quote, except
    after common abbreviations (e.g., i.e., etc.) and initials.

    >>> split_sentences("It works, e.g. on Linux. Version 3.11 added it! Done.")
    ['It works, e.g. on Linux.', 'Version 3.11 added it!', 'Done.']
    """
    paragraph = " ".join(paragraph.split())
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(paragraph):
        before = paragraph[start:match.start()].rsplit(" ", 1)[-1].lower()
        if before in _ABBREVIATIONS or re.fullmatch(r"[a-z]", before):
            continue
        sentences.append(paragraph[start:match.end(1)])
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def sentence_score(sentence: str, spans: Sequence[Span]) -> float | None:
    """How good a sentence is as a source of one question; None when it does not qualify (8-60 words, a full
    sentence rather than a heading or list fragment, no code, 1-4 answer spans)."""
    words = len(sentence.split())
    if not MIN_WORDS <= words <= MAX_WORDS or not spans or len(spans) > MAX_SPANS:
        return None
    if not re.match(r"[\"“'(`]?[A-Z0-9_@]", sentence) or not re.search(r"[.!?][\"”’')]*$", sentence):
        return None
    symbols = sum(not (c.isalnum() or c.isspace()) for c in sentence)
    if _CODE.search(sentence) or symbols > 0.12 * len(sentence):
        return None
    best = min(spans, key=lambda s: _KIND_PRIORITY[s.kind])
    score = 1.0 + _KIND_BONUS[best.kind] + {1: 0.5, 2: 0.25}.get(len(spans), 0.0)
    if words < 12 or words > 40:
        score -= 0.3
    if best.kind == "number" and best.text in {"0", "1", "2"}:
        score -= 0.3
    return score


@dataclass(frozen=True)
class Candidate:
    """One qualifying sentence of a document, with its section heading, its spans and its score."""

    sentence: str
    section: str
    spans: tuple[Span, ...]
    score: float


@dataclass(frozen=True)
class Cloze:
    """A candidate turned into a question: the cloze text and the span it asks for."""

    candidate: Candidate
    question: str
    answer: Span


def document_title(document: Record) -> str:
    """The document's title without Sphinx's pilcrow; else its file name."""
    title = " ".join(str(document.get("title") or "").replace("¶", "").split())
    if title:
        return title
    source = str(document.get("source") or document["doc_id"])
    return Path(source.split("#")[0]).stem.replace("_", " ").replace("-", " ") or str(document["doc_id"])


def extract_candidates(document: Record) -> list[Candidate]:
    """Every qualifying sentence of a document, in reading order."""
    candidates = []
    for section, paragraph in split_blocks(document["text"]):
        for sentence in split_sentences(paragraph):
            spans = find_spans(sentence)
            score = sentence_score(sentence, spans)
            if score is not None:
                candidates.append(Candidate(sentence, section, tuple(spans), score))
    return candidates


_REFERENT = re.compile(r"\b([Tt])(?:his|hese)\s+(module|function|method|class|library|package|feature|command|"
                       r"option|attribute|object|type|value|parameter|argument)(s?)\b")


def _blank(sentence: str, span: Span) -> str:
    pattern = re.compile(rf"(?<![\w]){re.escape(span.text)}(?![\w]|\.\w)")
    blanked = pattern.sub(prompts.CLOZE_BLANK, sentence)
    # "this module" points into the page; "the module" reads fine beside the title
    return _REFERENT.sub(lambda m: f"{m.group(1)}he {m.group(2)}{m.group(3)}", blanked)


def build_cloze(title: str, candidate: Candidate) -> Cloze | None:
    """The cloze question of a candidate: spans tried in order of preference, each with the section heading and
    then without it; None when every version leaks the answer or points at the source ("the text")."""
    section = candidate.section if candidate.section.casefold() != title.casefold() else ""
    for span in sorted(candidate.spans, key=lambda s: (_KIND_PRIORITY[s.kind], s.start)):
        statement = _blank(candidate.sentence, span)
        if prompts.CLOZE_BLANK not in statement:
            continue
        for where in dict.fromkeys((section, "")):
            question = prompts.cloze_question(title, where, statement, span.kind)
            if not deictic_phrases(question) and answer_overlap(span.text, question) < MAX_LEAK_OVERLAP:
                return Cloze(candidate, question, span)
    return None


def _pool(document: Record, seed: int) -> list[Cloze]:
    """The document's best clozes (sentence score plus seeded jitter), at most POOL_SIZE, best first."""
    title = document_title(document)
    clozes = [cloze for cloze in (build_cloze(title, c) for c in extract_candidates(document)) if cloze is not None]
    rng = random.Random(f"{seed}:{document['doc_id']}")
    keys = [cloze.candidate.score + rng.uniform(0, JITTER) for cloze in clozes]
    order = sorted(range(len(clozes)), key=lambda i: (-keys[i], i))
    return [clozes[i] for i in order[:POOL_SIZE]]


def _personas(document: Record) -> list[str]:
    return list(document.get("personas") or [DEFAULT_PERSONA])


def _steer(pool: list[Cloze], similarity: np.ndarray) -> list[tuple[int, Cloze]]:
    """For each persona in order (row of `similarity`, personas x pool), the unused cloze closest to it whose
    answer no earlier persona got; a persona is skipped once the pool runs out."""
    used: set[int] = set()
    answers: set[str] = set()
    picks = []
    for persona, row in enumerate(similarity):
        for choice in (int(i) for i in np.argsort(-row, kind="stable")):
            answer = normalize_answer(pool[choice].answer.text)
            if choice not in used and answer not in answers:
                used.add(choice)
                answers.add(answer)
                picks.append((persona, pool[choice]))
                break
    return picks


def _extractive(documents: Sequence[Record], config: GenerateConfig, embedder: Embedder) -> StageOutput:
    """Cloze QA for every document; personas and pooled sentences of the whole batch embedded in one call."""
    output = StageOutput()
    pools = [_pool(document, config.seed) for document in documents]
    texts: list[str] = []
    for document, pool in zip(documents, pools, strict=True):
        texts += _personas(document) + [cloze.candidate.sentence for cloze in pool]
    vectors = embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    offset = 0
    for document, pool in zip(documents, pools, strict=True):
        personas = _personas(document)
        middle, end = offset + len(personas), offset + len(personas) + len(pool)
        picks = _steer(pool, cosine_similarity(vectors[offset:middle], vectors[middle:end])) if pool else []
        offset = end
        if not picks:
            output.rejected.append(rejection(document["doc_id"], "generate", "no-candidate",
                                             "no sentence of 8-60 words with a clean answer span"))
            continue
        for index, cloze in picks:
            output.kept.append(make_qa(document, index, cloze.question, cloze.answer.text, personas[index],
                                       cloze.candidate.sentence, "extractive"))
    return output




def parse_reply(text: str, fields: Sequence[str]) -> dict[str, str]:
    """A JSON object with exactly `fields`, each a non-empty string (stripped); ValueError otherwise (extra keys
    are an error too: spec section 6)."""
    value = prompts.reply_json(text)
    if not isinstance(value, dict) or set(value) != set(fields):
        keys = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"expected keys {sorted(fields)}, got {keys}")
    parsed = {}
    for key in fields:
        if not isinstance(value[key], str) or not value[key].strip():
            raise ValueError(f"field {key} must be a non-empty string")
        parsed[key] = " ".join(value[key].split())
    return parsed


def _string(max_chars: int, enum: Sequence[str] | None = None) -> dict[str, Any]:
    return {"type": "string", "enum": list(enum)} if enum else {"type": "string", "minLength": 1,
                                                                 "maxLength": max_chars}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


def _reply_chars(max_tokens: int) -> int:
    """Characters a JSON reply may spend on its strings and still close within `max_tokens` (~3 per token)."""
    return max(0, (max_tokens - 16) * 3)


def _params(config: GenerateConfig, schema: dict[str, Any]) -> SamplingParams:
    return SamplingParams(temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed,
                          json_schema=schema, logprobs=False)


def document_context(document: Record, evidence: str, chars: int) -> str:
    """`chars` characters of the document centred on the evidence (from the start when it is not found)."""
    text = " ".join(document["text"].split())
    at = text.find(evidence) if evidence else -1
    start = 0 if at < 0 else max(0, min(at - chars // 2, len(text) - chars))
    return text[start:start + chars]


def _require(llm: LLM | None, mode: str) -> LLM:
    if llm is None:
        raise UserError(f"generate.mode={mode} needs an LLM: pass --llm SPEC or use generate.mode=extractive")
    return llm


def _content_words(text: str) -> set[str]:
    return {word for word in normalize_answer(text).split() if len(word) > 3}


def _paraphrase_verdict(reply: str, evidence: str, answer: str) -> tuple[str | None, str]:
    """The rewritten question, or None, and "ok" or the reason it is not used: unparsable or still a cloze,
    stating the answer, pointing at "the text", or drifting off the evidence (fewer than MIN_KEPT_WORDS of its
    content words kept: a small model copies the prompt's demonstration instead)."""
    try:
        question = parse_reply(reply, ("question",))["question"]
    except ValueError:
        return None, "paraphrase-failed"
    if prompts.CLOZE_BLANK in question:
        return None, "paraphrase-failed"
    if answer_overlap(answer, question) >= MAX_LEAK_OVERLAP:
        return None, "paraphrase-leak"
    if deictic_phrases(question):
        return None, "paraphrase-no-context"
    source = _content_words(evidence) - _content_words(answer)
    if source and len(source & _content_words(question)) < min(MIN_KEPT_WORDS, len(source)):
        return None, "paraphrase-drift"
    return question, "ok"


def _paraphrase(qas: list[Record], documents: dict[str, Record], config: GenerateConfig, llm: LLM) -> None:
    """Rewrite every cloze in place (one batched call); a failed rewrite keeps the cloze (extractive-fallback)."""
    if not qas:
        return
    chars = max(40, min(400, _reply_chars(config.max_tokens)))
    batch = [prompts.render_paraphrase(document_context(documents[qa["doc_id"]], qa["evidence"],
                                                        config.context_chars),
                                       qa["question"], qa["answer"]) for qa in qas]
    replies = llm.generate(batch, _params(config, _object({"question": _string(chars)})))
    for qa, group in zip(qas, replies, strict=True):
        question, verdict = _paraphrase_verdict(group[0].text, qa["evidence"], qa["answer"])
        qa["checks"]["paraphrase"] = verdict
        if question is None:
            qa["generator"] = "extractive-fallback"
        else:
            qa["question"], qa["generator"] = question, "paraphrase"


@lru_cache(maxsize=1)
def load_fewshot() -> dict[str, tuple[dict[str, str], ...]]:
    """The few-shot library (package data `fewshot.jsonl`) by domain."""
    text = resources.files("reasonlab.systems.webscale_rl").joinpath("fewshot.jsonl").read_text(encoding="utf-8")
    library: dict[str, list[dict[str, str]]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("domain") not in DOMAINS or not all(record.get(key) for key in
                                                           ("material", "question", "answer", "persona")):
            raise ValueError(f"fewshot.jsonl line {number}: needs material, question, answer, persona and a domain "
                             "from DOMAINS")
        library.setdefault(record["domain"], []).append(record)
    return {domain: tuple(records) for domain, records in library.items()}


def _free_schema(max_tokens: int) -> tuple[dict[str, Any], tuple[str, ...]]:
    """{thought, question, answer} with lengths that fit `max_tokens`; the thought is dropped when it cannot fit."""
    total = _reply_chars(max_tokens)
    answer = max(16, min(120, total // 6))
    question = max(40, min(400, total // 2))
    thought = min(2000, total - answer - question)
    properties = {"question": _string(question), "answer": _string(answer)}
    if thought >= 60:
        properties = {"thought": _string(thought), **properties}
    return _object(properties), tuple(properties)


def _examples(domain: str, k: int, rng: random.Random) -> list[dict[str, str]]:
    library = load_fewshot()
    pool = library.get(domain) or library.get("Other", ())
    return rng.sample(list(pool), min(k, len(pool)))


def _evidence(document: Record, answer: str) -> str:
    """The first sentence of the document that holds the answer (normalised), else ""."""
    wanted = normalize_answer(answer)
    for _, paragraph in split_blocks(document["text"]):
        for sentence in split_sentences(paragraph):
            if wanted and f" {wanted} " in f" {normalize_answer(sentence)} ":
                return sentence
    return ""


def _free(documents: Sequence[Record], config: GenerateConfig, llm: LLM) -> StageOutput:
    """The paper's generator: one prompt per (document, persona), all in one batched call."""
    output = StageOutput()
    jobs = [(document, index, persona) for document in documents
            for index, persona in enumerate(_personas(document))]
    if not jobs:
        return output
    schema, fields = _free_schema(config.max_tokens)
    batch = []
    for document, index, persona in jobs:
        rng = random.Random(f"{config.seed}:{document['doc_id']}:{index}")
        excerpt = " ".join(document["text"].split())[:config.context_chars]
        batch.append(prompts.render_free(excerpt, persona, _examples(document.get("domain", "Other"),
                                                                      config.few_shot, rng)))
    for (document, index, persona), group in zip(jobs, llm.generate(batch, _params(config, schema)), strict=True):
        try:
            reply = parse_reply(group[0].text, fields)
        except ValueError as error:
            output.rejected.append(rejection(f"{document['doc_id']}#{index}", "generate", "generation-parse-error",
                                             str(error)[:160]))
            continue
        output.kept.append(make_qa(document, index, reply["question"], reply["answer"], persona,
                                   _evidence(document, reply["answer"]), "free"))
    return output


def generate_stage(documents: Sequence[Record], config: GenerateConfig, embedder: Embedder,
                   llm: LLM | None = None) -> StageOutput:
    """Stage 3: QA candidates (records of `make_qa`) for identified documents; a document without a usable
    sentence is rejected as `no-candidate`, an unparsable free reply as `generation-parse-error`."""
    documents = list(documents)
    if config.mode == "free":
        return _free(documents, config, _require(llm, config.mode))
    if config.mode == "paraphrase":
        llm = _require(llm, config.mode)
    output = _extractive(documents, config, embedder)
    if config.mode == "paraphrase":
        _paraphrase(output.kept, {document["doc_id"]: document for document in documents}, config, llm)
    elif config.mode != "extractive":
        raise ValueError(f"unknown generate.mode {config.mode}")
    return output


def llm_check(qas: Sequence[Record], documents: dict[str, Record], config: GenerateConfig,
              llm: LLM) -> list[dict[str, Any]]:
    """The paper's three Y/N verdicts for each QA pair (one batched call): `has_context`, `answer_correctness`,
    `info_leakage` and `passed` (Y, Y, N); an unparsable reply gives `{"error": ..., "passed": False}`."""
    if not qas:
        return []
    schema = _object({field: _string(1, ("Y", "N")) for field in CHECK_FIELDS})
    params = SamplingParams(temperature=0.0, max_tokens=max(config.max_tokens, 48), seed=config.seed,
                            json_schema=schema, logprobs=False)
    batch = [prompts.render_check(document_context(documents[qa["doc_id"]], qa.get("evidence", ""),
                                                   config.context_chars),
                                  qa["question"], qa["answer"]) for qa in qas]
    verdicts = []
    for group in llm.generate(batch, params):
        try:
            reply = parse_reply(group[0].text, CHECK_FIELDS)
            if any(reply[field] not in ("Y", "N") for field in CHECK_FIELDS):
                raise ValueError("each verdict must be Y or N")
        except ValueError as error:
            verdicts.append({"error": str(error)[:160], "passed": False})
            continue
        passed = reply["has_context"] == "Y" and reply["answer_correctness"] == "Y" and reply["info_leakage"] == "N"
        verdicts.append({**reply, "passed": passed})
    return verdicts
