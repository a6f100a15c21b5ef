"""Stage 2: the nearest-centroid domain classifier, persona lists and picks, the unknown-domain rule and the LLM
identifier's parse (HashingEmbedder and ScriptedLLM; one slow test with the real MiniLM anchors)."""

from __future__ import annotations

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import HashingEmbedder, ScriptedLLM
from reasonlab.systems.webscale_rl.config import DOMAINS, IdentifyConfig
from reasonlab.systems.webscale_rl.identify import (
    DOMAIN_ANCHORS,
    PERSONAS,
    DomainClassifier,
    document_snippet,
    identify_stage,
    llm_identify,
    parse_identity,
    pick_personas,
)

TOY_ANCHORS = {
    "Coding": ["python function returns list", "compile source code with the interpreter"],
    "Medicine & Health": ["patient dose of insulin", "doctor treats fever and infection"],
    "Travel & Lifestyle": ["hotel beach holiday", "recipe with garlic and onions"],
}


def doc(doc_id: str, text: str, title: str = "") -> dict:
    return {"doc_id": doc_id, "source": doc_id, "format": "txt", "title": title, "text": text}


class FixedClassifier:
    """Returns the labels it was given, in order (to test the stage's pass rule without embeddings)."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels

    def classify(self, texts: list[str]) -> list[tuple[str, float]]:
        return [(label, 0.5) for label in self.labels[:len(texts)]]


def test_nearest_centroid_and_margin() -> None:
    classifier = DomainClassifier(HashingEmbedder(), TOY_ANCHORS)
    labels = classifier.classify(["the python function returns a list", "the doctor gave the patient insulin",
                                  "a beach hotel and a garlic recipe"])
    assert [label for label, _ in labels] == ["Coding", "Medicine & Health", "Travel & Lifestyle"]
    assert all(margin > 0.1 for _, margin in labels)
    assert classifier.classify([]) == []


def test_default_anchors_cover_every_domain() -> None:
    assert list(DOMAIN_ANCHORS) == list(DOMAINS)
    assert all(3 <= len(anchors) <= 4 for anchors in DOMAIN_ANCHORS.values())
    assert DomainClassifier(HashingEmbedder()).centroids.shape == (len(DOMAINS), 256)


def test_personas_per_domain() -> None:
    assert list(PERSONAS) == list(DOMAINS)
    for domain, personas in PERSONAS.items():
        assert 5 <= len(personas) <= 6, domain
        assert all("," not in persona for persona in personas)  # the reference code splits personas at commas
        assert len(set(personas)) == len(personas)


def test_pick_personas_is_deterministic_and_distinct() -> None:
    picks = pick_personas("library/os.html", "Coding", 3, seed=0)
    assert picks == pick_personas("library/os.html", "Coding", 3, seed=0)
    assert len(set(picks)) == 3 and set(picks) <= set(PERSONAS["Coding"])
    spread = {tuple(pick_personas(f"doc{i}.html", "Coding", 3, seed=0)) for i in range(20)}
    assert len(spread) > 5  # documents get different readers
    assert pick_personas("a", "Math", 9, seed=1) == pick_personas("a", "Math", 9, seed=1)
    assert len(pick_personas("a", "Math", 9, seed=1)) == len(PERSONAS["Math"])
    with pytest.raises(UserError, match="no personas"):
        pick_personas("a", "Cooking", 2, seed=0)


def test_snippet_is_title_and_start() -> None:
    snippet = document_snippet(doc("a", "word " * 600, title="A Title"))
    assert snippet.startswith("A Title\nword word") and len(snippet) == len("A Title\n") + 1000


def test_identify_stage_labels_and_rejects_unknown_domains() -> None:
    documents = [doc("a", "text a"), doc("b", "text b"), doc("c", "text c")]
    output = identify_stage(documents, IdentifyConfig(max_personas=2), FixedClassifier(
        ["Coding", "Cooking", "Math"]), seed=3)
    assert [d["doc_id"] for d in output.kept] == ["a", "c"]
    assert [(r["id"], r["stage"], r["reason"], r["detail"]) for r in output.rejected] == [
        ("b", "identify", "unknown-domain", "Cooking")]
    first = output.kept[0]
    assert first["domain"] == "Coding" and first["domain_margin"] == 0.5
    assert first["personas"] == pick_personas("a", "Coding", 2, 3)


def test_identify_stage_with_embeddings() -> None:
    documents = [doc("py", "python function returns a list of values", title="list"),
                 doc("med", "the patient received a dose of insulin for fever")]
    output = identify_stage(documents, IdentifyConfig(), DomainClassifier(HashingEmbedder(), TOY_ANCHORS), seed=0)
    assert [(d["doc_id"], d["domain"], len(d["personas"])) for d in output.kept] == [
        ("py", "Coding", 3), ("med", "Medicine & Health", 3)]


def test_llm_identifier() -> None:
    replies = ['{"domain": "Coding", "personas": ["a Python developer", "a student, a teacher"]}',
               '{"domain": "Cooking", "personas": ["a chef"]}',
               '{"domain": "Coding"}']
    llm = ScriptedLLM(replies)
    config = IdentifyConfig(llm_identifier=True, max_personas=2)
    output = identify_stage([doc("a", "x"), doc("b", "y"), doc("c", "z")], config, None, seed=0, llm=llm)
    assert [(d["doc_id"], d["domain"], d["personas"], d["domain_margin"]) for d in output.kept] == [
        ("a", "Coding", ["a Python developer", "a student"], None)]
    assert [(r["id"], r["reason"]) for r in output.rejected] == [("b", "unknown-domain"),
                                                                  ("c", "identify-parse-error")]
    assert "<document>\nx\n</document>" in llm.prompts[0]
    with pytest.raises(UserError, match="needs an LLM"):
        identify_stage([doc("a", "x")], config, None, seed=0)


def test_identity_schema_and_parse() -> None:
    llm = ScriptedLLM(['{"domain": "Math", "personas": ["a"]}'])
    llm_identify([doc("a", "x")], llm, max_personas=3)
    assert parse_identity('{"domain": " Math ", "personas": ["x", "y", "z", "w"]}', 3) == ("Math", ["x", "y", "z"])
    for bad in ('{"domain": "Math", "personas": []}', '{"domain": "Math", "personas": "x", "extra": 1}', "[]"):
        with pytest.raises(ValueError):
            parse_identity(bad, 3)


@pytest.mark.slow
def test_minilm_anchors_on_real_paragraphs() -> None:
    from reasonlab.llm.embed import load_embedder

    classifier = DomainClassifier(load_embedder("minilm"))
    python_docs = ("functools — Higher-order functions and operations on callable objects\n"
                   "The functools module is for higher-order functions: functions that act on or return other "
                   "functions. @functools.lru_cache(maxsize=128, typed=False) decorates a function with a "
                   "memoizing callable that saves up to the maxsize most recent calls.")
    medical = ("Hypertension\nHigh blood pressure rarely causes symptoms but raises the risk of stroke and heart "
               "attack. Treatment starts with less salt and more exercise; patients whose blood pressure stays "
               "above 140/90 mmHg are usually prescribed ACE inhibitors or diuretics by their doctor.")
    (code_label, _), (medical_label, margin) = classifier.classify([python_docs, medical])
    assert code_label in {"Coding", "Technology & Engineering"}
    assert medical_label == "Medicine & Health" and margin > 0.02
