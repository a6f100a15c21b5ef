"""`reasonlab delethink ...`: chunked reasoning with any model, RL of one arm, the small experiment, its
non-Markovian control, and zero-shot tracing of a base model.

Every command that trains or runs an experiment takes --preset, --config FILE.yaml, --set KEY=VALUE and a
few named options (resolved in that order by `reasonlab.config.resolve_config`), writes a run directory at
--out, and takes --resume / --overwrite for an existing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from reasonlab.clihelp import help_defaults
from reasonlab.trackers import REPORT_TO_HELP

app = typer.Typer(help="Delethink: the Markovian Thinker, chunked reasoning with a bounded state (arXiv 2510.06557).",
                  no_args_is_help=False)
console = Console()

CONFIG_HELP = "YAML file of options (a later source wins: preset < file < --set < named options)"
SET_HELP = "any option as KEY=VALUE (repeatable), e.g. --set rl_iterations=40"
RESUME_HELP = "continue the run at --out (same config)"
OVERWRITE_HELP = "delete the run at --out and start clean"


def _run_defaults(name: str | None) -> object:
    from reasonlab.systems.delethink.config import RunConfig

    return RunConfig()


def _train_preset(name: str | None) -> object:
    from reasonlab.config import resolve_config
    from reasonlab.systems.delethink.config import PRESETS, TrainConfig

    return resolve_config(TrainConfig, PRESETS[name or "main"].setup_fields())


def _experiment_preset(name: str | None) -> object:
    from reasonlab.systems.delethink.config import PRESETS

    return PRESETS[name or "main"]


def _arithmetic_preset(name: str | None) -> object:
    from reasonlab.systems.delethink.config import ARITHMETIC_PRESETS

    return ARITHMETIC_PRESETS[name or "sums6"]


@app.command("run")
@help_defaults(_run_defaults)
def run_command(
    question: str = typer.Argument(..., help="the query (text; for a base model, a completion prompt)"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec"),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="C, chunk context"),
    carryover: Optional[int] = typer.Option(None, "--carryover", help="m, carried tokens"),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="I, cap on chunks"),
    head_tokens: Optional[int] = typer.Option(None, "--head-tokens", help="kept head of chunk 1"),
    temperature: Optional[float] = typer.Option(None, help="sampling temperature"),
    seed: Optional[int] = typer.Option(None, help="sampling seed"),
    stop: Optional[list[str]] = typer.Option(None, help="stop string (repeatable)"),
    longcot: bool = typer.Option(False, "--longcot", help="LongCoT with the same budget, for comparison"),
) -> None:
    """Think in chunks of C tokens, streaming each chunk as it completes, then print the trace summary."""
    from reasonlab.config import resolve_config
    from reasonlab.llm import SamplingParams, load_llm
    from reasonlab.systems.delethink.config import DelethinkConfig, RunConfig
    from reasonlab.systems.delethink.rollout import Chunk, chunked_rollout

    options = resolve_config(RunConfig, None, config, set_, llm=llm, chunk=chunk, carryover=carryover,
                             iterations=iterations, head_tokens=head_tokens, temperature=temperature, seed=seed,
                             stop=stop or None, longcot=longcot or None)
    delethink = DelethinkConfig(chunk_size=options.chunk, carryover=options.carryover,
                                iterations=options.iterations, head_tokens=options.head_tokens)
    if options.longcot:
        delethink = DelethinkConfig.longcot(delethink.budget)
    model = load_llm(options.llm)
    console.print(f"[dim]{'LongCoT' if options.longcot else 'Delethink'} C={delethink.chunk_size} "
                  f"m={delethink.carryover} I={delethink.iterations} budget={delethink.budget}[/dim]")

    def show(query: int, sample: int, item: Chunk) -> None:
        console.rule(f"chunk: prompt {len(item.prompt_ids)} tokens, +{len(item.token_ids)} ({item.finish_reason})")
        console.print(escape(item.text), highlight=False)

    params = SamplingParams(temperature=options.temperature, seed=options.seed, stop=options.stop)
    [[trace]] = chunked_rollout(model, [question], delethink, params, on_chunk=show)
    console.rule()
    console.print(f"[dim]{trace.num_tokens} thinking tokens in {len(trace.chunks)} chunks, "
                  f"finished: {trace.finished}, largest position: {trace.max_position}[/dim]")


@app.command("train")
@help_defaults(_train_preset)
def train_command(
    preset: str = typer.Option("main", help="main | quick: the experiment preset whose setup to train with"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    arm: Optional[str] = typer.Option(None, help="delethink | longcot: the RL environment"),
    seed: Optional[int] = typer.Option(None, help="RL seed"),
    rl_iterations: Optional[int] = typer.Option(None, help="RL iterations"),
    out: Optional[Path] = typer.Option(None, help="run directory"),
    resume: bool = typer.Option(False, "--resume", help="continue the run at --out from its last checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """RL of the walk tinylm in one arm from its SFT base (cached beside the run): the method's train(config)."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.delethink.config import PRESETS, TrainConfig
    from reasonlab.systems.delethink.training import train

    settings = resolve_config(TrainConfig, lookup_preset(PRESETS, preset).setup_fields(), config, set_, arm=arm,
                              seed=seed, rl_iterations=rl_iterations, out=None if out is None else str(out),
                              resume=resume or None, overwrite=overwrite or None, report_to=report_to or None)
    run_dir = train(settings)
    console.print(f"wrote {run_dir}")


@app.command("experiment")
@help_defaults(_experiment_preset, seeds="seeds")
def experiment_command(
    preset: str = typer.Option("main", help="main (the run of record) | quick"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="RL seed (repeatable)"),
    out: Path = typer.Option(Path("runs/delethink-experiment"), help="run directory of the experiment"),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """The small-scale reproduction: SFT base, Delethink-RL vs LongCoT-RL, each under both inference modes."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.delethink.config import PRESETS, ExperimentConfig
    from reasonlab.systems.delethink.experiment import run_experiment

    settings = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, set_, seeds=seeds or None,
                              report_to=report_to or None)
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    summary = run_experiment(settings, out, resume=resume, overwrite=overwrite)["summary"]
    console.print(f"wrote {out / 'summary.json'}, {out / 'results.json'} and {out / 'plots'}")
    for model, row in summary["models"].items():
        console.print(f"{model:24s} within budget {_stat(row['within_budget'])}   beyond {_stat(row['beyond_budget'])}"
                      f"   (n={row['within_budget']['n']})")
    for name, row in summary["comparisons"].items():
        console.print(f"{name:30s} {row['a']} - {row['b']}: within {_stat(row['within_budget'], '+.3f')}, "
                      f"beyond {_stat(row['beyond_budget'], '+.3f')}")


def _stat(row: dict, spec: str = ".3f") -> str:
    """'mean ± sd' of a summary entry, or 'n/a' when no length was tested there."""
    return "n/a" if row["mean"] is None else f"{row['mean']:{spec}} ± {row['sd']:.3f}"


@app.command("control")
@help_defaults(_experiment_preset)
def control_command(
    preset: str = typer.Option("main", help="main (the run of record) | quick"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    control_head_tokens: Optional[int] = typer.Option(None, help="head tokens of the head + tail carryover"),
    out: Path = typer.Option(Path("runs/delethink-control"), help="run directory of the control"),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """The non-Markovian control: LongCoT vs Delethink (tail, and head + tail carryover) on its own SFT model."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.delethink.config import PRESETS, ExperimentConfig
    from reasonlab.systems.delethink.experiment import run_control

    settings = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, set_,
                              control_head_tokens=control_head_tokens, report_to=report_to or None)
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    summary = run_control(settings, out, resume=resume, overwrite=overwrite)
    console.print(f"wrote {out / 'summary.json'}")
    console.print_json(data=summary["curves"])


@app.command("arithmetic")
@help_defaults(_arithmetic_preset, chunk="chunk_size")
def arithmetic_command(
    preset: str = typer.Option("sums6", help="sums6 (6-number sums, C=32 m=16 I=4) | sums4 (C=16 m=8 I=6)"),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec"),
    operands: Optional[int] = typer.Option(None, help="numbers to add per problem"),
    problems: Optional[int] = typer.Option(None, help="problems"),
    n: Optional[int] = typer.Option(None, help="samples per problem (avg@N)"),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="C"),
    carryover: Optional[int] = typer.Option(None, "--carryover", help="m"),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="I"),
    seed: Optional[int] = typer.Option(None, help="task and sampling seed"),
    out: Path = typer.Option(Path("runs/delethink-arithmetic"), help="run directory"),
    resume: bool = typer.Option(False, "--resume", help=RESUME_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
) -> None:
    """Zero-shot Delethink tracing on templated arithmetic vs LongCoT at the same token budget."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.delethink.config import ARITHMETIC_PRESETS, ArithmeticConfig
    from reasonlab.systems.delethink.experiment import run_arithmetic

    settings = resolve_config(ArithmeticConfig, lookup_preset(ARITHMETIC_PRESETS, preset), config, set_, llm=llm,
                              operands=operands, problems=problems, n=n, chunk_size=chunk, carryover=carryover,
                              iterations=iterations, seed=seed)
    if resume and not overwrite:
        from reasonlab.runs import Run

        Run.require_existing(out)
    summary = run_arithmetic(settings, out, resume=resume, overwrite=overwrite)
    for arm in ("delethink", "longcot"):
        console.print(f"{arm}: avg@{settings.n} = {summary[arm]['accuracy']:.3f} "
                      f"({summary[arm]['tokens_mean']:.0f} tokens, {summary[arm]['chunks_mean']:.1f} chunks)")
