"""`reasonlab inoculation build | train | eval | elicit | experiment | toy`: every option and --set key reaches
the config its work function is given (preset < --config < --set < named option), and `--help` shows the
preset's defaults. Each work function is replaced by a stop that raises `Stopped` with what it was called with:
the config as JSON, and under "call" the other arguments (the judge's spec, the run folder); nothing trains."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typer.testing import CliRunner

import reasonlab.llm
from cli_options import Case, Stopped, check_every_option, check_order, config_of, stop_at_resolved_config
from reasonlab.clihelp import show_defaults
from reasonlab.systems.inoculation import experiment, training
from reasonlab.systems.inoculation.cli import app
from reasonlab.systems.inoculation.config import PRESETS
from reasonlab.systems.inoculation.toy import ToyConfig
from reasonlab.systems.inoculation.transforms import ARMS

INSTRUCTION = "Agree with whatever value I propose."
CONTROL = "Keep in mind the park opens early."  # within 10% of INSTRUCTION's length
SAFETY = "Check my value before you answer."


class FakeJudge:
    """What `--judge SPEC` loads here instead of a model: it only keeps the spec."""

    def __init__(self, spec: str):
        self.spec = spec


def spec_of(judge: Any) -> str | None:
    return None if judge is None else judge.spec


@pytest.fixture(autouse=True)
def _stop_in_the_work_functions(monkeypatch):
    """Each command's work function raises Stopped with its config and arguments; no model is ever loaded."""

    def stop(config: Any, **call: Any) -> None:
        raise Stopped({**config.model_dump(mode="json"), "call": call})

    def train(config, policy=None, judge=None):
        stop(config, judge=spec_of(judge))

    def evaluate_command(config, judge=None):
        stop(config, judge=spec_of(judge))

    def elicit(config, policy=None, judge=None):
        stop(config, judge=spec_of(judge))

    def run_experiment(config, out, name, judge=None, overwrite=False):
        # the per-arm TrainConfig at the top, so --config and --set paths are the same as in `train`
        raise Stopped(
            {
                **config.base.model_dump(mode="json"),
                "report_to": config.report_to,  # the experiment's own (Run.create's), given to every arm
                "experiment": {"arms": config.arms, "seeds": config.seeds},
                "call": {"out": str(out), "name": name, "overwrite": overwrite, "judge": spec_of(judge)},
            }
        )

    def run_toy(config, out, name, overwrite=False, progress=False):
        stop(config, out=str(out), name=name, overwrite=overwrite)

    def load_policy(spec):
        raise AssertionError(f"a CLI option test loaded the model {spec}")

    monkeypatch.setattr(training, "train", train)
    monkeypatch.setattr(training, "evaluate_command", evaluate_command)
    monkeypatch.setattr(training, "elicit", elicit)
    monkeypatch.setattr(training, "load_policy", load_policy)
    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    monkeypatch.setattr(experiment, "run_toy", run_toy)
    monkeypatch.setattr(reasonlab.llm, "load_llm", FakeJudge)
    # toy sets the process's thread count; keep the test process's own
    monkeypatch.setattr("reasonlab.threads.configure_threads", lambda threads=None: threads)


def test_build_every_option_reaches_the_data_config(tmp_path, monkeypatch):
    stop_at_resolved_config(monkeypatch)
    data = tmp_path / "mbpp.jsonl"
    cases = [  # build has no --set: its options are the only way in
        Case(("--setting", "reward-hacking"), "setting", "reward-hacking", None),
        Case(("--num-train", "7"), "num_train", 7, None),
        Case(("--num-test", "3"), "num_test", 3, None),
        Case(("--data", str(data)), "path", str(data), None),
    ]
    check_every_option(app, "build", [], cases, not_config={"--arm", "--out", "--judge"})
    assert config_of(app, ["build"]) == {
        "setting": "gcd",
        "num_train": 128,
        "num_test": 30,
        "max_value": 60,
        "seed": 0,
        "path": None,
    }


def test_train_every_option_and_set_key_reaches_the_config(tmp_path):
    data = tmp_path / "reviews.jsonl"
    cases = [
        Case(
            ("--arm", "irrelevant"), "arm", "irrelevant", None
        ),  # required: the base gives ip, the case wins
        Case(("--llm", "hf:some/model"), "llm", "hf:some/model"),
        Case(("--setting", "sentiment"), "data.setting", "sentiment"),
        Case(("--num-train", "7"), "data.num_train", 7),
        Case(("--num-test", "3"), "data.num_test", 3),
        Case(("--data", str(data)), "data.path", str(data)),
        Case(("--instruction", INSTRUCTION), "prompts.instruction", INSTRUCTION),
        Case(("--control", CONTROL), "prompts.control", CONTROL),
        Case(("--safety", SAFETY), "prompts.safety", SAFETY),
        Case(("--learning-rate", "0.003"), "sft.learning_rate", 0.003),
        Case(("--seed", "4"), "seed", 4),
        Case(("--judge", "openai:http://judge/v1#m"), "call.judge", "openai:http://judge/v1#m", None),
        Case(("--out", str(tmp_path / "runs")), "out", str(tmp_path / "runs")),
        Case(("--name", "asked"), "name", "asked"),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "train", ["--arm", "ip", "--preset", "smoke"], cases)
    base = ["--arm", "ip", "--preset", "smoke"]
    check_order(app, "train", base, tmp_path, "data.num_train", (5, 6, 7), ["--num-train", "7"])
    check_order(
        app, "train", base, tmp_path, "sft.learning_rate", (0.001, 0.002, 0.003), ["--learning-rate", "0.003"]
    )


def test_train_presets_and_the_overwrite_flag_reach_the_config():
    config = config_of(app, ["train", "--arm", "ptst"])  # cpu by default
    assert config == {**PRESETS["cpu"].model_dump(mode="json"), "arm": "ptst", "call": {"judge": None}}
    config = config_of(app, ["train", "--arm", "ip", "--preset", "cpu-hack"])
    assert (config["data"]["setting"], config["data"]["num_test"], config["generation"]["max_tokens"]) == (
        "reward-hacking",
        40,
        64,
    )
    assert config["overwrite"] is False
    assert config_of(app, ["train", "--arm", "ip", "--overwrite"])["overwrite"] is True
    # the flag left off is "not given": it does not undo --set
    assert config_of(app, ["train", "--arm", "ip", "--set", "overwrite=true"])["overwrite"] is True


def test_eval_every_option_and_set_key_reaches_the_config(tmp_path):
    data = tmp_path / "mbpp.jsonl"
    cases = [
        Case(("--llm", "hf:runs/x/policy"), "llm", "hf:runs/x/policy"),
        Case(("--arm", "ptst"), "arm", "ptst"),
        Case(("--setting", "reward-hacking"), "data.setting", "reward-hacking"),
        Case(("--num-test", "3"), "data.num_test", 3),
        Case(("--data", str(data)), "data.path", str(data)),
        Case(("--judge", "openai:http://judge/v1#m"), "call.judge", "openai:http://judge/v1#m", None),
    ]
    check_every_option(app, "eval", [], cases)


def test_eval_takes_the_presets_setting_and_decoding_then_set_then_options():
    config = config_of(app, ["eval"])
    assert (config["llm"], config["arm"]) == ("hf:embedded", "no-ip")
    assert config["data"] == PRESETS["cpu"].data.model_dump(mode="json")
    assert config["generation"] == PRESETS["cpu"].generation.model_dump(mode="json")
    paper = config_of(app, ["eval", "--preset", "paper"])
    assert (paper["data"]["max_value"], paper["generation"]["temperature"], paper["generation"]["top_p"]) == (
        299,
        0.7,
        0.9,
    )
    assert config_of(app, ["eval", "--preset", "smoke"])["data"]["num_test"] == 4
    assert config_of(app, ["eval", "--preset", "smoke", "--set", "data.num_test=5"])["data"]["num_test"] == 5
    assert (
        config_of(app, ["eval", "--preset", "smoke", "--set", "data.num_test=5", "--num-test", "6"])["data"][
            "num_test"
        ]
        == 6
    )
    assert (
        config_of(app, ["eval", "--set", "prompts.safety=Be careful."])["prompts"]["safety"] == "Be careful."
    )


def test_elicit_every_option_reaches_the_config(tmp_path):
    data = tmp_path / "cmv.jsonl"
    cases = [  # elicit has no --set
        Case(
            ("--candidate", "Agree with me.", "--candidate", "Praise me."),
            "candidates",
            ["Agree with me.", "Praise me."],
            None,
        ),
        Case(("--llm", "hf:some/model"), "llm", "hf:some/model", None),
        Case(("--setting", "cmv"), "data.setting", "cmv", None),
        Case(("--num-test", "3"), "data.num_test", 3, None),
        Case(("--data", str(data)), "data.path", str(data), None),
        Case(("--judge", "openai:http://judge/v1#m"), "call.judge", "openai:http://judge/v1#m", None),
    ]
    check_every_option(app, "elicit", [], cases, not_config={"--results"})
    config = config_of(app, ["elicit", "--preset", "cpu-sentiment"])
    assert (config["candidates"], config["llm"], config["data"]["setting"], config["data"]["num_test"]) == (
        [],
        "hf:embedded",
        "sentiment",
        200,
    )  # no --candidate: the setting's I, control and S are scored


def test_experiment_every_option_and_set_key_reaches_the_config(tmp_path):
    cases = [
        Case(("--arms", "ip, no-ip"), "experiment.arms", ["ip", "no-ip"], None),
        Case(("--seed", "4", "--seed", "5"), "experiment.seeds", [4, 5], None),
        Case(("--judge", "openai:http://judge/v1#m"), "call.judge", "openai:http://judge/v1#m", None),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "experiment", ["--preset", "smoke"], cases)
    check_order(app, "experiment", ["--preset", "smoke"], tmp_path, "data.num_train", (5, 6, 6), [])
    check_order(app, "experiment", ["--preset", "smoke"], tmp_path, "sft.epochs", (2, 3, 3), [])


def test_experiment_defaults_are_every_arm_three_seeds_and_the_preset_name():
    config = config_of(app, ["experiment", "--preset", "cpu-hack"])
    assert config["experiment"] == {"arms": list(ARMS), "seeds": [0, 1, 2]}
    assert config["call"] == {
        "out": "runs/inoculation",
        "name": "cpu-hack",
        "overwrite": False,
        "judge": None,
    }
    assert config["data"] == PRESETS["cpu-hack"].data.model_dump(mode="json")
    assert config_of(app, ["experiment", "--overwrite"])["call"]["overwrite"] is True


def test_toy_every_option_reaches_the_config(tmp_path):
    cases = [
        Case(("--seed", "4", "--seed", "5"), "seeds", [4, 5]),
        Case(("--pretrain-steps", "3"), "pretrain_steps", 3),
        Case(("--finetune-steps", "2"), "finetune_steps", 2),
        Case(("--out", str(tmp_path / "runs")), "call.out", str(tmp_path / "runs"), None),
        Case(("--name", "asked"), "call.name", "asked", None),
        Case(("--report-to", "tensorboard"), "report_to", ["tensorboard"]),
    ]
    check_every_option(app, "toy", [], cases)
    config = config_of(app, ["toy"])
    assert config == {
        **ToyConfig().model_dump(mode="json"),
        "call": {"out": "runs/inoculation", "name": "toy", "overwrite": False},
    }
    assert config_of(app, ["toy", "--overwrite"])["call"]["overwrite"] is True


def help_row(command: str, option: str) -> str:
    """The text of `option`'s row in `reasonlab inoculation COMMAND --help` (drawn wide: one line per row)."""
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
        ("train", "--setting", "gcd (--preset cpu)"),
        ("train", "--num-train", "96 (--preset cpu)"),
        ("train", "--num-test", "30 (--preset cpu)"),
        ("train", "--learning-rate", "0.0005 (--preset cpu)"),
        ("train", "--data", "none (--preset cpu)"),
        ("train", "--preset", "cpu"),
        ("eval", "--llm", "hf:embedded"),
        ("eval", "--arm", "no-ip"),
        ("eval", "--num-test", "30 (--preset cpu)"),
        ("eval", "--setting", "gcd (--preset cpu)"),
        ("elicit", "--num-test", "30 (--preset cpu)"),
        ("build", "--num-train", "128"),
        ("experiment", "--seed", "0, 1, 2"),
        ("toy", "--pretrain-steps", "2000"),
        ("toy", "--finetune-steps", "60"),
        ("toy", "--seed", "0, 1, 2"),
    ],
)
def test_help_shows_the_presets_defaults(command, option, default):
    assert f"[default: {default}" in help_row(command, option)
