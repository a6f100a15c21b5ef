"""avg@N evaluation and trace-level metrics; test-time scaling of I on a perfectly Markovian writer; the
experiment's summary (mean, spread, n) and its paired comparisons with the inference mode held fixed."""

from __future__ import annotations

import random

import pytest

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.delethink import DelethinkConfig, evaluate, trace_metrics
from reasonlab.systems.delethink.evaluation import spread, summarize
from reasonlab.systems.delethink.rollout import Chunk, Trace


def test_delethink_accuracy_holds_past_the_budget_when_i_is_raised(world, oracle):
    tasks = [world.task(25, random.Random(i)) for i in range(4)]  # 53-token traces
    train = DelethinkConfig(chunk_size=12, carryover=6, iterations=5)  # budget 36
    short = evaluate(oracle, tasks, train, world.query, world.reward, n=2)
    scaled = evaluate(oracle, tasks, train.with_budget(60), world.query, world.reward, n=2)
    assert (short.accuracy, short.finished_fraction, short.chunks_mean) == (0.0, 0.0, 5.0)
    assert (scaled.accuracy, scaled.finished_fraction, scaled.n, scaled.num_tasks) == (1.0, 1.0, 2, 4)
    assert scaled.tokens_mean == 53 and scaled.max_position == 4 + 12 - 1  # bounded by |q| + C
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


def test_summary_reads_the_rl_effect_with_the_inference_mode_held_fixed():
    # two seeds, lengths 8 (within a budget of T <= 46) and 64, 96 (beyond it)
    curves = {
        "delethink-rl/seed0": {"8": 0.8, "64": 0.5, "96": 0.4}, "delethink-rl/seed1": {"8": 0.7, "64": 0.6, "96": 0.4},
        "longcot-rl/seed0": {"8": 0.9, "64": 0.2, "96": 0.2}, "longcot-rl/seed1": {"8": 0.7, "64": 0.2, "96": 0.3},
        "longcot-rl/seed0/as-delethink": {"8": 0.9, "64": 0.5, "96": 0.5},
        "longcot-rl/seed1/as-delethink": {"8": 0.6, "64": 0.4, "96": 0.4},
        "delethink-rl/seed0/as-longcot": {"8": 0.8, "64": 0.2, "96": 0.1},
        "sft/longcot": {"8": 0.5, "64": 0.2, "96": 0.0},
    }
    summary = summarize(curves, [0, 1], budget_steps=46)
    models = summary["models"]
    assert models["delethink-rl/delethink"]["within_budget"] == {
        "mean": 0.75, "sd": 0.0707, "min": 0.7, "max": 0.8, "n": 2, "per_seed": [0.8, 0.7]}
    assert models["delethink-rl/delethink"]["beyond_budget"] == {
        "mean": 0.475, "sd": 0.0354, "min": 0.45, "max": 0.5, "n": 2, "per_seed": [0.45, 0.5]}
    assert models["longcot-rl/longcot"]["by_length"]["96"] == {
        "mean": 0.25, "sd": 0.0707, "min": 0.2, "max": 0.3, "n": 2, "per_seed": [0.2, 0.3]}
    assert models["delethink-rl/longcot"]["beyond_budget"]["n"] == 1  # seed 1 was not measured that way
    assert models["sft/longcot"]["beyond_budget"] == {"mean": 0.1, "sd": 0.0, "min": 0.1, "max": 0.1, "n": 1,
                                                        "per_seed": [0.1]}
    comparisons = summary["comparisons"]
    # each model under its own inference: +0.25 beyond the budget; held fixed (Delethink inference): +0.025
    assert comparisons["method_vs_baseline"]["beyond_budget"] == {
        "mean": 0.25, "sd": 0.0, "min": 0.25, "max": 0.25, "n": 2, "per_seed": [0.25, 0.25]}
    assert comparisons["rl_effect_delethink_inference"]["beyond_budget"] == {
        "mean": 0.025, "sd": 0.1061, "min": -0.05, "max": 0.1, "n": 2, "per_seed": [-0.05, 0.1]}
    assert comparisons["inference_effect_longcot_rl"]["beyond_budget"]["mean"] == pytest.approx(0.225)
    assert comparisons["rl_effect_longcot_inference"]["beyond_budget"]["per_seed"] == [-0.05]
    assert summary["seeds"] == [0, 1] and summary["budget_steps"] == 46


def test_spread_is_the_sample_sd_with_range_and_skips_missing_values():
    assert spread([0.5, 0.7, None]) == {"mean": 0.6, "sd": 0.1414, "min": 0.5, "max": 0.7, "n": 2,
                                        "per_seed": [0.5, 0.7]}
    assert spread([None]) == {"mean": None, "sd": None, "min": None, "max": None, "n": 0, "per_seed": []}
