"""report.md / report.html from run directories: discovery, tables, embedded plots."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reasonlab.errors import UserError
from reasonlab.report import MAX_PANELS, find_runs, write_report
from reasonlab.runs import Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _make_run(root: Path, name: str, lr: float, accuracy: float, steps: int = 5) -> Run:
    run = Run.create(root, name, {"lr": lr, "task": "sudoku", "model": {"width": 64}})
    for step in range(steps):
        run.log(
            {"loss": 2.0 / (step + 1), "accuracy": accuracy * step / (steps - 1), "note": "text"}, step=step
        )
    run.write_summary({"final_accuracy": accuracy, "solved": int(accuracy * 100), "eval": {"exact": 0.5}})
    return run


def _png(path: Path) -> None:
    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1], [1, 0])
    figure.savefig(path, format="png")


@pytest.fixture
def two_runs(tmp_path: Path) -> Path:
    _make_run(tmp_path, "baseline", lr=0.001, accuracy=0.8125)
    custom = _make_run(tmp_path, "wide-lr", lr=0.01, accuracy=0.4375)
    _png(custom.plot_path("attention"))
    return tmp_path


def test_markdown_has_runs_table_and_summaries(two_runs: Path) -> None:
    markdown_path, html_path = write_report(two_runs)

    assert markdown_path == two_runs / "report.md"
    assert html_path == two_runs / "report.html"
    markdown = markdown_path.read_text()
    lines = markdown.splitlines()
    # the overview table: lr is the config field that differs; summary scalars follow (summary.json sorts keys)
    header = next(line for line in lines if line.startswith("| run |"))
    assert header == "| run | lr | eval.exact | final_accuracy | solved |"
    assert "| baseline | 0.001 | 0.5 | 0.8125 | 81 |" in lines
    assert "| wide-lr | 0.01 | 0.5 | 0.4375 | 43 |" in lines
    # each run has its own section with its summary table and config
    assert "## baseline" in lines
    assert "## wide-lr" in lines
    assert "| final_accuracy | 0.4375 |" in lines
    assert "| model.width | 64 |" in lines
    assert "| task | sudoku |" in lines


def test_markdown_references_png_assets(two_runs: Path) -> None:
    markdown_path, _ = write_report(two_runs)
    markdown = markdown_path.read_text()

    references = re.findall(r"!\[[^\]]*\]\((report_assets/[^)]+)\)", markdown)
    assert references == [
        "report_assets/01-baseline-metrics.png",
        "report_assets/02-wide-lr-metrics.png",
        "report_assets/02-wide-lr-plot-attention.png",
    ]
    for reference in references:
        assert (two_runs / reference).read_bytes().startswith(PNG_MAGIC)
    # the run's own figure is copied byte for byte
    assert (two_runs / references[2]).read_bytes() == (
        two_runs / "wide-lr" / "plots" / "attention.png"
    ).read_bytes()


def test_html_is_self_contained(two_runs: Path) -> None:
    _, html_path = write_report(two_runs)
    page = html_path.read_text()

    assert page.startswith("<!doctype html>")
    assert page.count("data:image/png;base64,") == 3
    assert 'src="http' not in page
    assert "href=" not in page
    assert "<script" not in page
    assert "<td>baseline</td>" in page
    assert "<td>0.8125</td>" in page
    assert "<td>0.4375</td>" in page
    for encoded in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
        assert base64.b64decode(encoded).startswith(PNG_MAGIC)


def test_html_escapes_run_content(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "run", {"prompt": "<b>x</b> & y"})
    run.write_summary({"answer": "a | b"})
    markdown_path, html_path = write_report(tmp_path)

    assert "<td>&lt;b&gt;x&lt;/b&gt; &amp; y</td>" in html_path.read_text()
    assert "| answer | a \\| b |" in markdown_path.read_text().splitlines()


def test_out_dir_and_no_temporary_files(two_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    out_dir = tmp_path_factory.mktemp("out")
    markdown_path, html_path = write_report(two_runs, out_dir)

    assert markdown_path.parent == html_path.parent == out_dir
    assert sorted(path.name for path in out_dir.iterdir()) == ["report.html", "report.md", "report_assets"]
    assert not (two_runs / "report.md").exists()
    assert not list(out_dir.rglob("*.tmp"))


def test_runs_without_metrics_or_summary(tmp_path: Path) -> None:
    Run.create(tmp_path, "empty", {"seed": 0})
    markdown_path, html_path = write_report(tmp_path)
    markdown = markdown_path.read_text()

    assert "No summary.json." in markdown
    assert "No numeric metrics in metrics.jsonl." in markdown
    assert "data:image" not in html_path.read_text()
    assert not (tmp_path / "report_assets").exists()


def test_panels_are_capped_and_rest_listed(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "many", {"seed": 0})
    for step in range(3):
        run.log({f"metric_{index:02d}": float(index * step) for index in range(MAX_PANELS + 3)}, step=step)
    markdown = write_report(tmp_path)[0].read_text()

    assert "Not plotted (3): metric_12, metric_13, metric_14." in markdown
    assert markdown.count("![") == 1


def test_find_runs_nested_and_root_itself(tmp_path: Path) -> None:
    _make_run(tmp_path / "trm", "seed0", lr=0.1, accuracy=0.5)
    _make_run(tmp_path / "ace", "seed0", lr=0.2, accuracy=0.25)
    _make_run(tmp_path / "ace" / "sweep" / "deep", "seed1", lr=0.3, accuracy=0.75)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / ".cache" / "hidden").mkdir(parents=True)
    (tmp_path / ".cache" / "hidden" / "config.yaml").write_text("seed: 0\n")

    runs = find_runs(tmp_path)

    assert [run.dir.relative_to(tmp_path).as_posix() for run in runs] == [
        "ace/seed0",
        "ace/sweep/deep/seed1",
        "trm/seed0",
    ]
    assert [run.dir for run in find_runs(tmp_path / "trm" / "seed0")] == [tmp_path / "trm" / "seed0"]

    # same leaf names in different folders stay apart in the report
    markdown = write_report(tmp_path)[0].read_text()
    assert "## ace/seed0" in markdown
    assert "## trm/seed0" in markdown
    assert "| ace/sweep/deep/seed1 | 0.3 | 0.5 | 0.75 | 75 |" in markdown.splitlines()
    assert (tmp_path / "report_assets" / "01-ace_seed0-metrics.png").is_file()


def test_report_on_a_single_run_directory(tmp_path: Path) -> None:
    run = _make_run(tmp_path, "solo", lr=0.001, accuracy=0.9)
    markdown = write_report(run.dir)[0].read_text()

    assert (run.dir / "report.html").is_file()
    assert "## solo" in markdown
    # one run: nothing differs, so the first config fields are shown
    assert "| run | lr | task | model.width | eval.exact | final_accuracy | solved |" in markdown
    assert "1 run, generated" in markdown


def test_resumed_run_plots_last_value_per_step(tmp_path: Path) -> None:
    from reasonlab.report import _metric_series

    records = [{"step": 0, "loss": 3.0}, {"step": 1, "loss": 2.0}, {"step": 1, "loss": 1.5, "flag": True}]
    assert _metric_series(records) == {"loss": {0: 3.0, 1: 1.5}}


def test_empty_dir_raises(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(UserError, match=r"no run directories under .*: pass a folder that holds runs"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="no run directories under"):
        write_report(tmp_path / "missing")
    assert not (tmp_path / "report.md").exists()
