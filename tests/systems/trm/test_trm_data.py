import json

import numpy as np
import pytest

from reasonlab.errors import UserError
from reasonlab.systems.trm.config import TRMTrainConfig
from reasonlab.systems.trm.data import BatchStream, DataSpec, build_task_data
from reasonlab.systems.trm.inference import solve_puzzle
from reasonlab.systems.trm.losses import IGNORE
from reasonlab.systems.trm.training import train
from reasonlab.tasks import maze, sudoku


def test_rank_shards_partition_the_global_batch_and_epochs_cover_every_sample():
    single = BatchStream(10, 4, seed=3)
    ranks = [BatchStream(10, 4, seed=3, rank=r, world=2) for r in range(2)]
    seen = []
    for _ in range(5):  # 20 samples = 2 epochs
        whole = single.next()
        parts = [s.next() for s in ranks]
        assert sorted(whole.tolist()) == sorted(np.concatenate(parts).tolist())
        assert not set(parts[0]) & set(parts[1])
        seen.extend(whole.tolist())
    assert sorted(seen) == sorted(list(range(10)) * 2)
    with pytest.raises(UserError, match="not divisible"):
        BatchStream(10, 5, seed=0, world=2)


def test_stream_state_round_trips():
    a = BatchStream(7, 3, seed=1)
    a.next()
    b = BatchStream(7, 3, seed=1)
    b.load_state_dict(a.state_dict())
    assert a.next().tolist() == b.next().tolist()


def test_sudoku_task_tensors_and_augmented_batches_stay_valid():
    data = build_task_data(DataSpec(task="sudoku", size=6, givens=12, train_size=8, val_size=4, test_size=4))
    assert (data.signature, data.vocab_size, data.seq_len) == ("sudoku-6x6", 8, 36)
    batch = data.train_batch(np.arange(8), np.random.default_rng(0))
    for inputs, labels in zip(batch.inputs.numpy(), batch.labels.numpy(), strict=True):
        solution = sudoku.decode(labels, 6)
        assert sudoku.is_solved(solution)
        given = inputs > 1
        assert np.array_equal(inputs[given], labels[given])


def test_maze_task_and_a_short_maze_run_with_solve(tmp_path):
    config = TRMTrainConfig(
        task="maze", size=3, min_path=5, train_size=16, val_size=4, test_size=4, hidden_size=16, num_heads=2,
        n=1, T=1, n_sup=2, prefix_len=1, ffn_multiple=8, batch_size=4, max_steps=3, eval_every=3, progress=False,
        out=str(tmp_path), name="maze", threads=1, device="cpu",
    )
    run_dir = train(config)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "maze-7x7" and summary["train_steps"] == 3
    m = maze.generate(3, 5, np.random.default_rng(0))
    result = solve_puzzle(run_dir, maze.format_maze(m.question))
    answer = maze.parse_maze(result.text, size=7)  # the answer is always a 7x7 grid of maze characters
    assert result.valid == maze.is_valid_solution(m.question, answer)
    with pytest.raises(UserError, match="characters"):
        solve_puzzle(run_dir, "x" * 49)


def test_arc_task_ids_labels_and_a_short_run_with_pass_at_2(tmp_path):
    spec = DataSpec(task="arc", arc_tasks=2, arc_augmentations=1, val_size=2)
    data = build_task_data(spec)
    assert data.vocab_size == 12 and data.seq_len == 900
    assert data.num_puzzle_ids == 1 + 4 * 2  # blank + 2 train + 2 eval tasks, identity + 1 variant each
    assert (data.test.labels == IGNORE).any() and not (data.test.inputs == IGNORE).any()
    config = TRMTrainConfig(
        task="arc", arc_tasks=2, arc_augmentations=1, val_size=2, hidden_size=16, num_heads=2, n=1, T=1,
        n_sup=1, prefix_len=1, ffn_multiple=8, batch_size=4, max_steps=2, eval_every=2, progress=False,
        out=str(tmp_path), name="arc", threads=1, device="cpu", eval_batch_size=16,
    )
    summary = json.loads((train(config) / "summary.json").read_text())
    # 2 optimizer steps of a D=16 model solve none of the 2 evaluation tasks' test grids
    assert summary["task"] == "arc-arcagi" and summary["test_pass_at_2"] == 0.0
