"""Analytic cost of thinking L tokens: attention FLOPs (sum of attended context) and KV-cache size.

LongCoT: token t attends to |q| + t keys, so attention work grows as L^2 and the cache as L. Delethink: each
chunk is a fresh request of at most |q| + C positions (its prompt re-prefilled), so work grows as L and the
cache is bounded by |q| + C.
"""

from __future__ import annotations

from reasonlab.systems.delethink.config import DelethinkConfig

__all__ = ["attended_keys", "attention_flops", "kv_cache_bytes", "peak_context"]


def _chunks(generated: int, config: DelethinkConfig, query_tokens: int) -> list[tuple[int, int]]:
    """(prompt length, new tokens) of each chunk needed to think `generated` tokens (the cap is ignored)."""
    chunks, done, index = [], 0, 0
    while done < generated:
        prompt = query_tokens + min(done, config.carryover)
        new = min(config.chunk_tokens(index), generated - done)
        chunks.append((prompt, new))
        done, index = done + new, index + 1
    return chunks


def attended_keys(generated: int, config: DelethinkConfig, query_tokens: int = 0, prefill: bool = True) -> int:
    """Query-key pairs to think `generated` tokens: decode plus (optionally) each chunk's prompt prefill.

    >>> attended_keys(4, DelethinkConfig.longcot(4), prefill=False)  # 1 + 2 + 3 + 4
    10
    """
    total = 0
    for prompt, new in _chunks(generated, config, query_tokens):
        if prefill:
            total += prompt * (prompt + 1) // 2
        # decode token j (1-based) sees the prompt and j tokens of its own chunk
        total += new * prompt + new * (new + 1) // 2
    return total


def attention_flops(
    generated: int, config: DelethinkConfig, n_layer: int, d_model: int, query_tokens: int = 0, prefill: bool = True
) -> int:
    """Attention-score and value FLOPs: 2 matmuls x 2 FLOPs per multiply-add x d_model per query-key pair."""
    return 4 * n_layer * d_model * attended_keys(generated, config, query_tokens, prefill)


def peak_context(generated: int, config: DelethinkConfig, query_tokens: int = 0) -> int:
    """Most positions held in one request while thinking `generated` tokens."""
    return max((prompt + new for prompt, new in _chunks(generated, config, query_tokens)), default=query_tokens)


def kv_cache_bytes(positions: int, n_layer: int, n_kv_heads: int, head_dim: int, bytes_per_value: int = 4,
                   batch: int = 1) -> int:
    """Bytes of keys and values for `positions` tokens."""
    return 2 * n_layer * n_kv_heads * head_dim * bytes_per_value * positions * batch
