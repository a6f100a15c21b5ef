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
from reasonlab.progress import heartbeat
from reasonlab.trackers import REPORT_TO_HELP

PRESET_NAMES = "record | quick"  # ahn.config.PRESETS
DOCUMENT_PRESET_NAMES = "record | quick | gpu"  # ahn.config.DOCUMENT_PRESETS
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
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
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
                              student=student or None, report_to=report_to or None)
    run_dir = run_experiment(resolved, out, name or f"recall-{preset}", overwrite=overwrite, resume=resume)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_recall(summary)
    headline = json.loads((run_dir / "headline.json").read_text())
    console.print(f"{headline['result']} (claim holds: {headline['holds']}) -> {run_dir}")


def _print_recall(summary: dict[str, Any]) -> None:
    from reasonlab.tasks.recall import BUCKETS

    arms = summary["accuracy"]
    order = ["teacher", "swa", *(arm for arm in ("deltanet", "gdn", "mamba2") if arm in arms)]
    buckets = [b for b in BUCKETS if b in next(iter(arms.values()))]
    table = Table("arm", *(f"{b} (T={summary['budget']})" for b in buckets))
    for arm in order:
        cells = arms[arm]
        table.add_row(arm, *(f"{100 * cells[b]['mean']:.1f} ± {100 * cells[b]['sd']:.1f}"
                             if cells[b]["mean"] is not None else "-" for b in buckets))
    console.print(table)


def _resolve_documents(preset: str, config: Optional[Path], sets: list[str], **options: Any) -> Any:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.ahn.config import DOCUMENT_PRESETS, DocumentsConfig

    return resolve_config(DocumentsConfig, lookup_preset(DOCUMENT_PRESETS, preset), config, sets, **options)


@app.command("distill")
@help_defaults(_documents_preset, model="model", kind="kind", documents="documents", window="window",
               seq_len="seq_len", steps="distill.steps", out="out")
def distill_command(
    preset: str = typer.Option("record", help=DOCUMENT_PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with DocumentsConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields "
                                   "(--set distill.learning_rate=1e-4)"),
    model: Optional[str] = typer.Option(None, "--model", help="hf:embedded or hf:PATH (Llama, Qwen2/2.5/3, Gemma-3)"),
    kind: Optional[str] = typer.Option(None, "--memory", help=KIND_NAMES),
    documents: Optional[str] = typer.Option(None, "--documents", help="a folder of .txt files, a text file, or "
                                            "debian:<package>"),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="evaluation window W (T = sinks + W)"),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", min=16, help="tokens per window"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="distillation steps"),
    out: Optional[Path] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name [default: ahn-<memory>-<time>]"),
    resume: bool = typer.Option(False, "--resume", help="continue the run's distillation from its checkpoint"),
    overwrite: bool = OVERWRITE_OPTION,
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Self-distill AHN memories into a decoder (Gemma-3: its global layers) on long documents, then score held-out
    windows beyond the window: full attention, sinks + SWA, AHN. Writes ahn.pt (the memories only)."""
    from reasonlab.systems.ahn.training import train

    resolved = _resolve_documents(preset, config, sets, model=model, kind=kind, documents=documents, window=window,
                                  seq_len=seq_len, distill={"steps": steps} if steps is not None else None,
                                  out=None if out is None else str(out), name=name, resume=resume or None,
                                  overwrite=overwrite or None, report_to=report_to or None)
    run_dir = train(resolved)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_perplexity(summary["before"], summary["after"], summary["budget"])
    console.print(f"memories saved to {run_dir / 'ahn.pt'}")


@app.command("eval")
def eval_command(
    run: Path = typer.Option(..., "--run", help="a run directory made by `reasonlab ahn distill`"),
    window: Optional[int] = typer.Option(None, "--window", min=1, help="score at another window W [default: the run's]"),
    eval_windows: Optional[int] = typer.Option(None, "--eval-windows", min=1, help="held-out windows to score [default: the run's]"),
) -> None:
    """Perplexity beyond the window on the run's held-out documents: full attention, sinks + SWA, AHN."""
    from reasonlab.systems.ahn.longtext import evaluate_run

    with heartbeat("ahn eval"):
        scores = evaluate_run(run, window=window, eval_windows=eval_windows)
    table = Table("attention", "perplexity beyond the window", "tokens")
    for name in ("full", "swa", "ahn"):
        table.add_row(name, f"{scores[name]['perplexity']:.3f}", str(scores[name]["tokens"]))
    console.print(table)
    gap = scores["ahn_minus_swa_nll"]
    console.print(f"AHN - SWA {gap['mean']:+.4f} nats/token (paired bootstrap 95% CI {gap['ci95_low']:+.4f} to "
                  f"{gap['ci95_high']:+.4f}, n={gap['n']} windows); between full and SWA: {scores['between']}")


@app.command("generate")
def generate_command(
    run: Path = typer.Option(..., "--run", help="a run directory made by `reasonlab ahn distill`"),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="the prompt text [default: none; give it or --prompt-file]"),
    prompt_file: Optional[Path] = typer.Option(None, "--prompt-file", help="read the prompt from a file [default: none]"),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="tokens to generate (greedy)"),
    no_memory: bool = typer.Option(False, "--no-memory", help="decode as sinks + SWA (the baseline)"),
) -> None:
    """Greedy generation with the AHN's constant-size cache; prints the text and the cache's size."""
    from reasonlab.systems.ahn.longtext import generate_from_run

    if (prompt is None) == (prompt_file is None):
        raise typer.BadParameter("give exactly one of --prompt and --prompt-file")
    if prompt_file is not None and not prompt_file.is_file():
        from reasonlab.errors import UserError

        raise UserError(f"--prompt-file {prompt_file} does not exist: pass a text file, or --prompt TEXT")
    text = prompt if prompt is not None else prompt_file.read_text()
    with heartbeat("ahn generate"):
        result = generate_from_run(run, text, max_tokens, use_memory=not no_memory)
    console.print(result["text"], markup=False)
    console.print(f"[{result['prompt_tokens']} prompt tokens, {result['new_tokens']} new; decode cache "
                  f"{result['cache_bytes'] / 2**20:.2f} MiB; it stops growing once the longest window is full]")


def _print_perplexity(before: dict[str, Any], after: dict[str, Any], budget: int) -> None:
    table = Table("attention", f"perplexity at positions >= T={budget}, before", "after distillation")
    for name in ("full", "swa", "ahn"):
        table.add_row(name, f"{before[name]['perplexity']:.3f}", f"{after[name]['perplexity']:.3f}")
    console.print(table)
