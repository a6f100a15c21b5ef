"""The pipeline report and the checker's agreement with hand labels, on hand-built records with known answers."""

from __future__ import annotations

import math

import pytest

from reasonlab.systems.webscale_rl.evaluation import domain_entropy, label_agreement, pipeline_report, rate


def qa(qa_id: str, grounded: bool, leakage: bool, self_contained: bool = True, domain: str = "Coding") -> dict:
    return {"qa_id": qa_id, "doc_id": qa_id.split("#")[0], "domain": domain, "generator": "extractive",
            "checks": {"grounded": grounded, "leakage": leakage, "self_contained": self_contained}}


def test_rate_and_entropy() -> None:
    assert rate(0, 0)["rate"] is None
    assert rate(3, 4)["rate"] == 0.75 and rate(3, 4)["ci_low"] < 0.75 < rate(3, 4)["ci_high"]
    assert domain_entropy(["a", "b"]) == {"bits": 1.0, "normalized": 1.0}
    assert domain_entropy(["a"] * 3 + ["b"])["bits"] == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert domain_entropy([]) == {"bits": 0.0, "normalized": 0.0}


def test_label_agreement_counts() -> None:
    checked = [qa("d#0", True, False), qa("d#1", True, False), qa("d#2", False, False), qa("d#3", True, True),
               qa("e#0", True, False), qa("unlabelled#0", True, False)]
    labels = {"d#0": {"grounded": True, "leakage": False, "self_contained": True},
              "d#1": {"grounded": False, "leakage": True, "self_contained": True},
              "d#2": {"grounded": False, "leakage": False, "self_contained": False},
              "d#3": {"grounded": True, "leakage": True, "self_contained": True},
              "e#0": {"grounded": True, "leakage": False, "self_contained": True}}
    result = label_agreement(checked, labels)
    assert result["n"] == 5
    # checker says grounded for d#0, d#1, d#3, e#0; labels agree on 3 of those 4; labels have 3 grounded, all found
    assert (result["grounding"]["precision"]["k"], result["grounding"]["precision"]["n"]) == (3, 4)
    assert (result["grounding"]["recall"]["k"], result["grounding"]["recall"]["n"]) == (3, 3)
    assert (result["leakage"]["precision"]["k"], result["leakage"]["precision"]["n"]) == (1, 1)
    assert (result["leakage"]["recall"]["k"], result["leakage"]["recall"]["n"]) == (1, 2)
    # accepted by the checker: d#0, d#1, e#0; one of them (d#1) leaks and is ungrounded by hand
    assert (result["leakage_before_check"]["k"], result["leakage_before_check"]["n"]) == (2, 5)
    assert (result["leakage_after_check"]["k"], result["leakage_after_check"]["n"]) == (1, 3)
    assert (result["ungrounded_after_check"]["k"], result["ungrounded_after_check"]["n"]) == (1, 3)
    # the checker calls every one self-contained; the labels say d#2 is not
    assert (result["self_contained"]["precision"]["k"], result["self_contained"]["precision"]["n"]) == (4, 5)
    assert (result["accepted"]["k"], result["accepted"]["n"]) == (3, 5)


def test_pipeline_report_numbers() -> None:
    counts = {"read": [12, 10], "dedup_documents": [10, 9], "filter": [9, 6], "identify": [6, 6],
              "generate": [6, 15], "check": [15, 8], "decontaminate": [8, 8], "dedup_qa": [8, 7]}
    rejected = [{"id": "x", "stage": "read", "reason": "binary", "detail": ""},
                {"id": "y", "stage": "read", "reason": "empty", "detail": ""},
                {"id": "a", "stage": "filter", "reason": "boilerplate", "detail": ""}]
    documents = [{"doc_id": f"d{i}", "domain": "Coding" if i < 4 else "Math"} for i in range(6)]
    candidates = [qa(f"d{i % 6}#{i}", i % 3 != 0, i % 5 == 0) for i in range(15)]
    accepted = [qa(f"d{i}#0", True, False, domain="Coding" if i < 5 else "Math") for i in range(7)]
    report = pipeline_report(counts, rejected, documents, candidates, accepted, {"filter": 2.0, "check": 0.5})
    assert report["documents"] == {"inputs": 12, "read": 10, "skipped": {"binary": 1, "empty": 1},
                                   "after_filter": 6, "identified": 6}
    assert report["qa"]["yield_per_document"] == pytest.approx(0.7)
    assert report["qa"]["yield_per_identified_document"] == pytest.approx(7 / 6)
    assert report["duplicates"]["documents"]["k"] == 1 and report["duplicates"]["qa"]["k"] == 1
    assert report["checks"]["ungrounded"]["k"] == 5 and report["checks"]["leakage"]["k"] == 3
    assert report["domains"]["qa"] == {"Coding": 5, "Math": 2}
    assert report["docs_per_second"]["filter"] == pytest.approx(4.5)
    filter_row = next(row for row in report["stages"] if row["stage"] == "filter")
    assert filter_row["pass_rate"] == pytest.approx(6 / 9) and filter_row["reasons"] == {"boilerplate": 1}
