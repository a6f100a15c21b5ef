"""Delethink — the Markovian Thinker (arXiv 2510.06557): reasoning in fixed-size chunks with a bounded state.

    from reasonlab.llm import load_llm, SamplingParams
    from reasonlab.systems.delethink import DelethinkConfig, chunked_rollout

    llm = load_llm("hf:embedded")
    [[trace]] = chunked_rollout(llm, ["..."], DelethinkConfig(chunk_size=64, carryover=32, iterations=4),
                                SamplingParams(temperature=0.6, seed=0))

Modules: config (C, m, I, the commands' configs and PRESETS), carryover (the Markovian state), rollout
(chunked_rollout / longcot_rollout over any LLM), environment (the RL environment on reasonlab.train.rl),
training (train(config): RL of one arm), evaluation (avg@N, trace metrics, accuracy vs length, the paired
comparisons), cost (analytic attention FLOPs and KV bytes), tasks (permutation walk, templated arithmetic),
experiment, demo (the quick demo on the shipped RL models in assets/), cli.
"""

from reasonlab.systems import lazy_exports

# imported on first use (PEP 562), so the CLI starts without torch
EXPORTS = {
    "carryover": ["carryover_ids", "chunk_prompt"],
    "config": ["DelethinkConfig", "ExperimentConfig", "TrainConfig"],
    "cost": ["attended_keys", "attention_flops", "kv_cache_bytes", "peak_context"],
    "environment": ["DelethinkEnvironment", "rl_config"],
    "evaluation": ["EvalResult", "evaluate", "trace_metrics"],
    "prompts": ["arithmetic_prompt"],
    "rollout": ["Chunk", "Trace", "chunked_rollout", "longcot_rollout", "query_ids"],
    "tasks": [
        "ArithmeticTask",
        "PermutationWalk",
        "WalkTask",
        "arithmetic_tasks",
        "extract_arithmetic_answer",
        "extract_walk_answer",
    ],
    "training": ["train"],
}
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
__all__ = sorted(name for names in EXPORTS.values() for name in names)
