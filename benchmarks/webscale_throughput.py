"""Webscale-RL pipeline throughput, in one run: documents/s end to end with the local engine, then Ray Data with
1 and 2 workers, on the same documents and config (each into a fresh run folder).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/webscale_throughput.py --documents 128 \\
        --json runs/webscale-throughput/summary.json

End to end = from the call to `run_pipeline` to its return: reading the corpus, document dedup, starting Ray and
loading the models in each actor, every stage, QA dedup and writing the outputs. `stage_seconds` adds up the time
inside the stages over all shards (so with 2 workers it exceeds the wall time). The engines take turns in the
order given by `--engines`; `--repeats` runs the whole rotation again (the order rotates each time).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from reasonlab.runs import atomic_write_json
from reasonlab.systems.webscale_rl.config import PIPELINE_PRESETS, PipelineConfig
from reasonlab.systems.webscale_rl.pipeline import run_pipeline
from reasonlab.threads import available_cores

ENGINES = {"local": ("local", 1), "ray-1": ("ray", 1), "ray-2": ("ray", 2)}


def engine_config(base: PipelineConfig, engine: str) -> PipelineConfig:
    name, workers = ENGINES[engine]
    return base.model_copy(update={"engine": name, "workers": workers})


def time_engine(config: PipelineConfig, root: Path, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    run_dir = run_pipeline(config, root, name, overwrite=True)
    wall = time.perf_counter() - started
    report = json.loads((run_dir / "report.json").read_text())
    documents = report["documents"]["read"]
    return {"wall_s": wall, "documents": documents, "docs_per_s": documents / wall, "qa": report["qa"]["accepted"],
            "stage_seconds": sum(report["seconds"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="debian:python3.11-doc", help="corpus (folder, file or debian:PKG)")
    parser.add_argument("--documents", type=int, default=128, help="documents read (the first N by id)")
    parser.add_argument("--shard-size", type=int, default=8, help="documents per shard")
    parser.add_argument("--engines", default="local,ray-1,ray-2", help="comma-separated: local, ray-1, ray-2")
    parser.add_argument("--repeats", type=int, default=1, help="rotations over the engines")
    parser.add_argument("--llm", default=None, help="LLM spec for --mode paraphrase|free (each actor loads it)")
    parser.add_argument("--mode", default="extractive", help="extractive | paraphrase | free")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    base = PIPELINE_PRESETS["record"].model_copy(deep=True)
    base.corpus.input = args.input
    base.corpus.max_documents = args.documents
    base.shard_size = args.shard_size
    base.llm = args.llm
    base.generate.mode = args.mode
    base = PipelineConfig.model_validate(base.model_dump())
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    root = Path(tempfile.mkdtemp(prefix="webscale-throughput-"))
    timings: dict[str, list[dict[str, Any]]] = {engine: [] for engine in engines}
    try:
        for repeat in range(args.repeats):
            order = engines[repeat % len(engines):] + engines[:repeat % len(engines)]
            for engine in order:
                result = time_engine(engine_config(base, engine), root, f"{engine}-{repeat}")
                timings[engine].append(result)
                print(f"{engine}: {result['documents']} documents in {result['wall_s']:.1f} s = "
                      f"{result['docs_per_s']:.2f} docs/s ({result['qa']} QA)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        "machine": {"cores": available_cores(), "processor": platform.processor() or platform.machine(),
                    "gpu": False},
        "input": args.input, "documents": args.documents, "shard_size": args.shard_size, "mode": args.mode,
        "llm": args.llm,
        "engines": {engine: {"docs_per_s": statistics.median(r["docs_per_s"] for r in rows),
                             "wall_s": statistics.median(r["wall_s"] for r in rows), "runs": rows}
                    for engine, rows in timings.items()},
    }
    local = summary["engines"].get("local", {}).get("docs_per_s")
    for row in summary["engines"].values():
        row["vs_local"] = row["docs_per_s"] / local if local else None
    print(json.dumps({engine: {k: v for k, v in row.items() if k != "runs"}
                      for engine, row in summary["engines"].items()}, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, summary)


if __name__ == "__main__":
    main()
