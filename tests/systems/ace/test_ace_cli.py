"""`reasonlab ace show` and option parsing (model-free)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from reasonlab.errors import UserError
from reasonlab.systems.ace.cli import _config, app
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


def test_config_merges_yaml_options_set_and_data(tmp_path) -> None:
    yaml_file = tmp_path / "ace.yaml"
    yaml_file.write_text("task: tools\nepochs: 2\nroles:\n  retries: 4\n")
    config = _config(yaml_file, ["window=3", "roles.field_chars=40"], ["test=t.jsonl"], mode="online", llm=None)
    assert (config.task, config.epochs, config.window, config.mode) == ("tools", 2, 3, "online")
    assert config.roles.field_chars == 40 and config.roles.retries == 4 and config.data == {"test": "t.jsonl"}
    with pytest.raises(UserError, match="KEY=VALUE"):
        _config(None, ["window"], [])
    with pytest.raises(UserError, match="config field 'epochs'"):
        _config(None, ["epochs=0"], [])


def test_quick_demo_is_registered_and_small() -> None:
    from reasonlab.demo import discover_demos
    from reasonlab.systems.ace.experiment import QUICK

    assert "ace" in discover_demos()
    assert QUICK["train_size"] * 3 + QUICK["test_size"] * 3 <= 20  # LLM calls stay in the tens
