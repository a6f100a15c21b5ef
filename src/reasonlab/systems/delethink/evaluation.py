"""Every metric Delethink reports: trace-level metrics, avg@N, accuracy vs walk length, and the experiment's
per-arm means with their spread and the paired comparisons (never per-chunk rewards: a chunk has no reward).

The experiment crosses two trained models (Delethink-RL, LongCoT-RL) with two inference modes, so an
effect of RL training is read with the inference mode held fixed, and an effect of the inference mode with
the weights held fixed; `COMPARISONS` names each.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from reasonlab.llm.base import LLM, Prompt, SamplingParams
from reasonlab.progress import say
from reasonlab.stats import mean_spread
from reasonlab.systems.delethink.config import DelethinkConfig
from reasonlab.systems.delethink.rollout import Trace, chunked_rollout

if TYPE_CHECKING:
    from reasonlab.systems.delethink.config import ExperimentConfig

__all__ = ["COMPARISONS", "CURVE_STYLES", "MODELS", "EvalResult", "accuracy_curve", "evaluate", "spread", "summarize",
           "trace_metrics"]

# model/inference -> its curve in results.json ({seed} filled in)
MODELS = {
    "delethink-rl/delethink": "delethink-rl/seed{seed}",
    "longcot-rl/longcot": "longcot-rl/seed{seed}",
    "longcot-rl/delethink": "longcot-rl/seed{seed}/as-delethink",
    "delethink-rl/longcot": "delethink-rl/seed{seed}/as-longcot",
}
# model/inference -> (colour, line style) in every accuracy-vs-length plot: colour the weights, dashes the crossing
CURVE_STYLES = {"delethink-rl/delethink": ("tab:blue", "-"), "longcot-rl/longcot": ("tab:red", "-"),
                "longcot-rl/delethink": ("tab:red", "--"), "delethink-rl/longcot": ("tab:blue", "--")}
# name -> (a, b): the per-seed difference a - b
COMPARISONS = {
    # each RL model under its own inference mode: training and inference change together
    "method_vs_baseline": ("delethink-rl/delethink", "longcot-rl/longcot"),
    # the RL effect, inference held fixed
    "rl_effect_delethink_inference": ("delethink-rl/delethink", "longcot-rl/delethink"),
    "rl_effect_longcot_inference": ("delethink-rl/longcot", "longcot-rl/longcot"),
    # the inference effect, weights held fixed
    "inference_effect_longcot_rl": ("longcot-rl/delethink", "longcot-rl/longcot"),
    "inference_effect_delethink_rl": ("delethink-rl/delethink", "delethink-rl/longcot"),
}


@dataclass
class EvalResult:
    """avg@N accuracy (mean over tasks of the mean over N samples) and trace statistics."""

    accuracy: float
    n: int
    num_tasks: int
    tokens_mean: float
    chunks_mean: float
    finished_fraction: float
    max_position: int
    per_task: list[float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def trace_metrics(traces: Sequence[Trace], rewards: Sequence[float]) -> dict[str, float]:
    """Reward, length, chunk count and finish rate over whole traces."""
    count = max(len(traces), 1)
    return {
        "reward_mean": sum(rewards) / count,
        "tokens_mean": sum(t.num_tokens for t in traces) / count,
        "chunks_mean": sum(len(t.chunks) for t in traces) / count,
        "finished_fraction": sum(t.finished for t in traces) / count,
        "max_position": max((t.max_position for t in traces), default=0),
    }


def evaluate(
    llm: LLM,
    tasks: Sequence[Any],
    config: DelethinkConfig,
    query: Callable[[Any], Prompt],
    reward: Callable[[Any, str], float],
    sampling: SamplingParams | None = None,
    n: int = 8,
    batch_tasks: int = 64,
) -> EvalResult:
    """avg@N of `n` sampled traces per task under `config` (LongCoT: `DelethinkConfig.longcot(budget)`)."""
    sampling = sampling or SamplingParams(temperature=0.6)
    per_task: list[float] = []
    traces: list[Trace] = []
    rewards: list[float] = []
    for start in range(0, len(tasks), batch_tasks):
        batch = list(tasks[start : start + batch_tasks])
        seed = None if sampling.seed is None else sampling.seed + start
        groups = chunked_rollout(llm, [query(t) for t in batch], config,
                                 sampling.model_copy(update={"seed": seed}), n=n)
        for task, group in zip(batch, groups, strict=True):
            scores = [reward(task, trace.reconstructed) for trace in group]
            per_task.append(sum(scores) / len(scores))
            traces.extend(group)
            rewards.extend(scores)
    metrics = trace_metrics(traces, rewards)
    return EvalResult(
        accuracy=sum(per_task) / max(len(per_task), 1),
        n=n,
        num_tasks=len(per_task),
        tokens_mean=metrics["tokens_mean"],
        chunks_mean=metrics["chunks_mean"],
        finished_fraction=metrics["finished_fraction"],
        max_position=int(metrics["max_position"]),
        per_task=per_task,
    )


def accuracy_curve(
    policy: LLM,
    config: ExperimentConfig,
    mode: DelethinkConfig,
    steps: Sequence[int],
    *,
    control: bool = False,
    seed: int = 0,
    task_seed: int = 50_000,
) -> dict[str, float]:
    """avg@N accuracy per walk length T under `mode`, on `config.eval_tasks` walks seeded `task_seed + T`."""
    world = config.world()
    curve = {}
    for T in steps:
        tasks = world.tasks(config.eval_tasks, T, T, seed=task_seed + T, control=control)
        result = evaluate(policy, tasks, mode, world.query, world.reward,
                          SamplingParams(temperature=config.temperature, seed=seed), n=config.eval_n)
        curve[str(T)] = result.accuracy
        say(f"  T={T}: accuracy {result.accuracy:.3f} (avg@{config.eval_n} over {result.num_tasks} walks)")
    return curve


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """`reasonlab.stats.mean_spread` of per-seed values (mean, sample sd, min, max, n; Nones left out), rounded
    to 4 places, with the values themselves.

    >>> spread([0.5, 0.7])
    {'mean': 0.6, 'sd': 0.1414, 'min': 0.5, 'max': 0.7, 'n': 2, 'per_seed': [0.5, 0.7]}
    """
    stats = {key: value if value is None or key == "n" else round(value, 4)
             for key, value in mean_spread(values).items()}
    return {**stats, "per_seed": [round(v, 4) for v in values if v is not None]}


def budget_means(curve: dict[str, float], budget_steps: int) -> tuple[float | None, float | None]:
    """Mean accuracy over the lengths within the training budget (T <= budget_steps) and beyond it (None when
    no length was tested there)."""
    within = [v for t, v in curve.items() if int(t) <= budget_steps]
    beyond = [v for t, v in curve.items() if int(t) > budget_steps]
    return (statistics.fmean(within) if within else None, statistics.fmean(beyond) if beyond else None)


def summarize(curves: dict[str, dict[str, float]], seeds: Sequence[int], budget_steps: int) -> dict[str, Any]:
    """Per model/inference: within- and beyond-budget accuracy and per-length means (mean, sd, n over seeds);
    per comparison in `COMPARISONS`: the paired per-seed difference (mean, sd, n)."""
    per_seed: dict[str, dict[int, tuple[float, float]]] = {}
    models: dict[str, Any] = {}
    for model, key in MODELS.items():
        found = {s: curves[key.format(seed=s)] for s in seeds if key.format(seed=s) in curves}
        if not found:
            continue
        per_seed[model] = {s: budget_means(curve, budget_steps) for s, curve in found.items()}
        lengths = sorted(int(t) for t in next(iter(found.values())))
        models[model] = {
            "within_budget": spread([w for w, _ in per_seed[model].values()]),
            "beyond_budget": spread([b for _, b in per_seed[model].values()]),
            "by_length": {str(t): spread([c[str(t)] for c in found.values()]) for t in lengths},
        }
    for mode in ("longcot", "delethink"):
        if f"sft/{mode}" in curves:
            within, beyond = budget_means(curves[f"sft/{mode}"], budget_steps)
            models[f"sft/{mode}"] = {"within_budget": spread([within]), "beyond_budget": spread([beyond])}
    comparisons: dict[str, Any] = {}
    for name, (a, b) in COMPARISONS.items():
        if a not in per_seed or b not in per_seed:
            continue
        paired = [s for s in seeds if s in per_seed[a] and s in per_seed[b]]
        comparisons[name] = {
            "a": a, "b": b,
            "within_budget": spread([_difference(per_seed[a][s][0], per_seed[b][s][0]) for s in paired]),
            "beyond_budget": spread([_difference(per_seed[a][s][1], per_seed[b][s][1]) for s in paired]),
        }
    return {"budget_steps": budget_steps, "seeds": list(seeds), "models": models, "comparisons": comparisons}


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
