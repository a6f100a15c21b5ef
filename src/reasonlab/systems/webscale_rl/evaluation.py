"""Every metric the pipeline reports (spec section 9 "Measure"): per-stage pass rates and rejection reasons, QA
yield per document, leakage flagged by the checker, duplicate rates, the domain distribution and its entropy,
throughput by stage; and the checker's agreement with hand labels (grounding precision/recall, leakage left)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from reasonlab.stats import Rate
from reasonlab.systems.webscale_rl.records import STAGES, Record

__all__ = ["domain_entropy", "format_percent", "label_agreement", "labelled_sample_agreement", "pipeline_report",
           "rate"]


def format_percent(row: dict[str, Any], signed: bool = False) -> str:
    """'mean ± sd%' of a `mean_spread` row of rates (n/a when it is empty); `signed` for differences."""
    if row.get("mean") is None:
        return "n/a"
    return f"{100 * row['mean']:{'+' if signed else ''}.1f} ± {100 * (row.get('sd') or 0):.1f}%"


def rate(successes: int, n: int) -> dict[str, Any]:
    """k of n with its 95% Wilson interval, in the shape every system reports (`reasonlab.stats.Rate`)."""
    return Rate(successes, n).as_dict()


def domain_entropy(domains: Iterable[str]) -> dict[str, float]:
    """Shannon entropy of a label distribution in bits, and divided by log2 of the labels present."""
    counts = Counter(domains)
    total = sum(counts.values())
    if total == 0:
        return {"bits": 0.0, "normalized": 0.0}
    bits = -sum(c / total * math.log2(c / total) for c in counts.values())
    labels = len(counts)
    return {"bits": bits, "normalized": bits / math.log2(labels) if labels > 1 else 0.0}


def _stage_rows(counts: dict[str, list[int]], rejected: Sequence[Record]) -> list[dict[str, Any]]:
    reasons: dict[str, Counter[str]] = {}
    for record in rejected:
        reasons.setdefault(record["stage"], Counter())[record["reason"]] += 1
    rows = []
    for stage in STAGES:
        if stage not in counts:
            continue
        size, kept = counts[stage]
        rows.append({"stage": stage, "in": size, "out": kept, "pass_rate": kept / size if size else None,
                     "reasons": dict(reasons.get(stage, Counter()).most_common())})
    return rows


def _check_failures(candidates: Sequence[Record]) -> dict[str, Any]:
    """How often each check fires among all candidates (independently of the order the stage applies them)."""
    n = len(candidates)
    checks = [qa.get("checks", {}) for qa in candidates]
    return {
        "ungrounded": rate(sum(not c.get("grounded", True) for c in checks), n),
        "leakage": rate(sum(bool(c.get("leakage", False)) for c in checks), n),
        "no_context": rate(sum(not c.get("self_contained", True) for c in checks), n),
    }


def pipeline_report(counts: dict[str, list[int]], rejected: Sequence[Record], documents: Sequence[Record],
                    candidates: Sequence[Record], qa: Sequence[Record],
                    seconds: dict[str, float]) -> dict[str, Any]:
    """The run's report.json: everything issue 23 asks to see about a pipeline run."""
    read_in, read_out = counts.get("read", [0, 0])
    skipped = Counter(r["reason"] for r in rejected if r["stage"] == "read")
    per_document = Counter(record["doc_id"] for record in qa)
    dedup_docs = counts.get("dedup_documents", [read_out, read_out])
    dedup_qa = counts.get("dedup_qa", [len(qa), len(qa)])
    return {
        "documents": {"inputs": read_in, "read": read_out, "skipped": dict(skipped.most_common()),
                      "after_filter": counts.get("filter", [0, 0])[1], "identified": len(documents)},
        "stages": _stage_rows(counts, rejected),
        "qa": {
            "candidates": len(candidates),
            "accepted": len(qa),
            "yield_per_document": len(qa) / read_out if read_out else 0.0,
            "yield_per_identified_document": len(qa) / len(documents) if documents else 0.0,
            "documents_with_qa": len(per_document),
            "generators": dict(Counter(record.get("generator", "") for record in qa).most_common()),
        },
        "checks": _check_failures(candidates),
        "leakage": {"flagged": rate(sum(bool(c.get("checks", {}).get("leakage")) for c in candidates),
                                    len(candidates)),
                    "remaining_flagged": sum(bool(r.get("checks", {}).get("leakage")) for r in qa)},
        "duplicates": {"documents": rate(dedup_docs[0] - dedup_docs[1], dedup_docs[0]),
                       "qa": rate(dedup_qa[0] - dedup_qa[1], dedup_qa[0])},
        "domains": {"documents": dict(Counter(d.get("domain", "Other") for d in documents).most_common()),
                    "qa": dict(Counter(r.get("domain", "Other") for r in qa).most_common()),
                    "entropy_documents": domain_entropy(d.get("domain", "Other") for d in documents),
                    "entropy_qa": domain_entropy(r.get("domain", "Other") for r in qa)},
        "seconds": {stage: round(value, 3) for stage, value in seconds.items()},
        "docs_per_second": {stage: (counts[stage][0] / value if value > 0 else None)
                            for stage, value in seconds.items() if stage in counts},
    }


def _confusion(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, Any]:
    true_positive = sum(p and t for p, t in zip(predicted, truth, strict=True))
    predicted_positive = sum(predicted)
    actual_positive = sum(truth)
    return {"precision": rate(true_positive, predicted_positive), "recall": rate(true_positive, actual_positive),
            "agreement": rate(sum(p == t for p, t in zip(predicted, truth, strict=True)), len(truth))}


def label_agreement(checked: Sequence[Record], labels: dict[str, dict[str, bool]]) -> dict[str, Any]:
    """The checker against hand labels, over the QA both cover: grounding precision/recall (positive = grounded),
    leakage precision/recall (positive = leaks), self-containedness, and what the labels say of the QA the checker
    accepts (leakage and ungrounded answers left)."""
    rows = [(qa["checks"], labels[qa["qa_id"]]) for qa in checked if qa["qa_id"] in labels]
    grounded = _confusion([c["grounded"] for c, _ in rows], [lab["grounded"] for _, lab in rows])
    leakage = _confusion([c["leakage"] for c, _ in rows], [lab["leakage"] for _, lab in rows])
    context = _confusion([c["self_contained"] for c, _ in rows], [lab["self_contained"] for _, lab in rows])
    accepted = [lab for c, lab in rows if c["grounded"] and not c["leakage"] and c["self_contained"]]
    return {
        "n": len(rows),
        "grounding": grounded,
        "leakage": leakage,
        "self_contained": context,
        "accepted": rate(len(accepted), len(rows)),
        "leakage_before_check": rate(sum(lab["leakage"] for _, lab in rows), len(rows)),
        "leakage_after_check": rate(sum(lab["leakage"] for lab in accepted), len(accepted)),
        "ungrounded_after_check": rate(sum(not lab["grounded"] for lab in accepted), len(accepted)),
    }


def labelled_sample_agreement(rows: Sequence[Record], config: Any, embedder: Any) -> dict[str, Any]:
    """The deterministic checker run on each labelled row's passage (the text its generator saw), against the
    row's hand labels: `label_agreement` over all rows and per generator (rows: qa_id, generator, passage,
    question, answer, labels)."""
    from reasonlab.systems.webscale_rl.checks import annotate_checks

    qas = [{"qa_id": row["qa_id"], "doc_id": row["qa_id"], "question": row["question"], "answer": row["answer"],
            "generator": row["generator"]} for row in rows]
    passages = {row["qa_id"]: {"doc_id": row["qa_id"], "text": row["passage"]} for row in rows}
    annotate_checks(qas, passages, config, embedder)
    labels = {row["qa_id"]: row["labels"] for row in rows}
    generators = sorted({row["generator"] for row in rows})
    return {"all": label_agreement(qas, labels),
            "by_generator": {name: label_agreement([qa for qa in qas if qa["generator"] == name], labels)
                             for name in generators}}
