"""ARC-lite: primitives on hand-made grids, the task generator's guarantees, the train-only search, features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.systems.arcmemo import arclite
from reasonlab.systems.arcmemo.arclite import (
    PRIMITIVES,
    ArcLiteTask,
    all_ops,
    apply_program,
    enumerate_programs,
    generate_tasks,
    search,
)


def g(rows: list[list[int]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.int64)


def op(name: str, param=None) -> arclite.Op:
    return (name, param)


def run(name: str, param, rows: list[list[int]]) -> list[list[int]] | None:
    out = apply_program((op(name, param),), g(rows))
    return None if out is None else out.tolist()


# primitives


def test_twelve_primitives_with_42_ops_each_described():
    assert len(PRIMITIVES) == 12
    ops = all_ops()
    assert len(ops) == 42 == len(set(ops))
    for primitive in PRIMITIVES.values():
        assert primitive.description and len(primitive.cues) >= 2
    assert all_ops(["rotate", "crop"]) == [("rotate", 1), ("rotate", 2), ("rotate", 3), ("crop", None)]


@pytest.mark.parametrize(("name", "param", "grid", "expected"), [
    ("rotate", 1, [[1, 2], [3, 4]], [[2, 4], [1, 3]]),  # counterclockwise
    ("rotate", 2, [[1, 2], [3, 4]], [[4, 3], [2, 1]]),
    ("rotate", 3, [[1, 2, 5], [3, 4, 6]], [[3, 1], [4, 2], [6, 5]]),
    ("flip", "h", [[1, 2], [3, 4]], [[2, 1], [4, 3]]),
    ("flip", "v", [[1, 2], [3, 4]], [[3, 4], [1, 2]]),
    ("transpose", None, [[1, 2, 5], [3, 4, 6]], [[1, 3], [2, 4], [5, 6]]),
    ("scale", 2, [[1, 0], [0, 2]], [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]]),
    ("scale", 3, [[7]], [[7, 7, 7], [7, 7, 7], [7, 7, 7]]),
    ("tile", (1, 2), [[1, 0], [0, 2]], [[1, 0, 1, 0], [0, 2, 0, 2]]),
    ("tile", (2, 1), [[1, 2]], [[1, 2], [1, 2]]),
    ("tile", (2, 2), [[1, 2]], [[1, 2, 1, 2], [1, 2, 1, 2]]),
    ("mirror_extend", "right", [[1, 2], [3, 0]], [[1, 2, 2, 1], [3, 0, 0, 3]]),
    ("mirror_extend", "down", [[1, 2], [3, 0]], [[1, 2], [3, 0], [3, 0], [1, 2]]),
    ("crop", None, [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]], [[1, 0], [0, 2]]),
    ("gravity", "down", [[3, 0], [0, 0], [5, 4]], [[0, 0], [3, 0], [5, 4]]),
    ("gravity", "up", [[3, 0], [0, 0], [5, 4]], [[3, 4], [5, 0], [0, 0]]),
    ("gravity", "left", [[0, 3, 0, 5]], [[3, 5, 0, 0]]),
    ("gravity", "right", [[3, 0, 5, 0]], [[0, 0, 3, 5]]),
    ("recolor", 3, [[1, 0], [2, 5]], [[3, 0], [3, 3]]),
    ("draw_lines", "row", [[0, 1, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0], [4, 0, 6, 0, 0, 0]],
     [[1, 1, 1, 2, 2, 2], [0, 0, 0, 0, 0, 0], [4, 4, 6, 6, 6, 6]]),  # nearest coloured cell, the left on a tie
    ("draw_lines", "col", [[0, 0], [1, 0], [0, 0], [2, 0]], [[1, 0], [1, 0], [1, 0], [2, 0]]),
    ("shift", "down", [[1, 0], [0, 0], [0, 2]], [[0, 2], [1, 0], [0, 0]]),  # wraps around
    ("shift", "up", [[1, 0], [0, 0], [0, 2]], [[0, 0], [0, 2], [1, 0]]),
    ("shift", "right", [[1, 0, 2]], [[2, 1, 0]]),
    ("shift", "left", [[1, 0, 2]], [[0, 2, 1]]),
])
def test_primitive_does_what_its_description_says(name, param, grid, expected):
    assert run(name, param, grid) == expected


def test_fill_enclosed_paints_only_holes_cut_off_from_the_border():
    ring = [[0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 1, 0, 1, 0, 0],
            [0, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0]]
    filled = run("fill_enclosed", 4, ring)
    assert filled[2][2] == 4
    assert np.count_nonzero(np.asarray(filled) == 4) == 1
    # a gap in the ring connects the hole to the outside: nothing changes
    open_ring = [row[:] for row in ring]
    open_ring[1][2] = 0
    assert run("fill_enclosed", 4, open_ring) == open_ring
    # diagonal steps do not leak (4-connectivity): the centre touches four empty corners diagonally
    diamond = [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    assert run("fill_enclosed", 2, diamond) == [[0, 1, 0], [1, 2, 1], [0, 1, 0]]


def test_ops_that_do_not_apply_return_none():
    assert run("crop", None, [[0, 0], [0, 0]]) is None
    assert apply_program((op("scale", 3),), np.ones((11, 4), dtype=np.int64)) is None
    assert apply_program((op("scale", 3),), np.ones((10, 4), dtype=np.int64)).shape == (30, 12)
    assert apply_program((op("tile", (2, 2)),), np.ones((3, 16), dtype=np.int64)) is None
    assert apply_program((op("mirror_extend", "down"),), np.ones((16, 3), dtype=np.int64)) is None


def test_primitives_do_not_modify_their_input():
    grid = g([[0, 1, 0], [2, 0, 0], [0, 0, 3]])
    before = grid.copy()
    for candidate in all_ops():
        out = apply_program((candidate,), grid)
        if out is not None:
            out[...] = 9  # a view into the input would write through
    assert np.array_equal(grid, before)


def test_apply_program_composes_left_to_right():
    grid = g([[1, 2], [0, 0]])
    assert apply_program((op("rotate", 1), op("recolor", 3)), grid).tolist() == [[3, 0], [3, 0]]
    assert apply_program((op("crop"), op("scale", 2)), grid).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert apply_program((op("scale", 2), op("crop")), grid).tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    assert apply_program((op("gravity", "down"), op("crop")), grid).tolist() == [[1, 2]]
    assert apply_program((op("crop"), op("rotate", 1)), np.zeros((2, 2), dtype=np.int64)) is None
    big = np.ones((8, 8), dtype=np.int64)
    assert apply_program((op("scale", 3), op("tile", (1, 2)), op("crop")), big) is None  # None propagates
    assert apply_program((), grid) is grid
    with pytest.raises(UserError, match="unknown ARC-lite op"):
        apply_program((op("rotate", 4),), grid)


def test_program_text_round_trips():
    assert arclite.program_text((op("rotate", 1), op("recolor", 3))) == "rotate(1) -> recolor(3)"
    assert arclite.program_text((op("tile", (2, 2)), op("crop"))) == "tile(2,2) -> crop"
    assert arclite.program_text(()) == "identity"
    for program in [(), *[(o,) for o in all_ops()], (op("flip", "h"), op("tile", (1, 2)), op("transpose"))]:
        assert arclite.parse_program(arclite.program_text(program)) == program
    with pytest.raises(UserError, match="unknown ARC-lite op 'spin"):
        arclite.parse_program("rotate(1) -> spin(2)")


# tasks


def same_tasks(a: list[ArcLiteTask], b: list[ArcLiteTask]) -> bool:
    def grids(task):
        return [grid.tolist() for pair in task.train + task.test for grid in pair]
    return [(t.id, t.program, grids(t)) for t in a] == [(t.id, t.program, grids(t)) for t in b]


@pytest.fixture(scope="module")
def tasks() -> list[ArcLiteTask]:
    return generate_tasks(45, seed=7)


def test_generator_is_reproducible_from_the_seed(tasks):
    assert same_tasks(tasks, generate_tasks(45, seed=7))
    assert not same_tasks(tasks[:10], generate_tasks(10, seed=8))
    assert {len(t.program) for t in tasks} == {1, 2, 3}
    assert len({t.id for t in tasks}) == 45


def test_generated_tasks_keep_their_invariants(tasks):
    # fill_enclosed alone often leaves a grid without holes unchanged: at most one such train pair is allowed
    fills = generate_tasks(25, seed=2, depths=(1,), primitives=["fill_enclosed"])
    for task in tasks + fills:
        assert len(task.train) == 3 and len(task.test) == 1
        for grid_in, grid_out in task.train + task.test:
            assert 3 <= grid_in.shape[0] <= 8 and 3 <= grid_in.shape[1] <= 8
            assert 1 <= len(np.unique(grid_in[grid_in != 0])) <= 3
            assert np.array_equal(apply_program(task.program, grid_in), grid_out)
        assert sum(np.array_equal(a, b) for a, b in task.train) <= 1
        assert not np.array_equal(*task.test[0])
        # every op changes at least one of its train grids
        for step in range(len(task.program)):
            before = [apply_program(task.program[:step], a) for a, _ in task.train]
            after = [apply_program(task.program[: step + 1], a) for a, _ in task.train]
            assert any(not np.array_equal(x, y) for x, y in zip(before, after, strict=True))


def test_no_strictly_shorter_program_solves_a_generated_task(tasks):
    for task in tasks:
        depth = len(task.program)
        assert not arclite.solves((), task.train)
        if depth == 1:
            continue
        shorter = search(task, enumerate_programs(all_ops(), depth - 1, None), budget=10**6)
        assert shorter.program is None
        assert shorter.tried == sum(42**n for n in range(1, depth))


def test_depth_weights_and_primitive_subsets_are_respected():
    only_two = generate_tasks(8, seed=1, depths=(1, 2, 3), depth_weights=(0, 1, 0))
    assert [len(t.program) for t in only_two] == [2] * 8
    subset = generate_tasks(8, seed=1, depths=(1, 2), primitives=["rotate", "recolor", "crop"])
    assert {name for t in subset for name, _ in t.program} <= {"rotate", "recolor", "crop"}
    with pytest.raises(UserError, match="unknown ARC-lite primitive"):
        generate_tasks(1, seed=0, primitives=["rotate", "spin"])
    with pytest.raises(UserError, match="unknown ARC-lite primitive"):
        arclite.generate_task(np.random.default_rng(0), 1, "t", primitives=["spin"])
    with pytest.raises(UserError, match="at least one primitive"):
        generate_tasks(1, seed=0, primitives=[])
    with pytest.raises(UserError, match="depth_weights"):
        generate_tasks(1, seed=0, depth_weights=(1, 1))
    with pytest.raises(UserError, match="depths"):
        generate_tasks(1, seed=0, depths=(0, 1))


# search


def rotation_task(test_output: np.ndarray | None = None) -> ArcLiteTask:
    inputs = [g([[1, 0, 0], [2, 0, 0]]), g([[0, 3], [0, 0], [4, 0]]), g([[5, 5, 0], [0, 0, 0], [0, 0, 6]])]
    program = (op("rotate", 1),)
    test_in = g([[7, 0], [0, 8]])
    test_out = apply_program(program, test_in) if test_output is None else test_output
    return ArcLiteTask("rot", [(x, apply_program(program, x)) for x in inputs], [(test_in, test_out)], program)


def test_search_accepts_on_train_pairs_only():
    flip, rotate = (op("flip", "h"),), (op("rotate", 1),)
    assert search(rotation_task(), [flip, rotate], budget=10) == arclite.SearchResult(rotate, 2, True)
    # a corrupted test output does not change what is accepted, only the verdict
    corrupted = search(rotation_task(g([[9, 9], [9, 9]])), [flip, rotate], budget=10)
    assert corrupted == arclite.SearchResult(rotate, 2, False)
    # a candidate that reproduces the test pair but not the train pairs is never accepted
    test_in = rotation_task().test[0][0]
    fooled = rotation_task(apply_program(flip, test_in))
    assert search(fooled, [flip, rotate], budget=10) == arclite.SearchResult(rotate, 2, False)
    assert search(fooled, [flip], budget=10) == arclite.SearchResult(None, 1, False)


def test_search_budget_counts_distinct_programs_and_stops_drawing():
    task = rotation_task()
    a, b, c = (op("flip", "h"),), (op("transpose"),), (op("rotate", 1),)
    assert search(task, [a, a, b, a, c], budget=3) == arclite.SearchResult(c, 3, True)
    assert search(task, [a, a, b, a, c], budget=2) == arclite.SearchResult(None, 2, False)
    assert search(task, [a, a, b, a, c], budget=0) == arclite.SearchResult(None, 0, False)
    stream = iter([a, b, c, a])
    search(task, stream, budget=2)
    assert next(stream) == c  # the program beyond the budget is left in the stream
    with pytest.raises(UserError, match="unknown ARC-lite op"):
        search(task, [a, (("spin", 1),)], budget=5)


def test_search_finds_the_generated_program_or_an_equivalent(tasks):
    for task in [t for t in tasks if len(t.program) <= 2][:10]:
        result = search(task, enumerate_programs(all_ops(), 2, np.random.default_rng(0)), budget=2000)
        assert result.program is not None and len(result.program) == len(task.program)
        assert arclite.solves(result.program, task.train)


def test_enumeration_covers_every_length_exactly_once_in_order():
    ops = all_ops(["rotate", "flip"])  # 5 ops
    shuffled = list(enumerate_programs(ops + ops[:2], 3, np.random.default_rng(3)))  # repeats in ops dropped
    assert [len(p) for p in shuffled] == sorted(len(p) for p in shuffled)
    for length in (1, 2, 3):
        of_length = [p for p in shuffled if len(p) == length]
        assert len(of_length) == 5**length
        assert set(of_length) == set(itertools.product(ops, repeat=length))
    assert list(enumerate_programs(ops, 2, None)) == [*[(o,) for o in ops], *itertools.product(ops, repeat=2)]
    assert shuffled == list(enumerate_programs(ops, 3, np.random.default_rng(3)))
    assert shuffled != list(enumerate_programs(ops, 3, np.random.default_rng(4)))
    assert shuffled[5:30] != list(itertools.product(ops, repeat=2))  # within a length the order is shuffled


# features


def test_features_of_hand_made_pairs():
    grid = g([[1, 0, 0], [2, 0, 0]])
    rotated = arclite.step_features(grid, np.rot90(grid))
    assert rotated["is_rotation"] == rotated["transposed_shape"] == rotated["same_histogram"] == 1.0
    assert rotated["same_shape"] == rotated["is_flip"] == rotated["is_transpose"] == 0.0
    assert rotated["cells_changed"] == 1.0
    recolored = arclite.step_features(grid, g([[3, 0, 0], [3, 0, 0]]))
    expected = {"same_shape": 1.0, "new_color": 1.0, "colors_removed": 1.0, "single_out_color": 1.0,
                "same_count": 1.0, "background_kept": 1.0, "foreground_kept": 0.0, "same_histogram": 0.0,
                "cells_changed": 2 / 6, "is_rotation": 0.0}
    assert {k: recolored[k] for k in expected} == pytest.approx(expected)
    tiled = arclite.step_features(grid, np.tile(grid, (1, 2)))
    assert (tiled["width_x2"], tiled["height_x2"], tiled["contains_input"], tiled["larger_output"],
            tiled["more_cells"], tiled["same_colors"]) == (1.0, 0.0, 1.0, 1.0, 1.0, 1.0)
    assert set(tiled) == set(arclite.FEATURE_NAMES)
    # an unchanged grid is not called a rotation, flip or transpose of itself
    symmetric = g([[1, 0, 1], [0, 2, 0], [1, 0, 1]])
    unchanged = arclite.step_features(symmetric, symmetric)
    assert (unchanged["is_rotation"], unchanged["is_flip"], unchanged["is_transpose"]) == (0.0, 0.0, 0.0)
    assert (unchanged["out_symmetric_lr"], unchanged["out_symmetric_ud"], unchanged["cells_changed"]) == (1, 1, 0)
    # over several pairs each feature is the fraction of pairs with it
    both = arclite.step_features([grid, grid], [np.rot90(grid), np.tile(grid, (1, 2))])
    assert both["is_rotation"] == 0.5 and both["more_cells"] == 0.5


def test_task_features_and_description_read_train_pairs_only():
    task, corrupted = rotation_task(), rotation_task(g([[9, 9, 9]]))
    assert arclite.task_features(task) == arclite.task_features(corrupted)
    text = arclite.describe_task(task)
    assert text == arclite.describe_task(corrupted)
    assert "the output is the input rotated" in text
    assert "every colour keeps its number of cells" in text
    assert "same shape" not in text
    recolor = arclite.describe_pairs([(g([[1, 0], [0, 2]]), g([[5, 0], [0, 5]]))])
    assert "the output has a single colour" in recolor and "about 50% of the cells change" in recolor
