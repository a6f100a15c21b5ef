"""`reasonlab arcmemo ...`: build a memory from seed solutions, solve or evaluate ARC tasks with it (any LLM, the
model's code run in the sandbox), show a memory, and run the ARC-lite mechanism experiment."""

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

PRESET_NAMES = "embedded | smoke | paper"  # arcmemo.config.PRESETS
EXPERIMENT_PRESET_NAMES = "record | quick"  # arcmemo.config.EXPERIMENT_PRESETS
SPLIT_NAMES = "arc1-eval-100 | arc1-eval | arc1-train | arc2-eval | arc2-train"
ARM_NAMES = "none | instance | instance-continual | concept | concept-continual | concept-embedding"

app = typer.Typer(help="ArcMemo: abstract concept memory for ARC-AGI, written from verified solutions and read by "
                  "selection (arXiv 2509.04439).", no_args_is_help=False)
console = Console()


def _preset(name: str | None) -> Any:
    from reasonlab.systems.arcmemo.config import PRESETS

    return PRESETS[name or "embedded"]


def _experiment_preset(name: str | None) -> Any:
    from reasonlab.systems.arcmemo.config import EXPERIMENT_PRESETS

    return EXPERIMENT_PRESETS[name or "record"]


def _resolve(preset: str, config: Optional[Path], sets: list[str], **options: Any) -> Any:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.arcmemo.config import PRESETS, ArcMemoConfig

    return resolve_config(ArcMemoConfig, lookup_preset(PRESETS, preset), config, sets, **options)


PRESET_OPTION = typer.Option("embedded", help=f"{PRESET_NAMES}")
CONFIG_OPTION = typer.Option(None, "--config", help="YAML with ArcMemoConfig fields")
SETS_OPTION = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set solving.max_tokens=512)")
LLM_OPTION = typer.Option(None, "--llm", help="the model for every step: hf:embedded, openai:URL#MODEL, ...")
FORMAT_OPTION = typer.Option(None, "--format", help="ps (program-synthesis concepts) | oe (open-ended lessons)")
OUT_OPTION = typer.Option(Path("runs/arcmemo"), help="root folder of runs")
OVERWRITE_OPTION = typer.Option(False, "--overwrite", help="delete the run first")
RESUME_OPTION = typer.Option(False, "--resume", help="continue the run of the same config: a built memory is "
                             "reused, unfinished solving starts again")


@app.command("build-memory")
@help_defaults(_preset, llm="llm", memory_format="format", seeds="seeds")
def build_memory_command(
    preset: str = PRESET_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    sets: list[str] = SETS_OPTION,
    llm: Optional[str] = LLM_OPTION,
    memory_format: Optional[str] = FORMAT_OPTION,
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated seed task ids (arcmemo.seeds)"),
    out: Path = OUT_OPTION,
    name: str = typer.Option("memory", help="run name"),
    resume: bool = RESUME_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Abstract our seed solutions into a memory (PS: summary + pseudocode -> concepts merged by name; OE:
    lessons); writes memory.json and the parse/validity rate of every LLM step."""
    from reasonlab.config import parse_list
    from reasonlab.systems.arcmemo.pipeline import run_build

    resolved = _resolve(preset, config, sets, llm=llm, format=memory_format, seeds=parse_list(seeds, "--seeds"))
    with heartbeat("arcmemo build-memory"):
        run_dir = run_build(resolved, out, name, resume=resume, overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_rates(summary["rates"])
    console.print(f"memory: {summary['memory']} -> {run_dir / 'memory.json'}")


def _eval(preset: str, config: Optional[Path], sets: list[str], out: Path, name: str, resume: bool,
          overwrite: bool, no_limit: bool = False, **options: Any) -> None:
    from reasonlab.systems.arcmemo.pipeline import run_eval

    resolved = _resolve(preset, config, sets, **options)
    if no_limit:  # `solve` solves exactly the tasks it is given
        resolved = resolved.model_copy(update={"limit": None})
    with heartbeat("arcmemo"):
        run_dir = run_eval(resolved, out, name, resume=resume, overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_rates(summary["rates"])
    scores = summary["scores"]
    console.print(f"official score {scores['official_total']:.2f}/{scores['tasks']} "
                  f"(first attempt only: {summary['scores_first_attempt']['official_total']:.2f}); strict "
                  f"{scores['strict_count']}/{scores['tasks']}; train-verified {summary['train_verified']}/"
                  f"{scores['tasks']} -> {run_dir}")


@app.command("eval")
@help_defaults(_preset, llm="llm", memory_format="format", split="split", limit="limit", selection="selection",
               top_k="top_k", passes="max_passes", batch_size="batch_size", continual="continual")
def eval_command(
    preset: str = PRESET_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    sets: list[str] = SETS_OPTION,
    llm: Optional[str] = LLM_OPTION,
    memory_format: Optional[str] = FORMAT_OPTION,
    split: Optional[str] = typer.Option(None, "--split", help=SPLIT_NAMES),
    task_file: Optional[Path] = typer.Option(None, "--task-file", help="an official ARC JSON task file or folder "
                                             "instead of --split [default: none]"),
    limit: Optional[int] = typer.Option(None, "--limit", help="the first N tasks"),
    memory: Optional[Path] = typer.Option(None, "--memory", help="a saved memory.json instead of building one "
                                          "from the seeds [default: none]"),
    selection: Optional[str] = typer.Option(None, "--selection", help="llm | embedding | all | none"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="concepts or lessons selected per task"),
    passes: Optional[int] = typer.Option(None, "--passes", help="attempts per task: 1 + retries"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="tasks per memory snapshot (k)"),
    continual: Optional[bool] = typer.Option(None, "--continual/--frozen", help="write verified solves back"),
    out: Path = OUT_OPTION,
    name: str = typer.Option("eval", help="run name"),
    resume: bool = RESUME_OPTION,
    overwrite: bool = OVERWRITE_OPTION,
) -> None:
    """Build (or read) a memory, then solve a split: selection, the model's `transform` run in the sandbox on the
    train and test inputs, retries while a train pair fails, continual writes; official and strict scores."""
    _eval(preset, config, sets, out, name, resume, overwrite, llm=llm, format=memory_format, split=split,
          task_file=None if task_file is None else str(task_file), limit=limit,
          memory=None if memory is None else str(memory), selection=selection, top_k=top_k, max_passes=passes,
          batch_size=batch_size, continual=continual)


@app.command("solve")
@help_defaults(_preset, llm="llm", memory_format="format", selection="selection", passes="max_passes")
def solve_command(
    tasks: list[str] = typer.Argument(..., help="task ids (from --split) or official ARC JSON files"),
    preset: str = PRESET_OPTION,
    config: Optional[Path] = CONFIG_OPTION,
    sets: list[str] = SETS_OPTION,
    llm: Optional[str] = LLM_OPTION,
    memory_format: Optional[str] = FORMAT_OPTION,
    split: Optional[str] = typer.Option(None, "--split", help=f"where task ids are looked up: {SPLIT_NAMES} "
                                        "[default: arc1-eval]"),
    memory: Optional[Path] = typer.Option(None, "--memory", help="a saved memory.json [default: none: build one "
                                          "from the seeds]"),
    selection: Optional[str] = typer.Option(None, "--selection", help="llm | embedding | all | none"),
    passes: Optional[int] = typer.Option(None, "--passes", help="attempts per task: 1 + retries"),
    out: Path = OUT_OPTION,
    name: str = typer.Option("solve", help="run name"),
    overwrite: bool = typer.Option(True, "--overwrite/--keep", help="replace the previous solve run"),
) -> None:
    """Solve the given tasks with a memory (frozen: nothing is written back) and print each outcome."""
    from reasonlab.errors import UserError

    files = [t for t in tasks if t.endswith(".json") or Path(t).is_dir()]
    ids = [t for t in tasks if t not in files]
    if files and ids:
        raise UserError("give task ids or JSON task files, not both (a folder of JSON files works too)")
    if len(files) > 1:
        raise UserError(f"give one JSON task file or one folder of them, not {', '.join(files)}: put them in a folder")
    if split is None and not files and "split" not in _given_keys(config, sets):
        split = "arc1-eval"  # task ids come from the evaluation set unless the user named another place
    _eval(preset, config, sets, out, name, False, overwrite, no_limit=True, llm=llm, format=memory_format,
          split=split, task_file=files[0] if files else None, task_ids=ids or None,
          memory=None if memory is None else str(memory), selection=selection, max_passes=passes, continual=False)


def _given_keys(config: Optional[Path], sets: list[str]) -> set[str]:
    """Top-level keys the user gave in --config or --set."""
    import yaml

    from reasonlab.config import parse_sets

    keys = set(parse_sets(sets))
    if config is not None and config.is_file():
        try:
            loaded = yaml.safe_load(config.read_text()) or {}
        except yaml.YAMLError:
            return keys  # resolve_config reports the broken file in one line
        keys |= set(loaded) if isinstance(loaded, dict) else set()
    return keys


@app.command("show")
def show_command(
    memory: Path = typer.Argument(..., help="memory.json (either format)"),
    selected: Optional[str] = typer.Option(None, "--selected", help="comma-separated concept names: render them "
                                           "in full and the rest by name, as the solver sees it [default: none]"),
    usage_threshold: int = typer.Option(2, "--usage-threshold", help="concepts used fewer times are listed by name"),
    cues: bool = typer.Option(False, "--cues", help="show each concept's cues"),
) -> None:
    """Print a memory as the LLM sees it (PS: the four sections; OE: numbered lessons) and its size."""
    from reasonlab.config import parse_list
    from reasonlab.systems.arcmemo.memory import ConceptMemory, load_memory

    loaded = load_memory(memory)
    if isinstance(loaded, ConceptMemory):
        print(loaded.render(selected=parse_list(selected, "--selected"), usage_threshold=usage_threshold,
                            show_cues=cues))
        console.print(loaded.stats())
    else:
        print(loaded.render_numbered())
        console.print({"lessons": len(loaded.lessons)})


@app.command("experiment")
@help_defaults(_experiment_preset, arms="arms", seeds="seeds", jobs="jobs", top_k="top_k",
               eval_tasks="eval_tasks", seed_tasks="seed_tasks")
def experiment_command(
    preset: str = typer.Option("record", help=EXPERIMENT_PRESET_NAMES),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with ArcLiteConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE (--set budgets=[100,300])"),
    arms: Optional[str] = typer.Option(None, "--arms", help=f"comma-separated: {ARM_NAMES}"),
    seeds: Optional[list[int]] = typer.Option(None, "--seed", help="seeds (repeatable)"),
    seed_tasks: Optional[int] = typer.Option(None, "--seed-tasks", help="tasks with known programs per seed"),
    eval_tasks: Optional[int] = typer.Option(None, "--eval-tasks", help="held-out tasks per seed"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="concepts selected per task"),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=1, help="seeds run in this many processes"),
    out: Path = OUT_OPTION,
    name: Optional[str] = typer.Option(None, help="experiment name [default: arclite-<preset>]"),
    resume: bool = typer.Option(False, "--resume", help="continue: finished seeds are reused"),
    overwrite: bool = OVERWRITE_OPTION,
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """ARC-lite (spec section 10): memory arms x search budgets x seeds; solve rate vs budget (plot), selection
    recall@k, and the concept arm's margins over no memory and instance memory at the headline budget."""
    from reasonlab.config import lookup_preset, parse_list, resolve_config
    from reasonlab.systems.arcmemo.config import EXPERIMENT_PRESETS, ArcLiteConfig
    from reasonlab.systems.arcmemo.experiment import run_experiment

    resolved = resolve_config(ArcLiteConfig, lookup_preset(EXPERIMENT_PRESETS, preset), config, sets,
                              arms=parse_list(arms, "--arms"), seeds=seeds or None, seed_tasks=seed_tasks,
                              eval_tasks=eval_tasks, top_k=top_k, jobs=jobs, report_to=report_to or None)
    run_dir = run_experiment(resolved, out, name or f"arclite-{preset}", overwrite=overwrite, resume=resume)
    summary = json.loads((run_dir / "summary.json").read_text())
    _print_experiment(summary)
    headline = json.loads((run_dir / "headline.json").read_text())
    console.print(f"{headline['result']} (claim holds: {headline['holds']}) -> {run_dir}")


def _print_rates(rates: dict[str, Any]) -> None:
    table = Table("LLM step", "calls", "tries", "valid typed output")
    for step, row in rates.items():
        table.add_row(step, str(row["calls"]), str(row["tries"]),
                      "n/a" if row["calls"] == 0 else f"{100 * row['valid_rate']:.0f}%")
    console.print(table)


def _print_experiment(summary: dict[str, Any]) -> None:
    arms = summary["arms"]
    budgets = sorted(next(iter(arms.values()))["by_budget"], key=int)
    table = Table("arm", *(f"budget {b}" for b in budgets), "recall@k")
    from reasonlab.systems.arcmemo.config import ARM_NAMES as ORDER

    for arm in sorted(arms, key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER)):
        rows = arms[arm]
        cells = [f"{100 * rows['by_budget'][b]['solve_rate']['mean']:.1f} ± "
                 f"{100 * rows['by_budget'][b]['solve_rate']['sd']:.1f}" for b in budgets]
        recall = rows["by_budget"][budgets[0]]["recall_at_k"]
        table.add_row(arm, *cells, "-" if recall is None else f"{recall['mean']:.2f}")
    console.print(table)
