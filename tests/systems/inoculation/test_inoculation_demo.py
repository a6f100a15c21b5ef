"""Inoculation's quick demo: its headline (Pearson r and the accuracy range with n and spreads), the bar it
holds to, and the pretrained toy models it ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonlab.demo import read_headline
from reasonlab.systems.inoculation import experiment
from reasonlab.systems.inoculation.experiment import DEMO_ASSET, quick, toy_headline
from reasonlab.systems.inoculation.toy import ToyConfig, ToyRow, summarize
from reasonlab.train.tinylm import TinyLM


def rows(trait: dict[float, float], accuracy: float = 0.97, dip: float = 0.0) -> list[ToyRow]:
    """Two seeds' rows: no-IP, then one row per control token with the given trait rate after fine-tuning."""
    config = ToyConfig()
    made = []
    for seed in (0, 1):
        made.append(ToyRow(seed, "none", None, None, 1.0, accuracy, 400))
        for k, e in enumerate(config.elicitations):
            made.append(ToyRow(seed, "ABCDE"[k], e, e, trait[e], accuracy - (dip if k == 1 else 0.0), 400))
    return made


LINEAR = {0.0: 0.95, 0.25: 0.7, 0.5: 0.5, 0.75: 0.25, 1.0: 0.02}


def test_the_headline_gives_r_n_and_spreads_and_holds_only_when_both_parts_hold():
    config = ToyConfig()
    headline = toy_headline(config, summarize(rows(LINEAR), config))
    assert headline.holds and headline.kind == "result" and headline.plot == "plots/trait_vs_elicitation.png"
    assert "Pearson r = -1.00 over 10 points" in headline.result
    assert "e=0.25: 0.70 ± 0.00" in headline.result and "no-IP): 1.00" in headline.result
    assert "400 held-out additions" in headline.measures and "2 seeds" in headline.measures
    flat = {e: 0.5 for e in LINEAR} | {0.0: 0.52}
    assert not toy_headline(config, summarize(rows(flat), config)).holds  # no falling trait: r near 0 or positive
    assert not toy_headline(config, summarize(rows(LINEAR, dip=0.08), config)).holds  # accuracy moved 8 points


def test_the_demo_starts_from_the_shipped_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = []

    def fake_run_seed(config, seed, progress=False, say=None, base=None, save_base=None):
        seen.append((seed, type(base).__name__))
        return [r for r in rows(LINEAR) if r.seed == 0]

    monkeypatch.setattr(experiment, "run_seed", fake_run_seed)
    out = quick(tmp_path, fresh=False)
    assert out == tmp_path / "inoculation" and seen == [(0, "TinyLM"), (1, "TinyLM"), (2, "TinyLM")]
    assert read_headline(out).holds and (out / "plots" / "trait_vs_elicitation.png").is_file()
    quick(tmp_path, fresh=False)
    assert len(seen) == 3  # finished seeds are reused
    quick(tmp_path, fresh=True)
    assert len(seen) == 6


def test_the_shipped_models_are_the_toy_recipe_and_small():
    config = ToyConfig()
    for seed in (0, 1, 2):
        folder = DEMO_ASSET / f"seed{seed}"
        policy = TinyLM.load(folder)
        assert policy.model.config.d_model == config.d_model and policy.model.config.n_layer == config.n_layer
        assert (folder / "model.pt").stat().st_size < 1.5e6  # float16 weights
