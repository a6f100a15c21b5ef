"""h1's configs and presets: the run of record first, slot presets whose chains fit their tokenizer and token cap,
a row too narrow for H refused, and the train / eval presets derived from an experiment preset."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reasonlab.systems.h1.cli import PRESET_NAMES
from reasonlab.systems.h1.config import (
    PRESETS,
    EvalConfig,
    ExperimentConfig,
    arm_config,
    eval_preset,
    train_preset,
)


def test_the_run_of_record_is_the_first_preset():
    assert list(PRESETS) == ["values", "slots", "main", "quick", "demo"]
    assert " | ".join(PRESETS) == PRESET_NAMES  # the CLI's help, written out there so that it starts without torch
    values = PRESETS["values"]
    assert (values.modulus, values.width, values.lines, values.max_depth, values.eval_depths[-1]) == (61, 13, "value", 10, 12)


@pytest.mark.parametrize("preset", ["slots", "values", "demo"])
def test_slot_preset_chains_fit_its_tokenizer_and_token_cap(preset: str):
    config = PRESETS[preset]
    warm = config.chains(2, 50, seed=0, skip_rate=config.sft_skip_rate)
    assert any(c.skips for c in warm) and any(not c.skips for c in warm)
    tokenizer = config.tokenizer(config.max_depth)
    for depth in config.eval_depths:
        for chain in config.chains(depth, 20, seed=0) + (warm if depth == 2 else []):
            target = tokenizer.encode(chain.target)
            assert tokenizer.unk_id not in target + tokenizer.encode(chain.prompt)
            assert len(target) + 1 <= config.max_tokens  # the worked chain and EOS fit at depth H + 2
    assert config.eval_depths == list(range(1, min(config.max_depth + 2, config.width - 1) + 1))
    assert ExperimentConfig(width=9, max_depth=4).eval_depths == [1, 2, 3, 4, 5, 6]  # H + 2 fits
    with pytest.raises(ValueError, match="width=4 must exceed H = 4"):
        ExperimentConfig(width=4, max_depth=4)


def test_arms_share_the_format_and_rl_settings_and_differ_in_schedule_and_budget():
    config = PRESETS["values"]
    curriculum, direct = arm_config(config, "curriculum", 2, None), arm_config(config, "direct", 2, 5000)
    assert (curriculum.curriculum.schedule, curriculum.curriculum.min_depth, curriculum.rl.iterations) == ("adaptive", 1, 600)
    assert (direct.curriculum.schedule, direct.token_budget, direct.rl.iterations) == ("direct", 5000, 2400)
    assert curriculum.task == direct.task == config.chain_format() and curriculum.rl.seed == 2
    assert curriculum.rl.sampling.max_tokens == config.max_tokens == 18  # depth 12 in value lines: 12 + 6
    assert curriculum.curriculum.window == 10 and arm_config(PRESETS["main"], "uniform", 0, 1).curriculum.window == 10


def test_train_and_eval_presets():
    train = train_preset(PRESETS["quick"])
    assert (train["curriculum"]["max_depth"], train["curriculum"]["steps_per_stage"], train["rl"]["seed"]) == (3, 6, 0)
    assert train["policy"] is None and train["task"]["modulus"] == 31
    assert eval_preset(PRESETS["values"]) == {"task": PRESETS["values"].chain_format().model_dump(), "depths": 12,
                                              "chains": 128}
    with pytest.raises(ValidationError, match="depths 13 does not fit the rows of 13 slots: use at most 12"):
        EvalConfig.model_validate({**eval_preset(PRESETS["values"]), "policy": "p", "depths": 13})
