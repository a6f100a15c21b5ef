"""The shared config helper: presets, YAML files, --set pairs and named options, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from reasonlab.config import lookup_preset, parse_sets, resolve_config
from reasonlab.errors import UserError


class Optimizer(BaseModel):
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)


class ToyConfig(BaseModel):
    mixer: str = "attention"
    threads: int | None = None
    steps: int = Field(100, ge=1)
    optimizer: Optimizer = Optimizer()


PRESETS = {"main": ToyConfig(steps=500), "quick": ToyConfig(steps=5, mixer="mlp")}


def test_parse_sets_reads_yaml_values_and_dotted_keys() -> None:
    assert parse_sets(["steps=3", "optimizer.lr=1e-4", "name=abc", "seeds=[0, 1]", "flag=true", "empty="]) == {
        "steps": 3, "optimizer": {"lr": 1e-4}, "name": "abc", "seeds": [0, 1], "flag": True, "empty": ""}
    assert parse_sets(["max-steps=2"]) == {"max_steps": 2}


def test_parse_sets_refuses_a_pair_without_equals() -> None:
    with pytest.raises(UserError, match=r"--set 'steps' is not KEY=VALUE"):
        parse_sets(["steps"])


def test_order_preset_then_file_then_set_then_named_options(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("steps: 7\nmixer: mlp\noptimizer:\n  lr: 0.5\n")

    config = resolve_config(ToyConfig, PRESETS["main"], file, ["mixer=attention", "optimizer.betas=[0.8, 0.9]"],
                            steps=9, threads=None)

    assert config.steps == 9  # named option beats the file
    assert config.mixer == "attention"  # --set beats the file
    assert config.optimizer == Optimizer(lr=0.5, betas=(0.8, 0.9))  # nested keys merge, not replace
    assert config.threads is None


def test_an_option_left_at_none_does_not_undo_a_set_value() -> None:
    config = resolve_config(ToyConfig, PRESETS["main"], None, ["mixer=mlp", "threads=1"], mixer=None, threads=None)
    assert (config.mixer, config.threads, config.steps) == ("mlp", 1, 500)


def test_unknown_keys_are_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"--set: ToyConfig has no option 'stpes' \(did you mean steps\?\)"):
        resolve_config(ToyConfig, None, None, ["stpes=3"])
    with pytest.raises(UserError, match=r"has no option 'optimizer.rate'"):
        resolve_config(ToyConfig, None, None, ["optimizer.rate=3"])
    file = tmp_path / "bad.yaml"
    file.write_text("mixr: mlp\n")
    with pytest.raises(UserError, match=r"config file .*bad.yaml: ToyConfig has no option 'mixr'"):
        resolve_config(ToyConfig, None, file)


def test_invalid_values_are_one_sentence() -> None:
    with pytest.raises(UserError) as caught:
        resolve_config(ToyConfig, None, None, ["steps=0"])
    message = str(caught.value)
    assert message.startswith("config field 'steps': Input should be greater than or equal to 1")
    assert "\n" not in message and "http" not in message


def test_lookup_preset_lists_the_names() -> None:
    assert lookup_preset(PRESETS, "quick").steps == 5
    with pytest.raises(UserError, match=r"--preset 'quik' is unknown \(did you mean 'quick'\?\): use one of main, quick"):
        lookup_preset(PRESETS, "quik")


def test_the_preset_itself_is_not_modified() -> None:
    resolve_config(ToyConfig, PRESETS["main"], None, ["optimizer.lr=0.7"])
    assert PRESETS["main"].optimizer.lr == 1e-3


def test_parse_list_splits_commas_and_refuses_an_empty_list() -> None:
    from reasonlab.config import parse_list

    assert parse_list(None, "--arms") is None
    assert parse_list(" oracle, rag ,", "--arms") == ["oracle", "rag"]
    with pytest.raises(UserError, match=r"--arms ' , ' names nothing: give a comma-separated list"):
        parse_list(" , ", "--arms")
