"""`reasonlab memagent ...`: chat with the memory agent, serve it over MCP (stdio), generate tasks, run the
benchmark, train it with RL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from reasonlab.clihelp import help_defaults
from reasonlab.errors import UserError
from reasonlab.progress import heartbeat
from reasonlab.trackers import REPORT_TO_HELP

if TYPE_CHECKING:
    from reasonlab.llm import LLM
    from reasonlab.systems.memagent.agent import Agent, TurnRecord
    from reasonlab.systems.memagent.config import AgentConfig

app = typer.Typer(help="mem-agent: an LLM that keeps an Obsidian-like markdown memory through sandboxed Python "
                       "tools (driaforall/mem-agent).", no_args_is_help=False)

SCRIPTED = "scripted:"


def load_agent_llm(spec: str) -> LLM:
    """`load_llm(spec)`, plus `scripted:PATH.json` (a JSON list of replies, played in order) for tests and demos."""
    from reasonlab.llm import ScriptedLLM, load_llm

    if not spec.startswith(SCRIPTED):
        return load_llm(spec)
    path = Path(spec.removeprefix(SCRIPTED))
    try:
        replies = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"--llm {spec}: cannot read a JSON list of replies from {path} ({error}); "
                        "write one like [\"<think>..</think>\\n<python></python>\\n<reply>..</reply>\"]") from None
    if not (isinstance(replies, list) and all(isinstance(reply, str) for reply in replies)):
        raise UserError(f"--llm {spec}: {path} must hold a JSON list of strings (the model's replies in order)")
    return ScriptedLLM(replies, name=spec)


UNSAFE_SANDBOX_HELP = ("run the model's code with the audit hook only, without the kernel layers (namespaces, "
                       "seccomp): only for machines where bubblewrap cannot run, and never on untrusted models")


def _agent_config(config: Optional[Path], unsafe_sandbox: bool = False, preset: str = "default",
                  **options: object) -> AgentConfig:
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.memagent.config import AGENT_PRESETS, AgentConfig

    if unsafe_sandbox:
        options["sandbox_mode"] = "unsafe-hook-only"
    resolved = resolve_config(AgentConfig, lookup_preset(AGENT_PRESETS, preset), config, (), **options)
    check_sandbox_opt_in(resolved.sandbox_mode, unsafe_sandbox)
    return resolved


def check_sandbox_opt_in(mode: str, unsafe_sandbox: bool) -> None:
    """An unsafe sandbox mode only by the command line's own flag, never from a config file or --set alone."""
    if mode != "auto" and not unsafe_sandbox:
        raise UserError(f"sandbox_mode {mode!r} runs the model's code without the kernel layers: pass "
                        "--unsafe-sandbox on the command line to allow it, or use sandbox_mode auto")


def _print_turn(number: int, record: TurnRecord) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False)
    console.rule(f"turn {number}")
    console.print(f"[dim]think:[/dim] {escape(record.turn.think)}")
    if record.turn.python:
        console.print(f"[cyan]python:[/cyan]\n{escape(record.turn.python)}")
    feedback = record.feedback()
    if feedback is not None:
        console.print(escape(feedback))


def _ask(agent: Agent, question: str, filters: Optional[str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    counter = iter(range(1, 1_000_000))
    result = agent.run(question, filters, on_turn=lambda record: _print_turn(next(counter), record))
    console = Console(highlight=False)
    if result.reply is None:
        console.print(f"[red]no reply within {len(result.turns)} turns[/red]")
    else:
        console.print(f"[bold]reply:[/bold] {escape(result.reply)}")
    console.print(f"[dim]{len(result.turns)} turns, {result.prompt_tokens} prompt + {result.completion_tokens} "
                  f"completion tokens, {result.seconds:.1f} s; changed: {', '.join(result.changed) or 'nothing'}"
                  "[/dim]")


def _agent_defaults(name: str | None) -> object:
    from reasonlab.systems.memagent.config import AGENT_PRESETS

    return AGENT_PRESETS[name or "default"]


AGENT_PRESET_HELP = ("default (the full prompt with two example episodes, for untrained models) or trained (the "
                     "compact prompt a model trained with `reasonlab memagent sft` learned)")


def _bench_preset(name: str | None) -> object:
    from reasonlab.systems.memagent.config import PRESETS

    return PRESETS[name or "mini"]


def _train_preset(name: str | None) -> object:
    from reasonlab.systems.memagent.config import TRAIN_PRESETS

    return TRAIN_PRESETS[name or "smoke"]


@app.command("chat")
@help_defaults(_agent_defaults, max_tokens="max_tokens_per_turn")
def chat_command(
    memory: Path = typer.Option(..., "--memory", help="memory folder (user.md, entities/*.md)"),
    llm: str = typer.Option("hf:embedded", "--llm", help="model spec, e.g. hf:embedded, openai:URL#MODEL"),
    preset: str = typer.Option("default", "--preset", help=AGENT_PRESET_HELP),
    question: Optional[str] = typer.Option(None, "--question", "-q", help="one question [default: an interactive loop]"),
    filters: Optional[str] = typer.Option(None, "--filters", help="privacy rules [default: MEMORY/.filters]"),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", help="turn cap"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="new tokens per turn"),
    temperature: Optional[float] = typer.Option(None, help="0 = greedy"),
    constrained: Optional[bool] = typer.Option(None, "--constrained/--unconstrained",
                                               help="force the turn format with the grammar"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of AgentConfig options"),
    unsafe_sandbox: bool = typer.Option(False, "--unsafe-sandbox", help=UNSAFE_SANDBOX_HELP),
) -> None:
    """Ask the memory agent; prints each turn (think, python, result) and the reply."""
    from reasonlab.systems.memagent.agent import Agent
    from reasonlab.systems.memagent.mcp_server import read_filters
    from reasonlab.systems.memagent.memory import Memory

    options = _agent_config(config, unsafe_sandbox, preset, max_turns=max_turns, max_tokens_per_turn=max_tokens,
                            temperature=temperature, constrained=constrained)
    folder = Memory(memory)  # a missing folder fails before a model is loaded
    agent = Agent(load_agent_llm(llm), folder, options)
    rules = filters if filters is not None else read_filters(memory)
    if question is not None:
        _ask(agent, question, rules)
        return
    while True:
        try:
            asked = typer.prompt("you", default="", show_default=False)
        except (EOFError, typer.Abort):
            break
        if asked.strip().lower() in ("", "exit", "quit"):
            break
        _ask(agent, asked, rules)


@app.command("serve-mcp")
@help_defaults(_agent_defaults, max_tokens="max_tokens_per_turn")
def serve_mcp_command(
    memory: Path = typer.Option(..., "--memory", help="memory folder; MEMORY/.filters holds the privacy rules"),
    llm: str = typer.Option("hf:embedded", "--llm", help="model spec, e.g. hf:embedded, openai:URL#MODEL"),
    preset: str = typer.Option("default", "--preset", help=AGENT_PRESET_HELP),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", help="turn cap [default: 20, the MCP agent's]"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", help="new tokens per turn"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of AgentConfig options"),
    unsafe_sandbox: bool = typer.Option(False, "--unsafe-sandbox", help=UNSAFE_SANDBOX_HELP),
) -> None:
    """Serve `use_memory_agent(question)` over MCP on stdin/stdout (add it to an MCP client's config)."""
    from reasonlab.config import load_yaml
    from reasonlab.systems.memagent.mcp_server import build_server, read_filters
    from reasonlab.systems.memagent.memory import Memory

    # the MCP agent allows 20 turns (spec §3) unless the option, the YAML file or the trained preset says otherwise
    if max_turns is None and preset == "default" and (config is None or "max_turns" not in load_yaml(config)):
        max_turns = 20
    options = _agent_config(config, unsafe_sandbox, preset, max_turns=max_turns, max_tokens_per_turn=max_tokens)
    Memory(memory)  # a missing folder fails before a model is loaded
    read_filters(memory)  # and so does an unreadable .filters file
    server = build_server(memory, load_agent_llm(llm), options)
    typer.echo(f"mem-agent MCP server on stdio for {memory.resolve()} ({llm})", err=True)
    server.run("stdio")


@app.command("generate")
def generate_command(
    out: Path = typer.Option(..., "--out", help="folder for the memories (one sub-folder each) and tasks.jsonl"),
    seed: int = typer.Option(0, help="generator seed"),
    memories: int = typer.Option(2, "--memories", help="number of memories"),
    tasks_per_category: int = typer.Option(5, "--tasks-per-category", help="tasks of each category in all"),
) -> None:
    """Generate memories and benchmark tasks (retrieval, update, clarification, filter) without an LLM."""
    from reasonlab.runs import atomic_write_text
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.memory import Memory

    if memories < 1 or tasks_per_category < 1:
        raise UserError("--memories and --tasks-per-category must be at least 1")
    scenarios, tasks = generate_bench(seed, memories, tasks_per_category)
    for scenario in scenarios:
        Memory.from_files(out / scenario.memory_id, scenario.files)
    atomic_write_text(out / "tasks.jsonl", "".join(json.dumps(task.to_dict()) + "\n" for task in tasks))
    typer.echo(f"{len(scenarios)} memories and {len(tasks)} tasks in {out}")


@app.command("bench")
@help_defaults(_bench_preset, max_turns="agent.max_turns", constrained="agent.constrained")
def bench_command(
    preset: str = typer.Option("mini", "--preset", help="mini (the run of record, 20 tasks), demo (mini's tasks, scripted arms and RAG), quick (4 tasks), trained (the SFT model as agent) or handwritten (the hand-written set)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of ExperimentConfig options"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE (repeatable; dotted keys: "
                                                     "agent.max_tokens_per_turn=64)"),
    llm: Optional[str] = typer.Option(None, "--llm", help="model spec for the agent, RAG and judge arms"),
    arms: Optional[str] = typer.Option(None, "--arms", help="comma-separated: oracle, wrong, agent, rag, judge"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated generator seeds"),
    tasks_per_category: Optional[int] = typer.Option(None, "--tasks-per-category", help="tasks per category"),
    max_turns: Optional[int] = typer.Option(None, "--max-turns", help="agent turn cap"),
    constrained: Optional[bool] = typer.Option(None, "--constrained/--unconstrained",
                                               help="force the turn format with the grammar"),
    out: Path = typer.Option(Path("runs/memagent"), "--out", help="root folder of runs"),
    name: Optional[str] = typer.Option(None, "--name", help="run name [default: memagent-<preset>]"),
    resume: bool = typer.Option(False, "--resume", help="reuse the finished run of the same config"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run directory and start again"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    unsafe_sandbox: bool = typer.Option(False, "--unsafe-sandbox", help=UNSAFE_SANDBOX_HELP),
) -> None:
    """Run the mini benchmark: per-category scores, format statistics, cost, judge agreement."""
    from reasonlab.config import lookup_preset, parse_list, resolve_config
    from reasonlab.systems.memagent.config import PRESETS, ExperimentConfig
    from reasonlab.systems.memagent.experiment import run_experiment

    agent = {k: v for k, v in {"max_turns": max_turns, "constrained": constrained,
                               "sandbox_mode": "unsafe-hook-only" if unsafe_sandbox else None}.items() if v is not None}
    options = resolve_config(ExperimentConfig, lookup_preset(PRESETS, preset), config, set_, llm=llm,
                             arms=parse_list(arms, "--arms"), seeds=parse_list(seeds, "--seeds"),
                             tasks_per_category=tasks_per_category, agent=agent or None,
                             report_to=report_to or None)
    check_sandbox_opt_in(options.agent.sandbox_mode, unsafe_sandbox)
    with heartbeat("memagent bench"):
        run_dir = run_experiment(options, out, name or f"memagent-{preset}", resume=resume, overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    for seed, reports in summary["per_seed"].items():
        for arm, result in reports.items():
            scores = " ".join(f"{c} {v['score']:.2f}" for c, v in result["categories"].items())
            typer.echo(f"seed {seed} {arm:7s} all {result['score']:.2f} | {scores} | {result['seconds']:.0f} s, "
                       f"{result['prompt_tokens']}+{result['completion_tokens']} tokens")
    for arm, result in summary["arms"].items():
        score = result["score"]
        typer.echo(f"{arm:7s} score {score['mean']:.2f} ± {score['spread']:.2f} (n={score['n']} seeds)")
    for judge, result in summary["judge_agreement"].items():
        typer.echo(f"judge {judge}: agreement {result['accuracy']:.2f} (kappa {result['kappa']:.2f}) "
                   f"on {result['n']} hand labels, {result['judge_failures']} judge failures")
    typer.echo(f"run: {run_dir}")


app.command("experiment", help="The mini benchmark as the system's experiment (the same command as `bench`).")(
    bench_command)


@app.command("train")
@help_defaults(_train_preset)
def train_command(
    preset: str = typer.Option("smoke", "--preset", help="smoke (2 GSPO iterations: checks the pipeline), gspo "
                                                         "(24 iterations of a LoRA adapter with a KL term, from the SFT "
                                                         "model in runs/memagent/sft/model) or gspo-full (the first "
                                                         "recipe: 16 full-weight iterations, no KL term)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of TrainConfig options"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE (repeatable; dotted keys: "
                                                     "rl.iterations=10, environment.agent.max_turns=4)"),
    policy: Optional[str] = typer.Option(None, "--policy", help="trainable model spec"),
    seed: Optional[int] = typer.Option(None, "--seed", help="task and RL seed"),
    out: Path = typer.Option(Path("runs/memagent"), "--out", help="root folder of runs"),
    name: Optional[str] = typer.Option(None, "--name", help="run name [default: train-<preset>]"),
    resume: bool = typer.Option(False, "--resume", help="continue from the run's last RL checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run directory and start again"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    unsafe_sandbox: bool = typer.Option(False, "--unsafe-sandbox", help=UNSAFE_SANDBOX_HELP),
) -> None:
    """Train the agent with GSPO on generated memory tasks (one segment per turn, tool output never trained).

    Several processes: start this command with `torchrun --nproc_per_node N "$(which reasonlab)" memagent train ...`
    (or `accelerate launch`); rank 0 writes the run."""
    from reasonlab.config import lookup_preset, resolve_config
    from reasonlab.systems.memagent.config import TRAIN_PRESETS, TrainConfig
    from reasonlab.systems.memagent.training import train

    sandbox = {"agent": {"sandbox_mode": "unsafe-hook-only"}} if unsafe_sandbox else None
    options = resolve_config(TrainConfig, lookup_preset(TRAIN_PRESETS, preset), config, set_, policy=policy,
                             seed=seed, environment=sandbox, report_to=report_to or None)
    check_sandbox_opt_in(options.environment.agent.sandbox_mode, unsafe_sandbox)
    run_dir = train(options, out, name or f"train-{preset}", resume=resume, overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    last = summary["last"] or {}
    typer.echo(f"{summary['iterations']} iterations; last reward {last.get('reward_mean', float('nan')):.3f}, "
               f"loss {last.get('loss', float('nan')):.4f}")
    typer.echo(f"run: {run_dir}")


def _sft_preset(name: str | None) -> object:
    from reasonlab.systems.memagent.config import SFT_PRESETS

    return SFT_PRESETS[name or "record"]


@app.command("sft")
@help_defaults(_sft_preset)
def sft_command(
    preset: str = typer.Option("record", "--preset", help="record (the run of record: 160 episodes, full "
                                                          "fine-tuning) or smoke (2 steps)"),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of SFTTrainConfig options"),
    set_: list[str] = typer.Option([], "--set", help="any other option as KEY=VALUE (repeatable; dotted keys: "
                                                     "sft.epochs=2, sft.lora.r=16, agent.max_turns=8)"),
    policy: Optional[str] = typer.Option(None, "--policy", help="trainable model spec"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated training seeds (each >= 1000)"),
    seed: Optional[int] = typer.Option(None, "--seed", help="held-out split and SFT seed"),
    out: Path = typer.Option(Path("runs/memagent"), "--out", help="root folder of runs"),
    name: Optional[str] = typer.Option(None, "--name", help="run name [default: sft, or sft-<preset>]"),
    resume: bool = typer.Option(False, "--resume", help="continue from the run's last SFT checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="delete the run directory and start again"),
    report_to: Optional[list[str]] = typer.Option(None, "--report-to", help=REPORT_TO_HELP),
    unsafe_sandbox: bool = typer.Option(False, "--unsafe-sandbox", help=UNSAFE_SANDBOX_HELP),
) -> None:
    """Fine-tune a model on the scripted agent's episodes (loss on assistant turns only); saves RUN/model."""
    from reasonlab.config import lookup_preset, parse_list, resolve_config
    from reasonlab.systems.memagent.config import SFT_PRESETS, SFTTrainConfig
    from reasonlab.systems.memagent.training import train_sft

    sandbox = {"sandbox_mode": "unsafe-hook-only"} if unsafe_sandbox else None
    options = resolve_config(SFTTrainConfig, lookup_preset(SFT_PRESETS, preset), config, set_, policy=policy,
                             seeds=parse_list(seeds, "--seeds"), seed=seed, agent=sandbox,
                             report_to=report_to or None)
    check_sandbox_opt_in(options.agent.sandbox_mode, unsafe_sandbox)
    run_dir = train_sft(options, out, name or ("sft" if preset == "record" else f"sft-{preset}"), resume=resume,
                        overwrite=overwrite)
    summary = json.loads((run_dir / "summary.json").read_text())
    before, after = summary["held_out_loss_before"], summary["held_out_loss_after"]
    held_out = "no episodes held out" if before is None else f"held-out loss {before:.3f} -> {after:.3f}"
    typer.echo(f"{summary['examples']} turns from {summary['episodes']} episodes, {summary['steps']} steps, "
               f"{summary['tokens_per_epoch']:,} tokens per epoch, {summary['wall_seconds']:.0f} s; {held_out}")
    typer.echo(f"model: {summary['model']} (use it with --llm hf:{summary['model']})")
