"""The continual loop with a scripted solver: writes only after train verification, visibility across batches."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reasonlab.systems.arcmemo.continual import Step, run_continual


@dataclass
class Task:
    id: str
    needs: str | None  # the memory entry that makes this task solvable (None: solvable from scratch)
    test_ok: bool = True  # what a test output would say; the loop must never look at it


def scripted_solver(memory: set[str], seen: list[tuple[str, frozenset[str]]], fail_first: set[str] = frozenset()):
    def solve_batch(batch, threads, pass_index):
        snapshot = frozenset(memory)  # what the whole batch sees
        steps = []
        for task in batch:
            seen.append((task.id, snapshot))
            ok = (task.needs is None or task.needs in snapshot) and not (task.id in fail_first and pass_index == 0)
            steps.append(Step(train_correct=ok, payload=task.id))
        return steps
    return solve_batch


def writer(memory: set[str], log: list[list[str]]):
    def write(verified):
        names = [f"from-{task_id}" for task_id, _ in verified]
        log.append([task_id for task_id, _ in verified])
        memory.update(names)
        return names
    return write


def test_writes_only_verified_and_next_batch_sees_them():
    tasks = [Task("a", None), Task("b", "from-a"), Task("c", None, test_ok=False), Task("d", "from-a")]
    memory, seen, log = set(), [], []
    result = run_continual(tasks, scripted_solver(memory, seen), writer(memory, log), batch_size=2)
    # batch 1 = (a, b): b cannot see a's entry (same snapshot); batch 2 = (c, d): d sees it
    assert [s.train_correct for s in result.last_steps().values()] == [True, False, True, True]
    assert log == [["a"], ["c", "d"]]  # b (failed on train) never written; c written although its test is wrong
    assert dict(seen)["b"] == frozenset() and dict(seen)["d"] == frozenset({"from-a"})
    assert [b.memory_version for b in result.batches] == [0, 1]
    assert result.threads["d"][0].memory_version == 1


def test_frozen_memory_never_written():
    tasks = [Task("a", None), Task("b", "from-a")]
    memory, seen, log = set(), [], []
    result = run_continual(tasks, scripted_solver(memory, seen), writer(memory, log), batch_size=1, update=False)
    assert log == [] and memory == set() and result.writes == 0
    assert not result.last_steps()["b"].train_correct


def test_later_passes_retry_only_failed_threads_and_see_new_memory():
    tasks = [Task("a", None), Task("b", "from-a"), Task("c", None)]
    memory, seen, log = set(), [], []
    result = run_continual(tasks, scripted_solver(memory, seen, fail_first={"c"}), writer(memory, log),
                           batch_size=3, max_passes=3)
    assert [len(result.threads[t]) for t in "abc"] == [1, 2, 2]  # a solved in pass 1, b and c retried once
    assert all(s.train_correct for s in result.last_steps().values())
    assert [task_id for task_id, _ in seen] == ["a", "b", "c", "b", "c"]
    assert dict(seen[3:])["b"] == frozenset({"from-a"})
    assert len(result.batches) == 2 and result.batches[1].pass_index == 1


def test_bad_arguments_are_errors():
    with pytest.raises(ValueError, match="batch_size"):
        run_continual([Task("a", None)], scripted_solver(set(), []), batch_size=0)
    with pytest.raises(ValueError, match="repeat"):
        run_continual([Task("a", None), Task("a", None)], scripted_solver(set(), []))
    with pytest.raises(ValueError, match="returned 0 steps"):
        run_continual([Task("a", None)], lambda batch, threads, p: [])
