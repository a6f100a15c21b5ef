"""RL vs CPT at equal tokens: the document split, decontamination, the exact token accounting of CPT, and
tiny-model end-to-end runs of `train` and `compare` (run folders, summaries, reuse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.llm.hf import HFPolicy
from reasonlab.runs import Run
from reasonlab.systems.webscale_rl import training
from reasonlab.systems.webscale_rl.config import TRAIN_PRESETS, TrainConfig
from reasonlab.systems.webscale_rl.training import (
    compare,
    cpt_examples,
    document_hash,
    document_windows,
    load_pipeline_output,
    rl_tasks_used,
    split_qa,
    train,
)
from reasonlab.train import rl
from reasonlab.train.rl_config import RLConfig
from reasonlab.train.sft import LoRAConfig
from tiny_hf import build_tiny_hf_model

WORDS = ["red", "green", "blue", "black", "white", "brown", "grey", "pink", "gold", "teal", "navy", "lime"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny") / "model")


def _pipeline_folder(folder: Path, documents: int = 12) -> Path:
    """A pipeline run folder: `documents` short pages with 3 QA each, every evidence sentence its own."""
    folder.mkdir(parents=True, exist_ok=True)
    docs, qas = [], []
    for d in range(documents):
        sentences = [f"The {WORDS[d]} box number {d}{k} holds {k + 2} cats." for k in range(3)]
        docs.append({"doc_id": f"page{d}.html", "title": f"Page {d}", "text": " ".join(sentences) * 2})
        for k, sentence in enumerate(sentences):
            qas.append({"qa_id": f"page{d}.html#{k}", "doc_id": f"page{d}.html", "evidence": sentence,
                        "question": f"How many cats in the {WORDS[d]} box {d}{k}?", "answer": str(k + 2),
                        "domain": "Coding", "persona": "a tester"})
    (folder / "documents.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    (folder / "qa.jsonl").write_text("".join(json.dumps(qa) + "\n" for qa in qas))
    return folder


def _config(data: Path, out: Path, model: Path, **update: Any) -> TrainConfig:
    rl_config = RLConfig(iterations=2, tasks_per_iteration=2, group_size=2, learning_rate=1e-3, micro_batch_size=8,
                         sampling=SamplingParams(temperature=1.0, max_tokens=4, stop=["\n"]))
    values = {"data": str(data), "out": str(out), "llm": f"hf:{model}", "heldout_fraction": 0.4, "shots": 1,
              "train_document_tokens": 10_000, "max_eval_qa": 6, "eval_max_tokens": 4, "eval_batch_size": 4,
              "rl": rl_config, "lora": LoRAConfig(r=2, alpha=4, dropout=0.0), "cpt_window_tokens": 16,
              "cpt_batch_size": 2, "bf16": False, **update}
    return TrainConfig(**values)


def _words(text: str) -> int:
    return len(text.split())


@pytest.mark.parametrize(("lengths", "window", "multiple"), [([5, 3], 2, 4), ([7], 3, 1), ([1, 1, 9], 4, 3),
                                                              ([4, 4], 2, 2)])
def test_document_windows_keep_every_token_once(lengths: list[int], window: int, multiple: int) -> None:
    documents = [list(range(100 * i, 100 * i + n)) for i, n in enumerate(lengths)]
    windows = document_windows(documents, window, multiple)
    assert len(windows) % multiple == 0
    assert all(0 < len(w) <= window for w in windows)
    assert [t for w in windows for t in w] == [t for doc in documents for t in doc]  # in order, none lost or doubled
    assert not any(w[0] // 100 != w[-1] // 100 for w in windows)  # a window never spans two documents


def test_document_windows_refuse_a_batch_larger_than_the_tokens() -> None:
    with pytest.raises(UserError, match="cannot fill whole batches of 4"):
        document_windows([[1, 2, 3]], 2, 4)


def test_cpt_examples_hold_exactly_the_document_tokens(tiny_model: Path) -> None:
    policy = HFPolicy.from_pretrained(tiny_model)
    texts = ["The capital of France is Paris. " * 5, "def add(a, b): return a + b", "One, two, three, four."]
    examples = cpt_examples(policy, texts, window=7, batch_size=4)
    tokens = [policy.tokenize(text, add_special_tokens=False) for text in texts]
    assert sum(len(e.completion) for e in examples) == sum(map(len, tokens)) > 40
    assert [t for e in examples for t in e.completion] == [t for doc in tokens for t in doc]
    assert len(examples) % 4 == 0
    assert all(list(e.prompt) == [1] for e in examples)  # the BOS (<s>) alone


def test_split_is_by_document_decontaminated_and_within_budget(tmp_path: Path) -> None:
    data = _pipeline_folder(tmp_path / "pipe")
    qas, documents = load_pipeline_output(TrainConfig(data=str(data)))
    heldout_docs = sorted({qa["doc_id"] for qa in qas if document_hash(qa["doc_id"]) < 0.4})
    train_docs = sorted({qa["doc_id"] for qa in qas} - set(heldout_docs), key=document_hash)
    assert heldout_docs and len(train_docs) >= 4
    # plant a held-out sentence in a training document's QA: decontamination must drop it
    leaked = next(qa for qa in qas if qa["doc_id"] == heldout_docs[0])
    planted = next(qa for qa in qas if qa["doc_id"] == train_docs[2] and qa["qa_id"].endswith("#2"))
    planted["evidence"] = leaked["evidence"]
    doc_words = {d: _words(documents[d]["text"]) for d in documents}
    budget = doc_words[train_docs[1]] * 3 + 1
    config = TrainConfig(data=str(data), heldout_fraction=0.4, shots=1, train_document_tokens=budget,
                         unseen_per_document=1, decontamination_ngram=13)
    split = split_qa(qas, documents, config, _words)

    rl_docs = {qa["doc_id"] for qa in split.rl_qa}
    eval_docs = {qa["doc_id"] for qa in split.heldout_qa}
    assert eval_docs == set(heldout_docs)
    assert not rl_docs & eval_docs
    assert {qa["doc_id"] for qa in split.shots} == {train_docs[0]}  # the first training document, not RL
    assert not rl_docs & {qa["doc_id"] for qa in split.shots}
    assert {qa["doc_id"] for qa in split.seen_qa} == rl_docs == set(split.document_tokens)
    assert not {qa["qa_id"] for qa in split.seen_qa} & {qa["qa_id"] for qa in split.rl_qa}
    assert list(split.document_tokens) == train_docs[1:4]  # hash order, stopped at the budget
    assert sum(split.document_tokens.values()) <= budget < sum(split.document_tokens.values()) + doc_words[
        train_docs[4]]
    assert split.counts["decontaminated_ids"] == [planted["qa_id"]]
    assert planted["qa_id"] not in {qa["qa_id"] for qa in split.rl_qa}
    assert len(split.rl_qa) == 3 * 3 - 3 - 1  # 3 documents, one question each held back, one decontaminated

    # every page is longer than max_document_tokens, or than the whole budget: no RL document
    short = config.model_copy(update={"max_document_tokens": min(doc_words.values()) - 1})
    with pytest.raises(UserError, match=r"too few QA .*0 RL QA"):
        split_qa(qas, documents, short, _words)
    with pytest.raises(UserError, match=r"too few QA .*0 RL QA"):
        split_qa(qas, documents, config.model_copy(update={"train_document_tokens": 5}), _words)


def test_load_pipeline_output_names_a_missing_file(tmp_path: Path) -> None:
    data = _pipeline_folder(tmp_path / "pipe")
    with pytest.raises(UserError, match=r"missing\.jsonl does not exist: .* documents_file"):
        load_pipeline_output(TrainConfig(data=str(data), documents_file="missing.jsonl"))


def test_rl_and_cpt_train_on_equal_document_tokens(tmp_path: Path, tiny_model: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = _pipeline_folder(tmp_path / "pipe")
    drawn: list[str] = []
    original = rl.rollout

    def recording(policy, environment, tasks, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.extend(task["qa_id"] for task in tasks)
        return original(policy, environment, tasks, *args, **kwargs)

    monkeypatch.setattr(rl, "rollout", recording)
    rl_dir = train(_config(data, tmp_path / "runs", tiny_model, arm="rl"))
    cpt_dir = train(_config(data, tmp_path / "runs", tiny_model, arm="cpt"))
    base_dir = train(_config(data, tmp_path / "runs", tiny_model, arm="base"))
    rl_summary, cpt_summary, base_summary = (Run.open(d).summary() for d in (rl_dir, cpt_dir, base_dir))

    assert rl_dir.name == "rl-s0" and (rl_dir / "config.yaml").is_file() and (rl_dir / "checkpoints").is_dir()
    assert [r["iteration"] for r in Run.open(rl_dir).metrics() if r.get("kind") == "rl"] == [0, 1]
    assert len(drawn) == 4 and rl_summary["tokens"]["qa_used"] == len(set(drawn))
    # the documents behind the QA the trainer drew, counted by the model's own tokenizer
    policy = HFPolicy.from_pretrained(tiny_model)
    config = _config(data, tmp_path, tiny_model)
    qas, documents = load_pipeline_output(config)
    split = split_qa(qas, documents, config, lambda text: len(policy.tokenize(text, add_special_tokens=False)))
    used = rl_tasks_used(split.rl_qa, config.rl.iterations, config.rl.tasks_per_iteration, seed=0)
    assert [qa["qa_id"] for qa in used] == list(dict.fromkeys(drawn))
    behind = {qa_id.split("#")[0] for qa_id in drawn}
    expected = sum(len(policy.tokenize(documents[d]["text"], add_special_tokens=False)) for d in behind)
    assert rl_summary["tokens"]["document_tokens"] == cpt_summary["tokens"]["document_tokens"] == expected
    assert rl_summary["tokens"]["documents_used"] == cpt_summary["tokens"]["documents_used"] == len(behind)
    assert rl_summary["tokens"]["rollout_prompt_tokens"] > rl_summary["tokens"]["qa_tokens"] > 0
    assert cpt_summary["cpt"]["steps"] == cpt_summary["tokens"]["windows"] // 2
    assert [r["kind"] for r in Run.open(cpt_dir).metrics()].count("sft") == cpt_summary["cpt"]["steps"] + 1

    # one untrained evaluation, shared; every arm evaluated on the same questions
    assert len(list((tmp_path / "runs" / "eval-cache").iterdir())) == 1
    assert rl_summary["before"] == cpt_summary["before"] == base_summary["before"] == base_summary["after"]
    for summary in (rl_summary, cpt_summary):
        for name in ("heldout_documents", "seen_documents"):
            assert summary["after"][name]["n"] == summary["before"][name]["n"] > 0
            assert summary["gain"][name] == pytest.approx(summary["after"][name]["rate"]
                                                          - summary["before"][name]["rate"])
    assert base_summary["tokens"]["document_tokens"] == 0
    assert rl_summary["seconds"]["total"] > 0 and rl_summary["peak_rss_mb"] > 0

    # resume reuses the finished run without loading a model; a new config is refused
    def no_model(spec: str) -> None:
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(training, "_load_policy", no_model)
    before = (rl_dir / "summary.json").read_text()
    assert train(_config(data, tmp_path / "runs", tiny_model, arm="rl", resume=True)) == rl_dir
    assert (rl_dir / "summary.json").read_text() == before
    with pytest.raises(UserError, match="already exists"):
        train(_config(data, tmp_path / "runs", tiny_model, arm="rl"))


def test_compare_summarises_arms_and_reuses_finished_runs(tmp_path: Path, tiny_model: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = _pipeline_folder(tmp_path / "pipe")
    config = _config(data, tmp_path / "unused", tiny_model)
    out = compare(config, seeds=[0, 1], out=tmp_path / "runs", name="cmp")
    summary = Run.open(out).summary()
    assert sorted(p.name for p in out.iterdir() if (p / "summary.json").exists()) == [
        "base-s0", "base-s1", "cpt-s0", "cpt-s1", "rl-s0", "rl-s1"]
    assert (out / "plots" / "accuracy_by_arm.png").stat().st_size > 1000
    assert set(summary["arms"]) == {"base", "rl", "cpt"} and summary["seeds"] == [0, 1]
    rows = {(arm, seed): Run.open(out / f"{arm}-s{seed}").summary() for arm in ("base", "rl", "cpt")
            for seed in (0, 1)}
    for name in ("heldout_documents", "seen_documents"):
        rates = [rows["rl", s]["after"][name]["rate"] for s in (0, 1)]
        assert summary["arms"]["rl"][name]["mean"] == pytest.approx(sum(rates) / 2)
        assert summary["arms"]["rl"][name]["n"] == 2
        diffs = [rows["rl", s]["after"][name]["rate"] - rows["cpt", s]["after"][name]["rate"] for s in (0, 1)]
        assert summary["differences"]["rl-cpt"][name]["per_seed"] == pytest.approx(diffs)
    tokens = {arm: summary["arms"][arm]["tokens"]["document_tokens"] for arm in ("rl", "cpt")}
    assert tokens["rl"] == tokens["cpt"] and tokens["rl"]["n"] == 2 and tokens["rl"]["mean"] > 0

    monkeypatch.setattr(training, "_load_policy", lambda spec: pytest.fail("a finished run was trained again"))
    resumed = config.model_copy(update={"resume": True})
    assert compare(resumed, seeds=[0, 1], out=tmp_path / "runs", name="cmp") == out
    assert Run.open(out).summary() == summary
    with pytest.raises(UserError, match="differs in seeds"):
        compare(resumed, seeds=[0, 2], out=tmp_path / "runs", name="cmp")


def test_presets_are_valid_and_refuse_multi_segment_rl() -> None:
    assert list(TRAIN_PRESETS)[:1] == ["record"] and "quick" in TRAIN_PRESETS
    assert TRAIN_PRESETS["record"].rl.max_segments == 1
    with pytest.raises(ValueError, match="max_segments=2"):
        TrainConfig(rl=RLConfig(max_segments=2))


def test_compare_reports_where_its_settings_say_and_so_does_every_arm(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    arms: list[TrainConfig] = []

    def stop(configs: Any, jobs: int) -> None:
        arms.extend(configs)
        raise RuntimeError("stopped before training")

    monkeypatch.setattr(training, "_run_arms", stop)
    config = TRAIN_PRESETS["quick"].model_copy(update={"report_to": ["none"]})
    with pytest.raises(RuntimeError, match="stopped"):
        compare(config, seeds=[0], out=tmp_path, name="cmp")
    assert arms and all(arm.report_to == ["none"] for arm in arms)
    assert Run.open(tmp_path / "cmp").config()["report_to"] == ["none"]
