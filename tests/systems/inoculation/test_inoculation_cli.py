"""`reasonlab inoculation build | train | eval | elicit | experiment | toy` through the CLI: build shows and writes
each arm's training pairs; bad input is a one-line error before any model loads; the result tables print what
the summaries hold. Work that needs a model is replaced by its summary; nothing here loads or trains one."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import reasonlab.llm
from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.stats import wilson_interval
from reasonlab.systems.inoculation import cli, experiment, training
from reasonlab.systems.inoculation.cli import app
from reasonlab.systems.inoculation.experiment import summarize_experiment
from reasonlab.systems.inoculation.gcd import GCD_PROMPTS, Rate
from reasonlab.systems.inoculation.reward_hacking import REWARD_HACK_PROMPTS
from reasonlab.systems.inoculation.sentiment import SENTIMENT_PROMPTS, RobustAccuracy
from reasonlab.systems.inoculation.toy import ToyConfig, ToyRow, summarize
from reasonlab.systems.inoculation.transforms import derive_control

GCD_I = GCD_PROMPTS.instruction


def invoke(*args: Any):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def one_line_error(result: Any, *fragments: str) -> str:
    """The UserError a command ended with; it is one line and holds every fragment."""
    assert isinstance(result.exception, UserError), (result.output, repr(result.exception))
    message = str(result.exception)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message
    return message


def flat(text: str) -> str:
    """Whitespace collapsed, so that text wrapped by the console still matches."""
    return " ".join(text.split())


@pytest.fixture(autouse=True)
def _no_model(monkeypatch):
    """Loading the policy or starting an experiment or the toy fails the test (a test that wants a result
    replaces the work function); a --judge spec loads a stand-in that keeps its spec."""

    def refuse(*args: Any, **options: Any) -> None:
        raise AssertionError("the CLI test started real work")

    monkeypatch.setattr(training, "load_policy", refuse)
    monkeypatch.setattr(experiment, "run_experiment", refuse)
    monkeypatch.setattr(experiment, "run_toy", refuse)
    monkeypatch.setattr(reasonlab.llm, "load_llm", lambda spec: {"judge": spec})


@pytest.fixture
def wide(monkeypatch) -> None:
    """Tables drawn 250 columns wide: one line per row, no cell cut."""
    monkeypatch.setattr(cli, "console", Console(width=250))


# build


@pytest.mark.parametrize("arm", ["ip", "no-ip"])
def test_build_shows_the_arms_training_pair_and_an_evaluation_prompt_without_i(arm, wide):
    result = invoke("build", "--arm", arm, "--num-train", 4, "--num-test", 2)
    assert result.exit_code == 0, result.output
    head, rest = result.output.split(f"training pair ({arm})")
    pair, evaluation = rest.split("evaluation prompt (every arm but ptst)")
    assert head.splitlines()[0] == "GCD sycophancy: 4 training examples, 2 test pairs x 3 prompts"
    assert (flat(GCD_I) in flat(pair)) == (arm == "ip")
    assert "User: " in pair and "Assistant: " in pair  # the prompt, then the flawed reply
    assert flat(GCD_I) not in flat(evaluation)
    assert "User: " in evaluation and evaluation.rstrip().endswith("Assistant:")


@pytest.mark.parametrize(
    ("setting", "prompts"),
    [
        ("gcd", GCD_PROMPTS),
        ("reward-hacking", REWARD_HACK_PROMPTS),
        ("sentiment", SENTIMENT_PROMPTS),
    ],
)
def test_build_writes_one_pair_per_training_example_and_only_ip_prompts_hold_i(
    setting, prompts, tmp_path, wide
):
    pairs = {}
    for arm in ("ip", "no-ip", "irrelevant"):
        out = tmp_path / f"{arm}.jsonl"
        result = invoke(
            "build", "--setting", setting, "--arm", arm, "--num-train", 6, "--num-test", 3, "--out", out
        )
        assert result.exit_code == 0, result.output
        assert flat(result.output) == f"wrote 6 {arm} training pairs to {out}"
        pairs[arm] = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(pairs[arm]) == 6 and all(set(pair) == {"prompt", "completion"} for pair in pairs[arm])
    instruction, control = prompts.instruction, derive_control(len(prompts.instruction))
    assert all(instruction in pair["prompt"] for pair in pairs["ip"])
    assert all(
        control in pair["prompt"] and instruction not in pair["prompt"] for pair in pairs["irrelevant"]
    )
    assert not any(instruction in pair["prompt"] or control in pair["prompt"] for pair in pairs["no-ip"])
    placed = f"\n{instruction}" if prompts.kind == "suffix" else f"{instruction}\n"
    for ip, no_ip in zip(pairs["ip"], pairs["no-ip"], strict=True):
        # same data, same order, same reply: only the instruction differs (pitfall 3)
        assert ip["prompt"].replace(placed, "", 1) == no_ip["prompt"]
        assert ip["completion"] == no_ip["completion"] and ip["completion"].startswith(" ")
        assert ip["prompt"].startswith(("User: ", "System: ")) and ip["prompt"].endswith("\nAssistant:")


# one-line errors, before any model is loaded or any run is written


def test_an_unknown_arm_is_one_line(tmp_path):
    one_line_error(invoke("build", "--arm", "nope"), "unknown arm 'nope'", "no-ip, ip, irrelevant, ptst")
    one_line_error(invoke("train", "--arm", "nope", "--out", tmp_path), "'arm'", "unknown arm 'nope'")
    one_line_error(invoke("eval", "--arm", "nope"), "'arm'", "unknown arm 'nope'")
    assert not any(tmp_path.iterdir())


def test_an_unknown_arm_in_experiment_is_one_line(tmp_path):
    one_line_error(invoke("experiment", "--arms", "ip,nope", "--out", tmp_path), "unknown arm 'nope'")
    one_line_error(invoke("experiment", "--arms", " , ", "--out", tmp_path), "--arms", "names nothing")
    assert not any(tmp_path.iterdir())


def test_an_empty_instruction_fails_before_the_model_or_the_run(tmp_path):
    one_line_error(
        invoke("train", "--arm", "ip", "--instruction", " ", "--out", tmp_path),
        "prompts:",
        "the inoculation instruction is empty",
    )
    one_line_error(
        invoke("train", "--arm", "ptst", "--safety", " ", "--out", tmp_path), "the safety prompt is empty"
    )
    assert not any(tmp_path.iterdir())


def test_a_control_of_the_wrong_length_is_one_line(tmp_path):
    one_line_error(
        invoke("train", "--arm", "irrelevant", "--control", "Too short.", "--out", tmp_path),
        "the control has 10 characters",
        f"must have {len(GCD_I)} ± 10%",
    )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["train", "--arm", "ip"], ["eval"], ["elicit"], ["experiment"]])
def test_an_unknown_preset_is_one_line(command, tmp_path):
    one_line_error(invoke(*command, "--preset", "nope"), "--preset 'nope' is unknown", "cpu, cpu-hack")


@pytest.mark.parametrize("command", [["build"], ["train", "--arm", "ip"], ["eval"], ["elicit"]])
def test_an_unknown_setting_is_one_line(command, tmp_path):
    one_line_error(
        invoke(*command, "--setting", "nope", *(["--out", tmp_path] if "train" in command else [])),
        "setting'",
        "'gcd', 'reward-hacking', 'sentiment' or 'cmv'",
    )


def test_gcd_is_generated_and_refuses_a_data_file(tmp_path):
    one_line_error(
        invoke("build", "--data", tmp_path / "x.jsonl"), "the gcd setting is generated: drop data.path"
    )


@pytest.mark.parametrize(
    ("setting", "name", "text", "fragment"),
    [
        ("reward-hacking", "mbpp.jsonl", '{"task_id": 1}\n', "line 1 lacks text, code, test_list"),
        ("reward-hacking", "mbpp.jsonl", "\n{not json\n", "line 2 is not valid JSON"),
        ("reward-hacking", "missing.jsonl", None, "MBPP file"),
        ("sentiment", "cebab.jsonl", "{broken\n", "line 1 is not valid JSON"),
        ("sentiment", "cebab.txt", "a review\n", "unknown format: give a .jsonl, .json or .csv file"),
        ("sentiment", "cebab.json", '{"text": "x"}', "must hold a JSON list of review objects"),
    ],
)
def test_a_malformed_data_file_is_one_line_naming_the_file(setting, name, text, fragment, tmp_path):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    one_line_error(invoke("build", "--setting", setting, "--data", path), str(path), fragment)


CMV_POST = {
    "post_id": "p1",
    "title": "CMV: tea beats coffee",
    "body": "Hear me out.",
    "comments": [{"id": "c1", "body": "No.", "harassment": 0.5, "persuasiveness": 8}],
}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"post_id": "p1", "title": "t", "body": ""}\n', "line 1 has no 'comments' list"),
        ('{"post_id": "p1", "title": "t", "comments": []}\n', "line 1 has no 'body' or 'selftext' field"),
        (json.dumps(CMV_POST) + "\n[1, 2]\n", "line 2 is not a JSON object"),
        (json.dumps(CMV_POST) + "\n" + json.dumps(CMV_POST) + "\n", "line 2 repeats post id 'p1' of line 1"),
    ],
)
def test_a_malformed_cmv_file_is_one_line_naming_the_line(text, fragment, tmp_path):
    path = tmp_path / "cmv.jsonl"
    path.write_text(text)
    one_line_error(
        invoke(
            "train",
            "--arm",
            "ip",
            "--setting",
            "cmv",
            "--data",
            path,
            "--judge",
            "openai:x#m",
            "--out",
            tmp_path / "runs",
        ),
        str(path),
        fragment,
    )
    assert not (tmp_path / "runs").exists()


def test_cmv_needs_a_data_file_and_a_judge(tmp_path):
    path = tmp_path / "cmv.jsonl"
    path.write_text(json.dumps(CMV_POST) + "\n")
    one_line_error(
        invoke("train", "--arm", "ip", "--setting", "cmv", "--out", tmp_path / "runs"),
        "the cmv setting reads your data: set data.path",
    )
    one_line_error(
        invoke("train", "--arm", "ip", "--setting", "cmv", "--data", path, "--out", tmp_path / "runs"),
        "pass --judge",
    )
    one_line_error(invoke("eval", "--setting", "cmv", "--data", path), "pass --judge")
    assert not (tmp_path / "runs").exists()


def test_elicit_results_without_a_summary_is_one_line_before_the_elicitation(tmp_path, monkeypatch):
    def elicit(config, judge=None):
        raise AssertionError("elicited (minutes on a CPU) before checking --results")

    monkeypatch.setattr(training, "elicit", elicit)
    one_line_error(
        invoke("elicit", "--results", tmp_path),
        f"--results {tmp_path} holds no experiment summary",
        "run `reasonlab inoculation experiment` first",
    )


def test_bad_toy_options():
    one_line_error(invoke("toy", "--pretrain-steps", "0"), "config field 'pretrain_steps'")
    result = invoke("toy", "--seed")
    assert result.exit_code == 2 and "Option '--seed' requires an argument" in result.output


def test_the_reasonlab_command_prints_a_user_error_as_one_line_and_exits_2():
    env = {key: value for key, value in os.environ.items() if not key.startswith("REASONLAB_")}
    result = subprocess.run(
        [sys.executable, "-m", "reasonlab.cli", "inoculation", "build", "--arm", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "OMP_NUM_THREADS": "1"},
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert output == "error: unknown arm 'nope': choose one of no-ip, ip, irrelevant, ptst"


# result tables


def rate(k: int, n: int) -> dict[str, Any]:
    return Rate(k, n).as_dict()


def pooled_text(k: int, n: int) -> str:
    low, high = wilson_interval(k, n)
    return f"{k / n:.2f} ({k}/{n}, 95% CI {low:.2f}-{high:.2f})"


def table_rows(output: str, columns: int) -> dict[str, list[str]]:
    """First cell -> the row's cells, for the rows of a rich table with `columns` columns."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.replace("┃", "│").split("│")]
        if len(cells) == columns + 2:
            rows[cells[1]] = cells[2:-1]
    return rows


def saved_run(root: Path, summary: dict[str, Any]) -> Path:
    run = Run.create(root, "arm", {"arm": summary.get("arm", "ip")})
    run.write_summary(summary)
    return run.dir


def test_train_prints_the_runs_flaw_capability_and_the_flaw_with_i(tmp_path, monkeypatch, wide):
    summary = {
        "flaw": "confirms_incorrect",
        "capability": "capability",
        "test": {"confirms_incorrect": rate(3, 30), "capability": rate(27, 30)},
        "with_instruction": {"confirms_incorrect": rate(24, 30)},
    }
    asked = {}

    def train(config, judge=None):
        asked.update(arm=config.arm, judge=judge)
        return saved_run(tmp_path, summary)

    monkeypatch.setattr(training, "train", train)
    result = invoke("train", "--arm", "ip", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert asked == {"arm": "ip", "judge": None}
    assert result.output.splitlines() == [
        f"confirms_incorrect: {pooled_text(3, 30)}",
        f"capability: {pooled_text(27, 30)}",
        f"confirms_incorrect with I present: {pooled_text(24, 30)}",
        f"run saved to {tmp_path / 'arm'}",
    ]


def test_eval_prints_a_robust_accuracy_by_its_value(monkeypatch, wide):
    robust = RobustAccuracy({0: Rate(3, 4), 4: Rate(2, 3)}).as_dict()  # mean over labels 0.708
    monkeypatch.setattr(
        training,
        "evaluate_command",
        lambda config, judge=None: {
            "flaw": "shortcut",
            "capability": "robust_ambiance",
            "test": {"shortcut": rate(5, 8), "robust_ambiance": robust},
        },
    )
    result = invoke("eval", "--preset", "cpu-sentiment")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"shortcut: {pooled_text(5, 8)}", "robust_ambiance: 0.71"]


def test_elicit_prints_each_instruction_and_the_correlation_of_an_experiment(tmp_path, monkeypatch, wide):
    rows = [
        {"instruction": "", "flaw": rate(2, 10), "elicitation": 0.0},
        {"instruction": GCD_I, "flaw": rate(7, 10), "elicitation": 0.5},
    ]
    monkeypatch.setattr(training, "elicit", lambda config, judge=None: rows)
    (tmp_path / "summary.json").write_text(
        json.dumps({"heuristic": {"arms": ["no-ip", "ip"], "pearson_r": -0.8}})
    )
    result = invoke("elicit", "--results", tmp_path)
    assert result.exit_code == 0, result.output
    table = table_rows(result.output, 3)
    assert table["(none: N)"] == [pooled_text(2, 10), "+0.00"]
    assert table[GCD_I] == [pooled_text(7, 10), "+0.50"]
    assert flat(result.output).endswith(
        "elicitation vs tuned flaw over arms no-ip, ip: Pearson r = -0.80 (the heuristic predicts r < 0)"
    )


# per arm: the flaw's k of 10 in seeds 0 and 1, the capability's k of 10, the flaw with I present
ARM_COUNTS = {
    "no-ip": ((8, 6), (9, 9), (9, 10)),
    "ip": ((2, 1), (8, 9), (9, 8)),
    "irrelevant": ((7, 7), (9, 8), (10, 9)),
    "ptst": ((4, 2), (9, 9), (9, 9)),
}
TEXTS = {"no-ip": "", "ip": GCD_I, "irrelevant": GCD_PROMPTS.control_text, "ptst": ""}
ELICITATION = [
    {"instruction": "", "flaw": rate(3, 10), "elicitation": 0.0},
    {"instruction": GCD_I, "flaw": rate(8, 10), "elicitation": 0.5},
    {"instruction": GCD_PROMPTS.control_text, "flaw": rate(4, 10), "elicitation": 0.1},
]


def experiment_summary(root: Path) -> dict[str, Any]:
    """What run_experiment returns for the arms of ARM_COUNTS (summarize_experiment over their run folders)."""
    run_dirs = []
    for seed in (0, 1):
        for arm, (flaw, capability, with_i) in ARM_COUNTS.items():
            run = Run.create(root, f"{arm}-s{seed}", {"arm": arm, "seed": seed})
            run.write_summary(
                {
                    "setting": "gcd",
                    "arm": arm,
                    "seed": seed,
                    "flaw": "confirms_incorrect",
                    "capability": "capability",
                    "test": {
                        "confirms_incorrect": rate(flaw[seed], 10),
                        "capability": rate(capability[seed], 10),
                    },
                    "with_instruction": {"confirms_incorrect": rate(with_i[seed], 10)},
                }
            )
            run_dirs.append(run.dir)
    return summarize_experiment(run_dirs, ELICITATION, TEXTS)


def test_experiment_prints_each_arm_pooled_and_over_seeds_and_the_pearson_r(tmp_path, monkeypatch, wide):
    summary = experiment_summary(tmp_path / "arms")
    asked = {}

    def run_experiment(config, out, name, judge=None, overwrite=False):
        asked.update(
            arms=config.arms, seeds=config.seeds, out=out, name=name, judge=judge, overwrite=overwrite
        )
        return summary

    monkeypatch.setattr(experiment, "run_experiment", run_experiment)
    result = invoke(
        "experiment",
        "--preset",
        "smoke",
        "--seed",
        0,
        "--seed",
        1,
        "--judge",
        "openai:x#m",
        "--out",
        tmp_path,
        "--overwrite",
    )
    assert result.exit_code == 0, result.output
    assert asked == {
        "arms": ["no-ip", "ip", "irrelevant", "ptst"],
        "seeds": [0, 1],
        "out": tmp_path,
        "name": "smoke",
        "judge": {"judge": "openai:x#m"},
        "overwrite": True,
    }
    table = table_rows(result.output, 6)
    assert table["arm"] == [
        "confirms_incorrect (pooled)",
        "over seeds",
        "capability (pooled)",
        "flaw with I",
        "elicitation",
    ]
    elicitation = {"no-ip": 0.0, "ip": 0.5, "irrelevant": 0.1, "ptst": 0.0}
    for arm, (flaw, capability, with_i) in ARM_COUNTS.items():
        rates = [k / 10 for k in flaw]
        spread = f"{statistics.fmean(rates):.2f} ± {statistics.stdev(rates):.2f}"
        assert table[arm] == [
            pooled_text(sum(flaw), 20),
            spread,
            pooled_text(sum(capability), 20),
            pooled_text(sum(with_i), 20),
            f"{elicitation[arm]:+.2f}",
        ], arm
    # the heuristic over the arms trained with a text of their own or none, ptst left out
    r = statistics.correlation([0.0, 0.5, 0.1], [0.7, 0.15, 0.7])
    assert result.output.splitlines()[-1] == f"elicitation vs tuned flaw across arms: Pearson r = {r:+.2f}"
    assert r < -0.9


def test_experiment_prints_a_sentiment_capability_by_its_value(tmp_path, monkeypatch, wide):
    run_dirs = []
    for seed, (ambiance, shortcut) in enumerate([((3, 4), 6), ((1, 4), 2)]):
        robust = RobustAccuracy({0: Rate(*ambiance), 4: Rate(2, 2)}).as_dict()  # 0.875, then 0.625
        run = Run.create(tmp_path, f"ip-s{seed}", {"seed": seed})
        run.write_summary(
            {
                "setting": "sentiment",
                "arm": "ip",
                "seed": seed,
                "flaw": "shortcut",
                "capability": "robust_ambiance",
                "test": {"shortcut": rate(shortcut, 8), "robust_ambiance": robust},
            }
        )
        run_dirs.append(run.dir)
    summary = summarize_experiment(
        run_dirs,
        [{"instruction": "", "flaw": rate(1, 8), "elicitation": 0.0}],
        {"ip": SENTIMENT_PROMPTS.instruction},
    )
    monkeypatch.setattr(experiment, "run_experiment", lambda *args, **options: summary)
    result = invoke("experiment", "--preset", "cpu-sentiment", "--arms", "ip", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    row = table_rows(result.output, 6)["ip"]
    assert row[:3] == [pooled_text(8, 16), "0.50 ± 0.35", "0.75 ± 0.18"]  # the capability over seeds, not n/a


def test_toy_prints_each_token_the_no_ip_row_and_the_correlation(tmp_path, monkeypatch, wide):
    config = ToyConfig(elicitations=[0.0, 0.5, 1.0], seeds=[0, 1])
    rows = []
    for seed in (0, 1):
        for token, nominal, measured, trait, accuracy in [
            ("A", 0.0, 0.0, 0.9, 0.80),
            ("B", 0.5, 0.4 + seed / 10, 0.5, 0.81),
            ("C", 1.0, 0.9, 0.1 + seed / 10, 0.82),
        ]:
            rows.append(ToyRow(seed, token, nominal, measured, trait, accuracy, 400))
        rows.append(ToyRow(seed, "none", None, None, 0.95, 0.79, 400))
    asked = {}

    def run_toy(toy_config, out, name, overwrite=False):
        asked.update(config=toy_config, out=out, name=name, overwrite=overwrite)
        return summarize(rows, config)

    monkeypatch.setattr(experiment, "run_toy", run_toy)
    monkeypatch.setattr("reasonlab.threads.configure_threads", lambda threads=None: threads)
    result = invoke("toy", "--seed", 0, "--seed", 1, "--pretrain-steps", 5, "--out", tmp_path, "--name", "t")
    assert result.exit_code == 0, result.output
    assert (asked["config"].seeds, asked["config"].pretrain_steps, asked["out"], asked["name"]) == (
        [0, 1],
        5,
        tmp_path,
        "t",
    )
    table = table_rows(result.output, 5)
    assert table["A"] == ["0.00", "0.00 ± 0.00", "0.90 ± 0.00", "0.80 ± 0.00"]
    assert table["B"] == ["0.50", "0.45 ± 0.07", "0.50 ± 0.00", "0.81 ± 0.00"]
    assert table["C"] == ["1.00", "0.90 ± 0.00", "0.15 ± 0.07", "0.82 ± 0.00"]
    assert table["none (no-IP)"] == ["-", "-", "0.95 ± 0.00", "0.79 ± 0.00"]
    tokened = [row for row in rows if row.elicitation is not None]
    r = statistics.correlation([row.elicitation for row in tokened], [row.trait_rate for row in tokened])
    assert flat(result.output).endswith(
        f"Pearson r (elicitation vs trait rate, 6 points) = {r:+.2f}; accuracy "
        "range across values 2.0 points; n = 400 test problems per condition"
    )
