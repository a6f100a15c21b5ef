"""`reasonlab moloch simulate | train | eval | experiment`: every option and --set key reaches the config its work
function is given (preset < --config < --set < named option), `--help` shows the preset's defaults, and bad input
is a one-line error. Each work function is replaced by a stop that raises `Stopped` with what it was called with:
the config as JSON, and under "call" the other arguments (the experiment's folder, name, jobs); nothing trains
and no model is loaded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import reasonlab.llm
from cli_options import Case, Stopped, check_every_option, check_order, config_of, root_error
from reasonlab.clihelp import show_defaults
from reasonlab.runs import Run
from reasonlab.systems.moloch import experiment, training
from reasonlab.systems.moloch.cli import app
from reasonlab.systems.moloch.config import CONDITIONS, PRESETS, AudienceConfig, TrainConfig

JUDGE = "openai:http://judge/v1#m"
MARKET = PRESETS["market"].model_dump(mode="json")


@pytest.fixture(autouse=True)
def _stop_in_the_work_functions(monkeypatch):
    """Each command's work function raises Stopped with its config and arguments; no model is ever loaded."""

    def stop(config: Any, *models: Any, **unused: Any) -> None:
        assert not any(models) and not any(unused.values()), "the CLI handed a loaded model to the work function"
        raise Stopped(config.model_dump(mode="json"))

    def run_experiment(config, out, name, overwrite=False, judge=None, jobs=1):
        # the per-run TrainConfig at the top, so --config and --set paths are the same as in `train`
        assert config.report_to == config.base.report_to, "the experiment's run reports where its per-run runs do"
        raise Stopped(
            {
                **config.base.model_dump(mode="json"),
                "experiment": {"conditions": config.conditions, "seeds": config.seeds},
                "call": {"out": str(out), "name": name, "overwrite": overwrite, "jobs": jobs, "judge": judge},
            }
        )

    def no_model(spec: str, *args: Any, **options: Any) -> None:
        raise AssertionError(f"a CLI option test loaded the model {spec}")

    monkeypatch.setattr(training, "simulate", stop)
    monkeypatch.setattr(training, "train", stop)
    monkeypatch.setattr(training, "evaluate_run", stop)
    monkeypatch.setattr(training, "load_agent", no_model)
    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    monkeypatch.setattr(reasonlab.llm, "load_llm", no_model)
    # the root callback (used by `root_error`) sets the process's thread count; keep the test process's own
    monkeypatch.setattr("reasonlab.threads.configure_threads", lambda threads=None: threads)


def saved_run(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A run folder as `train` leaves it (config.yaml only), with an audience unlike the defaults."""
    config = TrainConfig(audience=AudienceConfig(kind="market", personas=7, noise=0.5, llm="hf:saved/model"))
    run = Run.create(tmp_path, "r", config)
    return Path(run.dir), config.audience.model_dump(mode="json")


# simulate


def test_simulate_every_option_and_set_key_reaches_the_config(tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    cases = [
        Case(("--llm", "hf:some/model"), "llm", "hf:some/model"),
        Case(("--arena", "elections"), "data.arena", "elections"),
        Case(("--num-train", "7"), "data.num_train", 7),
        Case(("--anchors", str(anchors)), "data.train_file", str(anchors)),
        Case(("--audience", "control"), "audience.kind", "control"),
        Case(("--audience-llm", "hf:voter/model"), "audience.llm", "hf:voter/model"),
        Case(("--personas", "5"), "audience.personas", 5),
        Case(("--max-tokens", "12"), "agent.max_tokens", 12),
        Case(("--judge", JUDGE), "judge", JUDGE),
        Case(("--probe", "populism"), "probes", ["populism"], "probes=[populism]"),
        Case(("--seed", "4"), "seed", 4),
        Case(("--out", str(tmp_path / "sim")), "out", str(tmp_path / "sim")),
    ]
    check_every_option(app, "simulate", ["--preset", "smoke"], cases)
    check_order(app, "simulate", ["--preset", "smoke"], tmp_path, "data.num_train", (5, 6, 7), ["--num-train", "7"])


def test_simulate_defaults_are_the_market_presets_data_agent_and_audience():
    config = config_of(app, ["simulate"])
    assert config == {
        "llm": "hf:embedded",
        "data": MARKET["data"],
        "agent": MARKET["agent"],
        "audience": MARKET["audience"],
        "judge": None,
        "seed": 0,
        "out": None,
        "probes": None,
    }
    assert (config["data"]["num_train"], config["audience"]["kind"], config["agent"]["max_tokens"]) == (64, "market", 64)
    smoke = config_of(app, ["simulate", "--preset", "llm"])
    assert (smoke["data"]["num_train"], smoke["audience"]["kind"], smoke["audience"]["personas"]) == (8, "llm", 6)


def test_simulate_set_seed_is_not_undone_by_the_unset_seed_option(tmp_path):
    assert config_of(app, ["simulate", "--set", "seed=4"])["seed"] == 4


# train


def test_train_every_option_and_set_key_reaches_the_config(tmp_path):
    train_file, test_file = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    cases = [
        Case(("--method", "tfb"), "method", "tfb"),
        Case(("--rounds", "3"), "rounds", 3),
        Case(("--llm", "hf:some/model"), "llm", "hf:some/model"),
        Case(("--arena", "social"), "data.arena", "social"),
        Case(("--num-train", "7"), "data.num_train", 7),
        Case(("--num-test", "3"), "data.num_test", 3),
        Case(("--train-anchors", str(train_file)), "data.train_file", str(train_file)),
        Case(("--test-anchors", str(test_file)), "data.test_file", str(test_file)),
        Case(("--audience", "control"), "audience.kind", "control"),
        Case(("--audience-llm", "hf:voter/model"), "audience.llm", "hf:voter/model"),
        Case(("--learning-rate", "0.003"), "sft.learning_rate", 0.003),
        Case(("--judge", JUDGE), "judge", JUDGE),
        Case(("--seed", "4"), "seed", 4),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "asked"), "name", "asked"),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "smoke"]
    check_every_option(app, "train", base, cases)
    check_order(app, "train", base, tmp_path, "data.num_train", (5, 6, 7), ["--num-train", "7"])
    check_order(app, "train", base, tmp_path, "audience.kind", ("control", "llm", "market"), ["--audience", "market"])


def test_train_defaults_are_the_market_preset_and_presets_switch():
    assert config_of(app, ["train"]) == MARKET
    config = config_of(app, ["train"])
    assert (config["data"]["num_train"], config["data"]["num_test"], config["rounds"]) == (64, 32, 2)
    assert (config["audience"]["kind"], config["method"], config["sft"]["learning_rate"]) == ("market", "rft", 0.001)
    assert config_of(app, ["train", "--audience", "control"])["audience"]["kind"] == "control"
    smoke = config_of(app, ["train", "--preset", "smoke"])
    assert (smoke["data"]["num_train"], smoke["data"]["num_test"], smoke["rounds"]) == (8, 4, 1)
    assert config_of(app, ["train", "--preset", "control"])["audience"]["kind"] == "control"
    paper = config_of(app, ["train", "--preset", "paper"])
    assert (paper["data"]["num_train"], paper["sft"]["lora"]["r"], paper["audience"]["kind"]) == (1024, 16, "llm")


def test_train_overwrite_and_resume_flags_reach_the_config():
    assert (config_of(app, ["train"])["overwrite"], config_of(app, ["train"])["resume"]) == (False, False)
    assert config_of(app, ["train", "--overwrite"])["overwrite"] is True
    assert config_of(app, ["train", "--resume"])["resume"] is True
    # a flag left off is "not given": it does not undo --set
    assert config_of(app, ["train", "--set", "overwrite=true"])["overwrite"] is True
    assert config_of(app, ["train", "--set", "resume=true"])["resume"] is True


def test_train_unknown_preset_and_arena_are_one_line_errors(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "moloch", ["train", "--preset", "giant"])
    assert "--preset 'giant' is unknown" in line and "market" in line and "smoke" in line
    line = root_error(monkeypatch, capsys, "moloch", ["train", "--arena", "courtroom"])
    assert "data.arena" in line and "'courtroom'" in line and "sales" in line


# eval




def test_eval_run_and_judge_reach_the_config(tmp_path):
    run, _ = saved_run(tmp_path)
    assert config_of(app, ["eval", str(run)]) == {"run": str(run), "audience": None, "judge": None, "probes": None,
                                                  "test_file": None}
    assert config_of(app, ["eval", str(run), "--judge", JUDGE]) == {"run": str(run), "audience": None, "judge": JUDGE,
                                                                   "probes": None, "test_file": None}
    twice = config_of(app, ["eval", str(run), "--probe", "fabrication", "--probe", "misrepresentation"])
    assert twice["probes"] == ["fabrication", "misrepresentation"]


def test_an_unknown_probe_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    run, _ = saved_run(tmp_path)
    for args in (["eval", run, "--probe", "bogus"], ["simulate", "--probe", "bogus"]):
        assert "unknown probe 'bogus'" in root_error(monkeypatch, capsys, "moloch", args)


def test_eval_every_option_reaches_the_config(tmp_path):
    run, saved = saved_run(tmp_path)
    cases = [  # eval has no --preset, --config or --set: its options are the only way in
        Case(("--audience", "control"), "audience.kind", "control", None),
        Case(("--audience-llm", "hf:voter/model"), "audience.llm", "hf:voter/model", None),
        Case(("--personas", "5"), "audience.personas", 5, None),
        Case(("--judge", JUDGE), "judge", JUDGE, None),
        Case(("--probe", "populism"), "probes", ["populism"], None),
        Case(("--test-file", "fresh.jsonl"), "test_file", "fresh.jsonl", None),
    ]
    check_every_option(app, "eval", [str(run)], cases)
    config = config_of(app, ["eval", str(run), "--audience-llm", "hf:voter/model", "--personas", "5"])
    # the rest of the audience is the run's own: its kind, noise and seed, not the defaults
    assert config["audience"] == {**saved, "llm": "hf:voter/model", "personas": 5}


def test_eval_with_an_audience_kind_keeps_the_rest_of_the_runs_audience(tmp_path):
    run, saved = saved_run(tmp_path)
    config = config_of(app, ["eval", str(run), "--audience", "control"])
    assert config["run"] == str(run)
    assert config["audience"] == {**saved, "kind": "control"}
    assert (config["audience"]["personas"], config["audience"]["noise"], config["audience"]["llm"]) == (
        7, 0.5, "hf:saved/model")


def test_eval_of_a_missing_run_with_an_audience_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-such-run"
    line = root_error(monkeypatch, capsys, "moloch", ["eval", str(missing), "--audience", "control"])
    assert str(missing) in line
    assert not missing.exists()


# experiment


def test_experiment_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--conditions", "market-rft, control-tfb"), "experiment.conditions", ["market-rft", "control-tfb"],
             None),
        Case(("--seed", "4", "--seed", "5"), "experiment.seeds", [4, 5], None),
        Case(("--jobs", "3"), "call.jobs", 3, None),
        Case(("--judge", JUDGE), "judge", JUDGE),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    base = ["--preset", "smoke"]
    check_every_option(app, "experiment", base, cases)
    check_order(app, "experiment", base, tmp_path, "judge", ("openai:http://a/v1#m", "openai:http://b/v1#m", JUDGE),
                ["--judge", JUDGE])
    check_order(app, "experiment", base, tmp_path, "data.num_train", (5, 6, 6), [])


def test_experiment_defaults_are_three_conditions_three_seeds_and_the_preset_name():
    config = config_of(app, ["experiment"])
    assert config["experiment"] == {"conditions": ["market-rft", "market-tfb", "control-rft"], "seeds": [0, 1, 2]}
    assert config["call"] == {"out": "runs/moloch", "name": "market", "overwrite": False, "jobs": 1, "judge": None}
    assert {key: value for key, value in config.items() if key not in ("experiment", "call")} == MARKET
    assert config_of(app, ["experiment", "--preset", "smoke"])["call"]["name"] == "smoke"
    assert config_of(app, ["experiment", "--overwrite"])["call"]["overwrite"] is True
    assert config_of(app, ["experiment", "--jobs", "3"])["call"]["jobs"] == 3
    assert config_of(app, ["experiment", "--conditions", "control-tfb"])["experiment"]["conditions"] == [
        "control-tfb"
    ]


def test_experiment_unknown_condition_is_a_one_line_error_listing_them(monkeypatch, capsys):
    line = root_error(monkeypatch, capsys, "moloch", ["experiment", "--conditions", "market-rft,market-ppo"])
    assert "'market-ppo'" in line and all(condition in line for condition in CONDITIONS), line
    line = root_error(monkeypatch, capsys, "moloch", ["experiment", "--conditions", " , "])
    assert "--conditions" in line


@pytest.mark.parametrize("key_value", ["seed=3", "method=tfb", "name=x", "out=elsewhere"])
def test_experiment_refuses_a_per_run_set_key(key_value, monkeypatch, capsys):
    key = key_value.split("=")[0]
    line = root_error(monkeypatch, capsys, "moloch", ["experiment", "--set", key_value])
    assert f"--set {key}:" in line and "the experiment sets these per run" in line, line


# --help


def help_row(command: str, option: str) -> str:
    """The text of `option`'s row in `reasonlab moloch COMMAND --help` (drawn wide: one line per row)."""
    show_defaults(app)  # what the root CLI does to every sub-app
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rows = [line.strip(" │") for line in result.output.splitlines()]
    found = [row for row in rows if re.match(rf"^(\*\s+)?{re.escape(option)}\s", row)]
    assert len(found) == 1, (option, result.output)
    return found[0]


@pytest.mark.parametrize(
    ("command", "option", "default"),
    [
        ("simulate", "--preset", "market"),
        ("simulate", "--llm", "hf:embedded (--preset market)"),
        ("simulate", "--arena", "sales (--preset market)"),
        ("simulate", "--num-train", "64 (--preset market)"),
        ("simulate", "--audience", "market (--preset market)"),
        ("simulate", "--personas", "20 (--preset market)"),
        ("simulate", "--max-tokens", "64 (--preset market)"),
        ("simulate", "--anchors", "none: generated anchors"),
        ("simulate", "--out", "none"),
        ("train", "--preset", "market"),
        ("train", "--method", "rft (--preset market)"),
        ("train", "--rounds", "2 (--preset market)"),
        ("train", "--num-train", "64 (--preset market)"),
        ("train", "--num-test", "32 (--preset market)"),
        ("train", "--audience", "market (--preset market)"),
        ("train", "--audience-llm", "hf:embedded (--preset market)"),
        ("train", "--learning-rate", "0.001 (--preset market)"),
        ("train", "--train-anchors", "none (--preset market)"),
        ("train", "--seed", "0 (--preset market)"),
        ("train", "--out", "runs/moloch (--preset market)"),
        ("train", "--name", "ARENA-AUDIENCE-METHOD-sSEED"),
        ("train", "--judge", "none"),
        ("eval", "--audience", "the run's"),
        ("eval", "--personas", "the run's"),
        ("experiment", "--preset", "market"),
        ("experiment", "--seed", "0, 1, 2"),
        ("experiment", "--jobs", "1"),
        ("experiment", "--conditions", "market-rft,market-tfb,control-rft"),
        ("experiment", "--name", "the preset's name"),
    ],
)
def test_help_shows_the_presets_defaults(command, option, default):
    assert f"[default: {default}" in help_row(command, option)
