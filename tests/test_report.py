"""report.md / report.html from run directories: the headline table first, discovery, tables, embedded plots,
folded configs."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reasonlab.demo import HEADLINE_FILE, Headline, write_headline
from reasonlab.errors import UserError
from reasonlab.report import MAX_OPEN_SUMMARY, MAX_PANELS, MIN_POINTS, find_runs, write_report
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


def _png(path: Path, slope: float = -1.0) -> None:
    figure = Figure(figsize=(2, 2))
    FigureCanvasAgg(figure)
    figure.add_subplot().plot([0, 1], [1, 1 + slope])
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
    # no headline.json: the page opens with the runs table and says why
    assert "## Results" not in lines
    assert lines[2].startswith("None of these runs has a headline")
    assert lines.index("## Runs") < lines.index("## baseline")
    assert (
        "One row per run directory: the config fields that differ between runs, then the summary numbers every "
        "run has."
    ) in lines
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
    assert "No numeric metrics in metrics.jsonl" in markdown
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


TRM_RESULT = "0.62 ± 0.05 vs 0.48 ± 0.04 (n=3 seeds × 200 puzzles)"


def _headline_run(root: Path, name: str, headline: Headline, steps: int = 5) -> Run:
    run = Run.create(root, name, {"system": headline.system, "model": {"width": 64}})
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    write_headline(run.dir, headline)
    return run


@pytest.fixture
def demo_root(tmp_path: Path) -> Path:
    """What `reasonlab demo` leaves: three systems with headlines (plots in the run root and in plots/), plus a
    plain run without one."""
    trm = _headline_run(tmp_path, "trm-quick", Headline(
        system="trm", measures="6x6 Sudoku solved exactly: TRM vs deep supervision alone", result=TRM_RESULT,
        paper="87.4% vs 56.5% on Sudoku-Extreme", holds=True, plot="arms.png"))
    _png(trm.dir / "arms.png", slope=0.5)
    _png(trm.plot_path("training_curve"), slope=-0.5)
    trm.write_summary({f"arm_{index:02d}": index / 10 for index in range(MAX_OPEN_SUMMARY + 5)})
    delethink = _headline_run(tmp_path, "delethink", Headline(
        system="delethink", measures="accuracy beyond the training budget", result="0.25 vs 0.06 (n=16)",
        paper="+20 points beyond the budget", holds=False, plot="plots/accuracy_vs_length.png"))
    _png(delethink.plot_path("accuracy_vs_length"), slope=2.0)
    delethink.log({"accuracy": 0.1}, step=0)
    delethink.log({"accuracy": 0.2}, step=4)
    delethink.write_summary({"beyond": 0.25})
    _headline_run(tmp_path, "memagent-quick", Headline(
        system="mem-agent", measures="scripted agent answers from memory", result="1.00 (n=4)",
        paper="0.75 on md-memory-bench", holds=True, kind="pipeline check", note="scripted policy, no model"))
    plain = Run.create(tmp_path / "sweep", "lr-0.1", {"lr": 0.1})
    plain.log({"reward": 0.5}, step=0)
    plain.log({"reward": 0.7}, step=1)
    _png(plain.dir / "accuracy_by_depth.png", slope=3.0)
    (plain.dir / "notes.txt").write_text("not a figure")
    return tmp_path


def _without_details(text: str) -> str:
    return re.sub(r"<details>.*?</details>", "", text, flags=re.DOTALL)


def test_headline_table_comes_first_with_numbers_and_plots(demo_root: Path) -> None:
    markdown_path, html_path = write_report(demo_root)
    lines = markdown_path.read_text().splitlines()

    # a paragraph under the title says how to read the table, then the Results table opens the page
    assert lines[2].startswith("The first table has one row per system")
    assert "'does not hold'" in lines[2] and "'pipeline check'" in lines[2]
    assert next(line for line in lines if line.startswith("## ")) == "## Results"
    start = lines.index("| system | what is measured | ours (n, spread) | paper | our claim (see the note) |")
    assert start > lines.index("## Results")
    assert lines[start + 2 : start + 5] == [
        "| delethink | accuracy beyond the training budget | 0.25 vs 0.06 (n=16) | +20 points beyond the budget "
        "| does not hold |",
        "| mem-agent | scripted agent answers from memory | 1.00 (n=4) | 0.75 on md-memory-bench | pipeline check |",
        f"| trm | 6x6 Sudoku solved exactly: TRM vs deep supervision alone | {TRM_RESULT} | 87.4% vs 56.5% on "
        "Sudoku-Extreme | holds |",
    ]
    assert start < next(index for index, line in enumerate(lines) if line.startswith("| run |"))
    # runs of different systems share no fields: the runs table is an index, and says so
    assert "| run |" in lines
    assert any(line.startswith("One row per run directory. These runs share no config or summary fields") for line in lines)
    # each system's own summary plot follows the table, before the runs; copied byte for byte
    runs_at = lines.index("## Runs")
    headline_images = [line for line in lines[:runs_at] if line.startswith("![")]
    assert headline_images == [
        "![delethink summary plot](report_assets/00-headline-01-delethink.png)",
        "![trm summary plot](report_assets/00-headline-03-trm.png)",
    ]
    assert (demo_root / "report_assets/00-headline-01-delethink.png").read_bytes() == (
        demo_root / "delethink/plots/accuracy_vs_length.png").read_bytes()
    assert (demo_root / "report_assets/00-headline-03-trm.png").read_bytes() == (
        demo_root / "trm-quick/arms.png").read_bytes()
    assert "Run memagent-quick, " in "\n".join(lines[:runs_at])
    assert "pipeline check. Note: scripted policy, no model" in "\n".join(lines[:runs_at])
    # shown once: the run's own section points up to it
    assert "arms.png: shown under Results above." in lines
    assert "plots/accuracy_vs_length.png: shown under Results above." in lines

    page = html_path.read_text()
    first_table = page[page.index("<table>") : page.index("</table>")]
    assert f"<td>{TRM_RESULT}</td>" in first_table
    assert "<td>does not hold</td>" in first_table
    first_image = re.search(r'<img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', page)
    assert first_image is not None and first_image.group(1) == "delethink summary plot"
    assert first_image.start() < page.index("<h2>Runs</h2>")
    assert base64.b64decode(first_image.group(2)) == (demo_root / "delethink/plots/accuracy_vs_length.png").read_bytes()


def test_config_dumps_and_long_summaries_are_folded(demo_root: Path) -> None:
    markdown_path, html_path = write_report(demo_root)
    markdown, page = markdown_path.read_text(), html_path.read_text()

    # every config dump sits inside <details>, in HTML and in markdown
    assert len(re.findall(r"<details><summary>Config: \d+ fields</summary>", page)) == 4
    assert "<td>model.width</td>" in page and "<td>model.width</td>" not in _without_details(page)
    assert "| model.width | 64 |" in markdown and "| model.width | 64 |" not in _without_details(markdown)
    assert len(re.findall(r"<details><summary>Config: \d+ fields</summary>\n\n\| field \| value \|", markdown)) == 4
    # a long summary is folded, a short one stays open
    assert f"<details><summary>Summary: {MAX_OPEN_SUMMARY + 5} fields</summary>" in page
    assert "<td>arm_00</td>" in page and "<td>arm_00</td>" not in _without_details(page)
    assert "| beyond | 0.25 |" in _without_details(markdown)
    assert page.count("<details>") == page.count("</details>") == 5


def test_metric_series_with_fewer_than_three_points_are_not_plotted(
    demo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reasonlab.report as report

    plotted: dict[str, list[str]] = {}
    draw = report._metrics_figure

    def recording_figure(series: dict[str, dict[float, float]], title: str, xlabel: str) -> bytes:
        plotted[title] = list(series)
        return draw(series, title, xlabel)

    monkeypatch.setattr(report, "_metrics_figure", recording_figure)
    markdown = write_report(demo_root)[0].read_text()

    assert MIN_POINTS == 3
    # delethink's accuracy (2 points) is named, not drawn; the sweep run has no metric worth a figure
    assert plotted == {"delethink": ["loss"], "memagent-quick": ["loss"], "trm-quick": ["loss"]}
    assert "Logged at fewer than 3 steps, so not plotted (1): accuracy." in markdown
    assert "Logged at fewer than 3 steps, so not plotted (1): reward." in markdown
    assert not (demo_root / "report_assets" / "03-sweep_lr-0.1-metrics.png").exists()


def test_plots_in_the_run_root_are_included(demo_root: Path) -> None:
    markdown = write_report(demo_root)[0].read_text()
    references = re.findall(r"!\[[^\]]*\]\((report_assets/[^)]+)\)", markdown)

    assert "report_assets/03-sweep_lr-0.1-file-accuracy_by_depth.png" in references
    assert (demo_root / "report_assets/03-sweep_lr-0.1-file-accuracy_by_depth.png").read_bytes() == (
        demo_root / "sweep/lr-0.1/accuracy_by_depth.png").read_bytes()
    # plots/ too; files that are not figures are left out
    assert "report_assets/04-trm-quick-plot-training_curve.png" in references
    assert not any("notes" in reference for reference in references)


def test_headline_problems_are_said_not_hidden(tmp_path: Path) -> None:
    broken = Run.create(tmp_path, "broken", {"seed": 0})
    (broken.dir / HEADLINE_FILE).write_text("{not json")
    _headline_run(tmp_path, "lost-plot", Headline(
        system="h1", measures="depth-3 accuracy", result="0.4", paper="0.5", holds=None, plot="plots/gone.png"))
    outside = _headline_run(tmp_path, "outside", Headline(
        system="ace", measures="accuracy", result="0.9", paper="0.8", holds=True, plot="../secret.png"))
    _png(outside.dir.parent / "secret.png")

    markdown = write_report(tmp_path)[0].read_text()
    lines = markdown.splitlines()

    assert "broken/headline.json cannot be read: rerun its demo." in lines
    assert "| h1 | depth-3 accuracy | 0.4 | 0.5 | no claim |" in lines
    assert "Its summary plot plots/gone.png is missing from lost-plot." in lines
    assert "Its summary plot ../secret.png is missing from outside." in lines
    assert "00-headline" not in markdown
