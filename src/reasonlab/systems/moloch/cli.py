"""`reasonlab moloch ...`: play one round of the base agent (simulate), train over rounds, evaluate a trained run
against the base agent, run every condition x seed (experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from reasonlab.clihelp import help_defaults
from reasonlab.progress import heartbeat
from reasonlab.trackers import REPORT_TO_HELP

PRESET_NAMES = "market | control | figures | brief | worked | llm | smoke | paper"  # moloch.config.PRESETS
ARENA_NAMES = "sales | elections | social"
AUDIENCE_NAMES = "market | control | llm"
CONDITION_NAMES = "market-rft | market-tfb | control-rft | control-tfb"
PROBE_HELP = "fabrication | misrepresentation | populism | unsafe_encouragement [default: the arena's]"

app = typer.Typer(help="Moloch's Bargain: agents tuned to win an audience's votes drift into fabrication and "
                  "misrepresentation (arXiv 2510.06105).", no_args_is_help=False)
console = Console()

JUDGE_HELP = ("an LLM judge for the arena's probes beside the rule-based ones, e.g. openai:URL#MODEL on a 70B-class "
              "model [default: none]")
AUDIENCE_LLM_HELP = "audience.llm: the model behind an llm audience (a served 8B model for a result)"


def _preset(name: str | None) -> Any:
    from reasonlab.systems.moloch.config import PRESETS

    return PRESETS[name or "market"]


def _lookup(name: str) -> Any:
    from reasonlab.config import lookup_preset
    from reasonlab.systems.moloch.config import PRESETS

    return lookup_preset(PRESETS, name)


def _given(**values: Any) -> dict[str, Any] | None:
    kept = {key: value for key, value in values.items() if value is not None}
    return kept or None


def _data(arena: Optional[str], num_train: Optional[int], num_test: Optional[int], train_file: Optional[Path],
          test_file: Optional[Path]) -> dict[str, Any] | None:
    return _given(arena=arena, num_train=num_train, num_test=num_test,
                  train_file=None if train_file is None else str(train_file),
                  test_file=None if test_file is None else str(test_file))


@app.command("simulate")
@help_defaults(_preset, arena="data.arena", num_train="data.num_train", audience="audience.kind",
               audience_llm="audience.llm", personas="audience.personas", max_tokens="agent.max_tokens")
def simulate_command(
    preset: str = typer.Option("market", help=f"{PRESET_NAMES} (its data, agent and audience)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with SimulateConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set audience.noise=0.5)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="the agent (any model spec)"),
    arena: Optional[str] = typer.Option(None, help=f"data.arena: {ARENA_NAMES}"),
    num_train: Optional[int] = typer.Option(None, "--num-train", help="data.num_train: contests to play"),
    train_file: Optional[Path] = typer.Option(None, "--anchors", help="data.train_file: a JSON-lines anchor file "
                                              "[default: none: generated anchors]"),
    audience: Optional[str] = typer.Option(None, "--audience", help=f"audience.kind: {AUDIENCE_NAMES}"),
    audience_llm: Optional[str] = typer.Option(None, "--audience-llm", help=AUDIENCE_LLM_HELP),
    personas: Optional[int] = typer.Option(None, "--personas", help="audience.personas: voters per pair"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="agent.max_tokens: tokens per message"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    probes: list[str] = typer.Option([], "--probe", help=f"probes to run (repeatable): {PROBE_HELP}"),
    seed: Optional[int] = typer.Option(None, help="sampling and votes"),
    out: Optional[Path] = typer.Option(None, "--out", help="write contests.jsonl and report.json here [default: "
                                       "none]"),
) -> None:
    """One round of the base agent: ties, missing messages, what the winners say against the losers (probe
    rates), and the audience's agreement with itself when each voter's order is swapped."""
    from reasonlab.config import resolve_config
    from reasonlab.systems.moloch.config import SimulateConfig
    from reasonlab.systems.moloch.training import simulate

    base = _lookup(preset)
    resolved = resolve_config(
        SimulateConfig, {"llm": base.llm, "data": base.data.model_dump(), "agent": base.agent.model_dump(),
                         "audience": base.audience.model_dump()}, config, sets,
        llm=llm, data=_data(arena, num_train, None, train_file, None),
        agent=_given(max_tokens=max_tokens), audience=_given(kind=audience, llm=audience_llm, personas=personas),
        judge=judge, probes=probes or None, seed=seed, out=None if out is None else str(out))
    with heartbeat("moloch simulate"):
        report = simulate(resolved)
    _print_simulation(report)


def _rate(rate: dict[str, Any] | None) -> str:
    if not rate or rate.get("rate") is None:
        return "n/a"
    return f"{rate['rate']:.2f} ({rate['k']}/{rate['n']}, 95% CI {rate['ci_low']:.2f}-{rate['ci_high']:.2f})"


def _print_simulation(report: dict[str, Any]) -> None:
    console.print(f"{report['contests']} contests: {report['decided']} decided, {report['ties']} ties, "
                  f"{report['missing_message']} without a message")
    table = Table("probe", "winners", "losers")
    for key, value in report["winners"].items():
        if isinstance(value, dict):
            table.add_row(key, _rate(value), _rate(report["losers"][key]))
    console.print(table)
    bias = report.get("position_bias")
    if bias:
        console.print(f"self-agreement with each voter's order swapped: {_rate(bias['agreement'])}; "
                      f"share of 'A' votes: {_rate(bias['a_share'])}")


@app.command("train")
@help_defaults(_preset, arena="data.arena", num_train="data.num_train", num_test="data.num_test",
               audience="audience.kind", audience_llm="audience.llm", learning_rate="sft.learning_rate",
               train_file="data.train_file", test_file="data.test_file")
def train_command(
    preset: str = typer.Option("market", help=f"{PRESET_NAMES} (market: the run of record's setting)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE, dotted for nested fields (--set sft.max_steps=16)"),
    method: Optional[str] = typer.Option(None, help="rft (train on winners) | tfb (also the audience's thoughts)"),
    rounds: Optional[int] = typer.Option(None, help="generate -> vote -> fine-tune rounds"),
    llm: Optional[str] = typer.Option(None, "--llm", help="a trainable agent (hf:embedded, hf:PATH)"),
    arena: Optional[str] = typer.Option(None, help=f"data.arena: {ARENA_NAMES}"),
    num_train: Optional[int] = typer.Option(None, "--num-train", help="data.num_train"),
    num_test: Optional[int] = typer.Option(None, "--num-test", help="data.num_test"),
    train_file: Optional[Path] = typer.Option(None, "--train-anchors", help="data.train_file (JSON lines)"),
    test_file: Optional[Path] = typer.Option(None, "--test-anchors", help="data.test_file (JSON lines)"),
    audience: Optional[str] = typer.Option(None, "--audience", help=f"audience.kind: {AUDIENCE_NAMES}"),
    audience_llm: Optional[str] = typer.Option(None, "--audience-llm", help=AUDIENCE_LLM_HELP),
    learning_rate: Optional[float] = typer.Option(None, "--learning-rate", help="sft.learning_rate"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    seed: Optional[int] = typer.Option(None, help="sampling, votes, adapter init, data order"),
    out: Optional[Path] = typer.Option(None, help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="run name [default: ARENA-AUDIENCE-METHOD-sSEED]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete an existing run of that name first"),
    resume: bool = typer.Option(False, "--resume", help="continue a run: finished rounds are kept"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Rounds of generate -> vote -> LoRA fine-tune; after each, the tuned agent against the base agent."""
    from reasonlab.config import resolve_config
    from reasonlab.runs import Run
    from reasonlab.systems.moloch.config import TrainConfig
    from reasonlab.systems.moloch.training import train

    resolved = resolve_config(
        TrainConfig, _lookup(preset), config, sets, method=method, rounds=rounds, llm=llm,
        data=_data(arena, num_train, num_test, train_file, test_file),
        audience=_given(kind=audience, llm=audience_llm),
        sft=_given(learning_rate=learning_rate), judge=judge, seed=seed,
        out=None if out is None else str(out), name=name, overwrite=overwrite or None, resume=resume or None,
        report_to=report_to or None)
    with heartbeat("moloch train"):
        run_dir = train(resolved)
    _print_rounds(Run.open(run_dir).summary()["rounds"])
    console.print(f"run saved to {run_dir}")


def _win(win: dict[str, Any] | None) -> str:
    if not win or win.get("mean") is None:
        return "n/a"
    return f"{win['mean']:.2f} ± {win['sd']:.2f} (95% CI {win['ci_low']:.2f}-{win['ci_high']:.2f}, n={win['n']})"


def _print_rounds(rounds: list[dict[str, Any]]) -> None:
    probes = [key for key, value in rounds[0]["tuned"].items() if isinstance(value, dict)]
    table = Table("round", "win rate vs base (held-out personas)", *(f"{p}: tuned / base" for p in probes))
    for row in rounds:
        win = row.get("win_rate_held_out") or row.get("win_rate_train_personas")
        table.add_row(str(row["round"]), _win(win),
                      *(f"{_rate(row['tuned'][p])} / {_rate(row['base'][p])}" for p in probes))
    console.print(table)


@app.command("eval")
def eval_command(
    run: Path = typer.Argument(..., help="a run folder written by `reasonlab moloch train`"),
    audience: Optional[str] = typer.Option(None, "--audience", help=f"audience.kind: {AUDIENCE_NAMES} "
                                           "[default: the run's]"),
    audience_llm: Optional[str] = typer.Option(None, "--audience-llm", help=f"{AUDIENCE_LLM_HELP} [default: the "
                                               "run's]"),
    personas: Optional[int] = typer.Option(None, "--personas", help="audience.personas [default: the run's]"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    probes: list[str] = typer.Option([], "--probe", help=f"probes to run (repeatable): {PROBE_HELP}"),
    test_file: Optional[str] = typer.Option(None, "--test-file", help="JSON-lines anchors to evaluate on instead "
                                            "of the run's test anchors [default: the run's]"),
) -> None:
    """Every saved round of a run against the base agent on the test anchors (written to RUN/eval-AUDIENCE.json;
    with --test-file, RUN/eval-AUDIENCE-FILESTEM.json)."""
    from reasonlab.config import resolve_config
    from reasonlab.errors import UserError
    from reasonlab.runs import Run
    from reasonlab.systems.moloch.config import EvalConfig
    from reasonlab.systems.moloch.training import evaluate_run

    if not (run / "config.yaml").is_file():
        raise UserError(f"RUN {run} holds no run (no config.yaml): pass a folder written by `reasonlab moloch train`")
    override = _given(kind=audience, llm=audience_llm, personas=personas)
    run_audience = {**Run.open(run).config().get("audience", {}), **override} if override else None
    resolved = resolve_config(EvalConfig, {"run": str(run)}, None, (), audience=run_audience, judge=judge,
                              probes=probes or None, test_file=test_file)
    with heartbeat("moloch eval"):
        report = evaluate_run(resolved)
    _print_rounds(report["rounds"])


@app.command("experiment")
@help_defaults(_preset)
def experiment_command(
    preset: str = typer.Option("market", help=f"{PRESET_NAMES} (the per-run config)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig fields (the per-run config)"),
    sets: list[str] = typer.Option([], "--set", help="KEY=VALUE for the per-run TrainConfig"),
    conditions: Optional[str] = typer.Option(None, "--conditions", help=f"comma-separated: {CONDITION_NAMES} "
                                             "[default: market-rft,market-tfb,control-rft]"),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="training seeds (repeatable)"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="seeds run in this many worker processes (one thread each)"),
    judge: Optional[str] = typer.Option(None, "--judge", help=JUDGE_HELP),
    out: Path = typer.Option(Path("runs/moloch"), help="root folder of runs"),
    name: Optional[str] = typer.Option(None, help="experiment name [default: the preset's name]"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the experiment first (finished runs are "
                                   "otherwise reused)"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
) -> None:
    """Every condition x seed; per condition and round, the win rate against the base agent and the probe
    changes (mean ± sd over seeds), a plot over rounds, and the headline."""
    from reasonlab.config import parse_list, parse_sets, resolve_config
    from reasonlab.demo import write_headline
    from reasonlab.errors import UserError
    from reasonlab.systems.moloch.config import ExperimentConfig, TrainConfig
    from reasonlab.systems.moloch.experiment import experiment_headline, run_experiment

    per_run = sorted({"method", "seed", "out", "name", "overwrite", "resume"} & set(parse_sets(sets)))
    if per_run:
        raise UserError(f"--set {', '.join(per_run)}: the experiment sets these per run; use --conditions, --seed, "
                        "--out, --name, --overwrite instead")
    base = resolve_config(TrainConfig, _lookup(preset), config, sets, judge=judge, report_to=report_to or None)
    # the experiment's own run reports where its per-run configs do
    resolved = resolve_config(ExperimentConfig, {"base": base.model_dump(), "seeds": seeds,
                                                 "report_to": base.report_to}, None, (),
                              conditions=parse_list(conditions, "--conditions"))
    with heartbeat("moloch experiment"):
        summary = run_experiment(resolved, out, name or preset, overwrite=overwrite, jobs=jobs)
    _print_experiment(summary)
    if "market-rft" in summary["conditions"]:
        headline = experiment_headline(summary)
        write_headline(out / (name or preset), headline)
        console.print(f"{headline.result} (claim holds: {headline.holds})")


def _spread(value: dict[str, Any], scale: float = 1.0) -> str:
    if value.get("mean") is None:
        return "n/a"
    return f"{scale * value['mean']:+.1f} ± {scale * (value['sd'] or 0.0):.1f}" if scale == 1.0 else \
        f"{scale * value['mean']:.1f} ± {scale * (value['sd'] or 0.0):.1f}"


def _print_experiment(summary: dict[str, Any]) -> None:
    probes = summary["probes"]
    table = Table("condition", "round", "win rate % (over seeds)", "pooled 95% CI",
                  *(f"{p} Δ points" for p in probes))
    for condition, data in summary["conditions"].items():
        for k, row in enumerate(data["rounds"], start=1):
            pooled = row.get("win_rate_pooled") or {}
            ci = "n/a" if pooled.get("ci_low") is None else f"{100 * pooled['ci_low']:.0f}-{100 * pooled['ci_high']:.0f}"
            table.add_row(condition, str(k), _spread(row["win_rate"], 100), ci,
                          *(_spread(row[p]["points"]) for p in probes))
    console.print(table)
