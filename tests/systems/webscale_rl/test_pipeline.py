"""The pipeline end to end on real documents (the language-reference topics that ship with Python's standard library,
`pydoc_data.topics`): outputs, bad inputs skipped with reasons, resume after a kill, and Ray giving the same QA."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import CorpusConfig, PipelineConfig
from reasonlab.systems.webscale_rl.pipeline import run_pipeline


def write_topics(folder: Path, count: int = 12, min_chars: int = 3000) -> list[str]:
    """The first `count` long topics of pydoc_data (real reference prose) as .txt files."""
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    names = [name for name in sorted(topics) if len(topics[name]) >= min_chars][:count]
    for name in names:
        (folder / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    return names


def config_for(folder: Path, **updates: object) -> PipelineConfig:
    base = {"corpus": CorpusConfig(input=str(folder)), "embedder": "hashing", "shard_size": 4}
    return PipelineConfig(**{**base, **updates})


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("webscale")
    corpus = root / "corpus"
    write_topics(corpus)
    return corpus, run_pipeline(config_for(corpus), root / "runs", "full")


def test_outputs_and_report(finished: tuple[Path, Path]) -> None:
    _, run_dir = finished
    qa = read_jsonl(run_dir / "qa.jsonl")
    report = json.loads((run_dir / "report.json").read_text())
    assert qa, "real reference topics give QA"
    assert report["qa"]["accepted"] == len(qa)
    assert report["documents"]["read"] == 12
    assert report["qa"]["yield_per_document"] == pytest.approx(len(qa) / 12)
    for record in qa:
        assert record["qa_id"].startswith(record["doc_id"] + "#")
        assert record["checks"]["grounded"] and not record["checks"]["leakage"]
        assert record["provenance"]["doc_id"] == record["doc_id"]
        assert record["provenance"]["stage_versions"]["generate"]
        assert record["provenance"]["model"] == "none"
    stages = [row["stage"] for row in report["stages"]]
    assert stages[:3] == ["read", "dedup_documents", "filter"]
    assert len({record["qa_id"] for record in qa}) == len(qa)
    table = pq.read_table(run_dir / "qa.parquet").to_pylist()
    assert [row["qa_id"] for row in table] == [record["qa_id"] for record in qa]
    assert json.loads(table[0]["checks"]) == qa[0]["checks"]


def test_bad_inputs_are_skipped_with_reasons(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_topics(corpus, count=4)
    (corpus / "blob.txt").write_bytes(b"\x00\x01\x02binary" * 100)
    (corpus / "empty.txt").write_text("   \n")
    (corpus / "latin.txt").write_bytes("caf\xe9 ".encode("latin-1") * 200)
    (corpus / "rows.jsonl").write_text('{"id": "a", "text": "fine row ' + "word " * 80 + '"}\n{not json\n')
    (corpus / "huge.txt").write_text("word " * 40_000)
    config = config_for(corpus, corpus=CorpusConfig(input=str(corpus), max_document_chars=100_000))
    run_dir = run_pipeline(config, tmp_path / "runs", "bad")
    skipped = json.loads((run_dir / "report.json").read_text())["documents"]["skipped"]
    assert skipped == {"binary": 1, "empty": 1, "encoding": 1, "malformed-jsonl": 1, "too-large": 1}
    reasons = {r["id"]: r["reason"] for r in read_jsonl(run_dir / "rejected.jsonl") if r["stage"] == "read"}
    assert reasons.get("blob.txt") == "binary" and reasons.get("latin.txt") == "encoding"


def test_killed_run_resumes_without_duplicates_or_losses(finished: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, full = finished

    class Killed(Exception):
        pass

    def kill_after_second(shard: int) -> None:
        if shard == 1:
            raise Killed

    with pytest.raises(Killed):
        run_pipeline(config_for(corpus), tmp_path, "killed", after_shard=kill_after_second)
    assert sorted(p.name for p in (tmp_path / "killed" / "shards").glob("shard-*.json")) == [
        "shard-00000.json", "shard-00001.json"]
    with pytest.raises(UserError, match="--resume"):
        run_pipeline(config_for(corpus), tmp_path, "killed")
    resumed = run_pipeline(config_for(corpus), tmp_path, "killed", resume=True)
    assert read_jsonl(resumed / "qa.jsonl") == read_jsonl(full / "qa.jsonl")
    report = json.loads((resumed / "report.json").read_text())
    assert report["shards"] == {"total": 3, "run_now": 1}


def test_resume_refuses_a_changed_corpus(finished: tuple[Path, Path], tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_topics(corpus, count=8)
    run_pipeline(config_for(corpus), tmp_path, "changing")
    (corpus / "extra.txt").write_text((finished[0] / sorted(p.name for p in finished[0].iterdir())[-1]).read_text())
    with pytest.raises(UserError, match="documents changed"):
        run_pipeline(config_for(corpus), tmp_path, "changing", resume=True)
    # the same files, one of them edited: refused too (the plan hashes each document's text)
    (corpus / "extra.txt").unlink()
    edited = sorted(corpus.iterdir())[0]
    edited.write_text(edited.read_text() + "\nOne more sentence about the grammar of Python appears here.\n")
    with pytest.raises(UserError, match="documents changed"):
        run_pipeline(config_for(corpus), tmp_path, "changing", resume=True)


def test_no_readable_document_is_one_line_error(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_text("")
    with pytest.raises(UserError, match=r"no readable document \(skipped: empty 1\)"):
        run_pipeline(config_for(corpus), tmp_path, "nothing")
    assert not (tmp_path / "nothing").exists()  # so the corrected command runs without --overwrite


@pytest.mark.slow
def test_ray_engine_gives_the_local_qa(finished: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    corpus, full = finished
    run_dir = run_pipeline(config_for(corpus, engine="ray", workers=2), tmp_path, "ray")
    assert read_jsonl(run_dir / "qa.jsonl") == read_jsonl(full / "qa.jsonl")
    report = json.loads((run_dir / "report.json").read_text())
    assert report["engine"] == {"name": "ray", "workers": 2}


@pytest.mark.slow
def test_a_killed_local_run_resumes_on_ray(finished: tuple[Path, Path], tmp_path: Path) -> None:
    """The driver writes every shard file whichever engine ran, so the engine may change on resume."""
    pytest.importorskip("ray")
    corpus, full = finished

    def kill_after_first(shard: int) -> None:
        if shard == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config_for(corpus), tmp_path, "switch", after_shard=kill_after_first)
    resumed = run_pipeline(config_for(corpus, engine="ray", workers=1), tmp_path, "switch", resume=True)
    assert read_jsonl(resumed / "qa.jsonl") == read_jsonl(full / "qa.jsonl")
    assert json.loads((resumed / "report.json").read_text())["shards"] == {"total": 3, "run_now": 2}
