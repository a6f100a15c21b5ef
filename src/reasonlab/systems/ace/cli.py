"""`reasonlab ace ...`: adapt a context (ACE or a baseline), evaluate one, show a playbook, run the experiment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from reasonlab.clihelp import help_defaults
from reasonlab.errors import UserError
from reasonlab.progress import heartbeat
from reasonlab.trackers import REPORT_TO_HELP

if TYPE_CHECKING:
    from reasonlab.systems.ace.config import ACEConfig

app = typer.Typer(help="ACE: agentic context engineering, an evolving playbook (arXiv 2510.04618).",
                  no_args_is_help=False)


PRESET_HELP = "an experiment preset whose adaptation settings start the config (see `reasonlab ace experiment`)"
SET_HELP = "any other option as KEY=VALUE (repeatable; dotted keys for nested ones: roles.retries=1)"


def _data(items: list[str]) -> dict[str, str] | None:
    """`--data test=PATH` pairs -> {"test": PATH}; None when none are given."""
    data = {}
    for item in items:
        split, sep, path = item.partition("=")
        if not sep or split.strip() not in ("train", "val", "test"):
            raise UserError(f"--data {item!r} is not SPLIT=PATH: write e.g. --data test=data/test.jsonl "
                            f"(splits: train, val, test)")
        data[split.strip()] = path
    return data or None


def _ace_config(preset: str | None, config: Path | None, set_: list[str], **options: Any) -> ACEConfig:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.ace.config import PRESETS, ACEConfig

    start = lookup_preset(PRESETS, preset).adaptation if preset is not None else None
    return resolve_config(ACEConfig, start, config, set_, **options)


def _ace_defaults(name: str | None) -> object:
    from reasonlab.systems.ace.config import ACEConfig

    return ACEConfig()


def _experiment_preset(name: str | None) -> object:
    from reasonlab.systems.ace.config import PRESETS

    return PRESETS[name or "mini"]


@app.command("adapt")
@help_defaults(_ace_defaults)
def adapt_command(
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP + " [default: ACEConfig's defaults]"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of ACEConfig options"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec"),
    task: Optional[str] = typer.Option(None, help="formula | tools | finer | formula-jsonl"),
    mode: Optional[str] = typer.Option(None, help="offline | online"),
    method: Optional[str] = typer.Option(None, help="ace | dc (full rewrite) | icl | none"),
    labels: Optional[bool] = typer.Option(None, "--labels/--no-labels", help="gold-label feedback, or execution only"),
    oracle_reflector: Optional[bool] = typer.Option(None, "--oracle-reflector", help="scripted true-rule Reflector"),
    epochs: Optional[int] = typer.Option(None, help="offline epochs"),
    window: Optional[int] = typer.Option(None, help="online window"),
    token_budget: Optional[int] = typer.Option(None, help="playbook token budget (enforced)"),
    train_size: Optional[int] = typer.Option(None, help="first N training samples [default: all]"),
    val_size: Optional[int] = typer.Option(None, help="first N validation samples [default: all]"),
    test_size: Optional[int] = typer.Option(None, help="first N test samples [default: all]"),
    seed: Optional[int] = typer.Option(None, help="task generation seed"),
    playbook: Optional[str] = typer.Option(None, help="initial playbook JSON (warm-up)"),
    data: list[str] = typer.Option([], "--data", help="SPLIT=PATH of FiNER/Formula JSONL (repeatable)"),
    out: Path = typer.Option(Path("runs/ace"), "--out", help="root folder of runs"),
    name: Optional[str] = typer.Option(None, "--name", help="run name [default: task-method-mode]"),
    resume: bool = typer.Option(False, "--resume", help="reuse the finished run of the same config"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run directory and start again"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Adapt a context on a task (offline on the train split, or online on the test stream)."""
    from reasonlab.systems.ace.adaptation import run_adaptation

    options = _ace_config(preset, config, set_, llm=llm, task=task, mode=mode, method=method, labels=labels,
                          oracle_reflector=oracle_reflector, epochs=epochs, window=window,
                          token_budget=token_budget, train_size=train_size, val_size=val_size,
                          test_size=test_size, seed=seed, playbook=playbook, data=_data(data),
                          report_to=report_to or None)
    with heartbeat("ace adapt"):
        run_dir = run_adaptation(options, out, name, resume=resume, overwrite=overwrite)
    _print_summary(run_dir)


@app.command("eval")
@help_defaults(_ace_defaults)
def eval_command(
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP + " [default: ACEConfig's defaults]"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of ACEConfig options"),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    playbook: Optional[str] = typer.Option(None, help="playbook JSON to evaluate (none = empty context)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec"),
    task: Optional[str] = typer.Option(None, help="formula | tools | finer | formula-jsonl"),
    test_size: Optional[int] = typer.Option(None, help="first N test samples [default: all]"),
    seed: Optional[int] = typer.Option(None, help="task generation seed"),
    data: list[str] = typer.Option([], "--data", help="SPLIT=PATH of FiNER/Formula JSONL (repeatable)"),
) -> None:
    """Score the test split with a playbook (or with no context); prints the result, writes no run."""
    from reasonlab.llm import load_llm
    from reasonlab.systems.ace.evaluation import evaluate
    from reasonlab.systems.ace.memory import FrozenPlaybook, NoMemory
    from reasonlab.systems.ace.playbook import Playbook
    from reasonlab.systems.ace.roles import Generator
    from reasonlab.systems.ace.tasks import load_task

    options = _ace_config(preset, config, set_, llm=llm, task=task, test_size=test_size, seed=seed,
                          playbook=playbook, data=_data(data))
    loaded_task = load_task(options.task, seed=options.seed, data=options.data or None, **options.task_options)
    model = load_llm(options.llm)
    generator = Generator(model, options.roles, loaded_task.demo, loaded_task.instructions)
    memory: Any = NoMemory()
    if options.playbook:
        memory = FrozenPlaybook(Playbook.load(options.playbook), lambda text: len(model.tokenize(text)))
    result = evaluate(generator, memory, loaded_task, loaded_task.test[:options.test_size])
    typer.echo(f"accuracy {result['accuracy']:.3f} on {result['n']} samples (parse rate {result['parse_rate']:.3f}); "
               f"{memory.tokens()} context tokens; usage {json.dumps(model.usage.as_dict())}")


@app.command("experiment")
@help_defaults(_experiment_preset, llm="adaptation.llm")
def experiment_command(
    preset: str = typer.Option("mini", "--preset", help="mini (the run of record), quick, oracle, model, endpoint, "
                                                        "tools"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of ExperimentConfig options"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE (repeatable; dotted keys: "
                                                     "adaptation.train_size=4)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec"),
    arms: Optional[str] = typer.Option(None, "--arms", help="comma-separated methods: ace, dc, icl, none"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated task seeds, e.g. 0,1,2"),
    out: Path = typer.Option(Path("runs/ace-experiment"), "--out", help="root folder of runs"),
    name: Optional[str] = typer.Option(None, "--name", help="run name [default: the preset]"),
    resume: bool = typer.Option(False, "--resume", help="continue: reuse finished adaptations, redo the rest"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run directory and start again"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """The small-scale reproduction: each arm adapts the same task on each seed; mean, spread and n per arm."""
    from reasonlab.config import lookup_preset, parse_list, resolve_config
    from reasonlab.systems.ace.config import PRESETS, ExperimentConfig
    from reasonlab.systems.ace.experiment import run_experiment

    options = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, set_,
                             adaptation={"llm": llm} if llm is not None else None,
                             arms=parse_list(arms, "--arms"), seeds=parse_list(seeds, "--seeds"),
                             report_to=report_to or None)
    with heartbeat("ace experiment"):
        run_dir = run_experiment(options, out, name or preset, resume=resume, overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    for arm, row in summary["arms"].items():
        typer.echo(f"{arm:5s} test accuracy {_stat(row['test_accuracy'])}, seeded facts kept "
                   f"{_stat(row['facts_retained_fraction'])}, largest shrink {_stat(row['max_shrink'])}")
    typer.echo(f"run: {run_dir}")


def _stat(value: dict[str, float]) -> str:
    return f"{value['mean']:.3f} ± {value['spread']:.3f} (n={value['n']})"


@app.command("show")
def show_command(
    playbook: Path = typer.Argument(..., help="playbook.json (or a rendered .md/.txt playbook)"),
    raw: bool = typer.Option(False, "--raw", help="print the exact text the LLM sees"),
) -> None:
    """A readable view of a playbook: sections, ids, counters, content."""
    from rich.console import Console
    from rich.table import Table

    from reasonlab.systems.ace.playbook import Playbook

    loaded = Playbook.load(playbook)
    console = Console()
    if raw:
        console.print(loaded.render(), markup=False, highlight=False)
        return
    stats = loaded.stats()
    for section in loaded.sections:
        bullets = [b for b in loaded if b.section == section]
        if not bullets:
            continue
        table = Table("id", "+", "-", "content", title=section, title_justify="left", show_lines=False)
        for bullet in bullets:
            table.add_row(bullet.id, str(bullet.helpful), str(bullet.harmful), bullet.content)
        console.print(table)
    console.print(f"{stats['total_bullets']} bullets, {stats['high_performing']} high-performing, "
                  f"{stats['problematic']} problematic, {stats['unused']} unused; next id {loaded.next_id}; "
                  f"{len(loaded.render())} characters")


def _print_summary(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    typer.echo(f"run: {run_dir}")
    if summary.get("mode") == "online":
        typer.echo(f"online accuracy {summary['online_accuracy']:.3f} (parse rate {summary['parse_rate']:.3f})")
    else:
        before, after = summary.get("test_before"), summary["test_after"]
        start = f"{before['accuracy']:.3f} -> " if before else ""
        typer.echo(f"test accuracy {start}{after['accuracy']:.3f} (best step {summary['best_step']})")
    typer.echo(f"context tokens {summary['context_tokens'][0]} -> {summary['final_tokens']} "
               f"(peak {summary['peak_tokens']}, largest one-step shrink {summary['max_shrink']:.0%}); "
               f"usage {json.dumps(summary['usage'])}")
