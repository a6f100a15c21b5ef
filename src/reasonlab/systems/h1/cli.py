"""`reasonlab h1 ...`: compose chains, train with the depth curriculum, evaluate per depth, the experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console

from reasonlab.clihelp import help_defaults
from reasonlab.trackers import REPORT_TO_HELP

if TYPE_CHECKING:
    from reasonlab.systems.h1.config import ExperimentConfig, H1Config

PRESET_NAMES = "values | slots | main | quick | demo"  # h1.config.PRESETS (not imported here: it needs torch)

app = typer.Typer(help="h1: long-horizon RL from composed easy problems with a depth curriculum (arXiv 2510.07312).",
                  no_args_is_help=False)
console = Console()


@app.command("compose")
def compose_command(
    depth: int = typer.Option(3, help="h: problems per chain"),
    count: int = typer.Option(5, help="chains to write"),
    seed: int = typer.Option(0, help="sampling seed"),
    gsm8k: Optional[Path] = typer.Option(None, "--gsm8k", help="GSM8K-format JSONL of atoms [default: our templates]"),
    modular: bool = typer.Option(False, "--modular", help="modular state-tracking chains (the tinylm task)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write JSONL here instead of printing the prompts [default: print them]"),
) -> None:
    """Build depth-h chains, each verified by the reference solver, as prompts or JSONL {prompt, answer, depth}."""
    from reasonlab.runs import atomic_write_text

    rows = _compose(depth, count, seed, gsm8k, modular)
    if out is not None:
        atomic_write_text(out, "".join(json.dumps(row) + "\n" for row in rows))
        console.print(f"wrote {len(rows)} depth-{depth} chains to {out}")
        return
    for row in rows:
        console.rule(f"depth {row['depth']}, answer {row['answer']}")
        console.print(row["prompt"], highlight=False, markup=False)


def _compose(depth: int, count: int, seed: int, gsm8k: Optional[Path], modular: bool) -> list[dict]:
    if modular:
        from reasonlab.systems.h1.modular import make_modular_chains

        chains = make_modular_chains(depth, count, seed)
        return [{"prompt": c.prompt, "answer": c.answer, "depth": c.depth, "target": c.target} for c in chains]
    from reasonlab.tasks.arithmetic import load_gsm8k_jsonl, make_chains, template_atoms

    atoms = load_gsm8k_jsonl(gsm8k) if gsm8k is not None else template_atoms()
    chains = make_chains(atoms, depth, count, seed)
    return [{"prompt": c.prompt, "answer": c.answer, "depth": c.depth,
             "intermediate": [link.answer for link in c.links]} for c in chains]


def _train_preset(name: str | None) -> object:
    from reasonlab.systems.h1.config import PRESETS, train_preset

    return train_preset(PRESETS[name or "values"])


def _eval_preset(name: str | None) -> object:
    from reasonlab.config import resolve_config
    from reasonlab.systems.h1.config import PRESETS, EvalConfig, eval_preset

    return resolve_config(EvalConfig, eval_preset(PRESETS[name or "values"]), policy="POLICY")


def _experiment_preset(name: str | None) -> object:
    from reasonlab.systems.h1.config import PRESETS

    return PRESETS[name or "values"]


@app.command("train")
@help_defaults(_train_preset, schedule="curriculum.schedule", max_depth="curriculum.max_depth",
               steps_per_stage="curriculum.steps_per_stage", iterations="rl.iterations", seed="rl.seed")
def train_command(
    preset: str = typer.Option("values", help=f"experiment preset whose chains, warm start and curriculum arm "
                               f"this starts from: {PRESET_NAMES}"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with H1Config fields (task, curriculum, rl, ...)"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set rl.learning_rate=1e-4)"),
    policy: Optional[Path] = typer.Option(None, "--policy", help="tinylm folder to start from [default: the "
                                          "preset's warm start, made once under OUT/warm_starts and reused]"),
    schedule: Optional[str] = typer.Option(None, help="curriculum.schedule: fixed | adaptive | direct | uniform"),
    max_depth: Optional[int] = typer.Option(None, "--max-depth", help="curriculum.max_depth (H)"),
    steps_per_stage: Optional[int] = typer.Option(None, "--steps-per-stage", help="curriculum.steps_per_stage"),
    iterations: Optional[int] = typer.Option(None, help="rl.iterations"),
    seed: Optional[int] = typer.Option(None, help="rl.seed, and the warm start's seed"),
    out: Optional[Path] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name"),
    resume: bool = typer.Option(False, "--resume", help="continue the run from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing run of that name first"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Dr.GRPO on modular chains under the depth curriculum; saves the policy into the run folder."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.h1.config import PRESETS, H1Config, train_preset
    from reasonlab.systems.h1.training import check_resume, rl_history, train

    base = lookup_preset(PRESETS, preset)
    h1 = resolve_config(H1Config, train_preset(base), config, sets, policy=_text(policy), out=_text(out), name=name,
                        curriculum=_given(schedule=schedule, max_depth=max_depth, steps_per_stage=steps_per_stage),
                        rl=_given(iterations=iterations, seed=seed), resume=resume or None,
                        overwrite=overwrite or None, report_to=report_to or None)
    check_resume(h1)  # before minutes of warm start
    # the warm start (when no --policy) is made after the run folder exists, so a long one has its folder
    run_dir = train(h1, warm_start=None if h1.policy is not None else lambda: _warm_start(base, h1))
    for metrics in rl_history(run_dir)[-3:]:
        console.print(f"iteration {metrics['iteration']}: depth {metrics['depth']:.1f} "
                      f"reward {metrics['reward_mean']:.2f} signal groups {metrics['signal_group_fraction']:.2f}")
    console.print(f"policy saved to {run_dir / 'policy'}")


def _warm_start(base: ExperimentConfig, h1: H1Config) -> str:
    """The preset's warm start in the run's chain format and seed (cached under OUT/warm_starts)."""
    from reasonlab.config import resolve_config
    from reasonlab.systems.h1.config import ExperimentConfig
    from reasonlab.systems.h1.experiment import cached_warm_start

    config = resolve_config(ExperimentConfig, base, None, (), **h1.task.model_dump())
    console.print(f"warm start: {config.sft_steps} fine-tuning steps at most (made once, then reused)")
    return str(cached_warm_start(config, h1.rl.seed, Path(h1.out) / "warm_starts", console.print))


@app.command("eval")
@help_defaults(_eval_preset)
def eval_command(
    policy: Path = typer.Argument(..., help="tinylm folder (a run's policy/)"),
    preset: str = typer.Option("values", help=f"the chain format (and depths 1..H + 2) of this preset: {PRESET_NAMES}"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with EvalConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set task.modulus=31)"),
    depths: Optional[int] = typer.Option(None, help="evaluate depths 1..N (the preset's H + 2)"),
    chains: Optional[int] = typer.Option(None, help="held-out chains per depth"),
    out: Optional[Path] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name"),
    resume: bool = typer.Option(False, "--resume", help="reopen an existing evaluation of the same config"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing run of that name first"),
) -> None:
    """Greedy accuracy per depth on held-out modular chains; summary.json of a run."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.runs import Run
    from reasonlab.systems.h1.config import PRESETS, EvalConfig, eval_preset
    from reasonlab.systems.h1.evaluation import evaluate

    resolved = resolve_config(EvalConfig, eval_preset(lookup_preset(PRESETS, preset)), config, sets,
                              policy=str(policy), depths=depths, chains=chains, out=_text(out), name=name,
                              resume=resume or None, overwrite=overwrite or None)
    run_dir = evaluate(resolved)
    for depth, value in Run.open(run_dir).summary()["accuracy"].items():
        console.print(f"depth {depth}: {value:.3f}")


@app.command("experiment")
@help_defaults(_experiment_preset)
def experiment_command(
    preset: str = typer.Option("values", help=f"{PRESET_NAMES} (values: the run of record)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with ExperimentConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE (--set sft_steps=1000)"),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="seeds (repeatable)"),
    max_depth: Optional[int] = typer.Option(None, "--max-depth", help="H"),
    steps_per_stage: Optional[int] = typer.Option(None, "--steps-per-stage", help="curriculum iterations per stage"),
    out: Path = typer.Option(Path("runs/h1-experiment"), help="the experiment's run directory"),
    resume: bool = typer.Option(False, "--resume", help="continue the experiment in OUT (same config; any seeds)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete OUT first and start clean"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Curriculum vs direct vs uniform at equal rollout tokens; writes results.json, summary.json and plots."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.h1.config import PRESETS, ExperimentConfig
    from reasonlab.systems.h1.experiment import run_experiment

    resolved = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, sets, max_depth=max_depth,
                              steps_per_stage=steps_per_stage, report_to=report_to or None)
    results = run_experiment(resolved, out, tuple(seeds), log=console.print, resume=resume, overwrite=overwrite)
    console.print_json(data=results["summary"])


def _given(**options: Any) -> dict[str, Any] | None:
    """The named options of one nested config that were given (None when none was)."""
    given = {key: value for key, value in options.items() if value is not None}
    return given or None


def _text(path: Optional[Path]) -> Optional[str]:
    return None if path is None else str(path)
