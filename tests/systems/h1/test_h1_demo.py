"""h1's quick demo: its headline (accuracy at H per arm with n and a 95% interval, direct's reward against a lucky
guess, short depths kept), its reuse of a finished run unless fresh, and the warm start it ships."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonlab.demo import read_headline
from reasonlab.systems.h1 import experiment
from reasonlab.systems.h1.config import PRESETS
from reasonlab.systems.h1.experiment import DEMO_ASSET, WARM_START_FIELDS, demo_headline, quick
from reasonlab.train.tinylm import TinyLM

DEMO = PRESETS["demo"]


def results(curriculum_at_h: float, direct_at_h: float, direct_rewards: list[float]) -> dict:
    """results.json of a one-seed demo run: accuracies at depths 1..H + 2 (as JSON keys) and train rewards."""
    def accuracy(at_h: float, short: float) -> dict[str, float]:
        return {str(d): (short if d <= 3 else at_h if d == DEMO.max_depth else 0.0) for d in DEMO.eval_depths}

    return {"config": DEMO.model_dump(), "seeds": list(experiment.DEMO_SEEDS), "results": {"0": {
        "warm_start": accuracy(0.0, 1.0),
        "curriculum": {"accuracy": accuracy(curriculum_at_h, 1.0), "reward_mean": [0.3, 0.5]},
        "direct": {"accuracy": accuracy(direct_at_h, 0.75), "reward_mean": direct_rewards}}}}


def test_the_headline_gives_n_and_intervals_and_holds_only_when_both_parts_hold():
    n = DEMO.eval_chains
    headline = demo_headline(DEMO, results(0.5, 0.0078125, [0.01, 0.02]))  # 128 and 2 of 256 chains
    assert headline.holds and headline.kind == "result" and headline.plot == "plots/accuracy_by_depth.png"
    assert (f"depth {DEMO.max_depth}, seed 0: curriculum 0.50 (128/{n}, 95% CI 0.44-0.56) vs direct 0.01 (2/{n}, "
            "95% CI 0.00-0.03). Direct's mean train reward 0.015 ± 0.000 (n=1) (a lucky guess: 0.016). Depths 1-3 "
            "(per seed): warm start 1.00, curriculum 1.00, direct 0.75") == headline.result
    assert f"{n} held-out depth-{DEMO.max_depth} chains" in headline.measures
    assert not demo_headline(DEMO, results(0.02, 0.0078125, [0.01, 0.02])).holds  # intervals overlap
    assert not demo_headline(DEMO, results(0.5, 0.0078125, [0.05, 0.05])).holds  # direct's reward did not vanish


def test_the_demo_reuses_a_finished_run_unless_fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    calls = []

    def fake_experiment(config, out, seeds, **options):
        calls.append((config, seeds, options["warm"], options["arms"]))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "config.yaml").write_text("{}\n")
        (Path(out) / "results.json").write_text(json.dumps(results(0.5, 0.0, [0.0])))
        return results(0.5, 0.0, [0.0])

    monkeypatch.setattr(experiment, "run_experiment", fake_experiment)
    out = quick(tmp_path, fresh=False)
    assert out == tmp_path / "h1" and calls == [(DEMO, experiment.DEMO_SEEDS, DEMO_ASSET, ("curriculum", "direct"))]
    assert read_headline(out).holds and "reusing the warm start shipped in the package" in capsys.readouterr().err
    quick(tmp_path, fresh=False)
    assert len(calls) == 1 and f"reusing the demo results in {out}" in capsys.readouterr().err
    quick(tmp_path, fresh=True)
    assert len(calls) == 2


def test_the_shipped_warm_start_is_the_values_presets_small_and_in_the_demos_format():
    values = PRESETS["values"]
    record = json.loads((DEMO_ASSET / "warm_start.json").read_text())
    assert record["config"] == {name: getattr(values, name) for name in WARM_START_FIELDS} | {"seed": 1}
    assert record["sft_steps"] == values.sft_steps and DEMO.chain_format() == values.chain_format()
    assert sum(path.stat().st_size for path in DEMO_ASSET.iterdir()) <= 3 * 2**20
    policy = TinyLM.load(DEMO_ASSET)
    assert policy.tokenizer.to_dict() == values.tokenizer(values.max_depth).to_dict()
    chain = DEMO.chains(DEMO.max_depth, 1, 0)[0]  # the demo's deepest chains fit the shipped tokenizer
    assert policy.tokenizer.decode(policy.tokenizer.encode(chain.prompt + " " + chain.target)) == f"{chain.prompt} {chain.target}"
