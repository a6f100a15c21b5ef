"""The Markovian state: which generated tokens go into the next chunk's prompt.

Paper: the last m tokens. Official code: the first `head_tokens` of the trace (usually the plan) plus the
last m - head tokens. Everything here is token ids; the carryover is never re-tokenized.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasonlab.systems.delethink.config import DelethinkConfig

__all__ = ["carryover_ids", "chunk_prompt"]


def carryover_ids(generated: Sequence[int], carryover: int, head_tokens: int = 0) -> list[int]:
    """Head + tail of the thinking so far: all of it while it fits in m tokens, else the first `head_tokens`
    and the last m - head_tokens.

    >>> carryover_ids([1, 2, 3, 4, 5, 6], carryover=3)
    [4, 5, 6]
    >>> carryover_ids([1, 2, 3, 4, 5, 6], carryover=3, head_tokens=1)
    [1, 5, 6]
    """
    generated = list(generated)
    if len(generated) <= carryover:
        return generated
    tail = carryover - head_tokens
    return generated[:head_tokens] + (generated[-tail:] if tail > 0 else [])


def chunk_prompt(query_ids: Sequence[int], generated: Sequence[int], config: DelethinkConfig) -> list[int]:
    """Prompt of the next chunk: the query followed by the carryover (a fresh request, positions from 0)."""
    return list(query_ids) + carryover_ids(generated, config.carryover, config.head_tokens)
