"""The sample behind the hand-labelled Webscale-RL fixture: QA candidates as they leave the generator (before any
check), each with the passage the generator saw, written without labels or checker verdicts for a labeller.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/webscale_label_sample.py --run runs/webscale/record \\
        --extractive 60 --free-documents 20 --out runs/webscale-labels/unlabelled.jsonl

Three sources, so the checker meets both easy and hard cases: `--extractive` candidates drawn at random from the
run's `candidates.jsonl` (the CPU generator: a cloze over a document sentence; the passage is the 2,000 characters
around that sentence), and the free generator of the paper's prompt on `--free-documents` documents of the run
(`llamacpp:embedded`, Gemma-3-270M, one QA per persona; the passage is the excerpt it was shown), and `--swapped`
extractive questions given the answer of another candidate from the same passage (a wrong answer the document
still contains: what a string-match grounding check cannot catch). The labelled
copy lives in tests/systems/webscale_rl/fixtures/labelled_qa.jsonl (labels added by a reader who saw only the
passage, the question and the answer).
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from reasonlab.runs import atomic_write_text
from reasonlab.systems.webscale_rl.config import GenerateConfig
from reasonlab.systems.webscale_rl.generation import document_context, generate_stage


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def extractive_rows(candidates: list[dict[str, Any]], documents: dict[str, dict[str, Any]], count: int,
                    context_chars: int, rng: random.Random) -> list[dict[str, Any]]:
    chosen = rng.sample(candidates, min(count, len(candidates)))
    return [{"qa_id": qa["qa_id"], "generator": "extractive", "doc_id": qa["doc_id"],
             "passage": document_context(documents[qa["doc_id"]], qa["evidence"], context_chars),
             "question": qa["question"], "answer": qa["answer"]} for qa in chosen]


def free_rows(documents: list[dict[str, Any]], count: int, llm_spec: str, config: GenerateConfig,
              rng: random.Random) -> list[dict[str, Any]]:
    from reasonlab.llm import load_llm

    chosen = rng.sample(documents, min(count, len(documents)))
    output = generate_stage(chosen, config, embedder=None, llm=load_llm(llm_spec))
    by_id = {document["doc_id"]: document for document in chosen}
    return [{"qa_id": f"free:{qa['qa_id']}", "generator": f"free:{llm_spec}", "doc_id": qa["doc_id"],
             "passage": " ".join(by_id[qa["doc_id"]]["text"].split())[:config.context_chars],
             "question": qa["question"], "answer": qa["answer"]} for qa in output.kept]


def swapped_rows(candidates: list[dict[str, Any]], documents: dict[str, dict[str, Any]], count: int,
                 context_chars: int, taken: set[str], rng: random.Random) -> list[dict[str, Any]]:
    """Wrong answers that the document still contains: a candidate's question with the answer of another candidate
    whose sentence lies in the same passage (the case a grounding check by string match cannot catch)."""
    by_document: dict[str, list[dict[str, Any]]] = {}
    for qa in candidates:
        if qa["qa_id"] not in taken:
            by_document.setdefault(qa["doc_id"], []).append(qa)
    pairs = []
    for doc_id in sorted(by_document):
        for qa in by_document[doc_id]:
            passage = document_context(documents[doc_id], qa["evidence"], context_chars)
            others = [o for o in by_document[doc_id] if o is not qa and o["evidence"] in passage
                      and o["answer"].casefold() != qa["answer"].casefold()]
            if others:
                pairs.append((qa, others[0], passage))
                break
    return [{"qa_id": f"swapped:{qa['qa_id']}", "generator": "swapped", "doc_id": qa["doc_id"], "passage": passage,
             "question": qa["question"], "answer": other["answer"]}
            for qa, other, passage in rng.sample(pairs, min(count, len(pairs)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/webscale/record"), help="a pipeline run folder")
    parser.add_argument("--extractive", type=int, default=60, help="extractive candidates to sample")
    parser.add_argument("--free-documents", type=int, default=20, help="documents for the free generator")
    parser.add_argument("--swapped", type=int, default=20, help="candidates given another candidate's answer")
    parser.add_argument("--llm", default="llamacpp:embedded", help="the free generator's LLM spec")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/webscale-labels/unlabelled.jsonl"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    config = GenerateConfig(mode="free", max_tokens=160)
    documents = {doc["doc_id"]: doc for doc in read_jsonl(args.run / "documents.jsonl")}
    candidates = [qa for qa in read_jsonl(args.run / "candidates.jsonl") if qa["generator"] == "extractive"]
    identified = sorted((doc for doc in documents.values() if doc.get("personas")), key=lambda doc: doc["doc_id"])
    rows = extractive_rows(candidates, documents, args.extractive, config.context_chars, rng)
    rows += free_rows(identified, args.free_documents, args.llm, config, rng)
    taken = {row["qa_id"] for row in rows}
    rows += swapped_rows(candidates, documents, args.swapped, config.context_chars, taken, rng)
    atomic_write_text(args.out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    sources = Counter(row["generator"] for row in rows)
    print(f"{len(rows)} candidates ({', '.join(f'{name} {n}' for name, n in sources.items())}) -> {args.out}")


if __name__ == "__main__":
    main()
