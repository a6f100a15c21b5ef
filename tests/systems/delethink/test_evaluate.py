"""avg@N evaluation and trace-level metrics; test-time scaling of I on a perfectly Markovian writer."""

from __future__ import annotations

import random

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.delethink import DelethinkConfig, evaluate, trace_metrics
from reasonlab.systems.delethink.rollout import Chunk, Trace


def test_delethink_accuracy_holds_past_the_budget_when_i_is_raised(world, oracle):
    tasks = [world.task(25, random.Random(i)) for i in range(4)]  # 53-token traces
    train = DelethinkConfig(chunk_size=12, carryover=6, iterations=5)  # budget 36
    short = evaluate(oracle, tasks, train, world.query, world.reward, n=2)
    scaled = evaluate(oracle, tasks, train.with_budget(60), world.query, world.reward, n=2)
    assert (short.accuracy, short.finished_fraction, short.chunks_mean) == (0.0, 0.0, 5.0)
    assert (scaled.accuracy, scaled.finished_fraction, scaled.n, scaled.num_tasks) == (1.0, 1.0, 2, 4)
    assert scaled.tokens_mean == 53 and scaled.max_position < 4 + 12
    longcot = evaluate(oracle, tasks, DelethinkConfig.longcot(60), world.query, world.reward, n=2)
    assert longcot.accuracy == 1.0 and longcot.max_position == 4 + 53 - 1


def test_avg_at_n_is_the_mean_over_tasks_of_the_mean_over_samples(world, oracle):
    tasks = [world.task(3, random.Random(i)) for i in range(3)]

    def reward(task, text):  # task 0 always right, task 1 never, task 2 right
        return float(task != tasks[1])

    result = evaluate(oracle, tasks, DelethinkConfig.longcot(64), world.query, reward,
                      SamplingParams(temperature=0.6, seed=1), n=3, batch_tasks=2)
    assert result.per_task == [1.0, 0.0, 1.0] and abs(result.accuracy - 2 / 3) < 1e-9


def test_trace_metrics_are_per_trace():
    def trace(lengths, finished):
        chunks = [Chunk([1, 2], [5] * n, None, "length", "") for n in lengths]
        return Trace(query_ids=[1, 2], chunks=chunks, finished=finished)

    metrics = trace_metrics([trace([4, 2, 2], True), trace([4], False)], [1.0, 0.0])
    assert metrics == {"reward_mean": 0.5, "tokens_mean": 6.0, "chunks_mean": 2.0, "finished_fraction": 0.5,
                       "max_position": 5}
