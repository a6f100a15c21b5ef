"""Every number h1 reports: final-answer accuracy (greedy or sampled) per depth, and `evaluate(config)`, the
`reasonlab h1 eval` entry that writes it into a run directory. The experiment's per-arm statistics over seeds
are in `experiment.summarize`, built from these."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonlab.llm.base import SamplingParams, TrainablePolicy
from reasonlab.runs import Run
from reasonlab.systems.h1.config import EvalConfig
from reasonlab.tasks.arithmetic import numeric_reward

__all__ = ["accuracy", "accuracy_by_depth", "evaluate"]


def accuracy(
    policy: TrainablePolicy, chains: Sequence[Any], max_tokens: int, temperature: float = 0.0, seed: int = 0
) -> tuple[float, int]:
    """(share of chains whose completion has the right final answer, generated tokens); greedy by default."""
    if not chains:
        return 0.0, 0
    params = SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=seed)
    generations = policy.generate([c.prompt for c in chains], params)
    correct = sum(numeric_reward(g[0].text, c.answer) for g, c in zip(generations, chains, strict=True))
    tokens = sum(len(g[0].token_ids) for g in generations)
    return correct / len(chains), tokens


def accuracy_by_depth(
    policy: TrainablePolicy, chains_by_depth: dict[int, Sequence[Any]], max_tokens: int
) -> dict[int, float]:
    """Greedy accuracy on fixed evaluation chains, per depth."""
    return {depth: accuracy(policy, chains, max_tokens)[0] for depth, chains in sorted(chains_by_depth.items())}


def evaluate(config: EvalConfig) -> Path:
    """Greedy accuracy per depth 1..config.depths of the tinylm `config.policy`; summary.json of a new run."""
    from reasonlab.train.tinylm import TinyLM

    run_dir = Path(config.out) / config.name
    if config.resume and not config.overwrite:
        Run.require_existing(run_dir)
    policy = TinyLM.load(config.policy)
    run = Run.create(config.out, config.name, config, resume=config.resume, overwrite=config.overwrite)
    sets = {d: config.task.chains(d, config.chains, config.seed) for d in range(1, config.depths + 1)}
    values = accuracy_by_depth(policy, sets, config.task.token_cap(config.depths))
    run.write_summary({"accuracy": {str(d): a for d, a in values.items()}, "chains_per_depth": config.chains})
    return run.dir
