"""The hand-written held-out set: its shape, its independence from the generator's names, the scripted oracle
at 100% and the wrong policy at 0% through the real agent loop and sandbox, and one-line load errors."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from reasonlab.systems.memagent.data import (
    CATEGORIES,
    CITIES,
    COMPANIES,
    FIRST_NAMES,
    LAST_NAMES,
    PET_NAMES,
)
from reasonlab.systems.memagent.evaluation import AgentSolver, run_bench, scripted_policy
from reasonlab.systems.memagent.handwritten import load_handwritten
from reasonlab.systems.memagent.memory import wiki_links

KINDS = {"retrieval": {"0-hop", "1-hop", "2-hop"}, "update": {"explicit"},
         "clarification": {"missing_entity", "missing_attribute"}, "filter": {"block", "partial", "none"}}


@pytest.fixture(scope="module")
def handwritten():
    return load_handwritten()


def _scripted(correct: bool) -> AgentSolver:
    return AgentSolver(policy_for_task=lambda task: scripted_policy(task, correct), name=str(correct))


def test_the_set_covers_every_category_on_three_linked_memories(handwritten) -> None:
    memories, tasks = handwritten
    assert len(memories) == 3 and len({m.memory_id for m in memories}) == 3
    per_category = Counter(t.category for t in tasks)
    assert all(per_category[c] >= 6 for c in CATEGORIES), per_category
    assert [t.category for t in tasks] == sorted((t.category for t in tasks), key=CATEGORIES.index)
    assert {t.memory_id for t in tasks} == {m.memory_id for m in memories}
    for category, kinds in KINDS.items():
        assert {t.kind for t in tasks if t.category == category} == kinds, category
    for memory in memories:
        assert "user.md" in memory.files
        for path, text in memory.files.items():
            assert path == "user.md" or re.fullmatch(r"entities/[a-z0-9_]+\.md", path), path
            assert text.startswith("# ") and text.endswith("\n"), path
            for target in wiki_links(text):
                assert target in memory.files, f"{memory.memory_id} {path} links to missing {target}"
    for task in tasks:
        files = next(m.files for m in memories if m.memory_id == task.memory_id)
        text = "\n".join(files.values())
        values = [*task.blocked, *task.allowed] + ([] if task.category == "update" else [task.answer or ""])
        for value in values:
            assert value in text, f"{task.task_id}: {value!r} is not in its memory"
        for path, key, _ in task.expected_facts:
            assert re.search(rf"^- {key}: ", files[path], re.M), f"{task.task_id}: no {key} in {path}"
        if task.category == "update":
            assert task.followup_question and task.followup_question not in task.question
        if task.category == "filter":
            assert task.filters and (task.blocked or task.allowed)


def test_no_name_of_the_generator_appears(handwritten) -> None:
    memories, tasks = handwritten
    names = [*FIRST_NAMES, *LAST_NAMES, *PET_NAMES, *(c[0] for c in COMPANIES), *(c[0] for c in CITIES)]
    texts = [text for m in memories for text in (*m.files, *m.files.values())]
    texts += [text for t in tasks for text in (t.question, t.followup_question or "", t.filters or "",
                                                 t.oracle_reply, t.wrong_reply)]
    for name in names:
        pattern = re.compile(rf"\b{re.escape(name)}\b", re.I)
        hits = [text[:60] for text in texts if pattern.search(text)]
        assert not hits, f"generator name {name!r} in {hits}"


def test_the_scorer_gives_the_oracle_100_and_the_wrong_policy_0(handwritten) -> None:
    memories, tasks = handwritten
    oracle = run_bench(tasks, memories, _scripted(True))
    wrong = run_bench(tasks, memories, _scripted(False))
    failed = [(o.task_id, o.reason) for o in oracle.outcomes if not o.correct]
    passed = [(o.task_id, o.reason) for o in wrong.outcomes if o.correct]
    assert not failed and not passed, (failed, passed)
    assert {c: v["score"] for c, v in oracle.summary["categories"].items()} == dict.fromkeys(CATEGORIES, 1.0)
    assert {c: v["score"] for c, v in wrong.summary["categories"].items()} == dict.fromkeys(CATEGORIES, 0.0)
    for summary in (oracle.summary, wrong.summary):
        assert (summary["n"], summary["format_valid_rate"], summary["ast_parse_rate"]) == (len(tasks), 1.0, 1.0)
        assert (summary["tool_error_rate"], summary["reply_rate"]) == (0.0, 1.0)
    # the honest follow-up reader finds the new value after the oracle's update
    for outcome, task in zip(oracle.outcomes, tasks, strict=True):
        if task.category == "update":
            assert outcome.followup_reply == f"According to your memory, it is {task.answer}."


def _line(**record) -> str:
    return json.dumps(record)


MEMORY = _line(kind="memory", memory_id="hand_x", files={"user.md": "# Me\n- name: Ada\n"})
TASK = {"task_id": "hand_x-retrieval-0", "category": "retrieval", "memory_id": "hand_x", "question": "name?",
        "answer": "Ada", "kind": "0-hop"}


@pytest.mark.parametrize(("lines", "message"), [
    ([MEMORY, "{not json"], r"line 2: not valid JSON"),
    ([MEMORY, _line(kind="fact")], r"line 2: unknown kind 'fact'"),
    ([MEMORY, "", _line(kind="task", task={**TASK, "memory_id": "hand_y"})], r"line 3: .*'hand_y', which no line"),
    ([MEMORY, _line(kind="task", task={**TASK, "colour": "red"})], r"line 2: not a BenchTask"),
    ([MEMORY, _line(kind="task", task={**TASK, "category": "trivia"})], r"line 2: unknown category 'trivia'"),
    ([_line(kind="memory", memory_id="hand_x")], r"line 1: a memory needs"),
    ([MEMORY, json.dumps({**TASK, "kind": "task"})], r"line 2: a task line needs a 'task' object"),
])
def test_a_bad_line_is_a_one_line_error_naming_it(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        load_handwritten("\n".join(lines) + "\n")
    assert "\n" not in str(error.value) and str(error.value).startswith("handwritten.jsonl line ")


def test_a_good_text_loads(tmp_path) -> None:
    file = tmp_path / "set.jsonl"
    file.write_text("\n".join([_line(kind="task", task=TASK), MEMORY]) + "\n")
    memories, tasks = load_handwritten(file.read_text())
    assert [m.memory_id for m in memories] == ["hand_x"] and tasks[0].answer == "Ada"
    assert tasks[0].expected_facts == [] and memories[0].graph.number_of_nodes() == 0
