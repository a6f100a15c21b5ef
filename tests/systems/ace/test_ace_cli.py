"""`reasonlab ace` commands with a scripted LLM: saved configs, option errors, reruns, the experiment."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.ace.cli import app
from reasonlab.systems.ace.config import PRESETS
from reasonlab.systems.ace.playbook import Playbook


def test_show_prints_sections_ids_and_counters(tmp_path) -> None:
    playbook = Playbook()
    playbook.add("formulas_and_calculations", "zeta margin = (revenue - cost) / revenue").helpful = 2
    playbook.add("others", "check the units")
    path = tmp_path / "playbook.json"
    playbook.save(path)
    result = CliRunner().invoke(app, ["show", str(path)], terminal_width=200)
    assert result.exit_code == 0
    assert "formulas_and_calculations" in result.output and "calc-00001" in result.output
    assert "zeta margin = (revenue - cost) / revenue" in result.output
    assert "2 bullets, 0 high-performing, 0 problematic, 1 unused; next id 3" in result.output
    raw = CliRunner().invoke(app, ["show", str(path), "--raw"], terminal_width=200)
    assert raw.output.strip() == playbook.render()


def test_show_missing_file_is_a_user_error(tmp_path) -> None:
    result = CliRunner().invoke(app, ["show", str(tmp_path / "nope.json")])
    assert isinstance(result.exception, UserError) and "does not exist" in str(result.exception)


@pytest.fixture
def scripted_model(rule_llm, monkeypatch):
    """Every `load_llm(spec)` of the commands returns the rule-following scripted LLM."""
    monkeypatch.setattr("reasonlab.llm.load_llm", lambda spec, **options: rule_llm())


def test_adapt_saves_the_config_it_was_asked_for(tmp_path, scripted_model) -> None:
    yaml_file = tmp_path / "ace.yaml"
    yaml_file.write_text("epochs: 2\nroles:\n  retries: 4\n")
    args = ["adapt", "--preset", "quick", "--config", str(yaml_file), "--set", "roles.field_chars=40",
            "--set", "dedup=false", "--method", "dc", "--train-size", "1", "--seed", "3", "--data", "test=t.jsonl",
            "--out", str(tmp_path), "--name", "a"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    # the option, --set, the YAML file and the preset, each where it was the last to speak
    assert (saved["method"], saved["train_size"], saved["seed"], saved["dedup"]) == ("dc", 1, 3, False)
    assert (saved["epochs"], saved["roles"]["retries"], saved["roles"]["field_chars"]) == (2, 4, 40)
    quick = PRESETS["quick"].adaptation
    assert (saved["roles"]["max_tokens"], saved["test_size"], saved["oracle_reflector"]) == (
        160, quick.test_size, True)
    assert saved["data"] == {"test": "t.jsonl"} and saved["task_options"] == quick.task_options
    assert "test accuracy " in result.output
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, UserError) and "already exists" in str(again.exception)
    assert CliRunner().invoke(app, [*args, "--resume"]).exit_code == 0


def test_eval_prints_the_score_and_writes_nothing(tmp_path, scripted_model) -> None:
    result = CliRunner().invoke(app, ["eval", "--preset", "quick", "--test-size", "1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("accuracy 0.000 on 1 samples (parse rate 1.000); 0 context tokens")


@pytest.mark.parametrize(("args", "message"), [
    (["--preset", "nope"], "--preset 'nope' is unknown"),
    (["--set", "rolez.retries=1"], "ACEConfig has no option 'rolez'"),
    (["--set", "roles.retriez=1"], "has no option 'roles.retriez' (did you mean roles.retries?)"),
    (["--set", "epochs=0"], "config field 'epochs'"),
    (["--data", "test"], "--data 'test' is not SPLIT=PATH"),
])
def test_adapt_option_errors_are_one_line(tmp_path, args, message) -> None:
    result = CliRunner().invoke(app, ["adapt", *args, "--out", str(tmp_path)])
    assert isinstance(result.exception, UserError) and message in str(result.exception)
    assert "\n" not in str(result.exception) and not list(tmp_path.iterdir())


def test_experiment_saves_its_config_and_compares_arms_over_seeds(tmp_path, scripted_model) -> None:
    args = ["experiment", "--preset", "quick", "--set", "adaptation.dedup=false", "--arms", "ace,none",
            "--seeds", "0,1", "--llm", "scripted", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = Run.open(tmp_path / "quick")
    saved = run.config()
    assert (saved["arms"], saved["seeds"]) == (["ace", "none"], [0, 1])
    assert (saved["adaptation"]["llm"], saved["adaptation"]["dedup"], saved["adaptation"]["train_size"]) == (
        "scripted", False, 2)
    assert sorted(p.name for p in (run.dir / "arms").iterdir()) == ["ace-seed0", "ace-seed1", "none-seed0",
                                                                     "none-seed1"]
    assert Run.open(run.dir / "arms" / "ace-seed1").config()["seed"] == 1
    summary = run.summary()
    ace, none = summary["arms"]["ace"], summary["arms"]["none"]
    assert ace["test_accuracy"] == {"mean": 1.0, "spread": 0.0, "min": 1.0, "max": 1.0, "n": 2}
    assert none["test_accuracy"]["mean"] == 0.0
    # the playbook keeps all 6 seeded rules; the empty context never held them
    assert ace["facts_retained_fraction"]["mean"] == 1.0 and none["facts_retained_fraction"]["mean"] == 0.0
    assert "ace   test accuracy 1.000 ± 0.000 (n=2)" in result.output
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, UserError) and "already exists" in str(again.exception)
    resumed = CliRunner().invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0 and resumed.output.count("reusing the finished adaptation") == 4
    missing = CliRunner().invoke(app, [*args, "--name", "other", "--resume"])
    assert isinstance(missing.exception, UserError) and "there is no run in" in str(missing.exception)


def test_quick_demo_is_registered_and_small() -> None:
    from reasonlab.demo import discover_demos
    from reasonlab.systems.ace.config import PRESETS

    assert "ace" in discover_demos()
    quick = PRESETS["quick"]
    assert len(quick.seeds) <= 2 and len(quick.arms) == 2
    # LLM calls stay in the tens: Generator, Reflector and Curator per training question, one call per test one
    assert quick.adaptation.train_size * 3 + quick.adaptation.test_size <= 20
    assert next(iter(PRESETS)) == "mini" and PRESETS["mini"].adaptation == quick.adaptation
