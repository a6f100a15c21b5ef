"""The pipeline: documents -> filter -> identify -> generate -> check -> decontaminate, shard by shard, then the
global near-duplicate removal and the outputs (qa.jsonl, qa.parquet, documents.jsonl, candidates.jsonl,
rejected.jsonl, report.json).

`process_shard` is the one function both engines run (local: in this process; ray: inside each actor). A shard's
result is written atomically to `shards/shard-NNNNN.json` as soon as it is done, so a killed run resumes at the
first missing shard and never duplicates or loses a record; the final outputs are rebuilt from the shard files.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.progress import eta, phase, say
from reasonlab.runs import Run, atomic_write, atomic_write_json, config_hash
from reasonlab.systems.webscale_rl.config import PipelineConfig
from reasonlab.systems.webscale_rl.records import STAGES, Record, StageOutput

__all__ = ["Models", "ShardPlan", "finalize", "load_models", "plan_shards", "process_shard", "run_pipeline"]

SHARD_FOLDER = "shards"
PLAN_FILE = "plan.json"
RESUMABLE_WITH_OTHER = ("engine", "workers", "ray_address")  # config keys a resumed run may change
DocumentHook = Callable[[int, dict[str, Any]], None]


@dataclass
class Models:
    """What a worker holds: the embedder (filter, domains, persona steering, leakage) and the optional LLM."""

    embedder: Any
    llm: Any = None
    scorer: Any = None
    classifier: Any = None
    decontamination: Any = None


def load_models(config: PipelineConfig, embedder: Any = None, llm: Any = None) -> Models:
    """Build every model a shard needs once (per process or per Ray actor); pass `embedder`/`llm` to reuse them."""
    from reasonlab.llm import load_llm
    from reasonlab.llm.embed import load_embedder
    from reasonlab.systems.webscale_rl.decontamination import NgramIndex
    from reasonlab.systems.webscale_rl.filtering import InformativenessScorer
    from reasonlab.systems.webscale_rl.identify import DomainClassifier

    embedder = embedder if embedder is not None else load_embedder(config.embedder)
    needs_llm = config.generate.mode != "extractive" or config.check.llm_checker or config.identify.llm_identifier
    if llm is None and config.llm and needs_llm:
        llm = load_llm(config.llm)
    index = None
    if config.decontaminate.eval_files:
        index = NgramIndex.from_files(config.decontaminate.eval_files, config.decontaminate.ngram)
    return Models(embedder=embedder, llm=llm, scorer=InformativenessScorer(embedder),
                  classifier=DomainClassifier(embedder), decontamination=index)


def _stage(name: str, counts: dict[str, list[int]], seconds: dict[str, float], size: int,
           run: Callable[[], StageOutput]) -> StageOutput:
    started = time.perf_counter()
    output = run()
    seconds[name] = time.perf_counter() - started
    counts[name] = [size, len(output.kept)]
    return output


def _check_split(candidates: list[Record], documents: dict[str, Record], config: PipelineConfig,
                 models: Models) -> StageOutput:
    """Annotate every candidate (kept for the audit), then keep those that pass (the spec's rule)."""
    from reasonlab.systems.webscale_rl.checks import annotate_checks, split_checked

    annotate_checks(candidates, documents, config.check, models.embedder)
    if config.check.llm_checker:
        from reasonlab.systems.webscale_rl.generation import llm_check

        for qa, verdict in zip(candidates, llm_check(candidates, documents, config.generate, models.llm), strict=True):
            qa["checks"]["llm"] = verdict
    return split_checked(candidates)


def process_shard(documents: Sequence[Record], config: PipelineConfig, models: Models,
                  shard: int = 0) -> dict[str, Any]:
    """Run stages 1-4 and decontamination over one shard's documents; the result is JSON-ready."""
    from reasonlab.systems.webscale_rl.decontamination import decontaminate_stage
    from reasonlab.systems.webscale_rl.filtering import filter_stage
    from reasonlab.systems.webscale_rl.generation import generate_stage
    from reasonlab.systems.webscale_rl.identify import identify_stage

    counts: dict[str, list[int]] = {}
    seconds: dict[str, float] = {}
    rejected: list[Record] = []
    docs = list(documents)
    filtered = _stage("filter", counts, seconds, len(docs),
                      lambda: filter_stage(docs, config.filter, models.scorer))
    identified = _stage("identify", counts, seconds, len(filtered.kept),
                        lambda: identify_stage(filtered.kept, config.identify, models.classifier,
                                               config.generate.seed, models.llm))
    generated = _stage("generate", counts, seconds, len(identified.kept),
                       lambda: generate_stage(identified.kept, config.generate, models.embedder, models.llm))
    by_id = {doc["doc_id"]: doc for doc in identified.kept}
    checked = _stage("check", counts, seconds, len(generated.kept),
                     lambda: _check_split(generated.kept, by_id, config, models))
    if models.decontamination is not None:
        clean = _stage("decontaminate", counts, seconds, len(checked.kept),
                       lambda: decontaminate_stage(checked.kept, models.decontamination))
    else:
        clean = StageOutput(kept=checked.kept)
        counts["decontaminate"] = [len(checked.kept), len(checked.kept)]
    for output in (filtered, identified, generated, checked, clean):
        rejected.extend(output.rejected)
    model = config.llm if config.llm and models.llm is not None else "none"
    provenance = {"stage_versions": dict(STAGES), "model": model, "embedder": config.embedder,
                  "generator_mode": config.generate.mode, "shard": shard}
    for qa in generated.kept:
        qa["provenance"] = {"doc_id": qa["doc_id"], "source": by_id[qa["doc_id"]]["source"], **provenance}
    return {"shard": shard, "versions": dict(STAGES), "documents": identified.kept, "candidates": generated.kept,
            "qa": clean.kept, "rejected": rejected, "counts": counts, "seconds": seconds}


@dataclass
class ShardPlan:
    """Which documents go in which shard: fixed by the sorted document ids and the shard size; `texts` is a hash
    of each document's text, so an edited document also changes the plan's fingerprint."""

    shards: list[list[str]]
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return config_hash({"shards": self.shards, "texts": self.texts})


def plan_shards(documents: Sequence[Record], shard_size: int) -> ShardPlan:
    ids = sorted(doc["doc_id"] for doc in documents)
    texts = {doc["doc_id"]: hashlib.sha256(doc["text"].encode()).hexdigest()[:16] for doc in documents}
    return ShardPlan([ids[start:start + shard_size] for start in range(0, len(ids), shard_size)], texts)


def shard_path(run_dir: Path, shard: int) -> Path:
    return run_dir / SHARD_FOLDER / f"shard-{shard:05d}.json"


def write_shard(run_dir: Path, result: dict[str, Any]) -> None:
    """Atomically: a shard file is either complete or absent."""
    path = shard_path(run_dir, int(result["shard"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)


def _check_plan(run_dir: Path, plan: ShardPlan) -> None:
    """A resumed run must see the same documents in the same shards; otherwise its shard files mean nothing."""
    path = run_dir / SHARD_FOLDER / PLAN_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("fingerprint") != plan.fingerprint:
            raise UserError(f"{run_dir}: the input's documents changed since this run started (other documents or "
                            "texts): pass --overwrite to start clean, or another --out")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"fingerprint": plan.fingerprint, "shards": len(plan.shards)})


def pending_shards(run_dir: Path, plan: ShardPlan) -> list[int]:
    """Shards without a complete file written by the current stage versions."""
    missing = []
    for shard in range(len(plan.shards)):
        path = shard_path(run_dir, shard)
        if not path.is_file():
            missing.append(shard)
            continue
        if json.loads(path.read_text()).get("versions") != STAGES:
            missing.append(shard)
    return missing


def _read_stage(config: PipelineConfig) -> tuple[list[Record], list[Record], dict[str, list[int]]]:
    """Read the corpus and drop near-duplicate documents; returns documents, rejections and the stage counts."""
    from reasonlab.systems.webscale_rl.corpus import read_corpus
    from reasonlab.systems.webscale_rl.dedup import dedup_stage

    with phase(f"reading {config.corpus.input}"):
        read = read_corpus(config.corpus)
    counts = {"read": [len(read.kept) + len(read.rejected), len(read.kept)]}
    documents, rejected = read.kept, list(read.rejected)
    if config.dedup.documents:
        deduped = dedup_stage(documents, lambda doc: doc["text"], lambda doc: doc["doc_id"], config.dedup,
                              "dedup_documents")
        counts["dedup_documents"] = [len(documents), len(deduped.kept)]
        documents, rejected = deduped.kept, rejected + deduped.rejected
    say(f"{len(documents)} documents in, {len(rejected)} inputs skipped before the stages")
    return documents, rejected, counts


def run_pipeline(config: PipelineConfig, out: str | Path, name: str, resume: bool = False,
                 overwrite: bool = False, models: Models | None = None,
                 after_shard: Callable[[int], None] | None = None) -> Path:
    """Run the whole pipeline into `out/name` with the config's engine; returns the run folder.
    `after_shard(k)` runs after each shard file is written (tests use it to kill a run midway)."""
    if resume:
        Run.require_existing(Path(out) / name)
    # the corpus first: an input with nothing to read leaves no run folder behind to block the corrected command
    documents, rejected, counts = _read_stage(config)
    if not documents:
        reasons = Counter(record["reason"] for record in rejected)
        skipped = ", ".join(f"{reason} {count}" for reason, count in reasons.most_common()) or "no files"
        raise UserError(f"{config.corpus.input}: no readable document (skipped: {skipped}): pass a folder of "
                        ".txt/.md/.html/.jsonl files")
    # the engine may change on resume (a killed local run continues on Ray): shard files do not depend on it
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite, ignore=RESUMABLE_WITH_OTHER)
    plan = plan_shards(documents, config.shard_size)
    _check_plan(run.dir, plan)
    by_id = {doc["doc_id"]: doc for doc in documents}
    todo = pending_shards(run.dir, plan)
    if len(todo) < len(plan.shards):
        say(f"resuming: {len(plan.shards) - len(todo)} of {len(plan.shards)} shards already done")
    started = time.perf_counter()
    if todo:
        from reasonlab.systems.webscale_rl.engines import run_local, run_ray

        work = [(shard, [by_id[i] for i in plan.shards[shard]]) for shard in todo]
        report = _progress_reporter(len(todo), sum(len(docs) for _, docs in work), started, after_shard)
        if config.engine == "ray":
            run_ray(work, config, run.dir, report)
        else:
            run_local(work, config, run.dir, report, models)
    return finalize(run, plan, rejected, counts, time.perf_counter() - started, len(todo))


def _progress_reporter(shards: int, documents: int, started: float,
                       after_shard: Callable[[int], None] | None) -> DocumentHook:
    done = {"shards": 0, "documents": 0, "qa": 0}

    def report(shard: int, summary: dict[str, Any]) -> None:
        done["shards"] += 1
        done["documents"] += int(summary["documents"])
        done["qa"] += int(summary["qa"])
        rate = done["documents"] / max(time.perf_counter() - started, 1e-9)
        say(f"shard {done['shards']}/{shards}: {done['documents']}/{documents} documents, {done['qa']} QA, "
            f"{rate:.2f} docs/s, {eta(done['documents'], documents, started)}")
        if after_shard is not None:
            after_shard(shard)

    return report


def _load_shards(run_dir: Path, count: int) -> list[dict[str, Any]]:
    return [json.loads(shard_path(run_dir, shard).read_text()) for shard in range(count)]


def _write_jsonl(path: Path, records: Sequence[Record]) -> None:
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _write_parquet(path: Path, records: Sequence[Record]) -> None:
    """Parquet with nested fields as JSON strings (checks, provenance), so every reader gets flat columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{key: json.dumps(value) if isinstance(value, dict | list) else value for key, value in record.items()}
            for record in records]
    table = pa.Table.from_pylist(rows)
    with atomic_write(path, "wb") as handle:
        pq.write_table(table, handle)


def finalize(run: Run, plan: ShardPlan, rejected: list[Record], counts: dict[str, list[int]],
             seconds: float, shards_run: int) -> Path:
    """Rebuild the outputs from the shard files: global QA dedup, then every file and the report."""
    from reasonlab.systems.webscale_rl.dedup import dedup_stage
    from reasonlab.systems.webscale_rl.evaluation import pipeline_report

    config = PipelineConfig.model_validate(run.settings())
    results = _load_shards(run.dir, len(plan.shards))
    qa = [record for result in results for record in result["qa"]]
    all_rejected = list(rejected) + [record for result in results for record in result["rejected"]]
    stage_counts = dict(counts)
    for result in results:
        for stage, (size, kept) in result["counts"].items():
            total = stage_counts.setdefault(stage, [0, 0])
            total[0] += size
            total[1] += kept
    if config.dedup.qa:
        deduped = dedup_stage(qa, lambda r: f"{r['question']} {r['answer']}", lambda r: r["qa_id"], config.dedup,
                              "dedup_qa")
        stage_counts["dedup_qa"] = [len(qa), len(deduped.kept)]
        qa, all_rejected = deduped.kept, all_rejected + deduped.rejected
    documents = [doc for result in results for doc in result["documents"]]
    candidates = [record for result in results for record in result["candidates"]]
    stage_seconds: dict[str, float] = {}
    for result in results:
        for stage, value in result["seconds"].items():
            stage_seconds[stage] = stage_seconds.get(stage, 0.0) + float(value)
    _write_jsonl(run.dir / "qa.jsonl", qa)
    if config.parquet:
        _write_parquet(run.dir / "qa.parquet", qa)
    _write_jsonl(run.dir / "documents.jsonl", documents)
    _write_jsonl(run.dir / "candidates.jsonl", candidates)
    _write_jsonl(run.dir / "rejected.jsonl", all_rejected)
    report = pipeline_report(stage_counts, all_rejected, documents, candidates, qa, stage_seconds)
    report["wall_seconds"] = seconds
    report["shards"] = {"total": len(plan.shards), "run_now": shards_run}
    report["engine"] = {"name": config.engine, "workers": config.workers}
    atomic_write_json(run.dir / "report.json", report)
    run.write_summary(report)
    say(f"{len(qa)} QA pairs from {report['documents']['read']} documents -> {run.dir / 'qa.jsonl'}")
    return run.dir
