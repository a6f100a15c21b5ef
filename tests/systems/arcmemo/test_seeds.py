"""Our seed solutions: each solves every train and test pair of its ARC-AGI-1 training task in the sandbox."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.sandbox.launch import choose_launcher, missing_layers
from reasonlab.systems.arcmemo.execution import run_transform
from reasonlab.systems.arcmemo.seeds import SEEDS, select_seeds
from reasonlab.systems.arcmemo.tasks import EVAL_100_IDS, ArcTask, load_split, strict_correct

AUTO_REFUSED = missing_layers(choose_launcher("auto", strict_raises=False))
TRAIN = {task.id: task for task in load_split("arc1-train")}


def local_transform(code: str) -> Any:
    """Our own (trusted) seed code, run in this process for the cross-check."""
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["transform"]


def solves(transform: Any, task: ArcTask) -> bool:
    for inp, out in [*task.train, *task.test]:
        got = np.asarray(transform(inp.copy()))
        if got.shape != out.shape or not np.array_equal(got, out):
            return False
    return True


def test_seeds_are_distinct_training_tasks_with_a_summary_and_short_pseudocode() -> None:
    ids = [seed.task_id for seed in SEEDS]
    assert 10 <= len(ids) == len(set(ids))
    assert set(ids) <= set(TRAIN) and not set(ids) & set(EVAL_100_IDS)
    for seed in SEEDS:
        assert "def transform(input_grid: np.ndarray) -> np.ndarray:" in seed.code
        assert seed.summary.strip() and "\n" not in seed.summary
        lines = seed.pseudocode.splitlines()
        assert 2 <= len(lines) <= 4 and all(line.startswith("- ") for line in lines)


@pytest.mark.skipif(bool(AUTO_REFUSED), reason=f"sandbox mode auto refuses: {AUTO_REFUSED}")
@pytest.mark.parametrize("seed", SEEDS, ids=[seed.task_id for seed in SEEDS])
def test_each_seed_solves_all_train_and_test_pairs_in_the_sandbox(seed: Any) -> None:
    task = TRAIN[seed.task_id]
    attempt = run_transform(seed.code, task)
    assert attempt.errors == {}
    assert strict_correct(task, attempt)


def test_no_seed_program_solves_another_seeds_task() -> None:
    # each task tells its rule apart from the other seeds' rules, so a swapped or broken seed would be caught
    transforms = {seed.task_id: local_transform(seed.code) for seed in SEEDS}
    for task_id, transform in transforms.items():
        solved = {other for other in transforms if solves(transform, TRAIN[other])}
        assert solved == {task_id}, f"the program of {task_id} solves {sorted(solved)}"


def test_select_seeds_keeps_the_given_order_and_names_unknown_ids() -> None:
    assert [seed.task_id for seed in select_seeds(["d10ecb37", "6150a2bd"])] == ["d10ecb37", "6150a2bd"]
    assert select_seeds() == list(SEEDS)
    with pytest.raises(UserError, match=r"no seed solution for task\(s\) 00000000; ours are 6150a2bd"):
        select_seeds(["6150a2bd", "00000000"])
