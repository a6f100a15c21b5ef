import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.tasks import sudoku


@pytest.mark.parametrize(("size", "givens"), [(4, 6), (6, 10), (9, 28)], ids=["4x4", "6x6", "9x9"])
def test_generated_puzzles_have_one_solution_matching_the_givens(size, givens):
    puzzles = sudoku.generate_dataset(size, givens, 4, seed=1)
    for p in puzzles:
        assert sudoku.is_solved(p.solution)
        assert sudoku.count_solutions(p.question) == 1
        given = p.question > 0
        assert np.array_equal(p.question[given], p.solution[given])
        assert givens <= given.sum() <= givens + max(1, size // 3)
        assert np.array_equal(sudoku.solve(p.question), p.solution)
    assert len({p.question.tobytes() for p in puzzles}) == 4


def test_fewer_givens_need_more_solver_effort():
    easy = sudoku.generate_dataset(9, 40, 6, seed=2)
    hard = sudoku.generate_dataset(9, 26, 6, seed=2)
    assert np.mean([p.effort for p in hard]) > np.mean([p.effort for p in easy])


def test_is_solved_rejects_a_box_violation():
    # a Latin square that breaks the 2x2 boxes
    grid = np.array([[1, 2, 3, 4], [2, 3, 4, 1], [3, 4, 1, 2], [4, 1, 2, 3]])
    assert not sudoku.is_solved(grid)
    assert sudoku.count_solutions(np.array([[1, 1, 0, 0]] + [[0] * 4] * 3)) == 0


@pytest.mark.parametrize("size", [4, 6, 9])
def test_augmentation_keeps_a_solved_grid_solved_and_consistent(size):
    rng = np.random.default_rng(0)
    puzzle = sudoku.generate(size, {4: 6, 6: 10, 9: 30}[size], rng)
    changed = 0
    for _ in range(25):
        q, s = sudoku.augment(puzzle.question, puzzle.solution, rng)
        assert sudoku.is_solved(s)
        assert ((q > 0).sum()) == (puzzle.question > 0).sum()
        assert np.array_equal(q[q > 0], s[q > 0])
        assert sudoku.count_solutions(q) == 1
        changed += not np.array_equal(s, puzzle.solution)
    assert changed >= 20


def test_transpose_is_only_used_for_square_boxes():
    rng = np.random.default_rng(0)
    p = sudoku.generate(6, 12, rng)
    for _ in range(20):
        _, s = sudoku.augment(p.question, p.solution, rng)
        assert sudoku.is_solved(s)  # a transpose would break 2x3 boxes


def test_encode_decode_round_trip_and_token_ids():
    grid = np.array([[0, 1], [2, 0]])
    tokens = sudoku.encode(grid)
    assert tokens.tolist() == [1, 2, 3, 1]
    assert np.array_equal(sudoku.decode(tokens, 2), grid)


def test_parse_grid_accepts_dots_zeros_and_separators():
    text = "1.3. | ..2. \n 0000 4..1"
    grid = sudoku.parse_grid(text)
    assert grid.shape == (4, 4)
    assert grid[0].tolist() == [1, 0, 3, 0] and grid[3].tolist() == [4, 0, 0, 1]


@pytest.mark.parametrize(
    ("text", "message"),
    [("1234", "expected"), ("1.3.5.7.9.1.3.5.", "character '5' at cell 4")],
)
def test_parse_grid_errors_name_the_problem(text, message):
    with pytest.raises(UserError, match=message):
        sudoku.parse_grid(text, where="--puzzle")


def _write_csv(path, rows):
    path.write_text("source,question,answer,rating\n" + "".join(",".join(r) + "\n" for r in rows))


def test_sudoku_extreme_csv_loader(tmp_path):
    puzzles = sudoku.generate_dataset(9, 26, 3, seed=5)
    rows = []
    for i, p in enumerate(puzzles):
        q = "".join(str(v) if v else "." for v in p.question.reshape(-1))
        a = "".join(str(v) for v in p.solution.reshape(-1))
        rows.append((f"gen{i}", q, a, str(p.effort)))
    path = tmp_path / "train.csv"
    _write_csv(path, rows)
    loaded = sudoku.load_sudoku_csv(path)
    assert len(loaded) == 3
    for got, want in zip(loaded, puzzles, strict=True):
        assert np.array_equal(got.question, want.question)
        assert np.array_equal(got.solution, want.solution)
        assert got.effort == want.effort
    assert len(sudoku.load_sudoku_csv(path, limit=2)) == 2


def test_csv_errors_name_the_row(tmp_path):
    p = sudoku.generate_dataset(4, 6, 1, seed=0)[0]
    q = "".join(str(v) if v else "." for v in p.question.reshape(-1))
    a = "".join(str(v) for v in p.solution.reshape(-1))
    bad_answer = a[:-1] + ("1" if a[-1] != "1" else "2")
    path = tmp_path / "bad.csv"
    _write_csv(path, [("ok", q, a, "0"), ("bad", q, bad_answer, "0")])
    with pytest.raises(UserError, match=r"bad\.csv line 3"):
        sudoku.load_sudoku_csv(path)
    _write_csv(path, [("ok", q, a, "0"), ("short", q[:-1], a, "0")])
    with pytest.raises(UserError, match=r"line 3 question: expected"):
        sudoku.load_sudoku_csv(path)
    path.write_text(f"ok,{q},{a},0\nx,{q}\n")  # headerless file: line 1 is data, line 2 is short
    with pytest.raises(UserError, match="line 2: expected 4 columns"):
        sudoku.load_sudoku_csv(path)
    path.write_text(f"ok,{q},{a},0\n")
    assert len(sudoku.load_sudoku_csv(path)) == 1
    with pytest.raises(UserError, match="does not exist"):
        sudoku.load_sudoku_csv(tmp_path / "missing.csv")
    path.write_text("source,question,answer,rating\n")
    with pytest.raises(UserError, match="holds no Sudoku-Extreme style sudoku rows"):
        sudoku.load_sudoku_csv(path)


def test_format_grid_reads_back_and_solves_checks_the_givens():
    puzzle = sudoku.generate_dataset(4, 6, 1, seed=7)[0]
    text = sudoku.format_grid(puzzle.question)
    assert len(text.splitlines()) == 4 and text.count(".") == 16 - int((puzzle.question > 0).sum())
    assert np.array_equal(sudoku.parse_grid(text), puzzle.question)
    assert sudoku.format_grid(np.array([[1, 0], [0, 2]])) == "1 .\n. 2"
    assert sudoku.solves(puzzle.question, puzzle.solution)
    # another solved grid (two columns of one box swapped) breaks a given: the puzzle's solution is unique
    other = puzzle.solution[:, [1, 0, 2, 3]]
    assert sudoku.is_solved(other) and not sudoku.solves(puzzle.question, other)
    broken = puzzle.solution.copy()
    broken[0, 0] = broken[0, 1]
    assert not sudoku.solves(puzzle.question, broken)
    assert not sudoku.solves(puzzle.question, puzzle.solution[:2, :2])
