"""`reasonlab webscale ...`: turn a corpus into verifiable QA (`run`), browse what a run produced (`inspect`), train
on it (`train`: one arm, one seed) and compare RL with continued pretraining at equal tokens (`compare`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from reasonlab.clihelp import help_defaults
from reasonlab.trackers import REPORT_TO_HELP

COMMAND = "webscale"  # mounted as `reasonlab webscale` (the package is webscale_rl)
PRESET_NAMES = "record | paraphrase | quick | paper"  # config.PIPELINE_PRESETS

app = typer.Typer(help="Webscale-RL: pretraining documents -> verifiable question-answer pairs for RL "
                  "(arXiv 2510.06499), locally or on Ray Data.", no_args_is_help=False)
console = Console()


def _pipeline_preset(name: str | None) -> Any:
    from reasonlab.systems.webscale_rl.config import PIPELINE_PRESETS

    return PIPELINE_PRESETS[name or "record"]


@app.command("run")
@help_defaults(_pipeline_preset, input="corpus.input", engine="engine", llm="llm", workers="workers",
               mode="generate.mode", max_documents="corpus.max_documents")
def run_command(
    input: Optional[str] = typer.Option(None, "--input", help="a folder of .txt/.md/.html/.jsonl files, one such "
                                        "file, or debian:PACKAGE"),
    engine: Optional[str] = typer.Option(None, "--engine", help="local | ray"),
    llm: Optional[str] = typer.Option(None, "--llm", help="LLM spec for paraphrase/free generation (hf:embedded, "
                                      "llamacpp:embedded, openai:URL#MODEL)"),
    out: Optional[Path] = typer.Option(None, "--out", help="the run folder the outputs go to "
                                       "[default: runs/webscale/<preset>]"),
    preset: str = typer.Option("record", help=PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with PipelineConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields "
                                   "(--set filter.min_words=100)"),
    mode: Optional[str] = typer.Option(None, "--mode", help="extractive | paraphrase | free"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Ray actors (engine ray)"),
    max_documents: Optional[int] = typer.Option(None, "--max-documents", min=1, help="read at most this many"),
    resume: bool = typer.Option(False, "--resume", help="continue a killed run from its last finished shard"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run folder first"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Documents -> filter -> domain and personas -> QA generation -> checks -> decontamination -> dedup."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.webscale_rl.config import PIPELINE_PRESETS, PipelineConfig
    from reasonlab.systems.webscale_rl.pipeline import run_pipeline

    corpus = {key: value for key, value in (("input", input), ("max_documents", max_documents))
              if value is not None}
    resolved = resolve_config(PipelineConfig, lookup_preset(PIPELINE_PRESETS, preset), config, sets,
                              corpus=corpus or None, engine=engine, llm=llm, workers=workers,
                              generate={"mode": mode} if mode is not None else None,
                              report_to=report_to or None)
    folder = out or Path("runs/webscale") / preset
    run_dir = run_pipeline(resolved, folder.parent, folder.name, resume=resume, overwrite=overwrite)
    print_report(json.loads((run_dir / "report.json").read_text()))
    console.print(f"QA: {run_dir / 'qa.jsonl'}  (browse: reasonlab webscale inspect {run_dir})")


TRAIN_PRESET_NAMES = "record | quick"  # config.TRAIN_PRESETS


def _train_preset(name: str | None) -> Any:
    from reasonlab.systems.webscale_rl.config import TRAIN_PRESETS

    return TRAIN_PRESETS[name or "record"]


def _train_settings(preset: str, config: Path | None, sets: list[str], **fields: Any) -> Any:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.webscale_rl.config import TRAIN_PRESETS, TrainConfig

    return resolve_config(TrainConfig, lookup_preset(TRAIN_PRESETS, preset), config, sets, **fields)


@app.command("train")
@help_defaults(_train_preset, data="data", llm="llm", arm="arm", seed="seed")
def train_command(
    data: Optional[str] = typer.Option(None, "--data", help="a folder made by `reasonlab webscale run`"),
    arm: Optional[str] = typer.Option(None, "--arm", help="base | rl | cpt"),
    seed: Optional[int] = typer.Option(None, "--seed", help="LoRA init, task order and sampling"),
    llm: Optional[str] = typer.Option(None, "--llm", help="a trainable model spec (hf:embedded, hf:PATH)"),
    out: Optional[Path] = typer.Option(None, "--out", help="the run folder [default: runs/webscale/<arm>-s<seed>]"),
    preset: str = typer.Option("record", help=TRAIN_PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set rl.iterations=8)"),
    resume: bool = typer.Option(False, "--resume", help="reuse a finished run, continue RL from its checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run folder first"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """One arm and seed: GRPO (rl) or continued pretraining (cpt) on a pipeline run, closed-book before and after."""
    from reasonlab.systems.webscale_rl.training import train

    place = {"out": str(out.parent), "name": out.name} if out is not None else {}
    settings = _train_settings(preset, config, sets, data=data, arm=arm, seed=seed, llm=llm,
                               resume=resume or None, overwrite=overwrite or None, report_to=report_to or None,
                               **place)
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(Path(settings.out) / settings.run_name)
    run_dir = train(settings)
    summary = json.loads((run_dir / "summary.json").read_text())
    for name, row in summary["after"].items():
        console.print(f"{name}: {row['k']}/{row['n']} correct after, {summary['before'][name]['k']} before")
    console.print(f"wrote {run_dir}")


@app.command("compare")
@help_defaults(_train_preset, data="data")
def compare_command(
    data: Optional[str] = typer.Option(None, "--data", help="a folder made by `reasonlab webscale run`"),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="seeds, repeatable [default: 0 1 2]"),
    jobs: int = typer.Option(2, "--jobs", min=1, help="runs at once, one torch thread each"),
    out: Path = typer.Option(Path("runs/webscale/compare"), "--out", help="the comparison's run folder"),
    preset: str = typer.Option("record", help=TRAIN_PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set rl.iterations=8)"),
    resume: bool = typer.Option(False, "--resume", help="continue: finished arm runs are reused"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the comparison folder first"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """base, rl and cpt for every seed on one pipeline run; summary.json and plots/accuracy_by_arm.png."""
    from reasonlab.systems.webscale_rl.training import compare

    settings = _train_settings(preset, config, sets, data=data, resume=resume or None, overwrite=overwrite or None,
                               report_to=report_to or None)
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    run_dir = compare(settings, seeds or [0, 1, 2], out.parent, jobs=jobs, name=out.name)
    print_comparison(json.loads((run_dir / "summary.json").read_text()))
    console.print(f"wrote {run_dir}")


@app.command("experiment")
def experiment_command(
    preset: str = typer.Option("record", help="record (the run of record, about 40 min on 2 cores) | quick"),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="seeds, repeatable [default: 0 1 2]"),
    jobs: int = typer.Option(2, "--jobs", min=1, help="training runs at once, one torch thread each"),
    out: Path = typer.Option(Path("runs/webscale-experiment"), "--out", help="the experiment's run folder"),
    resume: bool = typer.Option(False, "--resume", help="continue: a finished pipeline and finished arms are reused"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the experiment folder first"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """The small-scale reproduction: the pipeline on python3.11-doc, then RL vs CPT at equal tokens on its QA."""
    from reasonlab.systems.webscale_rl.experiment import run_experiment

    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    summary = run_experiment(preset, tuple(seeds or (0, 1, 2)), out, jobs=jobs, resume=resume, overwrite=overwrite,
                             report_to=report_to or ())
    print_report(summary["pipeline"])
    print_comparison(summary["comparison"])
    console.print(f"wrote {out / 'summary.json'} and {out / 'compare' / 'plots'}")


def print_comparison(summary: dict[str, Any]) -> None:
    """Closed-book accuracy per arm (mean ± sd over seeds) and the paired differences."""
    from reasonlab.systems.webscale_rl.evaluation import format_percent

    table = Table("arm", "held-out documents", "seen documents, unseen questions", "document tokens")
    for arm, row in summary["arms"].items():
        tokens = row["tokens"].get("document_tokens", {}).get("mean")
        table.add_row(arm, format_percent(row["heldout_documents"]), format_percent(row["seen_documents"]),
                      f"{tokens or 0:.0f}")
    for pair, rows in summary["differences"].items():
        table.add_row(pair, format_percent(rows["heldout_documents"], signed=True),
                      format_percent(rows["seen_documents"], signed=True), "")
    console.print(table)
    sizes = next(iter(summary["arms"].values()))["eval_n"]
    console.print(f"n = {sizes['heldout_documents']} and {sizes['seen_documents']} questions; "
                  f"seeds {summary['seeds']}")


def print_report(report: dict[str, Any]) -> None:
    """The per-stage table and the headline numbers of a pipeline report."""
    table = Table("stage", "in", "out", "pass", "top reasons")
    for row in report["stages"]:
        rate = "-" if row["pass_rate"] is None else f"{100 * row['pass_rate']:.1f}%"
        reasons = ", ".join(f"{reason} {count}" for reason, count in list(row["reasons"].items())[:3])
        table.add_row(row["stage"], str(row["in"]), str(row["out"]), rate, reasons)
    console.print(table)
    qa, leakage, duplicates = report["qa"], report["leakage"]["flagged"], report["duplicates"]
    console.print(f"{qa['accepted']} QA from {report['documents']['read']} documents "
                  f"({qa['yield_per_document']:.2f} per document); leakage flagged in "
                  f"{leakage['k']}/{leakage['n']} candidates; near-duplicates: "
                  f"{duplicates['documents']['k']} documents, {duplicates['qa']['k']} QA")
    console.print("domains (QA): " + ", ".join(f"{d} {n}" for d, n in report["domains"]["qa"].items()))


@app.command("inspect")
def inspect_command(
    run_dir: Path = typer.Argument(..., help="a folder made by `reasonlab webscale run`"),
    count: int = typer.Option(10, "-n", min=1, help="QA pairs to show"),
    domain: Optional[str] = typer.Option(None, "--domain", help="only this domain [default: all]"),
    rejected: bool = typer.Option(False, "--rejected", help="show candidates the checker rejected instead"),
    contains: Optional[str] = typer.Option(None, "--grep", help="only QA whose question or answer contains this "
                                           "text [default: all]"),
    seed: int = typer.Option(0, "--seed", help="which random sample to show"),
    report: bool = typer.Option(False, "--report", help="print the run's report instead"),
) -> None:
    """Browse the QA a run produced (a random sample), or the candidates it rejected and why."""
    from reasonlab.systems.webscale_rl.checks import rejection_reason
    from reasonlab.systems.webscale_rl.inspection import filter_records, load_run_records, sample_records

    if report:
        print_report(load_run_records(run_dir, "report"))
        return
    records = load_run_records(run_dir, "candidates" if rejected else "qa")
    if rejected:
        records = [r for r in records if rejection_reason(r["checks"]) is not None]
    records = filter_records(records, domain=domain, contains=contains)
    shown = sample_records(records, count, seed)
    table = Table("domain", "persona", "question", "answer", "checks" if rejected else "document", show_lines=True)
    for record in shown:
        last = rejection_reason(record["checks"]) if rejected else record["doc_id"]
        table.add_row(record["domain"], record["persona"], record["question"], record["answer"], last)
    console.print(table)
    console.print(f"{len(shown)} of {len(records)} shown")
