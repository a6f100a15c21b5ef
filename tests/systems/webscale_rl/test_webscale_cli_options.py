"""`reasonlab webscale run | train | compare`: every option and --set key reaches the saved config.yaml (preset <
--config < --set < named option); `--out` names the run folder; bad values are one-line errors."""

from __future__ import annotations

import json

import pytest

from cli_options import Case, check_every_option, check_order, config_of, root_error, stop_at_saved_config
from reasonlab.systems.webscale_rl.cli import app


@pytest.fixture(autouse=True)
def _stop_after_config(monkeypatch):
    stop_at_saved_config(monkeypatch)


def small_corpus(tmp_path) -> str:
    """The run command reads the corpus before it saves its run folder: one short document."""
    folder = tmp_path / "corpus"
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("The bridge opened in 1932 and carried trams until the line closed in 1961.\n")
    return str(folder)


def test_run_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    corpus = small_corpus(tmp_path)
    cases = [
        Case(("--input", corpus), "corpus.input", corpus),
        Case(("--engine", "ray"), "engine", "ray"),
        Case(("--llm", "hf:embedded"), "llm", "hf:embedded"),
        Case(("--mode", "paraphrase"), "generate.mode", "paraphrase"),
        Case(("--workers", "2"), "workers", 2),
        Case(("--max-documents", "7"), "corpus.max_documents", 7),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "run", ["--out", tmp_path / "run", "--overwrite"], cases, not_config={"--out"})


def test_run_out_is_the_run_folder_and_the_order_holds(tmp_path):
    base = ["--input", small_corpus(tmp_path), "--out", tmp_path / "mine", "--overwrite"]
    check_order(app, "run", base, tmp_path, "shard_size", (3, 4, 4), [])
    config_of(app, ["run", *base])
    assert (tmp_path / "mine" / "config.yaml").is_file()
    quick = config_of(app, ["run", "--preset", "quick", *base, "--set", "filter.min_words=9"])
    assert (quick["corpus"]["max_documents"], quick["shard_size"], quick["filter"]["min_words"]) == (48, 8, 9)


def test_train_every_option_and_set_key_reaches_the_saved_config(tmp_path):
    cases = [
        Case(("--data", "runs/x"), "data", "runs/x"),
        Case(("--arm", "cpt"), "arm", "cpt"),
        Case(("--seed", "5"), "seed", 5),
        Case(("--llm", "hf:other"), "llm", "hf:other"),
        Case(("--out", tmp_path / "arms" / "mine"), "name", "mine", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "train", ["--overwrite", "--set", f"out={tmp_path / 'arms'}", "--set", "name=mine"],
                       cases)
    saved = config_of(app, ["train", "--preset", "quick", "--out", tmp_path / "a" / "b", "--set", "rl.iterations=3"])
    assert (saved["out"], saved["name"], saved["rl"]["iterations"]) == (str(tmp_path / "a"), "b", 3)
    assert saved["train_document_tokens"] == 6000


def test_compare_saves_the_train_settings_it_runs_with(tmp_path):
    saved = config_of(app, ["compare", "--data", "runs/x", "--seed", "3", "--seed", "4", "--out", tmp_path / "cmp",
                            "--set", "shots=1"])
    assert (saved["seeds"], saved["train"]["data"], saved["train"]["shots"]) == ([3, 4], "runs/x", 1)
    assert "report_to" not in saved and "report_to" not in saved["train"]
    for trackers in (["--report-to", "tensorboard"], ["--set", "report_to=[tensorboard]"]):
        saved = config_of(app, ["compare", "--data", "runs/x", "--out", tmp_path / "cmp", "--overwrite", *trackers])
        assert saved["report_to"] == ["tensorboard"]  # the comparison's run; its arm runs are copies of the settings


def test_experiment_report_to_reaches_every_run_it_makes(tmp_path):
    saved = config_of(app, ["experiment", "--preset", "quick", "--out", tmp_path / "exp", "--report-to", "tensorboard",
                            "--report-to", "none"])
    trackers = ["tensorboard", "none"]
    assert (saved["report_to"], saved["pipeline"]["report_to"], saved["train"]["report_to"]) == (trackers,) * 3
    saved = config_of(app, ["experiment", "--preset", "quick", "--out", tmp_path / "plain", "--overwrite"])
    assert "report_to" not in saved and saved["pipeline"]["report_to"] == saved["train"]["report_to"] == []


@pytest.mark.parametrize(("args", "fragment"), [
    (["run", "--engine", "spark"], "engine"),
    (["run", "--mode", "free"], "generate.mode=free needs an LLM"),
    (["run", "--set", "identify.llm_identifier=true"], "identify.llm_identifier needs an LLM"),
    (["train", "--arm", "sft"], "arm"),
    (["run", "--resume", "--out", "{tmp}/none"], "there is no run in"),
    (["experiment", "--resume", "--out", "{tmp}/none"], "there is no run in"),
    (["experiment", "--preset", "paper", "--out", "{tmp}/none"], "paper"),  # a pipeline preset, not a train one
    (["experiment", "--report-to", "tensorbord", "--out", "{tmp}/none"], "report_to"),
    (["train", "--report-to", "tensorbord"], "report_to"),
])
def test_bad_values_are_one_line_errors(args, fragment, tmp_path, monkeypatch, capsys):
    args = [str(arg).replace("{tmp}", str(tmp_path)) for arg in args]
    assert fragment in root_error(monkeypatch, capsys, "webscale", args)
    assert not (tmp_path / "none").exists()


def test_inspect_rejected_shows_what_the_checker_rejected_and_why(tmp_path):
    from typer.testing import CliRunner

    def candidate(qa_id: str, checks: dict) -> dict:
        return {"qa_id": qa_id, "doc_id": "d", "domain": "Coding", "persona": "p", "question": f"Question {qa_id}?",
                "answer": "x", "checks": {"grounded": True, "leakage": False, "self_contained": True, **checks}}

    rows = [candidate("kept", {}), candidate("far", {"grounded": False}),
            candidate("judged", {"llm": {"passed": False, "has_context": "N"}})]
    (tmp_path / "candidates.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = CliRunner().invoke(app, ["inspect", str(tmp_path), "--rejected"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ungrounded" in result.output and "llm-check" in result.output and "Question kept" not in result.output
    assert "2 of 2 shown" in result.output
    result = CliRunner().invoke(app, ["inspect", str(tmp_path), "--rejected", "--grep", "judged"],
                                env={"COLUMNS": "200"})
    assert "1 of 1 shown" in result.output
