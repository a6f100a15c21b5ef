"""`reasonlab ahn experiment | distill | eval | generate`: every option and --set key reaches the config its work
function is given (preset < --config < --set < named option), `--help` shows the preset's defaults, and bad input
is a one-line error. The work functions are replaced by stops that raise `Stopped`; no model is loaded."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import reasonlab.llm
from cli_options import Case, Stopped, check_every_option, check_order, config_of, root_error
from reasonlab.clihelp import show_defaults
from reasonlab.systems.ahn import experiment, longtext, training
from reasonlab.systems.ahn.cli import app
from reasonlab.systems.ahn.config import DOCUMENT_PRESETS, PRESETS


@pytest.fixture(autouse=True)
def _stop_in_the_work_functions(monkeypatch):
    def run_experiment(config: Any, out: Any, name: str = "x", overwrite: bool = False, resume: bool = False):
        raise Stopped({**config.model_dump(mode="json"),
                       "call": {"out": str(out), "name": name, "resume": resume, "overwrite": overwrite}})

    def distill(config: Any) -> None:
        raise Stopped(config.model_dump(mode="json"))

    def no_model(*args: Any, **options: Any) -> None:
        raise AssertionError(f"a CLI option test loaded a model ({args})")

    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    monkeypatch.setattr(training, "train", distill)
    monkeypatch.setattr(reasonlab.llm, "load_llm", no_model)
    monkeypatch.setattr("reasonlab.threads.configure_threads", lambda threads=None: threads)


def test_experiment_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--kinds", "gdn, mamba2"), "kinds", ["gdn", "mamba2"]),
        Case(("--seed", "3"), "seeds", [3]),
        Case(("--steps", "77"), "student.distill.steps", 77),
        Case(("--window", "12"), "student.window", 12),
        Case(("--jobs", "1"), "jobs", 1),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "r"), "call.name", "r", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "experiment", [], cases)
    check_order(app, "experiment", [], tmp_path, "jobs", (3, 4, 1), ["--jobs", "1"])


def test_experiment_defaults_are_the_record_preset():
    config = config_of(app, ["experiment"])
    assert {k: v for k, v in config.items() if k != "call"} == PRESETS["record"].model_dump(mode="json")
    assert config["call"] == {"out": "runs/ahn", "name": "recall-record", "resume": False, "overwrite": False}
    quick = config_of(app, ["experiment", "--preset", "quick", "--resume"])
    assert quick["kinds"] == ["gdn"] and quick["call"]["resume"] is True and quick["call"]["name"] == "recall-quick"


def test_distill_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--model", "hf:some/folder"), "model", "hf:some/folder"),
        Case(("--memory", "deltanet"), "kind", "deltanet"),
        Case(("--documents", str(tmp_path)), "documents", str(tmp_path)),
        Case(("--window", "252"), "window", 252),
        Case(("--seq-len", "512"), "seq_len", 512),
        Case(("--steps", "9"), "distill.steps", 9),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "d"), "name", "d"),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "distill", [], cases)
    check_order(app, "distill", [], tmp_path, "seq_len", (600, 700, 800), ["--seq-len", "800"])
    assert config_of(app, ["distill", "--resume"])["resume"] is True
    assert config_of(app, ["distill", "--overwrite"])["overwrite"] is True


def test_distill_defaults_are_the_record_preset():
    assert config_of(app, ["distill"]) == DOCUMENT_PRESETS["record"].model_dump(mode="json")


def test_help_shows_the_preset_defaults():
    show_defaults(app)
    output = CliRunner().invoke(app, ["experiment", "--help"], env={"COLUMNS": "200"}).output
    assert "default: 1000 (--preset record)" in output
    output = CliRunner().invoke(app, ["distill", "--help"], env={"COLUMNS": "200"}).output
    assert "hf:embedded" in output and "debian:python3.11-doc" in output


@pytest.mark.parametrize(("args", "message"), [
    (["experiment", "--preset", "nope"], "preset"),
    (["experiment", "--kinds", "lstm"], "kinds"),
    (["experiment", "--window", "200"], "training budgets"),
    (["experiment", "--window", "200", "--set", "student.budgets=[204]"], "2T-4T"),
    (["distill", "--memory", "lstm"], "kind"),
    (["distill", "--window", "2000"], "window"),
    (["eval", "--run", "no/such/run"], "not a run directory"),
    (["generate", "--run", "no/such/run", "--prompt", "hi"], "not a run directory"),
])
def test_bad_input_is_one_line(monkeypatch, capsys, args, message):
    assert message in root_error(monkeypatch, capsys, "ahn", args)


def test_a_model_that_is_not_a_transformers_model_is_refused_before_loading():
    from reasonlab.errors import UserError

    with pytest.raises(UserError, match="hf:embedded or hf:PATH"):
        longtext.load_wrapped(DOCUMENT_PRESETS["quick"].model_copy(update={"model": "openai:http://x/v1#m"}))
