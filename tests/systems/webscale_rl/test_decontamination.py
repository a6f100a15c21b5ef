"""Decontamination: a planted 13-gram is caught, 12 shared words are not, and bad evaluation files are one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.decontamination import NgramIndex, decontaminate_stage, ngrams, words
from reasonlab.systems.webscale_rl.records import make_document, make_qa

# a GSM8K-style evaluation item (written for this test)
EVAL_QUESTION = ("A baker fills 14 trays with 12 rolls each every morning and sells all but 9 rolls by noon; "
                 "how many rolls does the baker sell by noon?")
EVAL_WORDS = words(EVAL_QUESTION)
DOC = make_document("doc.txt", "text", "test", "txt")


def qa(index: int, question: str, answer: str = "159") -> dict:
    return make_qa(DOC, index, question, answer, "a teacher", "", "test")


def planted(n_words: int) -> str:
    """A question that copies `n_words` consecutive words (5th onwards) of the evaluation item, re-cased."""
    copied = " ".join(EVAL_WORDS[4:4 + n_words]).upper()
    return f"In a town bakery story, {copied}, so what is the total?"


def test_words_and_ngrams_ignore_case_and_punctuation() -> None:
    assert words("It's 3.11, OK?") == ["it", "s", "3", "11", "ok"]
    assert ngrams("What is 2+2? Four.", 3) == ["what is 2", "is 2 2", "2 2 four"]
    assert ngrams("too short", 3) == []


def test_a_planted_13_gram_is_caught_and_12_shared_words_are_not() -> None:
    index = NgramIndex.from_texts([EVAL_QUESTION], 13)
    assert len(EVAL_WORDS) == 28 and len(index) == 16
    assert index.overlaps(planted(13)) == 1
    assert index.shared(planted(13)) == [" ".join(EVAL_WORDS[4:17])]
    assert index.overlaps(planted(15)) == 3
    assert index.overlaps(planted(12)) == 0
    # an item of exactly n tokens is one n-gram, not a short item
    exact = NgramIndex.from_texts([" ".join(EVAL_WORDS[:13])], 13)
    assert exact.ngrams == {" ".join(EVAL_WORDS[:13])} and exact.short_items == {}


def test_decontaminate_stage_rejects_with_the_first_shared_ngram() -> None:
    index = NgramIndex.from_texts([EVAL_QUESTION], 13)
    clean, dirty = qa(0, planted(12)), qa(1, planted(13))
    # the answer counts too: 12 copied words at the end of the question plus the answer's first word
    tail = qa(2, "Consider: " + " ".join(EVAL_WORDS[:12]), answer=" ".join(EVAL_WORDS[12:14]))
    output = decontaminate_stage([clean, dirty, tail], index)
    assert output.kept == [clean]
    assert output.rejected == [
        {"id": dirty["qa_id"], "stage": "decontaminate", "reason": "contaminated",
         "detail": "trays with 12 rolls each every morning and sells all but 9 rolls"},
        {"id": tail["qa_id"], "stage": "decontaminate", "reason": "contaminated",
         "detail": " ".join(EVAL_WORDS[:13])},
    ]


def test_an_item_shorter_than_n_matches_only_as_a_whole() -> None:
    index = NgramIndex.from_texts(["Capital of France?", ""], 13)
    assert len(index) == 1
    assert index.shared("What is the capital of France, in one word?") == ["capital of france"]
    assert index.overlaps("What is the capital city of France?") == 0


def test_from_files_reads_every_string_of_jsonl_objects_and_text_lines(tmp_path: Path) -> None:
    jsonl = tmp_path / "eval.jsonl"
    rows = [{"question": EVAL_QUESTION, "answer": "159", "meta": {"split": 1}},
            {"question": "Name the capital", "choices": ["Paris", "Rome"], "answer": "Paris"}]
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n", encoding="utf-8")
    lines = tmp_path / "eval.txt"
    lines.write_text("\nWhich planet is known as the red planet\n   \n", encoding="utf-8")
    index = NgramIndex.from_files([str(jsonl), lines], 13)
    # item 1: 28 + 1 tokens -> 17 13-grams; item 2 (6 tokens) and the text line (7 tokens) kept whole
    assert len(index) == 17 + 2
    assert index.overlaps("so which planet is known as the red planet today") == 1
    assert index.overlaps("name the capital paris rome paris") == 1
    # a short answer field alone does not match: the object is one item
    assert index.overlaps("There are 159 rolls and Paris is nice.") == 0
    # the answer joins the question's n-grams
    assert index.shared(" ".join(EVAL_WORDS[-12:]) + " 159") == [" ".join([*EVAL_WORDS[-12:], "159"])]


def test_bad_evaluation_files_are_one_line_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=re.escape("missing.jsonl")):
        NgramIndex.from_files([tmp_path / "missing.jsonl"], 13)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "ok"}\n{"question": \n', encoding="utf-8")
    with pytest.raises(UserError, match=re.escape("broken.jsonl line 2 is not JSON")):
        NgramIndex.from_files([broken], 13)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me".encode("latin-1"))
    with pytest.raises(UserError, match=re.escape("latin.txt is not UTF-8")):
        NgramIndex.from_files([latin], 13)
    other = tmp_path / "eval.csv"
    other.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(UserError, match=re.escape("eval.csv is neither .jsonl nor .txt")):
        NgramIndex.from_files([other], 13)
    with pytest.raises(UserError) as error:
        NgramIndex.from_files([tmp_path], 13)
    assert "\n" not in str(error.value)
