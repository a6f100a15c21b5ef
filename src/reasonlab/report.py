"""Collect run directories into one report: report.md (PNGs beside it) and a self-contained report.html.

    reasonlab report runs/     # writes runs/report.md, runs/report_assets/*.png and runs/report.html

The report opens with one table of all runs (name, the config fields that differ between runs, summary
scalars), then gives each run its summary, config, a small-multiples figure of every numeric metric in
metrics.jsonl against `step`, and the figures the run saved in its plots/ folder.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_bytes, atomic_write_text

__all__ = ["find_runs", "write_report"]

MAX_PANELS = 12  # metrics plotted per run; the rest are listed by name
MAX_CONFIG_COLUMNS = 6
MAX_SUMMARY_COLUMNS = 8
ASSETS_DIR = "report_assets"
NOT_PLOTTED = {"step", "time"}
IMAGE_TYPES = {".png": "image/png", ".svg": "image/svg+xml"}


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


Block = Heading | Paragraph | Table | Image


def find_runs(root: Path) -> list[Run]:
    """Every run directory (a folder holding config.yaml) under `root`, root included, hidden folders skipped."""
    root = Path(root)
    run_dirs = {
        path.parent
        for path in root.rglob("config.yaml")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts[:-1])
    }
    return [Run.open(run_dir) for run_dir in sorted(run_dirs)]


def write_report(root: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md (+ report_assets/) and report.html for every run under `root` into `out_dir` (default root)."""
    root = Path(root)
    runs = find_runs(root)
    if not runs:
        raise UserError(
            f"no run directories under {root}: pass a folder that holds runs made by an experiment "
            "(they contain config.yaml)"
        )
    out_dir = Path(out_dir) if out_dir is not None else root
    title = f"reasonlab report: {root}"
    blocks = _report_blocks(root, runs, title)
    for block in blocks:
        if isinstance(block, Image):
            atomic_write_bytes(out_dir / ASSETS_DIR / block.filename, block.data)
    markdown_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_text(markdown_path, _to_markdown(blocks))
    atomic_write_text(html_path, _to_html(blocks, title))
    return markdown_path, html_path


@dataclass
class _RunData:
    label: str  # path relative to the report root, unique where leaf names repeat (trm/seed0, ace/seed0)
    run: Run
    config: dict[str, Any]  # flattened: nested keys joined with "."
    summary: dict[str, Any]  # flattened
    records: list[dict[str, Any]]


def _load(run: Run, root: Path) -> _RunData:
    relative = run.dir.relative_to(root).as_posix()
    try:
        config, summary = run.config(), run.summary()
    except (ValueError, yaml.YAMLError) as error:
        raise UserError(f"cannot read run {run.dir} ({error}): fix its config.yaml or summary.json") from None
    return _RunData(
        label=run.name if relative == "." else relative,
        run=run,
        config=_flatten(config if isinstance(config, dict) else {"config": config}),
        summary=_flatten(summary if isinstance(summary, dict) else {"summary": summary}),
        records=[_flatten(record) for record in run.metrics() if isinstance(record, dict)],
    )


def _report_blocks(root: Path, runs: list[Run], title: str) -> list[Block]:
    data = [_load(run, root) for run in runs]
    config_keys = _config_columns([item.config for item in data])
    summary_keys = [
        key
        for key in _union(item.summary for item in data)
        if all(_is_scalar(item.summary.get(key)) for item in data)
    ]
    shown_keys = summary_keys[:MAX_SUMMARY_COLUMNS]
    rows = [
        [item.label, *(_format(item.config.get(key)) for key in config_keys)]
        + [_format(item.summary.get(key)) for key in shown_keys]
        for item in data
    ]
    count = f"{len(data)} run" + ("s" if len(data) != 1 else "")
    blocks: list[Block] = [
        Heading(1, title),
        Paragraph(f"{count}, generated {time.strftime('%Y-%m-%d %H:%M:%S')}."),
        Heading(2, "Runs"),
        Table(["run", *config_keys, *shown_keys], rows),
    ]
    if len(summary_keys) > len(shown_keys):
        blocks.append(
            Paragraph(f"{len(summary_keys) - len(shown_keys)} more summary fields in each run's section.")
        )
    for index, item in enumerate(data, start=1):
        blocks += _run_blocks(item, prefix=f"{index:02d}-{_slug(item.label)}")
    return blocks


def _run_blocks(item: _RunData, prefix: str) -> list[Block]:
    """One run's section: summary, metrics figure, the run's own plots, config."""
    blocks: list[Block] = [
        Heading(2, item.label),
        Paragraph(f"Directory: {item.run.dir}"),
        Heading(3, "Summary"),
    ]
    blocks.append(_field_table(item.summary) if item.summary else Paragraph("No summary.json."))
    blocks.append(Heading(3, "Metrics"))
    series = _metric_series(item.records)
    if series:
        xlabel = "step" if any(_is_number(record.get("step")) for record in item.records) else "record"
        figure = _metrics_figure(series, item.label, xlabel)
        blocks.append(Image(f"{item.label} metrics", f"{prefix}-metrics.png", figure))
        not_plotted = list(series)[MAX_PANELS:]
        if not_plotted:
            blocks.append(Paragraph(f"Not plotted ({len(not_plotted)}): {', '.join(not_plotted)}."))
    else:
        blocks.append(Paragraph("No numeric metrics in metrics.jsonl."))
    plots = sorted(path for path in (item.run.dir / "plots").glob("*") if path.suffix.lower() in IMAGE_TYPES)
    if plots:
        blocks.append(Heading(3, "Plots"))
        for path in plots:
            filename = f"{prefix}-plot-{_slug(path.stem)}{path.suffix.lower()}"
            blocks.append(Image(path.stem, filename, path.read_bytes()))
    blocks += [Heading(3, "Config"), _field_table(item.config)]
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
    """The config fields that differ between runs (all fields for a single run), private `_` fields left out."""
    keys = [key for key in _union(configs) if not key.startswith("_")]
    differing = [key for key in keys if len({json.dumps(c.get(key), default=str) for c in configs}) > 1]
    return (differing or keys)[:MAX_CONFIG_COLUMNS]


def _union(dicts: Any) -> list[str]:
    return list(dict.fromkeys(key for d in dicts for key in d))


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
        else:
            lines += [f"![{cell(block.alt)}]({ASSETS_DIR}/{block.filename})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 0.5em 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
"""


def _to_html(blocks: list[Block], title: str) -> str:
    escape = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="en">',
        f'<head><meta charset="utf-8"><title>{escape(title)}</title><style>{_CSS}</style></head>',
        "<body>",
    ]
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
        else:
            mime = IMAGE_TYPES[Path(block.filename).suffix]
            encoded = base64.b64encode(block.data).decode("ascii")
            parts.append(f'<img alt="{escape(block.alt)}" src="data:{mime};base64,{encoded}">')
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
