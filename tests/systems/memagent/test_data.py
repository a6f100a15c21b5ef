"""The generated memories and tasks: seeded, in the mem-agent layout, and with gold data that is really there."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from reasonlab.systems.memagent.data import (
    CATEGORIES,
    BenchTask,
    entity_path,
    generate_bench,
    generate_memory,
    snake_case,
)
from reasonlab.systems.memagent.judges import contains, parse_facts

LINK = re.compile(r"\[\[([^\]]+)\]\]")


@pytest.fixture(scope="module")
def bench():
    return generate_bench(seed=0, n_memories=2, tasks_per_category=5)


def test_same_seed_same_bench_other_seed_other_bench(bench) -> None:
    memories, tasks = bench
    again_memories, again_tasks = generate_bench(seed=0, n_memories=2, tasks_per_category=5)
    assert [m.files for m in memories] == [m.files for m in again_memories]
    assert [t.to_dict() for t in tasks] == [t.to_dict() for t in again_tasks]
    other, _ = generate_bench(seed=1, n_memories=2, tasks_per_category=5)
    assert other[0].files != memories[0].files


def test_layout_user_md_entities_and_full_path_links(bench) -> None:
    for memory in bench[0]:
        files = memory.files
        assert "user.md" in files and len(files) == 1 + 3 + 5 + 1 + 3  # user, people, cities, pet, companies
        assert all(path == "user.md" or re.fullmatch(r"entities/[a-z0-9_]+\.md", path) for path in files)
        links = [link for text in files.values() for link in LINK.findall(text)]
        assert len(links) == 6 + 3 * 2 + 3  # user's relations, each person's employer and city, headquarters
        assert all(link in files for link in links)  # full relative paths that resolve
        for text in files.values():
            lines = [line for line in text.splitlines() if line.strip()]
            assert lines[0].startswith("# ")
            assert all(line.startswith(("# ", "## ")) or re.fullmatch(r"- [a-z_]+: .+", line) for line in lines)
        assert "- birth_date: " in files["user.md"]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", v) for (_, k), v in parse_facts(files).items() if k == "birth_date")


def test_names_are_unique_and_snake_cased() -> None:
    memory = generate_memory(5)
    names = [data["name"] for _, data in memory.graph.nodes(data=True)]
    assert len(names) == len(set(names)) == 13
    assert snake_case("Northwind Logistics") == "northwind_logistics"
    assert entity_path("Lena Novak") == "entities/lena_novak.md"


def test_counts_per_category_and_kinds(bench) -> None:
    _, tasks = bench
    assert Counter(t.category for t in tasks) == dict.fromkeys(CATEGORIES, 5)
    assert len({t.task_id for t in tasks}) == 20
    assert {t.kind for t in tasks if t.category == "retrieval"} == {"0-hop", "1-hop", "2-hop"}
    assert {t.kind for t in tasks if t.category == "filter"} == {"block", "partial", "none"}
    assert {t.kind for t in tasks if t.category == "clarification"} == {"missing_entity", "missing_attribute"}
    assert BenchTask.from_dict(tasks[0].to_dict()) == tasks[0]


def _memory(bench, task: BenchTask) -> dict[str, str]:
    return next(m for m in bench[0] if m.memory_id == task.memory_id).files


def test_retrieval_answers_sit_in_the_last_file_the_oracle_reads(bench) -> None:
    for task in (t for t in bench[1] if t.category == "retrieval"):
        files = _memory(bench, task)
        paths = [re.search(r'"(.+)"', code).group(1) for code in task.oracle_code]
        assert paths[0] == "user.md" and len(paths) == int(task.kind[0]) + 1
        assert contains(files[paths[-1]], task.answer)
        assert contains(task.oracle_reply, task.answer) and not contains(task.wrong_reply, task.answer)


def test_updates_change_one_existing_fact(bench) -> None:
    for task in (t for t in bench[1] if t.category == "update"):
        facts = parse_facts(_memory(bench, task))
        ((path, key, value),) = task.expected_facts
        assert (path, key) in facts and facts[(path, key)] != value
        assert value in task.question and task.followup_question.endswith("?")
        assert f'"- {key}: {value}"' in task.oracle_code[-1] and f'"- {key}: {value}"' not in task.wrong_code[-1]


def test_clarifications_ask_about_what_memory_lacks(bench) -> None:
    for task in (t for t in bench[1] if t.category == "clarification"):
        dump = "\n".join(_memory(bench, task).values())
        asked = re.search(r"What is the (.+?) of (?:my )?(.+?)\?", task.question)
        if task.kind == "missing_entity":
            assert f"- {asked.group(2).replace(' ', '_')}:" not in dump
        else:
            assert f"- {asked.group(1).replace(' ', '_').replace(chr(39) + 's', '')}:" not in dump
        assert task.answer is None and "?" in task.oracle_reply and "?" not in task.wrong_reply


def test_filters_block_values_that_are_in_memory(bench) -> None:
    for task in (t for t in bench[1] if t.category == "filter"):
        dump = "\n".join(_memory(bench, task).values())
        assert task.filters and all(v in dump for v in task.blocked + task.allowed)
        assert len(task.blocked) == {"block": 1, "partial": 1, "none": 0}[task.kind]
        assert len(task.allowed) == {"block": 0, "partial": 1, "none": 1}[task.kind]
        assert not any(contains(task.oracle_reply, v) for v in task.blocked)
        assert all(contains(task.oracle_reply, v) for v in task.allowed)


def test_asked_names_the_links_to_follow_and_the_key_in_the_memorys_own_words(bench) -> None:
    """`asked` ("timezone of home_city of sibling") walks the memory: each relation is a link line of the file
    read before it, and the key is a line of the last file (the heading for a name); clarifications name what is
    missing."""
    for task in bench[1]:
        files = _memory(bench, task)
        key, *relations = task.asked.split(" of ")
        relations = [] if relations == ["user"] else relations[::-1]
        paths = [re.search(r'"(.+?)"', code).group(1) for code in task.oracle_code if "read_file" in code]
        if task.kind == "missing_entity":
            assert f"- {relations[0]}:" not in files["user.md"]
            continue
        assert len(paths) == len(relations) + 1, (task.asked, paths)
        for relation, path, after in zip(relations, paths, paths[1:], strict=False):
            assert f"- {relation}: [[{after}]]" in files[path], (task.asked, path)
        last = files[paths[len(relations)]]
        if task.kind == "missing_attribute":
            assert f"- {key}:" not in last
        elif key != "name":
            assert all(f"- {part}:" in last for part in key.split(" and ")), (task.asked, last)
    assert {t.asked.split(" of ")[0] for t in bench[1] if t.category == "retrieval"} >= {"name", "timezone"}
