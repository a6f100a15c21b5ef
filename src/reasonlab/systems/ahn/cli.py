"""`reasonlab ahn ...`: distill an AHN memory into a decoder on long documents, score it beyond the window,
generate with its constant-size cache, and run the recall experiment of the CPU plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from reasonlab.clihelp import help_defaults

PRESET_NAMES = "record | quick"  # ahn.config.PRESETS and DOCUMENT_PRESETS
KIND_NAMES = "deltanet | gdn | mamba2"

app = typer.Typer(help="AHN: sliding-window attention plus an artificial hippocampus, a recurrent memory of what "
                  "leaves the window, self-distilled from the full-attention model (arXiv 2510.07318).",
                  no_args_is_help=False)
console = Console()


def _experiment_preset(name: str | None) -> Any:
    from reasonlab.systems.ahn.config import PRESETS

    return PRESETS[name or "record"]


def _documents_preset(name: str | None) -> Any:
    from reasonlab.systems.ahn.config import DOCUMENT_PRESETS

    return DOCUMENT_PRESETS[name or "record"]


OUT_OPTION = typer.Option(Path("runs/ahn"), help="root folder of runs")
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="delete the run first")


@app.command("experiment")
@help_defaults(_experiment_preset, kinds="kinds", seeds="seeds", steps="student.distill.steps", jobs="jobs",
               window="student.window")
def experiment_command(
    preset: str = typer.Option("record", help=PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with ExperimentConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields "
                                   "(--set student.distill.learning_rate=1e-3)"),
    kinds: Optional[str] = typer.Option(None, "--kinds", help=f"comma-separated memory types: {KIND_NAMES}"),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="seeds (repeatable)"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="distillation steps per student"),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="evaluation window W (T = sinks + W)"),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="processes at once, one thread each"),
    out: Path = OUT_OPTION,
    name: Optional[str] = typer.Option(None, help="experiment name [default: recall-<preset>]"),
    resume: bool = typer.Option(False, "--resume", help="continue: finished arms are reused, a student "
                                "continues from its checkpoint"),
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Spec 8: a 2-layer teacher learns multi-query associative recall; each memory type is distilled into it;
    recall by key-query distance and by pairs past the window for the teacher, sinks + SWA and each student."""
    from reasonlab.config import lookup_preset, parse_list, resolve_config
    from reasonlab.systems.ahn.config import PRESETS, ExperimentConfig
    from reasonlab.systems.ahn.experiment import run_experiment

    student: dict[str, Any] = {"distill": {"steps": steps}} if steps is not None else {}
    if window is not None:
        student["window"] = window
    resolved = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, sets,
                              kinds=parse_list(kinds, "--kinds"), seeds=seeds or None, jobs=jobs,
                              student=student or None)
    run_dir = run_experiment(resolved, out, name or f"recall-{preset}", overwrite=overwrite, resume=resume)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_recall(summary)
    headline = json.loads((run_dir / "headline.json").read_text())
    console.print(f"{headline['result']} (claim holds: {headline['holds']}) -> {run_dir}")


def _print_recall(summary: dict[str, Any]) -> None:
    arms = summary["accuracy"]
    buckets = list(next(iter(arms.values())))
    table = Table("arm", *(f"{b} (T={summary['budget']})" for b in buckets))
    for arm, cells in arms.items():
        table.add_row(arm, *(f"{100 * cells[b]['mean']:.1f} ± {100 * cells[b]['sd']:.1f}"
                             if cells[b]["mean"] is not None else "-" for b in buckets))
    console.print(table)
