"""AHN on an HF decoder and documents (`reasonlab ahn distill | eval | generate`), end to end on a tiny random
Llama saved as an HF folder and a folder of text files the test writes: windows, scores, training, resume,
checkpoints, generation with the constant-size cache."""

from __future__ import annotations

import json
import random

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.ahn.config import DocumentsConfig
from reasonlab.systems.ahn.longtext import (
    evaluate_run,
    generate_from_run,
    load_wrapped,
    prepare_windows,
)
from reasonlab.systems.ahn.training import train as distill
from reasonlab.train.distill import DistillConfig
from tiny_hf import build_tiny_hf_model

WORDS = ["The capital of France is Paris.", "One, two, three, four.", "def add(a, b):", '{"answer": 42}']


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    rng = random.Random(0)
    for i in range(10):
        (folder / f"doc{i:02d}.txt").write_text(" ".join(rng.choice(WORDS) for _ in range(120)))
    return folder


def config(model_folder, documents, tmp_path, **fields) -> DocumentsConfig:
    values = {"model": f"hf:{model_folder}", "documents": str(documents), "min_chars": 100, "seq_len": 64,
              "sinks": 2, "window": 14, "budgets": [16, 24], "sink_choices": [0, 2], "chunk_size": 8,
              "eval_windows": 3, "train_windows": 8, "held_out": 0.3,
              "distill": DistillConfig(steps=4, learning_rate=1e-2, checkpoint_every=2, progress=False),
              "out": str(tmp_path), "name": "tiny"}
    return DocumentsConfig(**{**values, **fields})


def test_windows_come_from_disjoint_documents_and_have_the_length(model_folder, documents, tmp_path):
    cfg = config(model_folder, documents, tmp_path)
    policy, wrapped = load_wrapped(cfg)
    windows = prepare_windows(cfg, policy)
    assert not set(windows["train_documents"]) & set(windows["held_out_documents"])
    assert len(windows["train"]) == 8 and len(windows["held_out"]) == 3
    assert all(len(w) == 64 for w in windows["train"] + windows["held_out"])
    bos = policy.tokenizer.bos_token_id
    assert all(w[0] == bos and bos not in w[1:] for w in windows["train"] + windows["held_out"])
    assert wrapped.layer_indices == [0] and wrapped.budget == 16


def test_distill_scores_trains_saves_and_the_scores_mean_what_they_say(model_folder, documents, tmp_path):
    run_dir = distill(config(model_folder, documents, tmp_path))
    summary = json.loads((run_dir / "summary.json").read_text())
    before, after = summary["before"], summary["after"]
    # a zero-initialised memory adds nothing: before training AHN is exactly sinks + SWA
    assert before["ahn"]["perplexity"] == pytest.approx(before["swa"]["perplexity"], rel=1e-6)
    assert before["full"] == after["full"]  # the base never changes
    assert after["ahn"]["perplexity"] != before["ahn"]["perplexity"]
    assert before["ahn"]["tokens"] == 3 * (64 - 16 - 1)
    assert before["ahn_minus_swa_nll"]["mean"] == 0.0 and before["ahn_minus_swa_nll"]["n"] == 3
    gap = after["ahn_minus_swa_nll"]
    assert gap["ci95_low"] <= gap["mean"] <= gap["ci95_high"]
    assert gap["mean"] == pytest.approx(after["ahn"]["nll"] - after["swa"]["nll"])
    assert summary["between"] == (after["full"]["perplexity"] <= after["ahn"]["perplexity"]
                                  and gap["ci95_high"] < 0)
    assert (run_dir / "ahn.pt").is_file() and len(summary) > 5
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r.get("kind") == "distill"] == [0, 1, 2, 3]
    assert {r["budget"] for r in rows if r.get("kind") == "distill"} <= {16.0, 24.0}
    headline = json.loads((run_dir / "headline.json").read_text())
    assert headline["system"] == "ahn" and "sinks+SWA" in headline["result"]

    again = evaluate_run(run_dir)
    assert again["ahn"]["perplexity"] == pytest.approx(after["ahn"]["perplexity"], rel=1e-5)
    wider = evaluate_run(run_dir, window=30)
    assert wider["ahn"]["tokens"] == 3 * (64 - 32 - 1)

    from typer.testing import CliRunner

    from reasonlab.systems.ahn.cli import app

    printed = CliRunner().invoke(app, ["eval", "--run", str(run_dir)], env={"COLUMNS": "200"})
    assert printed.exit_code == 0, printed.output
    assert "AHN - SWA" in printed.output and f"{again['ahn']['perplexity']:.3f}" in printed.output
    printed = CliRunner().invoke(app, ["generate", "--run", str(run_dir), "--prompt", "One, two", "--max-tokens", "3"])
    assert printed.exit_code == 0 and "prompt tokens" in printed.output, printed.output

    generated = generate_from_run(run_dir, "One, two, three, four. " * 10, max_tokens=5)
    plain = generate_from_run(run_dir, "One, two, three, four. " * 10, max_tokens=5, use_memory=False)
    assert 1 <= generated["new_tokens"] <= 5 and generated["prompt_tokens"] > 16
    assert generated["cache_bytes"] > plain["cache_bytes"] > 0  # the memory state and gates ride along


def test_a_resumed_distillation_ends_where_the_uninterrupted_one_does(model_folder, documents, tmp_path):
    whole = json.loads((distill(config(model_folder, documents, tmp_path / "a")) / "summary.json").read_text())
    short = config(model_folder, documents, tmp_path / "b",
                   distill=DistillConfig(steps=4, learning_rate=1e-2, checkpoint_every=2, progress=False))
    import reasonlab.train.distill as distill_module

    calls = {"n": 0}
    original = distill_module.train_distill

    def crash_after_two(settings, module, batch_loss, run=None):
        def counted(step):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return batch_loss(step)

        return original(settings, module, counted, run)

    import reasonlab.systems.ahn.training as training

    training.train_distill = crash_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            distill(short)
    finally:
        training.train_distill = original
    resumed = json.loads((distill(short.model_copy(update={"resume": True})) / "summary.json").read_text())
    assert resumed["after"]["ahn"]["perplexity"] == pytest.approx(whole["after"]["ahn"]["perplexity"], rel=1e-5)


def test_bad_input_is_one_line(model_folder, documents, tmp_path):
    with pytest.raises(UserError, match="hf:embedded or hf:PATH"):
        load_wrapped(config(model_folder, documents, tmp_path, model="vllm:x"))
    with pytest.raises(UserError, match="context"):
        load_wrapped(config(model_folder, documents, tmp_path, seq_len=1024, window=100))
    with pytest.raises(UserError, match=r"no ahn\.pt"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.yaml").write_text(config(model_folder, documents, tmp_path).model_dump_json())
        evaluate_run(tmp_path / "empty")
    single = tmp_path / "one"
    single.mkdir()
    (single / "only.txt").write_text("One, two, three, four. " * 200)
    cfg = config(model_folder, single, tmp_path)
    with pytest.raises(UserError, match="different documents"):
        prepare_windows(cfg, load_wrapped(cfg)[0])
    with pytest.raises(UserError, match="held-out windows"):
        cfg = config(model_folder, documents, tmp_path, seq_len=4000, window=100)
        prepare_windows(cfg, load_wrapped(cfg.model_copy(update={"seq_len": 64, "window": 14}))[0])
