"""`reasonlab ace ...`: adapt a context (ACE or a baseline), evaluate one, show a playbook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from reasonlab.errors import UserError

app = typer.Typer(help="ACE: agentic context engineering, an evolving playbook (arXiv 2510.04618).",
                  no_args_is_help=True)


def _pairs(items: list[str], option: str) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"{option} {item!r} is not KEY=VALUE: write e.g. {option} test=data/test.jsonl")
        out[key.strip().replace("-", "_")] = yaml.safe_load(value) if option == "--set" else value
    return out


def _config(config: Path | None, set_: list[str], data: list[str], **options: Any):
    from reasonlab.config import load_config, load_yaml
    from reasonlab.systems.ace.adapt import ACEConfig

    overrides = _pairs(set_, "--set")
    roles = {k.removeprefix("roles."): overrides.pop(k) for k in list(overrides) if k.startswith("roles.")}
    if roles:
        # --set roles.X=... updates the YAML's roles mapping instead of replacing it
        overrides["roles"] = {**(load_yaml(config).get("roles") or {} if config else {}), **roles}
    if data:
        overrides["data"] = _pairs(data, "--data")
    overrides.update({k: v for k, v in options.items() if v is not None})
    return load_config(ACEConfig, config, **overrides)


@app.command("adapt")
def adapt_command(
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec [default: llamacpp:embedded]"),
    task: Optional[str] = typer.Option(None, help="formula | tools | finer | formula-jsonl"),
    mode: Optional[str] = typer.Option(None, help="offline | online"),
    method: Optional[str] = typer.Option(None, help="ace | dc (full rewrite) | icl | none"),
    labels: Optional[bool] = typer.Option(None, "--labels/--no-labels", help="gold-label feedback, or execution only"),
    oracle_reflector: Optional[bool] = typer.Option(None, "--oracle-reflector", help="scripted true-rule Reflector"),
    epochs: Optional[int] = typer.Option(None, help="offline epochs"),
    window: Optional[int] = typer.Option(None, help="online window"),
    token_budget: Optional[int] = typer.Option(None, help="playbook token budget (enforced)"),
    train_size: Optional[int] = typer.Option(None, help="first N training samples"),
    val_size: Optional[int] = typer.Option(None, help="first N validation samples"),
    test_size: Optional[int] = typer.Option(None, help="first N test samples"),
    playbook: Optional[str] = typer.Option(None, help="initial playbook JSON (warm-up)"),
    data: list[str] = typer.Option([], "--data", help="SPLIT=PATH of FiNER/Formula JSONL (repeatable)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of options (ACEConfig)"),
    out: Optional[str] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE, e.g. roles.retries=1"),
) -> None:
    """Adapt a context on a task (offline on the train split, or online on the test stream)."""
    from reasonlab.systems.ace.adapt import run_adaptation

    options = _config(config, set_, data, llm=llm, task=task, mode=mode, method=method, labels=labels,
                      oracle_reflector=oracle_reflector, epochs=epochs, window=window, token_budget=token_budget,
                      train_size=train_size, val_size=val_size, test_size=test_size, playbook=playbook, out=out,
                      name=name)
    run_dir = run_adaptation(options)
    _print_summary(run_dir)


@app.command("eval")
def eval_command(
    playbook: Optional[str] = typer.Option(None, help="playbook JSON to evaluate (none = empty context)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec [default: llamacpp:embedded]"),
    task: Optional[str] = typer.Option(None, help="formula | tools | finer | formula-jsonl"),
    test_size: Optional[int] = typer.Option(None, help="first N test samples"),
    data: list[str] = typer.Option([], "--data", help="SPLIT=PATH of FiNER/Formula JSONL (repeatable)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of options (ACEConfig)"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE"),
) -> None:
    """Score the test split with a playbook (or with no context)."""
    from reasonlab.llm import load_llm
    from reasonlab.systems.ace.adapt import evaluate
    from reasonlab.systems.ace.memory import FrozenPlaybook, NoMemory
    from reasonlab.systems.ace.playbook import Playbook
    from reasonlab.systems.ace.roles import Generator
    from reasonlab.systems.ace.tasks import load_task

    options = _config(config, set_, data, llm=llm, task=task, test_size=test_size, playbook=playbook)
    loaded_task = load_task(options.task, seed=options.seed, data=options.data or None)
    model = load_llm(options.llm)
    generator = Generator(model, options.roles, loaded_task.demo, loaded_task.instructions)
    memory: Any = NoMemory()
    if options.playbook:
        memory = FrozenPlaybook(Playbook.load(options.playbook), lambda text: len(model.tokenize(text)))
    result = evaluate(generator, memory, loaded_task, loaded_task.test[:options.test_size])
    typer.echo(f"accuracy {result['accuracy']:.3f} on {result['n']} samples (parse rate {result['parse_rate']:.3f}); "
               f"{memory.tokens()} context tokens; usage {json.dumps(model.usage.as_dict())}")


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
