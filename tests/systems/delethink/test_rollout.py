"""chunked_rollout: exact prompts (query + head + tail, as token ids), chunk budgets, bounded positions under
left padding, identity with LongCoT while a trace fits one chunk, answers split across a chunk boundary."""

from __future__ import annotations

import random

import pytest
import torch
from delethink_fakes import EOS, WalkOracle, random_tinylm

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.delethink import (
    DelethinkConfig,
    carryover_ids,
    chunked_rollout,
    extract_walk_answer,
    longcot_rollout,
)


def walks(world, steps: list[int], seed: int = 0):
    rng = random.Random(seed)
    return [world.task(t, rng) for t in steps]


@pytest.mark.parametrize("head_tokens", [0, 3], ids=["paper-tail", "code-head-tail"])
def test_each_chunk_prompt_is_query_head_and_last_m_tokens(world, head_tokens):
    oracle = WalkOracle(world, head_tokens=head_tokens)
    tasks = walks(world, [5, 17, 29])
    config = DelethinkConfig(chunk_size=12, carryover=8, iterations=20, head_tokens=head_tokens)
    traces = [group[0] for group in chunked_rollout(oracle, [world.query(t) for t in tasks], config)]
    for task, trace in zip(tasks, traces, strict=True):
        q = oracle.tokenize(world.query(task))
        generated: list[int] = []
        for index, chunk in enumerate(trace.chunks):
            expected_tail = generated[-(8 - head_tokens):] if len(generated) > 8 else []
            expected = q + (generated if len(generated) <= 8 else generated[:head_tokens] + expected_tail)
            assert chunk.prompt_ids == expected == q + carryover_ids(generated, 8, head_tokens)
            assert len(chunk.prompt_ids) == len(q) + min(8, len(generated))
            assert len(chunk.token_ids) <= (12 if index == 0 else 4)
            generated += chunk.token_ids
        # a perfectly Markovian writer reproduces the whole reference trace, chunk by chunk
        assert trace.token_ids == [*oracle.tokenize(world.trace(task)), EOS]
        assert trace.finished and len(trace.chunks) == 1 + -(-max(2 * task.steps + 3 - 12, 0) // 4)
        assert trace.max_position < len(q) + 12
        assert world.reward(task, trace.reconstructed) == 1.0
    budgets = [max_tokens for _, max_tokens in oracle.requests]
    assert budgets[:3] == [12, 12, 12] and set(budgets[3:]) == {4}


def test_longcot_is_one_chunk_and_fails_past_its_budget(world, oracle):
    task = walks(world, [20])[0]  # 43 tokens
    [[short]] = longcot_rollout(oracle, [world.query(task)], budget=40)
    [[long]] = longcot_rollout(oracle, [world.query(task)], budget=43)
    assert len(short.chunks) == len(long.chunks) == 1
    assert not short.finished and world.reward(task, short.reconstructed) == 0.0
    assert long.finished and world.reward(task, long.reconstructed) == 1.0
    assert long.max_position == 4 + 43 - 1  # grows with the trace


def test_trace_that_fits_one_chunk_is_identical_to_longcot(world, oracle):
    tasks = walks(world, [3, 9, 14])
    queries = [world.query(t) for t in tasks]
    delethink = chunked_rollout(oracle, queries, DelethinkConfig(chunk_size=32, carryover=16, iterations=4))
    longcot = longcot_rollout(oracle, queries, budget=DelethinkConfig(chunk_size=32, carryover=16, iterations=4).budget)
    for [d], [c] in zip(delethink, longcot, strict=True):
        assert len(d.chunks) == 1
        assert (d.token_ids, d.chunks[0].prompt_ids, d.reconstructed) == (c.token_ids, c.chunks[0].prompt_ids, c.reconstructed)


def test_sampled_tinylm_matches_longcot_until_the_first_reset(world):
    """Same seed, same batch: Delethink's first chunk is exactly LongCoT's first C tokens (ids and logprobs);
    with I = 1 and C = budget the two are the same rollout."""
    policy = random_tinylm(world)
    queries = ["3 > 7 :", "11 > 2 ? 5 a"]
    params = SamplingParams(temperature=1.0, seed=7)
    longcot = longcot_rollout(policy, queries, 40, params, n=2)
    same = chunked_rollout(policy, queries, DelethinkConfig(chunk_size=40, carryover=20, iterations=1), params, n=2)
    delethink = chunked_rollout(policy, queries, DelethinkConfig(chunk_size=16, carryover=8, iterations=4), params, n=2)
    chunked = 0
    for group_c, group_s, group_d in zip(longcot, same, delethink, strict=True):
        for c, s, d in zip(group_c, group_s, group_d, strict=True):
            assert (s.token_ids, s.chunks[0].logprobs) == (c.token_ids, c.chunks[0].logprobs)
            first = d.chunks[0]
            assert first.token_ids == c.token_ids[:16]  # a random tinylm may sample EOS early
            assert first.logprobs == pytest.approx(c.chunks[0].logprobs[: len(first.token_ids)], abs=1e-5)
            if len(d.chunks) > 1:
                chunked += 1
                assert [len(k.token_ids) for k in d.chunks[:-1]] == [16, 8, 8][: len(d.chunks) - 1]
    assert chunked == 3  # of the 4 seeded traces, 3 run past the first chunk (one samples EOS inside it)


def test_positions_stay_below_query_plus_chunk_under_left_padding(world):
    policy = random_tinylm(world)
    seen: list[torch.Tensor] = []
    hook = policy.model.register_forward_pre_hook(lambda module, args: seen.append(args[1].clone()))
    queries = ["3 > 7 :", "11 > 2 ? 5 a 6 b 7 c 9 d"]  # 4 and 12 tokens: the short row is left-padded
    config = DelethinkConfig(chunk_size=16, carryover=8, iterations=5)
    try:
        traces = chunked_rollout(policy, queries, config, SamplingParams(temperature=1.0, seed=0))
    finally:
        hook.remove()
    prefills = [p for p in seen if p.shape[1] > 1]
    assert len(prefills) == 5  # one fresh request (and prefill) per chunk
    # the left-padded short query starts at position 0 like the long one: positions restart in every chunk
    assert prefills[0][0].tolist() == [0] * 8 + [0, 1, 2, 3] and prefills[0][1].tolist() == list(range(12))
    assert max(int(p.max()) for p in seen) == 12 + 16 - 2  # the last sampled token is never fed back
    for [trace], q in zip(traces, (4, 12), strict=True):
        assert trace.max_position == q + 16 - 1
        assert all(chunk.max_position < q + 16 for chunk in trace.chunks)


def test_answer_split_across_a_chunk_boundary_is_extracted(world, oracle):
    task = walks(world, [10])[0]  # 23 tokens: "</think>" is token 21, the answer token 22
    config = DelethinkConfig(chunk_size=21, carryover=10, iterations=3)
    [[trace]] = chunked_rollout(oracle, [world.query(task)], config)
    first, last = trace.chunks
    assert oracle.detokenize(first.token_ids).endswith("</think>")
    assert last.text.split() == [world.answer(task)]
    assert extract_walk_answer(last.text) is None  # the last chunk alone has no closed think block
    assert extract_walk_answer(trace.reconstructed) == world.answer(task)
    assert world.reward(task, trace.reconstructed) == 1.0


def test_chunks_are_streamed_in_order(world, oracle):
    task = walks(world, [15])[0]
    seen = []
    config = DelethinkConfig(chunk_size=12, carryover=6, iterations=10)
    [[trace]] = chunked_rollout(oracle, [world.query(task)], config, on_chunk=lambda i, j, c: seen.append((i, j, c)))
    assert [c for _, _, c in seen] == trace.chunks and {(i, j) for i, j, _ in seen} == {(0, 0)}


def test_stop_string_cut_by_a_chunk_boundary_ends_the_trace(world, oracle):
    task = walks(world, [10])[0]
    ref = oracle.tokenize(world.trace(task))
    stop = " ".join(oracle.tokenizer.decode(ref[8:12]).split())  # 4 words across the boundary after token 10
    [[trace]] = chunked_rollout(oracle, [world.query(task)], DelethinkConfig(chunk_size=10, carryover=4, iterations=6),
                                SamplingParams(stop=[stop]))
    assert trace.finished and len(trace.chunks) == 2 and trace.chunks[-1].finish_reason == "stop"
    assert stop not in trace.text
