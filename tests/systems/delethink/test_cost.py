"""Analytic cost: LongCoT attention work grows as L^2 and its cache as L; Delethink's grow as L and stay bounded."""

from __future__ import annotations

import pytest

from reasonlab.systems.delethink import (
    DelethinkConfig,
    attended_keys,
    attention_flops,
    kv_cache_bytes,
    peak_context,
)

DELETHINK = DelethinkConfig(chunk_size=512, carryover=256, iterations=100)


def test_longcot_attention_is_the_triangle():
    longcot = DelethinkConfig.longcot(10_000)
    assert attended_keys(8192, longcot, prefill=False) == 8192 * 8193 // 2
    assert attended_keys(10, longcot, query_tokens=5, prefill=True) == 15 + 10 * 5 + 55


def test_delethink_chunks_reprefill_the_carryover():
    config = DelethinkConfig(chunk_size=4, carryover=2, iterations=10)
    # chunk 1: prompt 0, 4 new (1+2+3+4); chunk 2: prompt 2 (prefill 3), 2 new (3+4); chunk 3 likewise
    assert attended_keys(8, config) == 10 + (3 + 7) + (3 + 7)
    assert attended_keys(8, config, prefill=False) == 10 + 7 + 7


@pytest.mark.parametrize("length", [512, 1024, 2048, 4096, 8192])
def test_delethink_work_is_the_same_for_every_chunk(length):
    # C=512, m=256: chunk 1 is 512*513/2 pairs; a later chunk re-prefills 256 (256*257/2) and decodes 256 tokens
    # over 256..511 keys (256*256 + 256*257/2): the same 131,328 pairs, so work is linear in L
    per_chunk = 512 * 513 // 2
    assert per_chunk == 256 * 257 // 2 + 256 * 256 + 256 * 257 // 2
    assert attended_keys(length, DELETHINK) == per_chunk * (1 + (length - 512) // 256)
    assert peak_context(length, DELETHINK, query_tokens=64) == 64 + 512


def test_attention_flops_ratio_from_512_to_8k():
    longcot = DelethinkConfig.longcot(8192)

    def ratio(config):
        return attention_flops(8192, config, 4, 256) / attention_flops(512, config, 4, 256)

    assert ratio(longcot) == pytest.approx(8192 * 8193 / (512 * 513), rel=1e-9)  # ~255x for 16x the tokens
    # linear: 31 chunks of equal work against 1 (16x the tokens, per-token work 1.94x, re-prefill included)
    assert ratio(DELETHINK) == 31
    assert attention_flops(512, longcot, 4, 256) == 4 * 4 * 256 * 512 * 513 // 2


def test_kv_bytes_grow_with_longcot_and_stay_flat_with_delethink():
    def kv(positions):
        return kv_cache_bytes(positions, n_layer=4, n_kv_heads=4, head_dim=64)

    assert kv(1) == 2 * 4 * 4 * 64 * 4
    assert kv(peak_context(8192, DelethinkConfig.longcot(8192))) / kv(peak_context(512, DelethinkConfig.longcot(8192))) == 16
    assert kv(peak_context(8192, DELETHINK)) == kv(peak_context(512, DELETHINK)) == kv(512)
