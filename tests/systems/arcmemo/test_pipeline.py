"""The ArcMemo pipeline with a fake LLM that answers each program by its prompt: the build (PS concepts, OE
lessons, one memory snapshot per batch, a save after each batch that is never half-written), the eval loop into a
run folder (train-gated continual writes seen by the next batch, retries that show the train mismatch and never a
test output, summary scores, one attempts.jsonl row per step, --resume), the selection modes, and bad input as
one-line errors. The model's code runs in the real sandbox (skipped where mode "auto" refuses)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.llm.program import ProgramSettings
from reasonlab.runs import read_records
from reasonlab.sandbox.launch import choose_launcher, missing_layers
from reasonlab.systems.arcmemo import pipeline, prompts
from reasonlab.systems.arcmemo import seeds as seeds_module
from reasonlab.systems.arcmemo.config import ArcMemoConfig
from reasonlab.systems.arcmemo.memory import ConceptMemory, Lesson, LessonMemory, load_memory, save_memory
from reasonlab.systems.arcmemo.seeds import SeedSolution
from reasonlab.systems.arcmemo.tasks import ArcTask, format_task_prompt_grids, grid_text, task_from_arrays

AUTO_REFUSED = missing_layers(choose_launcher("auto", strict_raises=False))
needs_sandbox = pytest.mark.skipif(bool(AUTO_REFUSED), reason=f"sandbox mode auto refuses: {AUTO_REFUSED}")

JSON_SETTINGS = ProgramSettings(max_tokens=4096, retries=1)  # ScriptedLLM cuts replies at max_tokens characters
SOLVE_SETTINGS = ProgramSettings(max_tokens=4096, retries=0)

# each task: train pairs, test pairs; the test outputs' rows appear in no train grid and no test input
TASKS: dict[str, tuple[list[Any], list[Any]]] = {
    "a-flip": ([([[1, 2, 3]], [[3, 2, 1]]), ([[4, 0], [0, 5]], [[0, 4], [5, 0]])],
               [([[6, 7, 8, 9]], [[9, 8, 7, 6]])]),
    "b-recolor": ([([[1, 0], [0, 1]], [[2, 0], [0, 2]]), ([[1, 1, 0]], [[2, 2, 0]])],
                  [([[3, 1, 4, 1, 5]], [[3, 2, 4, 2, 5]])]),
    # train pairs are the identity, the test pair is not: `return input_grid + 0` passes train, fails test
    "c-keep": ([([[1, 2], [3, 4]], [[1, 2], [3, 4]]), ([[7]], [[7]])], [([[6, 5, 5]], [[5, 5, 6]])]),
}
TEST_OUTPUT_ROWS = ("9, 8, 7, 6", "3, 2, 4, 2, 5", "5, 5, 6")

FLIP = "def transform(input_grid):\n    return np.fliplr(input_grid)\n"
RECOLOR = "def transform(input_grid):\n    out = input_grid.copy()\n    out[out == 1] = 2\n    return out\n"
RECOLOR_WRONG = "def transform(input_grid):\n    return input_grid\n"
KEEP = "def transform(input_grid):\n    return input_grid + 0\n"

SEEDS = (
    SeedSolution("seed-a", "def transform(input_grid):\n    return input_grid[:, ::-1]\n",
                 "SEED A reverses each row", "1. reverse every row"),
    SeedSolution("seed-b", "def transform(input_grid):\n    return input_grid * 2\n",
                 "SEED B doubles each color", "1. double every cell"),
    SeedSolution("seed-c", "def transform(input_grid):\n    return np.tile(input_grid, 2)\n",
                 "SEED C tiles the grid", "1. repeat the grid twice"),
)


def concept(name: str, description: str = "") -> dict[str, Any]:
    """A concept annotation as the abstraction reply holds it."""
    return {"concept": name, "kind": "routine", "routine_subtype": "grid manipulation",
            "description": description or f"{name} described", "cues": [f"cue of {name}"]}


def lesson(situation: str, suggestion: str) -> dict[str, str]:
    return {"situation": situation, "suggestion": suggestion}


# the opening line of each program's prompt template -> the program's name
PROGRAM_HEADS = {
    prompts.SUMMARIZE_SOLUTION.split("\n", 1)[0]: "summarize",
    prompts.ABSTRACT_CONCEPTS.split("\n", 1)[0]: "abstract",
    prompts.EXTRACT_LESSONS.split("\n", 1)[0]: "lessons",
    prompts.SELECT_CONCEPTS.split("\n", 1)[0]: "select",
    prompts.SELECT_LESSONS.split("\n", 1)[0]: "select lessons",
    prompts.SOLVE.split("\n", 1)[0]: "solve",
}


class FakeArc:
    """Answers every ArcMemo program by its prompt; an answer it has no entry for is unparsable ("not json").

    concepts: summary text -> concept annotations; summaries: code fragment -> summary; lessons: text fragment of
    the solution -> lessons; selection: the names the selector asks for; lesson_numbers: the lessons it picks;
    solutions: task id -> the transform of each attempt (the last one repeats)."""

    def __init__(self, tasks: list[ArcTask] | None = None, concepts: dict[str, list[dict[str, Any]]] | None = None,
                 summaries: dict[str, str] | None = None, lessons: dict[str, list[dict[str, str]]] | None = None,
                 selection: list[str] | None = None, lesson_numbers: list[int] | None = None,
                 solutions: dict[str, list[str]] | None = None) -> None:
        self.tasks = tasks or []
        self.concepts, self.summaries, self.lessons = concepts or {}, summaries or {}, lessons or {}
        self.selection, self.lesson_numbers = selection or [], lesson_numbers or []
        self.solutions = solutions or {}
        self.calls: list[tuple[str, str]] = []
        self.llm = ScriptedLLM(self)

    def __call__(self, prompt: str) -> str:
        program = next(name for head, name in PROGRAM_HEADS.items() if prompt.startswith(head))
        self.calls.append((program, prompt))
        return getattr(self, "_" + program.replace(" ", "_"))(prompt)

    def prompts(self, program: str) -> list[str]:
        return [prompt for name, prompt in self.calls if name == program]

    def _summarize(self, prompt: str) -> str:
        code = prompt.rsplit("Solution:\n", 1)[1]
        found = [summary for fragment, summary in self.summaries.items() if fragment in code]
        return json.dumps({"summary": found[0], "pseudocode": ["do it"]}) if found else "not json"

    def _abstract(self, prompt: str) -> str:
        summary = prompt.rsplit("Summary: ", 1)[1].split("\n", 1)[0]
        found = self.concepts.get(summary)
        return json.dumps({"concepts": found}) if found else "not json"

    def _lessons(self, prompt: str) -> str:
        solution = prompt.rsplit("Solution:\n", 1)[1]
        found = [items for fragment, items in self.lessons.items() if fragment in solution]
        return json.dumps({"lessons": found[0]}) if found else "not json"

    def _select(self, prompt: str) -> str:
        return json.dumps({"names": self.selection, "notes": "look at the rows"})

    def _select_lessons(self, prompt: str) -> str:
        return json.dumps({"lessons": self.lesson_numbers})

    def _solve(self, prompt: str) -> str:
        task = next(t for t in self.tasks if format_task_prompt_grids(t).rstrip() in prompt)
        replies = self.solutions[task.id]
        done = sum(1 for name, p in self.calls[:-1] if name == "solve" and format_task_prompt_grids(task).rstrip() in p)
        return replies[min(done, len(replies) - 1)]


def tasks(*ids: str) -> list[ArcTask]:
    return [task_from_arrays(i, *TASKS[i]) for i in ids]


def write_task_files(folder: Path, *ids: str) -> Path:
    """Official ARC JSON files, one per task, named by id (a folder sorts them by name)."""
    folder.mkdir(parents=True, exist_ok=True)
    for task_id in ids:
        train, test = TASKS[task_id]
        data = {half: [{"input": i, "output": o} for i, o in pairs] for half, pairs in (("train", train),
                                                                                           ("test", test))}
        (folder / f"{task_id}.json").write_text(json.dumps(data))
    return folder


def config(**fields: Any) -> ArcMemoConfig:
    base: dict[str, Any] = {"llm": "scripted", "abstraction": JSON_SETTINGS, "selecting": JSON_SETTINGS,
                            "solving": SOLVE_SETTINGS, "batch_size": 1, "max_passes": 2, "limit": None}
    return ArcMemoConfig(**{**base, **fields})


@pytest.fixture(autouse=True)
def _our_seeds_and_no_model(monkeypatch):
    """Three tiny seed solutions instead of the package's; loading a real model or embedder fails the test."""

    def no_model(config: ArcMemoConfig) -> Any:
        raise AssertionError(f"the pipeline loaded a model for {config.llm}")

    monkeypatch.setattr(seeds_module, "SEEDS", SEEDS)
    monkeypatch.setattr(pipeline, "_load_llm", no_model)
    monkeypatch.setattr(pipeline, "_load_embedder", lambda config: None if config.selection != "embedding"
                        else no_model(config))


def seed_fake(**options: Any) -> FakeArc:
    """A fake whose abstraction turns each seed into one concept (seed A -> 'seed mirror', ...)."""
    concepts = {"SEED A reverses each row": [concept("seed mirror")],
                "SEED B doubles each color": [concept("seed paint")],
                "SEED C tiles the grid": [concept("seed tile")]}
    return FakeArc(concepts={**concepts, **options.pop("concepts", {})}, **options)


def one_line_error(call: Callable[[], Any]) -> str:
    with pytest.raises(UserError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message and message, message
    return message


# build_memory


def test_ps_build_writes_the_abstracted_concepts_and_saves_after_each_batch(tmp_path, monkeypatch):
    saved: list[list[str]] = []
    save = pipeline.save_memory

    def save_and_record(memory: ConceptMemory, path: Path) -> None:
        saved.append(sorted(memory.concepts))
        save(memory, path)

    monkeypatch.setattr(pipeline, "save_memory", save_and_record)
    fake = seed_fake(concepts={"SEED C tiles the grid": [concept("seed tile"), concept("seed mirror", "again")]})
    notes: list[dict[str, Any]] = []
    memory, stats = pipeline.build_memory(config(batch_size=2), fake.llm, tmp_path / "memory.json", notes)

    assert saved == [["seed mirror", "seed paint"], ["seed mirror", "seed paint", "seed tile"]]
    assert isinstance(memory, ConceptMemory)
    assert memory.concepts["seed mirror"].used_in == ["seed-a", "seed-c"]
    assert memory.concepts["seed mirror"].description == "seed mirror described"  # the first description stays
    assert sorted(memory.solutions) == ["seed-a", "seed-b", "seed-c"]
    assert memory.solutions["seed-b"].summary == "SEED B doubles each color"
    # the seeds carry summary and pseudocode: no summarize call; one abstraction per seed
    assert [name for name, _ in fake.calls] == ["abstract"] * 3
    assert stats["abstract"] == {"calls": 3, "tries": 3, "failures": 0, "concepts": 4, "reused": 1}
    # seed B was abstracted against the same (empty) snapshot as seed A; seed C saw both
    _, second, third = fake.prompts("abstract")
    assert "seed mirror" not in second.rsplit("Memory:\n", 1)[1]
    assert "seed mirror" in third.rsplit("Memory:\n", 1)[1] and "seed paint" in third.rsplit("Memory:\n", 1)[1]
    assert [(n["puzzle"], n["ok"], n["concepts"]) for n in notes] == [("seed-a", True, 1), ("seed-b", True, 1),
                                                                       ("seed-c", True, 2)]
    assert notes[2]["name_reuse"] == 0.5
    on_disk = load_memory(tmp_path / "memory.json", expect="ps")
    assert on_disk.model_dump() == memory.model_dump()


def test_oe_build_appends_the_lessons_of_every_seed_with_their_source(tmp_path):
    fake = FakeArc(lessons={"SEED A": [lesson("rows are reversed", "mirror the grid")],
                            "SEED B": [lesson("colors double", "multiply"), lesson("rows are reversed",
                                                                                   "mirror the grid")]})
    memory, stats = pipeline.build_memory(config(format="oe", seeds=["seed-a", "seed-b"]), fake.llm,
                                          tmp_path / "memory.json")
    assert memory == LessonMemory(lessons=[
        Lesson(situation="rows are reversed", suggestion="mirror the grid", source="seed-a"),
        Lesson(situation="colors double", suggestion="multiply", source="seed-b"),
        Lesson(situation="rows are reversed", suggestion="mirror the grid", source="seed-b"),  # kept twice
    ])
    assert [name for name, _ in fake.calls] == ["lessons", "lessons"]
    # the write reads the seed's summary and its code
    assert "SEED A reverses each row\ndef transform(input_grid):" in fake.prompts("lessons")[0]
    assert stats["lessons"] == {"calls": 2, "tries": 2, "failures": 0}
    assert load_memory(tmp_path / "memory.json", expect="oe") == memory


@pytest.mark.parametrize("memory_format", ["ps", "oe"])
def test_an_abstraction_that_never_parses_leaves_the_memory_empty_and_is_recorded(tmp_path, memory_format):
    fake = FakeArc()  # every reply is "not json"
    notes: list[dict[str, Any]] = []
    memory, stats = pipeline.build_memory(config(format=memory_format, seeds=["seed-a", "seed-b"]), fake.llm,
                                          tmp_path / "memory.json", notes)
    step = "abstract" if memory_format == "ps" else "lessons"
    assert stats[step] == {"calls": 2, "tries": 4, "failures": 2}  # one retry each, then recorded and skipped
    assert [(n["puzzle"], n["step"], n["ok"]) for n in notes] == [("seed-a", step, False), ("seed-b", step, False)]
    assert all(n["error"].startswith("JSONDecodeError") for n in notes)
    loaded = load_memory(tmp_path / "memory.json", expect=memory_format)
    if memory_format == "ps":
        assert memory.concepts == {} and memory.custom_types == {} and memory.render() == ""
        assert loaded.concepts == {}
    else:
        assert memory.lessons == [] and loaded.lessons == []


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_save_that_fails_mid_build_leaves_the_previous_memory_file_intact(tmp_path, monkeypatch, failing):
    path = tmp_path / "memory.json"
    real = getattr(os, failing)
    calls: list[int] = []

    def fail_the_second_save(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    fake = seed_fake()
    first_text: list[str] = []
    save = pipeline.save_memory

    def save_and_keep_text(memory: ConceptMemory, target: Path) -> None:
        save(memory, target)
        first_text.append(path.read_text())

    monkeypatch.setattr(pipeline, "save_memory", save_and_keep_text)
    monkeypatch.setattr(os, failing, fail_the_second_save)
    with pytest.raises(OSError, match="No space left"):
        pipeline.build_memory(config(seeds=["seed-a", "seed-b"]), fake.llm, path)
    monkeypatch.undo()

    assert len(first_text) == 1 and path.read_text() == first_text[0]
    assert sorted(load_memory(path, expect="ps").concepts) == ["seed mirror"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.json"]  # no temporary file left behind


# select_hint


class WordEmbedder:
    """Counts a few words (plus a small constant, so no vector is zero): texts sharing words are similar."""

    words = ("blue", "red", "row", "size")
    dim = len(words) + 1

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.array([[text.lower().count(w) for w in self.words] + [0.01] for text in texts], dtype=float)


def two_concepts() -> ConceptMemory:
    memory = ConceptMemory()
    memory.write_concept("s1", concept("mirror rows", "reverse each row"))
    memory.write_concept("s2", concept("recolor cells", "paint blue cells red"))
    return memory


def two_lessons() -> LessonMemory:
    return LessonMemory(lessons=[Lesson(situation="rows reversed", suggestion="mirror", source="s1"),
                                 Lesson(situation="blue becomes red", suggestion="recolor", source="s2")])


def test_selection_modes_build_the_expected_hint():
    recolor = tasks("b-recolor")[0]
    memory, lessons = two_concepts(), two_lessons()
    fake = FakeArc(selection=["recolor cells", "not in memory"], lesson_numbers=[2, 2, 9])
    stats: dict[str, dict[str, int]] = {}

    def hint(selection: str, chosen: Any, embedder: Any = None, **fields: Any) -> tuple[str, list[str]]:
        return pipeline.select_hint(config(selection=selection, top_k=1, **fields), fake.llm, chosen, recolor,
                                    embedder, stats)

    assert hint("none", memory) == ("", []) and hint("llm", None) == ("", [])
    assert hint("all", memory) == (memory.render(), [])
    assert hint("all", lessons, format="oe") == (lessons.render_hint([1, 2]), [])
    assert fake.calls == []  # none and all never ask the model
    assert hint("embedding", memory, WordEmbedder()) == (memory.render(selected=["recolor cells"]),
                                                         ["recolor cells"])
    assert "- concept: recolor cells" in memory.render(selected=["recolor cells"])
    assert "other concepts: [mirror rows]" in memory.render(selected=["recolor cells"])
    assert hint("llm", memory) == (memory.render(selected=["recolor cells"]), ["recolor cells"])
    assert hint("llm", lessons, format="oe") == (lessons.render_hint([2]), ["2"])
    assert [name for name, _ in fake.calls] == ["select", "select lessons"]
    assert stats["select"]["calls"] == 2 and stats["select"]["dropped"] == 3  # an unknown name, a repeat, 9
    # a selection that names nothing gives no hint at all, not the whole memory
    fake.selection = ["not in memory"]
    assert hint("llm", memory) == ("", [])


# run_eval


@needs_sandbox
def test_eval_retries_on_train_mismatch_writes_only_verified_solves_and_scores_them(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip", "b-recolor", "c-keep")
    fake = seed_fake(
        tasks=tasks("a-flip", "b-recolor", "c-keep"),
        summaries={"fliplr": "LEARNED mirror", "input_grid + 0": "LEARNED keep", "out == 1": "LEARNED recolor"},
        concepts={"LEARNED mirror": [concept("mirror rows")], "LEARNED keep": [concept("keep grid")],
                  "LEARNED recolor": [concept("recolor cells")]},
        selection=["mirror rows", "seed mirror"],
        solutions={"a-flip": [FLIP], "b-recolor": [RECOLOR_WRONG, RECOLOR], "c-keep": [KEEP]})
    cfg = config(task_file=str(folder), seeds=["seed-a", "seed-b"])
    run_dir = pipeline.run_eval(cfg, tmp_path / "runs", "eval", llm=fake.llm)

    # one row per step: three first attempts, then the retry of the task whose train pairs failed
    rows = read_records(run_dir / "attempts.jsonl")
    assert [(r["task"], r["pass"], r["parsed"], r["train_correct"], r["strict"], r["test_solved"]) for r in rows] == [
        ("a-flip", 1, True, True, True, 1.0), ("b-recolor", 1, True, False, False, 0.0),
        ("c-keep", 1, True, True, False, 0.0), ("b-recolor", 2, True, True, True, 1.0)]
    assert [r["selected"] for r in rows] == [["seed mirror"], ["mirror rows", "seed mirror"],
                                             ["mirror rows", "seed mirror"], ["mirror rows", "seed mirror"]]
    assert rows[1]["code"] == RECOLOR_WRONG.strip() and rows[1]["errors"] == {}

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["scores"] == {"tasks": 3, "official_total": 2.0, "official_mean": pytest.approx(2 / 3),
                                 "strict_count": 2}
    assert summary["scores_first_attempt"] == {"tasks": 3, "official_total": 1.0,
                                               "official_mean": pytest.approx(1 / 3), "strict_count": 1}
    assert summary["train_verified"] == 3
    assert {step: row["calls"] for step, row in summary["rates"].items()} == {
        "build abstract": 2, "select": 3, "solve": 4, "summarize": 3, "abstract": 3}
    assert summary["memory"]["concepts"] == 5

    # writes follow train verification only (the wrong recolor never), each right after its batch
    written = [p.rsplit("Solution:\n", 1)[1] for p in fake.prompts("summarize")]
    assert ["fliplr" in written[0], "input_grid + 0" in written[1], "out == 1" in written[2]] == [True] * 3
    assert not any("return input_grid\n" in w for w in written)
    order = [name for name, _ in fake.calls]
    assert order == ["abstract", "abstract",  # the build
                     "select", "solve", "summarize", "abstract",  # a-flip, verified: written
                     "select", "solve",  # b-recolor fails train: nothing written
                     "select", "solve", "summarize", "abstract",  # c-keep passes train (not test): written
                     "solve", "summarize", "abstract"]  # b-recolor's retry, verified: written
    select_prompts = fake.prompts("select")
    assert "mirror rows" not in select_prompts[0] and "mirror rows" in select_prompts[1]
    keep_write = fake.prompts("abstract")[3].rsplit("Memory:\n", 1)[1]  # c-keep's write sees a-flip's
    assert "LEARNED keep" in keep_write and "mirror rows" in keep_write
    memory = load_memory(run_dir / "memory.json", expect="ps")
    assert memory.concepts["mirror rows"].used_in == ["a-flip"]
    assert sorted(memory.concepts) == ["keep grid", "mirror rows", "recolor cells", "seed mirror", "seed paint"]
    writes = read_records(run_dir / "writes.jsonl")
    assert [(w.get("phase"), w["puzzle"], w["step"]) for w in writes] == [
        ("build", "seed-a", "abstract"), ("build", "seed-b", "abstract"),
        ("solve", "a-flip", "summarize"), ("solve", "a-flip", "abstract"), ("solve", "c-keep", "summarize"),
        ("solve", "c-keep", "abstract"), ("solve", "b-recolor", "summarize"), ("solve", "b-recolor", "abstract")]

    # the retry shows the last attempt and its train mismatches, never a test output
    solves = fake.prompts("solve")
    retry = solves[3]
    assert prompts.RETRY_BLOCK.split("\n", 1)[0] in retry and RECOLOR_WRONG.strip() in retry
    train_in, train_out = TASKS["b-recolor"][0][0]
    assert prompts.RETRY_MISMATCH.format(index=1, got=grid_text(train_in), expected=grid_text(train_out)) in retry
    assert all(prompts.RETRY_BLOCK.split("\n", 1)[0] not in p for p in solves[:3])
    assert all(row not in prompt for _, prompt in fake.calls for row in TEST_OUTPUT_ROWS)
    assert "Hints from memory:\n## grid manipulation routines\n- concept: seed mirror" in solves[0]


@needs_sandbox
def test_eval_resume_reuses_the_built_memory_without_abstracting_again(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    cfg = config(task_file=str(folder), seeds=["seed-a", "seed-b"], continual=False)

    def fake() -> FakeArc:
        return seed_fake(tasks=tasks("a-flip"), selection=["seed mirror"], solutions={"a-flip": [FLIP]})

    first = fake()
    run_dir = pipeline.run_eval(cfg, tmp_path / "runs", "eval", llm=first.llm)
    built = (run_dir / "memory.json").read_text()
    assert [name for name, _ in first.calls].count("abstract") == 2
    assert json.loads((run_dir / "memory.done.json").read_text())["stats"]["abstract"]["calls"] == 2

    again = fake()
    assert pipeline.run_eval(cfg, tmp_path / "runs", "eval", resume=True, llm=again.llm) == run_dir
    assert [name for name, _ in again.calls] == ["select", "solve"]
    assert (run_dir / "memory.json").read_text() == built
    assert len(read_records(run_dir / "attempts.jsonl")) == 1  # solving started again
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["scores"]["official_total"] == 1.0 and summary["rates"]["build abstract"]["calls"] == 2


@needs_sandbox
def test_eval_resume_restarts_solving_from_the_built_memory_not_the_continual_one(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    cfg = config(task_file=str(folder), seeds=["seed-a"])

    def fake() -> FakeArc:
        return seed_fake(tasks=tasks("a-flip"), selection=["seed mirror"], solutions={"a-flip": [FLIP]},
                         summaries={"fliplr": "LEARNED mirror"}, concepts={"LEARNED mirror": [concept("mirror rows")]})

    pipeline.run_eval(cfg, tmp_path / "runs", "eval", llm=fake().llm)
    again = fake()
    pipeline.run_eval(cfg, tmp_path / "runs", "eval", resume=True, llm=again.llm)
    assert "mirror rows" not in again.prompts("select")[0]  # a fresh run's first selection has not seen it


@needs_sandbox
def test_eval_without_memory_builds_nothing_and_gives_no_hint(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    fake = FakeArc(tasks=tasks("a-flip"), solutions={"a-flip": ["def transform(input_grid):\n    return 1 +\n",
                                                                  FLIP]})
    run_dir = pipeline.run_eval(config(task_file=str(folder), selection="none"), tmp_path / "runs", "e",
                                llm=fake.llm)
    assert [name for name, _ in fake.calls] == ["solve", "solve"]
    assert all("Hints from memory" not in p for p in fake.prompts("solve"))
    rows = read_records(run_dir / "attempts.jsonl")
    assert [(r["parsed"], r["train_correct"]) for r in rows] == [(False, False), (True, True)]
    assert rows[0]["errors"]["code"].startswith("ValueError: the code does not compile")
    assert prompts.NO_CODE in fake.prompts("solve")[1]  # the retry after an unparsable reply
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["memory"] is None and summary["scores"]["official_total"] == 1.0
    assert not (run_dir / "memory.json").exists()


@needs_sandbox
def test_eval_with_embedding_selection_hints_the_nearest_concept(tmp_path, monkeypatch):
    folder = write_task_files(tmp_path / "tasks", "b-recolor")
    monkeypatch.setattr(pipeline, "_load_embedder", lambda config: WordEmbedder())
    fake = seed_fake(tasks=tasks("b-recolor"), solutions={"b-recolor": [RECOLOR]},
                     concepts={"SEED A reverses each row": [concept("mirror rows", "reverse each row")],
                               "SEED B doubles each color": [concept("recolor cells", "paint blue cells red")]})
    run_dir = pipeline.run_eval(config(task_file=str(folder), seeds=["seed-a", "seed-b"], selection="embedding",
                                       top_k=1, continual=False), tmp_path / "runs", "e", llm=fake.llm)
    assert [name for name, _ in fake.calls] == ["abstract", "abstract", "solve"]
    assert read_records(run_dir / "attempts.jsonl")[0]["selected"] == ["recolor cells"]
    solve_prompt = fake.prompts("solve")[0]
    assert "- concept: recolor cells" in solve_prompt and "other concepts: [mirror rows]" in solve_prompt


@needs_sandbox
def test_eval_reads_a_saved_memory_into_its_own_copy(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    saved = tmp_path / "saved.json"
    save_memory(two_concepts(), saved)
    before = saved.read_text()
    fake = FakeArc(tasks=tasks("a-flip"), selection=["mirror rows"], solutions={"a-flip": [FLIP]},
                   summaries={"fliplr": "LEARNED"}, concepts={"LEARNED": [concept("learned flip")]})
    run_dir = pipeline.run_eval(config(task_file=str(folder), memory=str(saved)), tmp_path / "runs", "e",
                                llm=fake.llm)
    assert [name for name, _ in fake.calls] == ["select", "solve", "summarize", "abstract"]  # no build
    assert saved.read_text() == before  # the continual write went into the run's copy
    assert "learned flip" in load_memory(run_dir / "memory.json", expect="ps").concepts


# bad input


def test_a_malformed_task_file_is_a_one_line_error_naming_it(tmp_path):
    bad = tmp_path / "tasks" / "ragged.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[1]]}],
                               "test": [{"input": [[1]], "output": [[1]]}]}))
    message = one_line_error(lambda: pipeline.load_tasks(config(task_file=str(bad))))
    assert str(bad) in message and "ragged" in message
    bad.write_text("{not json")
    message = one_line_error(lambda: pipeline.run_eval(config(task_file=str(bad.parent)), tmp_path / "runs", "e",
                                                        llm=FakeArc().llm))
    assert str(bad) in message and "not JSON" in message


def test_a_memory_of_the_other_format_is_a_one_line_error_naming_the_file(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    lessons = tmp_path / "lessons.json"
    save_memory(two_lessons(), lessons)
    fake = FakeArc()
    message = one_line_error(lambda: pipeline.run_eval(config(task_file=str(folder), memory=str(lessons)),
                                                        tmp_path / "runs", "e", llm=fake.llm))
    assert str(lessons) in message and "--format oe" in message
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"concepts": {}}))
    message = one_line_error(lambda: pipeline.open_memory(config(memory=str(foreign))))
    assert str(foreign) in message and "not an arcmemo memory" in message
    assert fake.calls == []


def test_unknown_split_seed_and_task_ids_are_one_line_errors_naming_them(tmp_path):
    with pytest.raises(ValidationError, match="unknown split 'arc9-eval': use one of arc1-eval-100"):
        config(split="arc9-eval")  # the CLI prints it as one line (test_arcmemo_cli_options.py)
    message = one_line_error(lambda: pipeline.build_memory(config(seeds=["seed-a", "nope"]), FakeArc().llm))
    assert "nope" in message and "seed-a, seed-b, seed-c" in message
    folder = write_task_files(tmp_path / "tasks", "a-flip", "b-recolor")
    message = one_line_error(lambda: pipeline.load_tasks(config(task_file=str(folder), task_ids=["zzz"])))
    assert "'zzz'" in message and str(folder) in message
    chosen = pipeline.load_tasks(config(task_file=str(folder), task_ids=["b-recolor"]))
    assert [t.id for t in chosen] == ["b-recolor"]
    assert [t.id for t in pipeline.load_tasks(config(task_file=str(folder), limit=1))] == ["a-flip"]


@pytest.mark.parametrize("command", ["build-memory --seeds nope", "eval --memory lessons.json"])
def test_bad_seeds_and_memory_are_reported_before_the_model_is_loaded(tmp_path, command):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    lessons = tmp_path / "lessons.json"
    save_memory(two_lessons(), lessons)
    if command.startswith("build-memory"):
        message = one_line_error(lambda: pipeline.run_build(config(seeds=["nope"]), tmp_path / "runs", "m"))
        assert "nope" in message
    else:
        message = one_line_error(lambda: pipeline.run_eval(config(task_file=str(folder), memory=str(lessons)),
                                                           tmp_path / "runs", "e"))
        assert str(lessons) in message


@needs_sandbox
def test_rejected_task_ids_leave_no_run_folder_that_blocks_the_corrected_command(tmp_path):
    folder = write_task_files(tmp_path / "tasks", "a-flip")
    one_line_error(lambda: pipeline.run_eval(config(task_file=str(folder), task_ids=["zzz"], selection="none"),
                                             tmp_path / "runs", "e", llm=FakeArc().llm))
    fake = FakeArc(tasks=tasks("a-flip"), solutions={"a-flip": [FLIP]})
    pipeline.run_eval(config(task_file=str(folder), selection="none"), tmp_path / "runs", "e", llm=fake.llm)
