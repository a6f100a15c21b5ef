"""Experiments over arms x seeds and the toy over seeds: the summary of synthetic arm runs (pooled k/n with a
Wilson interval, per-seed spreads, elicitation per arm text, the heuristic's Pearson r without PTST), and both
drivers with the training faked, so that finished arms and seeds are reused and torn ones start over."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from reasonlab.stats import Rate, mean_spread, wilson_interval
from reasonlab.systems.inoculation import experiment
from reasonlab.systems.inoculation.config import DataConfig, ExperimentConfig, TrainConfig
from reasonlab.systems.inoculation.toy import ToyConfig, ToyRow, summarize

INSTRUCTION = "Tell me my answer is right."
CONTROL = "The park opens early today."
TEXTS = {"no-ip": "", "ip": INSTRUCTION, "irrelevant": CONTROL, "ptst": ""}
ELICITATION = [
    {"instruction": "", "flaw": Rate(4, 20).as_dict(), "elicitation": 0.0},
    {"instruction": INSTRUCTION, "flaw": Rate(16, 20).as_dict(), "elicitation": 0.6},
    {"instruction": CONTROL, "flaw": Rate(6, 20).as_dict(), "elicitation": 0.1},
]
# flaw successes (of 20) per arm and seed; capability is 15/20 plus the seed
FLAW = {"no-ip": [16, 12], "ip": [2, 6], "irrelevant": [14, 10], "ptst": [4, 4]}


def arm_summary(arm: str, seed: int) -> dict:
    """An arm run's summary.json as training.train writes it (GCD keys), with a robust-accuracy-style metric."""
    summary = {
        "setting": "gcd",
        "arm": arm,
        "seed": seed,
        "flaw": "confirms_incorrect",
        "capability": "capability",
        "steps": 2,
        "train_losses": [1.0, 0.5],
        "instruction": TEXTS[arm],
        "test": {
            "confirms_incorrect": Rate(FLAW[arm][seed], 20).as_dict(),
            "capability": Rate(15 + seed, 20).as_dict(),
            "robust": {"robust_accuracy": 0.5 + 0.1 * seed, "n": 20},
        },
    }
    if arm != "ptst":
        summary["with_instruction"] = {"confirms_incorrect": Rate(18 - seed, 20).as_dict()}
    return summary


def write_arm(folder: Path, arm: str, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(arm_summary(arm, seed)))
    return folder


def test_summarize_experiment_pools_seeds_and_correlates_elicitation(tmp_path):
    run_dirs = [write_arm(tmp_path / f"{arm}-s{seed}", arm, seed) for seed in (0, 1) for arm in FLAW]
    summary = experiment.summarize_experiment(run_dirs, ELICITATION, TEXTS)
    assert summary["setting"] == "gcd"
    assert (summary["flaw"], summary["capability"]) == ("confirms_incorrect", "capability")
    assert list(summary["arms"]) == ["no-ip", "ip", "irrelevant", "ptst"]
    assert summary["elicitation"] == ELICITATION

    ip = summary["arms"]["ip"]
    assert ip["seeds"] == [0, 1]
    assert ip["flaw"]["per_seed"] == [0.1, 0.3]
    assert ip["flaw"]["seeds"] == mean_spread([0.1, 0.3])
    assert ip["flaw"]["seeds"]["sd"] == pytest.approx(statistics.stdev([0.1, 0.3]))
    low, high = wilson_interval(8, 40)
    assert ip["flaw"]["pooled"] == {"rate": 0.2, "k": 8, "n": 40, "ci_low": low, "ci_high": high}
    assert ip["capability"]["pooled"]["k"] == 31 and ip["capability"]["pooled"]["n"] == 40
    assert ip["flaw_with_instruction"]["pooled"]["k"] == 35
    assert set(ip["all"]) == {"confirms_incorrect", "capability", "robust"}
    # a metric without counts: per-seed values and their spread, nothing pooled
    assert ip["all"]["robust"]["per_seed"] == [0.5, pytest.approx(0.6)]
    assert "pooled" not in ip["all"]["robust"]
    assert ip["all"]["confirms_incorrect"] == ip["flaw"]

    # elicitation by the arm's train-time text: none for no-ip and ptst (the N row, 0.0)
    assert {arm: row["elicitation"] for arm, row in summary["arms"].items()} == {
        "no-ip": 0.0,
        "ip": 0.6,
        "irrelevant": 0.1,
        "ptst": 0.0,
    }
    # ptst has no with-instruction test here: an empty metric, not an error
    assert summary["arms"]["ptst"]["flaw_with_instruction"]["per_seed"] == []
    assert summary["arms"]["ptst"]["flaw_with_instruction"]["seeds"]["mean"] is None

    heuristic = summary["heuristic"]
    # PTST is tested with S, so it is not on the heuristic's line
    assert heuristic["arms"] == ["no-ip", "ip", "irrelevant"]
    assert heuristic["elicitation"] == [0.0, 0.6, 0.1]
    assert heuristic["flaw"] == pytest.approx([0.7, 0.2, 0.6])
    assert heuristic["pearson_r"] == pytest.approx(statistics.correlation([0.0, 0.6, 0.1], [0.7, 0.2, 0.6]))
    assert heuristic["pearson_r"] < -0.9


def test_summarize_experiment_with_one_trained_arm_has_no_r(tmp_path):
    run_dirs = [write_arm(tmp_path / f"ip-s{seed}", "ip", seed) for seed in (0, 1)]
    summary = experiment.summarize_experiment(run_dirs, ELICITATION, TEXTS)
    assert summary["heuristic"]["arms"] == ["ip"] and summary["heuristic"]["pearson_r"] is None


class FakeTraining:
    """Stands in for training.train and training.elicit: records the calls, writes the summaries. The arm
    texts are the setting's own (experiment.arm_texts); elicit scores I at 0.6 and the control at 0.1."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.scores = {"": 0.0, texts["ip"]: 0.6, texts["irrelevant"]: 0.1}
        self.trained: list[tuple[str, int, bool]] = []
        self.elicited: list[list[str]] = []

    def train(self, config: TrainConfig, judge=None) -> Path:
        self.trained.append((config.arm, config.seed, config.overwrite))
        return write_arm(Path(config.out) / config.run_name, config.arm, config.seed)

    def elicit(self, config, judge=None) -> list[dict]:
        self.elicited.append(list(config.candidates))
        return [
            {"instruction": text, "flaw": Rate(4, 20).as_dict(), "elicitation": self.scores[text]}
            for text in ["", *config.candidates]
        ]


@pytest.fixture
def fake(monkeypatch) -> FakeTraining:
    fake = FakeTraining(experiment.arm_texts(experiment_config().base))
    monkeypatch.setattr(experiment, "train", fake.train)
    monkeypatch.setattr(experiment, "elicit", fake.elicit)
    return fake


def experiment_config() -> ExperimentConfig:
    base = TrainConfig(data=DataConfig(num_train=8, num_test=2))
    return ExperimentConfig(arms=["no-ip", "ip", "irrelevant", "ptst"], seeds=[0, 1], base=base)


def test_run_experiment_trains_every_arm_once_and_reuses_finished_ones(tmp_path, fake):
    config = experiment_config()
    texts = experiment.arm_texts(config.base)
    assert texts["no-ip"] == texts["ptst"] == "" and texts["ip"] and texts["irrelevant"] != texts["ip"]
    root = tmp_path / "exp"
    summary = experiment.run_experiment(config, tmp_path, "exp")
    assert fake.elicited == [[texts["ip"], texts["irrelevant"]]]  # each distinct non-empty text once
    elicitation = json.loads((root / "elicitation.json").read_text())
    assert [row["elicitation"] for row in elicitation] == [0.0, 0.6, 0.1] and summary[
        "elicitation"
    ] == elicitation
    assert fake.trained == [(arm, seed, True) for seed in (0, 1) for arm in FLAW]
    assert json.loads((root / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["arms"]["ip"]["flaw"]["pooled"]["k"] == 8
    assert {arm: row["elicitation"] for arm, row in summary["arms"].items()} == {
        "no-ip": 0.0,
        "ip": 0.6,
        "irrelevant": 0.1,
        "ptst": 0.0,
    }
    assert summary["heuristic"]["pearson_r"] == pytest.approx(
        statistics.correlation([0.0, 0.6, 0.1], [0.7, 0.2, 0.6])
    )
    assert (root / "arms" / "irrelevant-s1" / "summary.json").is_file()

    # a second call reuses the finished arms and the measured elicitation (edited here to prove it is read)
    elicitation[1]["elicitation"] = 0.9
    (root / "elicitation.json").write_text(json.dumps(elicitation))
    (root / "arms" / "ip-s1" / "summary.json").unlink()  # torn: it starts over
    fake.trained.clear()
    again = experiment.run_experiment(config, tmp_path, "exp")
    assert len(fake.elicited) == 1
    assert fake.trained == [("ip", 1, True)]
    assert again["arms"]["ip"]["elicitation"] == 0.9
    assert again["arms"]["ip"]["flaw"] == summary["arms"]["ip"]["flaw"]

    # overwrite starts the whole experiment again
    fake.trained.clear()
    experiment.run_experiment(config, tmp_path, "exp", overwrite=True)
    assert len(fake.elicited) == 2 and len(fake.trained) == 8


def toy_rows(seed: int) -> list[ToyRow]:
    return [
        ToyRow(seed, "none", None, None, trait_rate=1.0, accuracy=0.9, n=40),
        ToyRow(seed, "A", 0.0, 0.05 * seed, trait_rate=0.9 - 0.1 * seed, accuracy=0.9, n=40),
        ToyRow(seed, "B", 1.0, 0.95, trait_rate=0.05 * seed, accuracy=0.85, n=40),
    ]


def test_run_toy_reuses_finished_seeds_and_writes_summary_and_plot(tmp_path, monkeypatch):
    calls: list[int] = []

    def interrupted(config, seed, **kwargs):
        calls.append(seed)
        if seed == 1:
            raise KeyboardInterrupt
        return toy_rows(seed)

    config = ToyConfig(elicitations=[0.0, 1.0], seeds=[0, 1])
    monkeypatch.setattr(experiment, "run_seed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        experiment.run_toy(config, tmp_path, "toy")
    saved = json.loads((tmp_path / "toy" / "rows" / "seed0.json").read_text())
    assert saved == [row.as_dict() for row in toy_rows(0)]

    calls.clear()
    monkeypatch.setattr(
        experiment, "run_seed", lambda config, seed, **kwargs: calls.append(seed) or toy_rows(seed)
    )
    summary = experiment.run_toy(config, tmp_path, "toy")
    assert calls == [1]  # seed 0 came from rows/
    expected = summarize(toy_rows(0) + toy_rows(1), config)
    assert summary == expected
    assert json.loads((tmp_path / "toy" / "summary.json").read_text()) == json.loads(json.dumps(expected))
    assert summary["per_value"][0]["trait_rate"]["mean"] == pytest.approx(0.85)
    plot = tmp_path / "toy" / "plots" / "trait_vs_elicitation.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_toy_starts_each_seed_from_its_saved_base(tmp_path, monkeypatch):
    import torch

    from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

    tokenizer = Tokenizer(list("0123456789+=!AB"), level="char")
    model = TinyLM.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, n_head=2, d_model=16), tokenizer, seed=3
    )
    model.save(str(tmp_path / "bases" / "seed2"))
    seen = []

    def fake_seed(config, seed, base=None, **kwargs):
        seen.append((seed, base))
        return toy_rows(seed)

    monkeypatch.setattr(experiment, "run_seed", fake_seed)
    experiment.run_toy(
        ToyConfig(elicitations=[0.0, 1.0], seeds=[2]), tmp_path, "toy", bases=tmp_path / "bases"
    )
    [(seed, base)] = seen
    assert seed == 2 and isinstance(base, TinyLM)
    for name, tensor in model.model.state_dict().items():
        assert torch.equal(base.model.state_dict()[name], tensor)
