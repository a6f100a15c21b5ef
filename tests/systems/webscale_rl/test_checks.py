"""Stage 4: grounding, leakage and self-containedness verdicts on hand-built QA pairs."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from reasonlab.llm import HashingEmbedder
from reasonlab.systems.webscale_rl.checks import (
    annotate_checks,
    answer_overlap,
    check_qa,
    check_stage,
    deictic_phrases,
    grounding_score,
    normalize_answer,
    passes,
    rejection_reason,
)
from reasonlab.systems.webscale_rl.config import CheckConfig
from reasonlab.systems.webscale_rl.records import make_document, make_qa

DOCUMENT = make_document(
    "whatsnew/3.11.html",
    "What's New In Python 3.11. Python 3.11 was released on October 24, 2022. It is between 10 and 60 percent "
    "faster than Python 3.10, thanks to the Faster CPython project. Exception groups and except* were added by "
    "PEP 654, and the tomllib module reads TOML files.",
    "debian:python3.11-doc", "html", "What's New In Python 3.11",
)


def qa(index: int, question: str, answer: str) -> dict:
    return make_qa(DOCUMENT, index, question, answer, "a Python developer", "", "test")


GOOD = qa(0, "Which Python release, published in October 2022, added exception groups through PEP 654?",
          "python 3.11.")
LEAKY = qa(1, "Python 3.11 added exception groups through PEP 654; which release added exception groups?",
           "Python 3.11")
NO_CONTEXT = qa(2, "According to the text, which PEP added exception groups and except* to Python?", "PEP 654")
UNGROUNDED = qa(3, "Which standard library module of Python 3.11 parses YAML configuration files?", "yamllib")
SHORT = qa(4, "Which PEP added except*?", "PEP 654")
BOTH_FAIL = qa(5, "Which module of Python, the yamllib module, parses YAML files in the standard library?",
               "yamllib")


def test_normalize_answer_lowercases_and_drops_punctuation_articles_and_spaces() -> None:
    assert normalize_answer("The  Python 3.11.") == "python 311"
    assert normalize_answer("An apple, a day!") == "apple day"
    assert normalize_answer("os.path_join()") == "ospathjoin"
    assert normalize_answer("theory") == "theory"  # "the" only as a whole word
    assert normalize_answer("TCP/IP or C:\\Windows") == "tcp ip or c windows"  # a slash separates words


def test_grounding_is_100_for_a_differently_cased_and_punctuated_answer() -> None:
    assert grounding_score("python 3.11.", DOCUMENT["text"]) == 100.0
    assert grounding_score("pep 654!", DOCUMENT["text"]) == 100.0


def test_grounding_counts_whole_words_only() -> None:
    # "3" only occurs inside "3.11" / "3.10": the matched window widens to the word "311", ratio 2*1/(1+3)
    assert grounding_score("3", "Python 3.11 and 3.10") == 50.0
    # a one-letter typo still finds its words: ratio("pyton 311", "python 311") = 2*9/19
    assert grounding_score("pyton 3.11", "the Python 3.11 release") == pytest.approx(1800 / 19)
    assert grounding_score("", DOCUMENT["text"]) == 0.0
    assert grounding_score("yamllib", DOCUMENT["text"]) < 90.0


def test_grounding_is_fast_on_a_100k_character_document() -> None:
    rng = np.random.default_rng(0)
    vocabulary = np.array(["module", "function", "returns", "value", "python", "list", "object", "string"])
    document = " ".join(rng.choice(vocabulary, size=16_000))
    assert len(document) > 100_000
    started = time.perf_counter()
    scores = [grounding_score(answer, document) for answer in ["returns value", "tomllib reads TOML"] * 20]
    assert time.perf_counter() - started < 2.0
    assert scores[0] == 100.0 and scores[1] < 90.0


def test_answer_overlap_is_the_share_of_answer_tokens_in_the_question() -> None:
    assert answer_overlap("Python 3.11", "Which release came after Python 3.11?") == 1.0
    assert answer_overlap("Guido van Rossum", "Who, besides Guido, wrote the first release?") == pytest.approx(1 / 3)
    # the number 3 is not in "3.11" (normalised "311")
    assert answer_overlap("3", "What did Python 3.11 add?") == 0.0
    assert answer_overlap("...", "Anything?") == 0.0


def test_answer_overlap_finds_an_identifier_inside_the_question_s_code() -> None:
    """Found by the hand labels: a cloze under the heading "class turtle.ScrolledCanvas(master)" leaks its answer,
    which the glued normalisation ("turtlescrolledcanvasmaster") hid."""
    heading = 'Under the heading "class turtle.ScrolledCanvas(master)": what fills the blank?'
    assert answer_overlap("ScrolledCanvas", heading) == 1.0
    assert answer_overlap("constructor_ob", 'Under "copyreg.pickle(type, function, constructor_ob=None)"?') == 1.0
    # split identifiers count only in a row: bisect_left is not in "insort_left ... bisect()"
    assert answer_overlap("bisect_left()", "The bisect.insort_left(a, x) function calls bisect() first?") == 0.0
    assert answer_overlap("3.4", "It was reinstated in 3.4.2; when was it removed?") == 0.0


def test_deictic_phrases_name_references_to_an_unseen_document() -> None:
    assert deictic_phrases("According to the text, what is X?") == ["according to the text"]
    assert deictic_phrases("What does this article say about the following options?") == [
        "this article", "the following options"]
    assert deictic_phrases("As mentioned above, what does this function return?") == [
        "mentioned above", "this function"]
    # compounds and plain "the function" stand alone
    assert deictic_phrases("What does the text mode of open() change for the function len()?") == []
    assert deictic_phrases("Which method of the Document object lists child nodes?") == []


def test_check_qa_verdicts_on_hand_built_pairs() -> None:
    config = CheckConfig()
    good = check_qa(GOOD, DOCUMENT["text"], config)
    # "python" of the answer is in the question: overlap 1/2, under 0.8
    assert good == {"grounding": 100.0, "grounded": True, "answer_overlap": 0.5, "qa_similarity": None,
                    "leakage": False, "self_contained": True, "deictic": []}
    leaky = check_qa(LEAKY, DOCUMENT["text"], config)
    assert leaky["leakage"] and leaky["answer_overlap"] == 1.0 and leaky["grounded"]
    no_context = check_qa(NO_CONTEXT, DOCUMENT["text"], config)
    assert not no_context["self_contained"] and no_context["deictic"] == ["according to the text"]
    assert not no_context["leakage"] and no_context["grounded"]
    ungrounded = check_qa(UNGROUNDED, DOCUMENT["text"], config)
    assert not ungrounded["grounded"] and ungrounded["self_contained"] and not ungrounded["leakage"]
    short = check_qa(SHORT, DOCUMENT["text"], config)
    assert not short["self_contained"] and short["deictic"] == []  # 4 words < 6


def test_leakage_thresholds_are_inclusive_for_overlap_and_strict_for_similarity() -> None:
    config = CheckConfig(max_answer_overlap=0.5, max_answer_similarity=0.9)
    half = qa(6, "Who, besides Guido, wrote the first Python release in 1991?", "Guido Rossum")
    assert check_qa(half, "Guido Rossum wrote it.", config)["leakage"]  # overlap 0.5 >= 0.5
    assert not check_qa(half, "x", CheckConfig(max_answer_overlap=0.51))["leakage"]
    config = CheckConfig(max_answer_similarity=0.9)
    assert check_qa(GOOD, DOCUMENT["text"], config, similarity=0.95)["leakage"]
    assert not check_qa(GOOD, DOCUMENT["text"], config, similarity=0.9)["leakage"]


def test_check_stage_keeps_only_pairs_passing_all_three_and_names_the_first_failure() -> None:
    candidates = [GOOD, LEAKY, NO_CONTEXT, UNGROUNDED, SHORT, BOTH_FAIL]
    candidates = [dict(c, checks={}) for c in candidates]
    output = check_stage(candidates, {DOCUMENT["doc_id"]: DOCUMENT}, CheckConfig(), HashingEmbedder())
    assert [q["qa_id"] for q in output.kept] == [GOOD["qa_id"]]
    assert [(r["id"], r["stage"], r["reason"]) for r in output.rejected] == [
        (LEAKY["qa_id"], "check", "leakage"),
        (NO_CONTEXT["qa_id"], "check", "no-context"),
        (UNGROUNDED["qa_id"], "check", "ungrounded"),
        (SHORT["qa_id"], "check", "no-context"),
        (BOTH_FAIL["qa_id"], "check", "ungrounded"),  # ungrounded and leaking: the first reason wins
    ]
    assert output.rejected[1]["detail"] == "deictic ['according to the text']"
    # rejected pairs carry their verdicts too (the labelled-sample audit reads them)
    assert candidates[5]["checks"]["leakage"] and not candidates[5]["checks"]["grounded"]


def test_annotate_checks_records_the_question_answer_cosine_and_rejects_nothing() -> None:
    embedder = HashingEmbedder(dim=4096)
    pair = qa(7, "Which Python release added exception groups?", "Python 3.11")
    annotated = annotate_checks([pair], {DOCUMENT["doc_id"]: DOCUMENT}, CheckConfig(), embedder)
    assert annotated[0] is pair
    # one shared word (python) of 6 question words and 3 answer words: 1 / sqrt(6 * 3)
    assert pair["checks"]["qa_similarity"] == pytest.approx(1 / np.sqrt(18), abs=1e-4)
    assert annotate_checks([], {}, CheckConfig(), embedder) == []
    with pytest.raises(ValueError, match=re.escape("missing.html")):
        annotate_checks([dict(pair, doc_id="missing.html")], {}, CheckConfig(), embedder)


def test_passes_and_rejection_reason_follow_the_spec_rule() -> None:
    ok = {"grounded": True, "leakage": False, "self_contained": True}
    assert passes(ok) and rejection_reason(ok) is None
    assert rejection_reason(dict(ok, leakage=True, self_contained=False)) == "leakage"
    assert rejection_reason(dict(ok, self_contained=False)) == "no-context"
    assert not passes(dict(ok, grounded=False))
    # the LLM checker's no, when it ran, rejects after the deterministic verdicts
    said_no = dict(ok, llm={"has_context": "Y", "answer_correctness": "N", "info_leakage": "N", "passed": False})
    assert rejection_reason(said_no) == "llm-check" and not passes(said_no)
    assert passes(dict(ok, llm={"passed": True}))
