"""Collect run directories into one report: report.md (PNGs beside it) and a self-contained report.html.

    reasonlab report runs/     # writes runs/report.md, runs/report_assets/*.png and runs/report.html

The report opens with the headline table: one row per system whose run holds a `headline.json` (written by
`reasonlab demo`, see reasonlab.demo): what is measured, our number with n and spread, the paper's claim and
whether it held, followed by each system's summary plot. Then comes the table of all runs (name, the config
fields that differ between runs, summary scalars), and each run's section: its summary, a small-multiples figure
of the numeric metrics in metrics.jsonl that have at least three points, the figures the run saved (in its own
folder and in plots/), and its config folded away (<details>, which GitHub also renders in markdown).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reasonlab.demo import HEADLINE_FILE, Headline, read_headline
from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_bytes, atomic_write_text

__all__ = ["find_runs", "write_report"]

MAX_PANELS = 12  # metrics plotted per run; the rest are listed by name
MIN_POINTS = 3  # a metric logged at fewer steps is listed, not plotted: two points show no trend
MAX_CONFIG_COLUMNS = 6
MAX_SUMMARY_COLUMNS = 8
MAX_OPEN_SUMMARY = 15  # a longer summary table is folded away like the config
ASSETS_DIR = "report_assets"
NOT_PLOTTED = {"step", "time"}
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}

VERDICTS = {True: "holds", False: "does not hold", None: "no claim"}
HEADLINE_INTRO = (
    "The first table has one row per system: the quick experiment that stands for the system's paper in "
    "miniature. 'What is measured' says what the number is; 'ours' is the number from this run, with n (how "
    "many puzzles, questions or seeds it averages) and its spread or 95% interval; 'paper' is the claim it is "
    "set against. The verdict says whether the claim this run tests (our README row's claim in miniature, stated "
    "in its note; where it differs from the paper's, the note says how) showed up in this run: 'holds' (it did), "
    "'does not hold' (it did not), or 'pipeline check' (the run only shows that the code runs end to end at this "
    "size; its number is no evidence either way). Each system's summary plot follows the table. Below them, "
    "every run directory has its own section: its summary, its plots and its config (folded)."
)
RUNS_INTRO = (
    "None of these runs has a headline (headline.json, written by reasonlab demo), so the page starts with "
    "the table of runs: one row per run directory, with the config fields that differ between runs and the "
    "run's summary numbers. Below it, every run has its own section: its summary, its plots and its config "
    "(folded)."
)


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    alt: str
    filename: str  # under ASSETS_DIR; its suffix picks the MIME type
    data: bytes


@dataclass
class Details:
    """Blocks folded away under a one-line summary (<details> in HTML and in GitHub's markdown)."""

    summary: str
    blocks: list[Block] = field(default_factory=list)


Block = Heading | Paragraph | Table | Image | Details


def find_runs(root: Path) -> list[Run]:
    """Every run directory (a folder holding config.yaml) under `root`, root included, hidden folders skipped."""
    return [Run.open(run_dir) for run_dir in _folders_holding(Path(root), "config.yaml")]


def write_report(root: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md (+ report_assets/) and report.html for every run under `root` into `out_dir` (default root)."""
    root = Path(root)
    runs = find_runs(root)
    headline_dirs = _folders_holding(root, HEADLINE_FILE)
    if not runs and not headline_dirs:
        raise UserError(
            f"no run directories under {root}: pass a folder that holds runs made by an experiment "
            "(they contain config.yaml)"
        )
    out_dir = Path(out_dir) if out_dir is not None else root
    title = f"reasonlab report: {root}"
    blocks = _report_blocks(root, runs, headline_dirs, title)
    for image in _images(blocks):
        atomic_write_bytes(out_dir / ASSETS_DIR / image.filename, image.data)
    markdown_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(markdown_path, _to_markdown(blocks))
    atomic_write_text(html_path, _to_html(blocks, title))
    return markdown_path, html_path


def _folders_holding(root: Path, filename: str) -> list[Path]:
    """Sorted folders under `root` (root included, hidden folders skipped) that hold a file named `filename`."""
    return sorted(
        {
            path.parent
            for path in root.rglob(filename)
            if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1])
        }
    )


def _images(blocks: list[Block]) -> list[Image]:
    images: list[Image] = []
    for block in blocks:
        if isinstance(block, Image):
            images.append(block)
        elif isinstance(block, Details):
            images += _images(block.blocks)
    return images


def _label(path: Path, root: Path) -> str:
    """A run's name in the report: its path relative to the root, unique where leaf names repeat."""
    relative = path.relative_to(root).as_posix()
    return path.name if relative == "." else relative


@dataclass
class _RunData:
    label: str  # path relative to the report root (trm/seed0, ace/seed0)
    run: Run
    config: dict[str, Any]  # flattened: nested keys joined with "."
    summary: dict[str, Any]  # flattened
    records: list[dict[str, Any]]


def _load(run: Run, root: Path) -> _RunData:
    try:
        config, summary = run.config(), run.summary()
    except (ValueError, yaml.YAMLError) as error:
        raise UserError(f"cannot read run {run.dir} ({error}): fix its config.yaml or summary.json") from None
    return _RunData(
        label=_label(run.dir, root),
        run=run,
        config=_flatten(config if isinstance(config, dict) else {"config": config}),
        summary=_flatten(summary if isinstance(summary, dict) else {"summary": summary}),
        records=[_flatten(record) for record in _records(run) if isinstance(record, dict)],
    )


def _records(run: Run) -> list[dict[str, Any]]:
    """metrics.jsonl, or, for a run without one, the scalars its TensorBoard tracker wrote."""
    from reasonlab.trackers import tensorboard_records

    return run.metrics() or tensorboard_records(run.dir)


@dataclass
class _HeadlineData:
    label: str
    run_dir: Path
    headline: Headline | None  # None: headline.json exists but cannot be read
    plot: Path | None  # the summary plot, when it exists inside the run directory


def _load_headline(run_dir: Path, root: Path) -> _HeadlineData:
    headline = read_headline(run_dir)
    plot = None
    if headline is not None and headline.plot:
        candidate = (run_dir / headline.plot).resolve()
        inside = candidate.is_relative_to(run_dir.resolve())
        if inside and candidate.is_file() and candidate.suffix.lower() in IMAGE_TYPES:
            plot = candidate
    return _HeadlineData(_label(run_dir, root), run_dir, headline, plot)


def _report_blocks(root: Path, runs: list[Run], headline_dirs: list[Path], title: str) -> list[Block]:
    data = [_load(run, root) for run in runs]
    headlines = sorted(
        (_load_headline(run_dir, root) for run_dir in headline_dirs),
        key=lambda item: (item.headline is None, item.headline.system if item.headline else "", item.label),
    )
    blocks: list[Block] = [
        Heading(1, title),
        Paragraph(HEADLINE_INTRO if headlines else RUNS_INTRO),
        Paragraph(f"{_count(len(data), 'run')}, generated {time.strftime('%Y-%m-%d %H:%M:%S')}."),
    ]
    if headlines:
        blocks += _headline_blocks(headlines)
    if data:
        blocks += _runs_table_blocks(data)
    summary_plots = {item.plot for item in headlines if item.plot is not None}
    for index, item in enumerate(data, start=1):
        blocks += _run_blocks(item, prefix=f"{index:02d}-{_slug(item.label)}", shown_above=summary_plots)
    return blocks


def _verdict(headline: Headline) -> str:
    return "pipeline check" if headline.kind == "pipeline check" else VERDICTS[headline.holds]


def _headline_blocks(headlines: list[_HeadlineData]) -> list[Block]:
    """The results table (one row per headline), then each system's summary plot under its own heading."""
    readable = [(item, item.headline) for item in headlines if item.headline is not None]
    rows = [
        [headline.system, headline.measures, headline.result, headline.paper, _verdict(headline)]
        for _, headline in readable
    ]
    blocks: list[Block] = [
        Heading(2, "Results"),
        Table(["system", "what is measured", "ours (n, spread)", "paper", "our claim (see the note)"], rows),
    ]
    for item in headlines:
        if item.headline is None:
            blocks.append(Paragraph(f"{item.label}/{HEADLINE_FILE} cannot be read: rerun its demo."))
    for index, (item, headline) in enumerate(readable, start=1):
        written = time.strftime("%Y-%m-%d %H:%M", time.localtime((item.run_dir / HEADLINE_FILE).stat().st_mtime))
        blocks.append(Heading(3, f"{headline.system}: {headline.measures}"))
        caption = f"Run {item.label}, finished {written}: {_verdict(headline)}."
        blocks.append(Paragraph(f"{caption} Note: {headline.note}" if headline.note else caption))
        if item.plot is not None:
            filename = f"00-headline-{index:02d}-{_slug(headline.system)}{item.plot.suffix.lower()}"
            blocks.append(Image(f"{headline.system} summary plot", filename, item.plot.read_bytes()))
        elif headline.plot:
            blocks.append(Paragraph(f"Its summary plot {headline.plot} is missing from {item.label}."))
    return blocks


def _runs_table_blocks(data: list[_RunData]) -> list[Block]:
    config_keys = _config_columns([item.config for item in data])
    summaries = [item.summary for item in data]
    summary_keys = [key for key in _common_keys(summaries) if all(_is_scalar(summary[key]) for summary in summaries)]
    shown_keys = summary_keys[:MAX_SUMMARY_COLUMNS]
    rows = [
        [item.label, *(_format(item.config.get(key)) for key in config_keys)]
        + [_format(item.summary.get(key)) for key in shown_keys]
        for item in data
    ]
    explained = (
        "One row per run directory: the config fields that differ between runs, then the summary numbers every "
        "run has."
        if config_keys or shown_keys
        else "One row per run directory. These runs share no config or summary fields (they come from different "
        "experiments), so each run's numbers are in its own section below."
    )
    blocks: list[Block] = [Heading(2, "Runs"), Paragraph(explained), Table(["run", *config_keys, *shown_keys], rows)]
    if len(summary_keys) > len(shown_keys):
        blocks.append(
            Paragraph(f"{len(summary_keys) - len(shown_keys)} more summary fields in each run's section.")
        )
    return blocks


def _run_blocks(item: _RunData, prefix: str, shown_above: set[Path]) -> list[Block]:
    """One run's section: summary, metrics figure, the run's own plots, config (folded)."""
    blocks: list[Block] = [Heading(2, item.label), Paragraph(f"Directory: {item.run.dir}"), Heading(3, "Summary")]
    if not item.summary:
        blocks.append(Paragraph("No summary.json."))
    elif len(item.summary) > MAX_OPEN_SUMMARY:
        blocks.append(Details(f"Summary: {_count(len(item.summary), 'field')}", [_field_table(item.summary)]))
    else:
        blocks.append(_field_table(item.summary))
    blocks += [Heading(3, "Metrics"), *_metric_blocks(item, prefix)]
    plots = _run_plots(item.run.dir)
    if plots:
        blocks.append(Heading(3, "Plots"))
    for path in plots:
        if path.resolve() in shown_above:
            blocks.append(Paragraph(f"{path.relative_to(item.run.dir).as_posix()}: shown under Results above."))
            continue
        kind = "plot" if path.parent.name == "plots" else "file"
        filename = f"{prefix}-{kind}-{_slug(path.stem)}{path.suffix.lower()}"
        blocks.append(Image(path.stem, filename, path.read_bytes()))
    blocks.append(Details(f"Config: {_count(len(item.config), 'field')}", [_field_table(item.config)]))
    return blocks


def _run_plots(run_dir: Path) -> list[Path]:
    """The figures a run saved: in its own folder (an experiment's arms.png) and in its plots/ folder."""
    return [
        path
        for folder in (run_dir, run_dir / "plots")
        for path in sorted(folder.glob("*"))
        if path.is_file() and path.suffix.lower() in IMAGE_TYPES
    ]


def _metric_blocks(item: _RunData, prefix: str) -> list[Block]:
    series = _metric_series(item.records)
    if not series:
        return [Paragraph("No numeric metrics in metrics.jsonl (or TensorBoard event files).")]
    plotted = {name: points for name, points in series.items() if len(points) >= MIN_POINTS}
    short = [name for name in series if name not in plotted]
    blocks: list[Block] = []
    if plotted:
        xlabel = "step" if any(_is_number(record.get("step")) for record in item.records) else "record"
        figure = _metrics_figure(plotted, item.label, xlabel)
        blocks.append(Image(f"{item.label} metrics", f"{prefix}-metrics.png", figure))
    not_plotted = list(plotted)[MAX_PANELS:]
    if not_plotted:
        blocks.append(Paragraph(f"Not plotted ({len(not_plotted)}): {', '.join(not_plotted)}."))
    if short:
        blocks.append(
            Paragraph(f"Logged at fewer than {MIN_POINTS} steps, so not plotted ({len(short)}): {', '.join(short)}.")
        )
    return blocks


def _field_table(fields: dict[str, Any]) -> Table:
    return Table(["field", "value"], [[key, _format(value)] for key, value in fields.items()])


def _metric_series(records: list[dict[str, Any]]) -> dict[str, dict[float, float]]:
    """metric -> {step: value}; a step logged twice (a resumed run) keeps its last value."""
    series: dict[str, dict[float, float]] = {}
    for index, record in enumerate(records):
        step = record.get("step")
        x = step if _is_number(step) else index
        for key, value in record.items():
            if key not in NOT_PLOTTED and _is_number(value):
                series.setdefault(key, {})[x] = value
    return series


def _metrics_figure(series: dict[str, dict[float, float]], title: str, xlabel: str) -> bytes:
    """One small-multiples PNG: a panel per metric (at most MAX_PANELS), rendered with Agg."""
    names = list(series)[:MAX_PANELS]
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    figure = Figure(figsize=(4 * columns, 2.6 * rows + 0.4), layout="constrained")
    FigureCanvasAgg(figure)
    for panel, name in enumerate(names, start=1):
        steps = sorted(series[name])
        axes = figure.add_subplot(rows, columns, panel)
        values = [series[name][step] for step in steps]
        axes.plot(steps, values, marker="." if len(steps) < 30 else None, linewidth=1.2)
        axes.set_title(name, fontsize=9)
        axes.set_xlabel(xlabel, fontsize=8)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _config_columns(configs: list[dict[str, Any]]) -> list[str]:
    """The config fields every run has that differ between runs (all of them where none differ, as for a single
    run), private `_` fields left out. A field only some runs have (another system's) would be a blank column."""
    keys = [key for key in _common_keys(configs) if not key.startswith("_")]
    differing = [key for key in keys if len({json.dumps(c.get(key), default=str) for c in configs}) > 1]
    return (differing or keys)[:MAX_CONFIG_COLUMNS]


def _common_keys(dicts: list[dict[str, Any]]) -> list[str]:
    """The keys every dict has, in first-seen order."""
    return [key for key in dict.fromkeys(key for d in dicts for key in d) if all(key in d for d in dicts)]


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str, bool))


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def _to_markdown(blocks: list[Block]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * block.level} {block.text}", ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(cell(text) for text in block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(cell(text) for text in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Details):
            # GitHub renders markdown inside <details> when blank lines separate it from the tags
            lines += [f"<details><summary>{html.escape(block.summary)}</summary>", ""]
            lines += [_to_markdown(block.blocks).rstrip("\n"), "", "</details>", ""]
        else:
            lines += [f"![{cell(block.alt)}]({ASSETS_DIR}/{block.filename})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
details { margin: 0.5em 0 1em; }
summary { cursor: pointer; color: #555; }
"""


def _html_blocks(blocks: list[Block]) -> list[str]:
    escape = html.escape
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{escape(block.text)}</p>")
        elif isinstance(block, Table):
            header = "".join(f"<th>{escape(text)}</th>" for text in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{escape(text)}</td>" for text in row) + "</tr>\n" for row in block.rows
            )
            parts.append(f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>")
        elif isinstance(block, Details):
            parts.append(f"<details><summary>{escape(block.summary)}</summary>")
            parts += _html_blocks(block.blocks)
            parts.append("</details>")
        else:
            mime = IMAGE_TYPES[Path(block.filename).suffix]
            encoded = base64.b64encode(block.data).decode("ascii")
            parts.append(f'<img alt="{escape(block.alt)}" src="data:{mime};base64,{encoded}">')
    return parts


def _to_html(blocks: list[Block], title: str) -> str:
    head = f'<head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>'
    parts = ["<!doctype html>", '<html lang="en">', head, "<body>", *_html_blocks(blocks), "</body>", "</html>", ""]
    return "\n".join(parts)
