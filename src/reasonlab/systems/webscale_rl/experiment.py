"""The small-scale reproduction: the pipeline over python3.11-doc's HTML pages (the run of record), then RL on
part of the produced QA beside continued pretraining on the same documents at equal tokens (`training.compare`);
and the quick demo (the pipeline on 48 pages).

    reasonlab webscale experiment            # pipeline (record) + compare (record), about an hour on 2 cores
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonlab.demo import Headline, register_demo, write_headline
from reasonlab.progress import say
from reasonlab.runs import Run, read_records
from reasonlab.stats import format_rate
from reasonlab.systems.webscale_rl.config import PIPELINE_PRESETS, PipelineConfig, TrainConfig
from reasonlab.systems.webscale_rl.evaluation import format_percent
from reasonlab.systems.webscale_rl.pipeline import run_pipeline

__all__ = ["comparison_headline", "pipeline_headline", "quick", "run_experiment"]

PAPER_TOKENS = ("Webscale-RL (arXiv 2510.06499): RL on its QA reaches the score of continued pretraining with up to "
                "~100x fewer tokens (Qwen2.5-3B, full weights, GPT-4.1 QA and judge)")
PAPER_YIELD = ("Webscale-RL (arXiv 2510.06499): GPT-4.1 stages turn ~1M pretraining documents into ~1.2M "
               "verifiable QA pairs (about 1.2 per document) over 9+ domains")


def _yield_spread(run_dir: Path, documents: int) -> tuple[float, float]:
    """Mean and sd over the documents read of the QA each one gave (0 for a document that gave none)."""
    per_document = Counter(record["doc_id"] for record in read_records(run_dir / "qa.jsonl"))
    counts = list(per_document.values()) + [0] * max(0, documents - len(per_document))
    if len(counts) < 2:
        return float(sum(counts)), 0.0
    return statistics.mean(counts), statistics.stdev(counts)


def _stage(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next((row for row in report["stages"] if row["stage"] == name), {"in": 0, "out": 0})


def pipeline_headline(run_dir: Path, report: dict[str, Any]) -> Headline:
    """What a pipeline run produced, with n and spread: yield per document, the filter and check pass rates and the
    leakage the checker flagged."""
    documents = report["documents"]["read"]
    mean, sd = _yield_spread(run_dir, documents)
    filtered, checked = _stage(report, "filter"), _stage(report, "check")
    leakage = report["leakage"]["flagged"]
    domains = ", ".join(f"{name} {count}" for name, count in list(report["domains"]["qa"].items())[:3])
    return Headline(
        system="webscale",
        measures=(f"Verifiable QA pairs (self-contained question, short answer extracted from the document) that the "
                  f"CPU pipeline makes from {documents} real documents ({report.get('input', 'the corpus')}): "
                  "extractive generation, deterministic checks, MiniLM filter and domains."),
        result=(f"{report['qa']['accepted']} QA, {mean:.2f} ± {sd:.2f} per document (mean ± sd, n={documents} "
                f"documents); filter passed {format_rate(filtered['out'], filtered['in'])}, checks passed "
                f"{format_rate(checked['out'], checked['in'])}, leakage flagged in "
                f"{format_rate(leakage['k'], leakage['n'])} of candidates; top domains: {domains}"),
        paper=PAPER_YIELD,
        holds=None,
        kind="pipeline check",
        note=("No LLM in this run: spans become answers, their sentences cloze questions under the page title. "
              "RL on the QA vs continued pretraining at equal tokens: `reasonlab webscale experiment`."),
    )


@register_demo("webscale", "Webscale-RL: real documentation pages -> verifiable QA pairs, with per-stage pass "
               "rates (48 python3.11-doc pages, no LLM)", minutes=2)
def quick(run_root: Path, fresh: bool) -> Path:
    """The pipeline's quick preset: the first 48 HTML pages of python3.11-doc, extractive, MiniLM."""
    config: PipelineConfig = PIPELINE_PRESETS["quick"]
    out = Path(run_root) / "webscale"
    run_dir = out / "quick"
    if not fresh and (run_dir / "report.json").is_file():
        say(f"reusing the pipeline run in {run_dir} (pass --fresh to redo it)")
    else:
        run_dir = run_pipeline(config, out, "quick", overwrite=True)
    report = json.loads((run_dir / "report.json").read_text())
    report["input"] = config.corpus.input
    write_headline(run_dir, pipeline_headline(run_dir, report))
    return run_dir


def comparison_headline(summary: dict[str, Any], seeds: int) -> Headline:
    """RL vs continued pretraining at equal document tokens: held-out accuracy per arm and the rl-cpt difference."""
    arms, difference = summary["arms"], summary["differences"].get("rl-cpt", {}).get("heldout_documents", {})
    n = arms["rl"]["eval_n"]["heldout_documents"]
    tokens = arms["rl"]["tokens"].get("document_tokens", {}).get("mean")
    spread = difference.get("sd") or 0.0
    clear = difference.get("mean") is not None and abs(difference["mean"]) > 2 * spread
    return Headline(
        system="webscale",
        measures=(f"Closed-book exact match on {n} QA of held-out documents after GRPO on the pipeline's QA vs "
                  f"continued pretraining on the same documents at equal document tokens ({tokens or 0:.0f}), "
                  "Gemma-3-270M with LoRA."),
        result=(f"base {format_percent(arms['base']['heldout_documents'])}, "
                f"RL {format_percent(arms['rl']['heldout_documents'])}, "
                f"CPT {format_percent(arms['cpt']['heldout_documents'])} (mean ± sd over {seeds} seeds, n={n} QA); "
                f"RL - CPT {format_percent(difference, signed=True)}"),
        paper=PAPER_TOKENS,
        holds=bool(clear and difference["mean"] > 0),
        plot="compare/plots/accuracy_by_arm.png",
        note=("A 270M model with a few dozen GRPO steps: the difference is " +
              ("clear of" if clear else "within") + " twice its seed spread."),
    )


def run_experiment(preset: str = "record", seeds: tuple[int, ...] = (0, 1, 2), out: str | Path =
                   "runs/webscale-experiment", jobs: int = 2, resume: bool = False,
                   overwrite: bool = False, report_to: Sequence[str] = ()) -> dict[str, Any]:
    """The pipeline preset `preset` into `out/pipeline`, then every arm x seed of the TRAIN_PRESETS entry of the
    same name on its QA into `out/compare`; writes `out/summary.json` (report, comparison, headline). Every run
    (the experiment, the pipeline, the comparison and its arms) also reports to the trackers in `report_to`."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.webscale_rl.config import TRAIN_PRESETS
    from reasonlab.systems.webscale_rl.training import compare

    out = Path(out)
    pipeline_config: PipelineConfig = lookup_preset(PIPELINE_PRESETS, preset)
    if report_to:  # validated like a config field: a wrong tracker name is a one-line error
        pipeline_config = resolve_config(PipelineConfig, pipeline_config, report_to=list(report_to))
    pipeline_dir = out / "pipeline"
    settings: TrainConfig = lookup_preset(TRAIN_PRESETS, preset).model_copy(
        update={"data": str(pipeline_dir), "resume": resume, "overwrite": False,
                "report_to": pipeline_config.report_to})
    # both presets looked up before the folder exists: a wrong --preset leaves nothing behind
    identity = {"preset": preset, "seeds": list(seeds), "pipeline": pipeline_config.model_dump(mode="json"),
                "train": settings.model_dump(mode="json")}
    if pipeline_config.report_to:  # runs._identity leaves a top-level report_to out of the resume check
        identity["report_to"] = list(pipeline_config.report_to)
    run = Run.create(out.parent, out.name, identity, resume=resume, overwrite=overwrite)
    if resume and (pipeline_dir / "report.json").is_file():
        say(f"reusing the pipeline run in {pipeline_dir}")
    else:
        resumable = resume and (pipeline_dir / "config.yaml").is_file()
        run_pipeline(pipeline_config, run.dir, "pipeline", resume=resumable)
    report = json.loads((pipeline_dir / "report.json").read_text())
    report["input"] = pipeline_config.corpus.input
    compare_dir = compare(settings, list(seeds), run.dir, jobs=jobs, name="compare")
    comparison = json.loads((compare_dir / "summary.json").read_text())
    headline = comparison_headline(comparison, len(seeds))
    summary = {"preset": preset, "seeds": list(seeds), "pipeline": report, "comparison": comparison,
               "headline": headline.model_dump(),
               "pipeline_headline": pipeline_headline(pipeline_dir, report).model_dump()}
    run.write_summary(summary)
    write_headline(run.dir, headline)
    return summary
