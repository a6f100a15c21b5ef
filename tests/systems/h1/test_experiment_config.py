"""The experiment's presets: the slot presets' chains fit their tokenizer and token cap; a row too narrow for H is refused;
an interrupted experiment reuses its saved warm start; the warm start stops at its accuracy target."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonlab.systems.h1 import experiment
from reasonlab.systems.h1.experiment import PRESETS, ExperimentConfig, run_seed
from reasonlab.systems.h1.modular import modular_tokenizer


@pytest.mark.parametrize("preset", ["slots", "values"])
def test_slot_preset_chains_fit_its_tokenizer_and_token_cap(preset: str):
    config = PRESETS[preset]
    warm = config.chains(2, 50, seed=0, skip_rate=config.sft_skip_rate)
    assert any(c.skips for c in warm) and any(not c.skips for c in warm)
    tokenizer = modular_tokenizer(config.modulus, config.max_depth + 3, config.ops, config.max_constant)
    for depth in config.eval_depths:
        for chain in config.chains(depth, 20, seed=0) + (warm if depth == 2 else []):
            target = tokenizer.encode(chain.target)
            assert tokenizer.unk_id not in target + tokenizer.encode(chain.prompt)
            assert len(target) + 1 <= config.max_tokens  # the worked chain and EOS fit at depth H + 2
    assert config.eval_depths == list(range(1, min(config.max_depth + 2, config.width - 1) + 1))
    assert ExperimentConfig(width=9, max_depth=4).eval_depths == [1, 2, 3, 4, 5, 6]  # H + 2 fits
    with pytest.raises(ValueError, match="width=4 must exceed H = 4"):
        ExperimentConfig(width=4, max_depth=4)


def test_run_seed_reuses_a_saved_warm_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    torch.set_num_threads(1)
    config = PRESETS["quick"].model_copy(update={"sft_steps": 20, "steps_per_stage": 1, "eval_chains": 4,
                                                 "probe_chains": 2, "tasks_per_iteration": 2})
    calls = []
    real = experiment.warm_start
    monkeypatch.setattr(experiment, "warm_start", lambda c, s: calls.append(s) or real(c, s))
    first = run_seed(config, tmp_path, seed=0, log=lambda *_: None)
    assert calls == [0] and (tmp_path / "seed0" / "warm_start" / "model.pt").is_file()
    second = run_seed(config, tmp_path, seed=0, log=lambda *_: None)
    assert calls == [0]  # loaded, not trained again
    assert second["warm_start"] == first["warm_start"]


def test_signal_plot_smooths_over_a_window():
    assert experiment._rolling_mean([1.0, 0.0, 1.0, 0.0], 2) == [1.0, 0.5, 0.5, 0.5]
    assert experiment._rolling_mean([], 10) == []


def test_the_warm_start_stops_at_its_accuracy_target(monkeypatch: pytest.MonkeyPatch):
    torch.set_num_threads(1)
    config = PRESETS["quick"].model_copy(update={"sft_steps": 30, "sft_chains_per_depth": 20, "sft_check_every": 10,
                                                 "eval_chains": 4})
    assert experiment.warm_start(config, seed=0)[1] == 30  # no target: every step
    scores = iter([0.2, 0.7])
    monkeypatch.setattr(experiment, "accuracy", lambda policy, chains, max_tokens: (next(scores), 0))
    _, steps = experiment.warm_start(config.model_copy(update={"sft_stop_accuracy": 0.6}), seed=0)
    assert steps == 20  # checked at steps 10 (0.2) and 20 (0.7 >= 0.6)
