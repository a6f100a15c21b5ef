"""`reasonlab delethink ...`: chunked reasoning with any model, zero-shot tracing eval, the small experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.markup import escape

app = typer.Typer(help="Delethink: the Markovian Thinker, chunked reasoning with a bounded state (arXiv 2510.06557).",
                  no_args_is_help=True)
console = Console()


class RunConfig(BaseModel):
    """Options of `reasonlab delethink run`."""

    llm: str = Field("hf:embedded", description="model spec")
    chunk: int = Field(8192, description="C: chunk context (new tokens of the first chunk)")
    carryover: int = Field(4096, description="m: tokens carried into the next chunk")
    iterations: int = Field(5, description="I: cap on chunks")
    head_tokens: int = Field(0, description="first tokens of the trace kept in every later prompt")
    temperature: float = Field(0.6, ge=0, description="sampling temperature (paper: 0.6)")
    seed: Optional[int] = Field(0, description="sampling seed")
    stop: list[str] = Field(default_factory=list, description="stop strings (end the trace)")
    longcot: bool = Field(False, description="run LongCoT with the same token budget instead")


@app.command("run")
def run_command(
    question: str = typer.Argument(..., help="the query (text; for a base model, a completion prompt)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with the options below"),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec [default: hf:embedded]"),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="C, chunk context [default: 8192]"),
    carryover: Optional[int] = typer.Option(None, "--carryover", help="m, carried tokens [default: 4096]"),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="I, cap on chunks [default: 5]"),
    head_tokens: Optional[int] = typer.Option(None, "--head-tokens", help="kept head of chunk 1 [default: 0]"),
    temperature: Optional[float] = typer.Option(None, help="sampling temperature [default: 0.6]"),
    seed: Optional[int] = typer.Option(None, help="sampling seed [default: 0]"),
    stop: Optional[list[str]] = typer.Option(None, help="stop string (repeatable)"),
    longcot: bool = typer.Option(False, "--longcot", help="LongCoT with the same budget, for comparison"),
) -> None:
    """Think in chunks of C tokens, streaming each chunk as it completes, then print the trace summary."""
    from reasonlab.config import load_config
    from reasonlab.llm import SamplingParams, load_llm
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.rollout import Chunk, chunked_rollout

    options = load_config(RunConfig, config, llm=llm, chunk=chunk, carryover=carryover, iterations=iterations,
                          head_tokens=head_tokens, temperature=temperature, seed=seed, stop=stop or None,
                          longcot=longcot or None)
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


@app.command("arithmetic")
def arithmetic_command(
    llm: str = typer.Option("hf:embedded", "--llm", help="model spec"),
    operands: int = typer.Option(6, help="numbers to add per problem"),
    problems: int = typer.Option(12, help="problems"),
    n: int = typer.Option(2, help="samples per problem (avg@N)"),
    chunk: int = typer.Option(32, "--chunk", help="C"),
    carryover: int = typer.Option(16, "--carryover", help="m"),
    iterations: int = typer.Option(4, "--iterations", help="I"),
    temperature: float = typer.Option(0.6, help="sampling temperature"),
    seed: int = typer.Option(0, help="task and sampling seed"),
    out: Path = typer.Option(Path("runs/delethink"), help="root folder of runs"),
    name: str = typer.Option("arithmetic", help="run name"),
) -> None:
    """Zero-shot Delethink tracing on templated arithmetic vs LongCoT at the same token budget."""
    from reasonlab.systems.delethink.experiment import ArithmeticConfig, run_arithmetic

    config = ArithmeticConfig(llm=llm, operands=operands, problems=problems, n=n, chunk_size=chunk,
                              carryover=carryover, iterations=iterations, temperature=temperature, seed=seed)
    summary = run_arithmetic(config, out, name)
    for arm in ("delethink", "longcot"):
        console.print(f"{arm}: avg@{n} = {summary[arm]['accuracy']:.3f} "
                      f"({summary[arm]['tokens_mean']:.0f} tokens, {summary[arm]['chunks_mean']:.1f} chunks)")


@app.command("experiment")
def experiment_command(
    out: Path = typer.Option(Path("runs/delethink-experiment"), help="folder of the experiment's runs"),
    seeds: list[int] = typer.Option([0, 1, 2], "--seed", help="RL seeds (repeatable)"),
    preset: str = typer.Option("main", help="main | quick"),
) -> None:
    """The small-scale reproduction: SFT base, Delethink-RL vs LongCoT-RL, accuracy vs walk length."""
    from reasonlab.systems.delethink.experiment import PRESETS, run_experiment

    if preset not in PRESETS:
        from reasonlab.errors import UserError

        raise UserError(f"--preset {preset!r} is unknown: use one of {', '.join(PRESETS)}")
    results = run_experiment(PRESETS[preset], out, tuple(seeds))
    console.print(f"wrote {out / 'results.json'} and {out / 'accuracy_vs_length.png'}")
    console.print_json(data=results["table"])


@app.command("control")
def control_command(
    out: Path = typer.Option(Path("runs/delethink-experiment/control"), help="folder of the control run"),
) -> None:
    """The non-Markovian control: LongCoT vs Delethink (tail, and head + tail carryover) on its own SFT model."""
    from reasonlab.systems.delethink.experiment import ExperimentConfig, run_control

    results = run_control(ExperimentConfig(), out)
    console.print_json(data=results["curves"])
