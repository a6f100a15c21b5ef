"""Delethink — the Markovian Thinker (arXiv 2510.06557): reasoning in fixed-size chunks with a bounded state.

    from reasonlab.llm import load_llm, SamplingParams
    from reasonlab.systems.delethink import DelethinkConfig, chunked_rollout

    llm = load_llm("hf:embedded")
    [[trace]] = chunked_rollout(llm, ["..."], DelethinkConfig(chunk_size=64, carryover=32, iterations=4),
                                SamplingParams(temperature=0.6, seed=0))

Modules: config (C, m, I), carryover (the Markovian state), rollout (chunked_rollout / longcot_rollout over
any LLM), environment (the RL environment on reasonlab.train.rl), evaluate (avg@N, trace metrics), cost
(analytic attention FLOPs and KV bytes), tasks (permutation walk, templated arithmetic), experiment, cli.
"""

from reasonlab.systems.delethink.carryover import carryover_ids, chunk_prompt
from reasonlab.systems.delethink.config import DelethinkConfig
from reasonlab.systems.delethink.cost import attended_keys, attention_flops, kv_cache_bytes, peak_context
from reasonlab.systems.delethink.environment import DelethinkEnvironment, rl_config
from reasonlab.systems.delethink.evaluate import EvalResult, evaluate, trace_metrics
from reasonlab.systems.delethink.rollout import Chunk, Trace, chunked_rollout, longcot_rollout, query_ids
from reasonlab.systems.delethink.tasks import (
    ArithmeticTask,
    PermutationWalk,
    WalkTask,
    arithmetic_prompt,
    arithmetic_tasks,
    extract_arithmetic_answer,
    extract_walk_answer,
)

__all__ = [
    "ArithmeticTask",
    "Chunk",
    "DelethinkConfig",
    "DelethinkEnvironment",
    "EvalResult",
    "PermutationWalk",
    "Trace",
    "WalkTask",
    "arithmetic_prompt",
    "arithmetic_tasks",
    "attended_keys",
    "attention_flops",
    "carryover_ids",
    "chunk_prompt",
    "chunked_rollout",
    "evaluate",
    "extract_arithmetic_answer",
    "extract_walk_answer",
    "kv_cache_bytes",
    "longcot_rollout",
    "peak_context",
    "query_ids",
    "rl_config",
    "trace_metrics",
]
