"""Decontamination: drop QA pairs that share a word n-gram (13 by default) with an evaluation set.

The paper runs lm-eval-harness's n-gram overlap after generation (absent from its code). Here: texts become
lower-cased word tokens (runs of letters and digits, so punctuation never separates two matches), an evaluation item
contributes all its n-grams, and a QA pair (question + " " + answer) is contaminated when it shares any of them.
An evaluation item shorter than n tokens has no n-gram; rather than never matching it, we match it when its whole
token sequence appears in the QA text (so a JSON-lines item joins all its string values into one item: a bare
short answer such as "18" would otherwise flag every QA pair that contains the number).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.records import Record, StageOutput, rejection

__all__ = ["NgramIndex", "decontaminate_stage", "ngrams", "words"]

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The normalised word tokens: case-folded runs of word characters (punctuation and spaces dropped)."""
    return _WORD.findall(text.casefold())


def _grams(tokens: Sequence[str], n: int) -> list[str]:
    return [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def ngrams(text: str, n: int) -> list[str]:
    """The word n-grams of the text in order, each as space-joined tokens; none for a text under n tokens.

    >>> ngrams("What is 2+2? Four.", 3)
    ['what is 2', 'is 2 2', '2 2 four']
    """
    return _grams(words(text), n)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON value, in document order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"evaluation file {path} is not UTF-8 text: convert it or drop it from "
                        "decontaminate.eval_files") from None
    except OSError as error:
        raise UserError(f"cannot read evaluation file {path} ({error.strerror or error}): fix the path in "
                        "decontaminate.eval_files") from None


def _file_items(path: Path) -> list[str]:
    """A .txt file: one item per non-empty line; a .jsonl file: one item per line, its string values joined."""
    text = _read_text(path)
    if path.suffix == ".txt":
        return [line for line in text.splitlines() if line.strip()]
    if path.suffix != ".jsonl":
        raise UserError(f"evaluation file {path} is neither .jsonl nor .txt: convert it to JSON lines or text lines")
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"evaluation file {path} line {number} is not JSON ({error.msg}): fix that line") from None
        items.append("\n".join(_strings(value)))
    return items


class NgramIndex:
    """The n-grams of an evaluation set (and its items shorter than n, kept whole) for overlap look-ups."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"n-gram length must be at least 1, got {n}")
        self.n = n
        self.ngrams: set[str] = set()
        # items shorter than n tokens, by their length in tokens
        self.short_items: dict[int, set[str]] = {}

    def __len__(self) -> int:
        return len(self.ngrams) + sum(len(items) for items in self.short_items.values())

    def add(self, text: str) -> None:
        """Index one evaluation item."""
        tokens = words(text)
        if len(tokens) >= self.n:
            self.ngrams.update(_grams(tokens, self.n))
        elif tokens:
            self.short_items.setdefault(len(tokens), set()).add(" ".join(tokens))

    @classmethod
    def from_texts(cls, texts: Iterable[str], n: int) -> NgramIndex:
        """An index of the given evaluation items."""
        index = cls(n)
        for text in texts:
            index.add(text)
        return index

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], n: int) -> NgramIndex:
        """An index of the items in JSON-lines (every string value of an object, joined) and text files (one item
        per non-empty line)."""
        index = cls(n)
        for path in paths:
            for item in _file_items(Path(path)):
                index.add(item)
        return index

    def shared(self, text: str) -> list[str]:
        """The n-grams (and whole short items) of `text` found in the index, each once, in text order."""
        tokens = words(text)
        lengths = [self.n, *sorted(self.short_items)]
        found: dict[str, None] = {}
        for start in range(len(tokens)):
            for length in lengths:
                if start + length > len(tokens):
                    continue
                gram = " ".join(tokens[start:start + length])
                hit = gram in self.ngrams if length == self.n else gram in self.short_items[length]
                if hit:
                    found.setdefault(gram)
        return list(found)

    def overlaps(self, text: str) -> int:
        """How many distinct n-grams (and whole short items) `text` shares with the index."""
        return len(self.shared(text))


def decontaminate_stage(qas: Sequence[Record], index: NgramIndex) -> StageOutput:
    """Drop every QA pair whose question + answer shares an n-gram with the evaluation set ("contaminated")."""
    output = StageOutput()
    for qa in qas:
        shared = index.shared(f"{qa['question']} {qa['answer']}")
        if shared:
            output.rejected.append(rejection(qa["qa_id"], "decontaminate", "contaminated", shared[0]))
        else:
            output.kept.append(qa)
    return output
