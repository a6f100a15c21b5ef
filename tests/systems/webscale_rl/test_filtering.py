"""Stage 1: word counts, the boilerplate ratio on hand-built pages, the anchor score, and the three rejection
reasons in rule order; one slow test on real python3.11-doc pages with the real MiniLM."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from reasonlab.llm import HashingEmbedder
from reasonlab.systems.webscale_rl.config import CorpusConfig, FilterConfig
from reasonlab.systems.webscale_rl.corpus import DEBIAN_FOLDERS, read_corpus
from reasonlab.systems.webscale_rl.filtering import (
    BOILERPLATE_ANCHORS,
    INFORMATIVE_ANCHORS,
    PASSAGE_WORDS,
    PASSAGES,
    InformativenessScorer,
    boilerplate_ratio,
    filter_stage,
    word_count,
)
from reasonlab.systems.webscale_rl.records import make_document

PROSE_LINES = [
    "The river rose after three days of rain, and the town moved its market to the hill.",
    "Farmers brought their grain by boat, because the low road stayed under water for a week.",
    "Engineers later built a stone wall along the bank; it has held back every flood since 1911.",
]
NAVIGATION = "Navigation\nindex\nmodules |\nnext |\nprevious |\nPython » 3.11 Documentation »\nTable of contents\n" \
             "This page\nShow Source\nQuick search"
INDEX_ENTRIES = "Index – A\nabs() (built-in function)\n,\n[1]\nabort() (in module os)\n(asyncio.Barrier method)\n" \
                "(ftplib.FTP method)\nabc\nmodule\nABCMeta (class in abc)\nabove() (curses.panel.Panel method)"
CODE = ">>> import json\n>>> json.dumps({'a': 1})\ndef area(width, height):\n    return width * height\n}\nx = 3"


def test_word_count_counts_words_not_punctuation() -> None:
    assert word_count("It's a well-known fact: 3 cats, 2 dogs... and  — nothing else!") == 12
    assert word_count("  \n\t") == 0


def test_navigation_index_and_link_pages_are_all_boilerplate() -> None:
    assert boilerplate_ratio(NAVIGATION) == 1.0
    assert boilerplate_ratio(INDEX_ENTRIES) == 1.0
    assert boilerplate_ratio("- [Home](/)\n- [Blog](/blog)\n- [About us](/about)\n* [A much longer link text](/x)") == 1.0
    assert boilerplate_ratio("A | B | C | D | E\nSymbols | _ | Z") == 1.0


def test_prose_scores_zero_and_code_counts_on_neither_side() -> None:
    prose = "\n".join(PROSE_LINES)
    assert boilerplate_ratio(prose) == 0.0
    with_heading = "River floods\n" + prose  # one short fragment in four lines
    assert boilerplate_ratio(with_heading) == 0.25
    assert boilerplate_ratio(with_heading + "\n" + CODE) == 0.25
    assert boilerplate_ratio(with_heading + "\n-\n\n-  \n") == 0.25  # bare list bullets are not lines
    assert boilerplate_ratio(CODE) == 0.0
    assert boilerplate_ratio("") == 1.0


def test_short_lines_with_sentence_punctuation_are_prose() -> None:
    assert boilerplate_ratio("It works.\nReally?\nNote: see below\nTwo lines") == 0.25


def _words(text: str, count: int) -> str:
    words = text.split()
    return " ".join(words[i % len(words)] for i in range(count))


def test_informative_text_scores_above_zero_and_boilerplate_below() -> None:
    scorer = InformativenessScorer(HashingEmbedder())
    scores = scorer.score([" ".join(INFORMATIVE_ANCHORS), " ".join(BOILERPLATE_ANCHORS)])
    assert scores.shape == (2,)
    assert scores[0] > 0.05 and scores[1] < -0.05
    assert scorer.score([]).shape == (0,)


def test_documents_are_scored_independently_and_only_their_first_passages_count() -> None:
    scorer = InformativenessScorer(HashingEmbedder())
    texts = [_words(PROSE_LINES[0], 30), _words(NAVIGATION, 250), _words(" ".join(INFORMATIVE_ANCHORS), 120)]
    together = scorer.score(texts)
    alone = np.concatenate([scorer.score([text]) for text in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-6, atol=1e-7)
    head = _words(" ".join(INFORMATIVE_ANCHORS), PASSAGES * PASSAGE_WORDS)
    padded = head + " " + _words(" ".join(BOILERPLATE_ANCHORS), 500)
    np.testing.assert_allclose(scorer.score([padded]), scorer.score([head]), rtol=1e-6, atol=1e-7)


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it embeds beyond the anchors."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts)


def _doc(doc_id: str, text: str) -> dict:
    return make_document(doc_id, text, doc_id, "text")


def test_filter_stage_reasons_in_rule_order_with_scores() -> None:
    river = "\n".join(PROSE_LINES * 3)  # 3 x 50 words
    spam = "\n".join(["Click the button below and subscribe to our newsletter for weekly deals today."] * 6)
    documents = [
        _doc("river", river),
        _doc("short", PROSE_LINES[0]),
        _doc("short-nav", NAVIGATION),  # fails both the length and the boilerplate rule: the first names it
        _doc("nav", "\n".join([NAVIGATION] * 6)),
        _doc("spam", spam),
    ]
    embedder = CountingEmbedder()
    scorer = InformativenessScorer(embedder, informative=["river rain flood water bank market town grain"],
                                   boilerplate=["click button subscribe newsletter deals today"])
    embedder.texts.clear()
    output = filter_stage(documents, FilterConfig(min_words=50, max_boilerplate=0.5, min_informativeness=0.0),
                          scorer)
    assert [doc["doc_id"] for doc in output.kept] == ["river"]
    assert [(r["id"], r["stage"], r["reason"]) for r in output.rejected] == [
        ("short", "filter", "too-short"), ("short-nav", "filter", "too-short"), ("nav", "filter", "boilerplate"),
        ("spam", "filter", "uninformative"),
    ]
    assert output.rejected[0]["detail"] == "17 words < min_words 50"
    assert "1.00 of its lines look like boilerplate > max_boilerplate 0.5" in output.rejected[2]["detail"]
    river_scores = output.kept[0]["scores"]
    assert (river_scores["words"], river_scores["boilerplate"]) == (150, 0.0)
    assert river_scores["informativeness"] > 0 > documents[4]["scores"]["informativeness"]
    assert documents[1]["scores"]["informativeness"] is None  # rejected before the embedder saw it
    assert len(embedder.texts) == 3  # river in two passages (<= 100 words each), spam in one, nothing else


def test_filter_stage_with_open_thresholds_keeps_everything_in_order() -> None:
    documents = [_doc(name, NAVIGATION) for name in ("c", "a", "b")]
    config = FilterConfig(min_words=0, max_boilerplate=1.0, min_informativeness=-10.0)
    output = filter_stage(documents, config, InformativenessScorer(HashingEmbedder()))
    assert [doc["doc_id"] for doc in output.kept] == ["c", "a", "b"] and output.rejected == []


def _python_doc_html() -> Path:
    cache = Path(os.environ.get("REASONLAB_CACHE", Path.home() / ".cache" / "reasonlab"))
    return cache / "debian" / "python3.11-doc" / "root" / DEBIAN_FOLDERS["python3.11-doc"][0]


REAL_PROSE_PAGES = [
    "library/json.html", "library/os.path.html", "library/functools.html", "library/random.html",
    "library/heapq.html", "library/bisect.html", "library/textwrap.html", "library/math.html",
    "library/statistics.html", "library/fractions.html", "library/shutil.html", "library/glob.html",
    "tutorial/controlflow.html", "tutorial/classes.html", "tutorial/errors.html", "howto/sorting.html",
]
REAL_INDEX_PAGES = ["genindex-A.html", "genindex-Q.html", "library/modules.html", "library/netdata.html"]


@pytest.mark.slow
def test_real_python_doc_pages_index_pages_fail_and_library_pages_pass(tmp_path: Path) -> None:
    html = _python_doc_html()
    if not html.is_dir():
        pytest.skip(f"python3.11-doc is not unpacked in the cache ({html.name}): reasonlab fetches it on first use")
    from reasonlab.llm.embed import load_embedder

    for name in REAL_PROSE_PAGES + REAL_INDEX_PAGES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(html / name, tmp_path / name)
    read = read_corpus(CorpusConfig(input=str(tmp_path)))
    assert len(read.kept) == 20 and read.rejected == []
    output = filter_stage(read.kept, FilterConfig(), InformativenessScorer(load_embedder("minilm")))
    reasons = {r["id"]: r["reason"] for r in output.rejected}
    assert reasons == dict.fromkeys(REAL_INDEX_PAGES, "boilerplate")
    assert sorted(doc["doc_id"] for doc in output.kept) == sorted(REAL_PROSE_PAGES)
    index_scores = [doc["scores"]["boilerplate"] for doc in read.kept if doc["doc_id"] in REAL_INDEX_PAGES]
    assert min(index_scores) > 0.9
    assert max(doc["scores"]["boilerplate"] for doc in output.kept) < 0.5
