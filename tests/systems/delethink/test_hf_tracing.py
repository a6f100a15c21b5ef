"""Delethink tracing on the real hf backend (Gemma-3-270M): exact token-id prompts, positions bounded by
|q| + C under left padding, LongCoT's first C tokens reproduced, and the arithmetic tracing run end to end."""

from __future__ import annotations

import pytest

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.delethink import (
    DelethinkConfig,
    arithmetic_prompt,
    arithmetic_tasks,
    carryover_ids,
    chunked_rollout,
    longcot_rollout,
    query_ids,
)
from reasonlab.systems.delethink.config import ArithmeticConfig
from reasonlab.systems.delethink.experiment import run_arithmetic

pytestmark = pytest.mark.slow

QUERIES = ["Count: 1, 2, 3,", "The list of the first hundred prime numbers: 2, 3, 5, 7,"]


def test_gemma_chunks_have_exact_prompts_and_bounded_positions(embedded_hf):
    seen = []
    hook = embedded_hf.module.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["position_ids"].clone()), with_kwargs=True)
    config = DelethinkConfig(chunk_size=8, carryover=4, iterations=3)
    params = SamplingParams(temperature=0.8, seed=3)
    try:
        traces = chunked_rollout(embedded_hf, QUERIES, config, params)
    finally:
        hook.remove()
    lengths = [len(query_ids(embedded_hf, q)) for q in QUERIES]
    assert lengths[0] < lengths[1]  # the first row is left-padded
    assert max(int(p.max()) for p in seen) < max(lengths) + 8
    for [trace], q in zip(traces, lengths, strict=True):
        generated: list[int] = []
        for chunk in trace.chunks:
            assert chunk.prompt_ids == trace.query_ids + carryover_ids(generated, 4)
            assert chunk.max_position < q + 8
            generated += chunk.token_ids
    # same per-row seeds: the first chunk is exactly what LongCoT samples for its first C tokens
    longcot = longcot_rollout(embedded_hf, QUERIES, config.chunk_size, params)
    for [d], [c] in zip(traces, longcot, strict=True):
        assert d.chunks[0].token_ids == c.token_ids


def test_arithmetic_tracing_runs_end_to_end(embedded_hf, tmp_path):
    config = ArithmeticConfig(operands=2, problems=1, n=1, chunk_size=8, carryover=4, iterations=2)
    summary = run_arithmetic(config, tmp_path / "arithmetic", llm=embedded_hf)
    q = len(query_ids(embedded_hf, arithmetic_prompt(arithmetic_tasks(1, 2, seed=0)[0])))
    keys = ("accuracy", "tokens_mean", "chunks_mean", "finished_fraction", "max_position", "num_tasks", "n")
    # the seeded base model does not finish a sum in 12 tokens: Delethink resets once (8 + 4 tokens) and its
    # positions stop at |q| + C - 1, LongCoT's run on to |q| + 12 - 1
    assert summary["budget"] == 12
    assert {k: summary["delethink"][k] for k in keys} == {"accuracy": 0.0, "tokens_mean": 12.0, "chunks_mean": 2.0,
                                                          "finished_fraction": 0.0, "max_position": q + 8 - 1,
                                                          "num_tasks": 1, "n": 1}
    assert {k: summary["longcot"][k] for k in keys} == {"accuracy": 0.0, "tokens_mean": 12.0, "chunks_mean": 1.0,
                                                        "finished_fraction": 0.0, "max_position": q + 12 - 1,
                                                        "num_tasks": 1, "n": 1}
    assert (tmp_path / "arithmetic" / "summary.json").is_file()
