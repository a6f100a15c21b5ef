import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.tasks import maze


def test_generated_mazes_respect_the_minimum_path_and_are_solved_by_their_label():
    mazes = maze.generate_dataset(cells=6, min_path=25, count=5, seed=0)
    for m in mazes:
        assert m.question.shape == (13, 13)
        assert (m.question == "S").sum() == 1 and (m.question == "G").sum() == 1
        assert m.path_length >= 25
        assert len(maze.shortest_path(m.question)) == m.path_length
        assert maze.is_valid_solution(m.question, m.solution)


def test_a_wrong_or_longer_path_is_not_a_valid_solution():
    m = maze.generate(5, 15, np.random.default_rng(3))
    broken = m.solution.copy()
    cell = tuple(np.argwhere(broken == "o")[0])
    broken[cell] = " "
    assert not maze.is_valid_solution(m.question, broken)
    extra = m.solution.copy()
    free = np.argwhere(extra == " ")
    extra[tuple(free[0])] = "o"
    assert not maze.is_valid_solution(m.question, extra)


def test_dihedral_transforms_keep_solutions_valid_and_are_distinct():
    m = maze.generate(5, 15, np.random.default_rng(4))
    seen = set()
    for k in range(8):
        q, s = maze.dihedral(m.question, k), maze.dihedral(m.solution, k)
        assert maze.is_valid_solution(q, s)
        seen.add(q.tobytes())
    assert len(seen) == 8


def test_encoding_matches_trm_vocabulary():
    grid = np.array([["#", " "], ["S", "G"]])
    assert maze.encode(grid).tolist() == [1, 2, 3, 4]
    assert np.array_equal(maze.decode(maze.encode(grid), 2), grid)


def test_maze_hard_csv_loader_and_row_errors(tmp_path):
    mazes = maze.generate_dataset(4, 10, 2, seed=1)
    lines = ["source,question,answer,rating"]
    for m in mazes:
        lines.append(f"gen,{''.join(m.question.reshape(-1))},{''.join(m.solution.reshape(-1))},0")
    path = tmp_path / "maze.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded = maze.load_maze_csv(path)
    assert [np.array_equal(a.solution, b.solution) for a, b in zip(loaded, mazes, strict=True)] == [True, True]
    bad = [*lines, f"gen,{''.join(mazes[0].question.reshape(-1))[:-1]}X,{''.join(mazes[0].solution.reshape(-1))},0"]
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(UserError, match=r"maze.csv line 4 question: characters \['X'\]"):
        maze.load_maze_csv(path)
    wall_moved = mazes[0].solution.copy()
    wall_moved[0, 0] = " "
    bad = [*lines, f"gen,{''.join(mazes[0].question.reshape(-1))},{''.join(wall_moved.reshape(-1))},0"]
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(UserError, match="line 4: the answer changes walls"):
        maze.load_maze_csv(path)


def test_decode_prediction_reads_pad_as_a_wall_and_format_maze_reads_back():
    m = maze.generate(2, 3, np.random.default_rng(1))
    tokens = maze.encode(m.solution)
    assert np.array_equal(maze.decode_prediction(tokens, 5), m.solution)
    tokens[0] = 0  # PAD
    assert maze.decode(tokens, 5)[0, 0] == "?" and maze.decode_prediction(tokens, 5)[0, 0] == "#"
    text = maze.format_maze(m.solution)
    assert text.splitlines()[0] == "".join(m.solution[0]) and len(text.splitlines()) == 5
    assert np.array_equal(maze.parse_maze(text), m.solution)
