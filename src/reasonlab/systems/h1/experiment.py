"""The h1 small-scale reproduction on a CPU: curriculum vs direct vs uniform mix, at equal rollout tokens.

A tinylm is fine-tuned on modular chains of depths 1 and 2 (on depth 1 alone it never learns the chained
answer format). Then, from that warm start, three Dr.GRPO arms:
(a) curriculum: depths min_depth..H, `steps_per_stage` iterations each (the cap, for the adaptive schedule),
    with the stage gate;
(b) direct: depth H only, until it has generated as many tokens as (a) (gate probes included in (a));
(c) uniform: depths U{1..H}, the same token budget.
Reported: greedy accuracy per depth 1..H+2 on fixed held-out chains (slot rows: the depths that fit), the
share of groups with nonzero advantage per iteration (the vanishing-reward signal), plots.

The experiment's folder is itself a run directory (config.yaml: the preset and the seeds; summary.json: each
arm's mean, spread and n at H; results.json: every number; plots/), holding one run per seed and arm
(seed<S>/<arm>) and the warm starts, cached under warm_starts/<config hash> and reused when rerun.

    reasonlab h1 experiment --preset values --seed 0 --seed 1 --seed 2 --out runs/h1-values   # the run of record
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from reasonlab.demo import register_demo
from reasonlab.runs import Run, atomic_write_json, atomic_write_text, config_hash
from reasonlab.systems.h1.config import CHECK_SEED, EVAL_SEED, PRESETS, ExperimentConfig, arm_config
from reasonlab.systems.h1.evaluation import accuracy, accuracy_by_depth
from reasonlab.systems.h1.modular import sft_examples
from reasonlab.systems.h1.training import has_checkpoint, rl_history, train
from reasonlab.train import sft
from reasonlab.train.tinylm import TinyLM, TinyLMConfig

__all__ = ["ARMS", "cached_warm_start", "quick", "run_experiment", "run_seed", "summarize", "warm_start"]

ARMS = ("curriculum", "direct", "uniform")
# the ExperimentConfig fields that make a warm start (with the seed): its cache key
WARM_START_FIELDS = ("modulus", "max_constant", "ops", "labelled", "width", "rotate", "lines", "n_layer", "d_model",
                     "position_encoding", "sft_chains_per_depth", "sft_skip_rate", "sft_max_skips", "sft_steps",
                     "sft_stop_accuracy", "sft_check_every", "sft_learning_rate", "max_depth", "eval_chains")


def warm_start(
    config: ExperimentConfig, seed: int, watch: Callable[[int, TinyLM], None] | None = None
) -> tuple[TinyLM, int]:
    """A tinylm fine-tuned on depth-1 and depth-2 chains, and its optimizer steps. `watch(steps, policy)` is
    called every `sft_check_every` steps (benchmarks/h1_probes.py follows the accuracy per depth with it)."""
    tokenizer = config.tokenizer(config.max_depth)
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=config.n_layer, d_model=config.d_model, n_head=4,
                         position_encoding=config.position_encoding)
    policy = TinyLM.create(shape, tokenizer, seed=seed)
    chains = [c for d in (1, 2) for c in config.chains(d, config.sft_chains_per_depth, seed, config.sft_skip_rate,
                                                       config.sft_max_skips)]
    sft_config = sft.SFTConfig(max_steps=config.sft_steps, batch_size=64, learning_rate=config.sft_learning_rate,
                               warmup_ratio=0.05, seed=seed, progress=False)
    checks = config.chains(1, config.eval_chains, CHECK_SEED + seed)

    def should_stop(step: int) -> bool:
        if (step + 1) % config.sft_check_every:
            return False
        if watch is not None:
            watch(step + 1, policy)
        target = config.sft_stop_accuracy
        return target is not None and accuracy(policy, checks, config.max_tokens)[0] >= target

    result = sft.train(sft_config, policy, sft_examples(chains), should_stop=should_stop)
    return policy, result.steps


def cached_warm_start(config: ExperimentConfig, seed: int, root: Path, log: Any = print) -> Path:
    """The folder of the warm start for (config, seed) under `root`, keyed by the hash of the fields that make
    it: trained and saved the first time, reused (and said so) after."""
    fields = {name: getattr(config, name) for name in WARM_START_FIELDS} | {"seed": seed}
    folder = Path(root) / config_hash(fields)
    if (folder / "model.pt").is_file() and (folder / "warm_start.json").is_file():
        log(f"seed {seed}: reusing the warm start from {folder}")
        return folder
    policy, steps = warm_start(config, seed)
    policy.save(str(folder))
    atomic_write_json(folder / "warm_start.json", {"config": fields, "sft_steps": steps})
    return folder


def run_seed(config: ExperimentConfig, out: Path, seed: int, log: Any = print) -> dict[str, Any]:
    """Warm start, then the three arms from it, each a run out/seed<S>/<arm>; returns accuracies and curves per
    arm. An arm with a checkpoint continues from it (a finished one just reloads), one without starts clean."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    saved = cached_warm_start(config, seed, Path(out) / "warm_starts", log)
    base = TinyLM.load(saved)
    sft_steps = json.loads((saved / "warm_start.json").read_text())["sft_steps"]
    eval_sets = {d: config.chains(d, config.eval_chains, EVAL_SEED + seed) for d in config.eval_depths}
    result: dict[str, Any] = {"warm_start": _accuracy(base, eval_sets, config), "warm_start_sft_steps": sft_steps}
    log(f"seed {seed}: warm start {result['warm_start']} after {sft_steps} SFT steps "
        f"({time.perf_counter() - started:.0f}s)")

    budget: int | None = None
    for arm in ARMS:
        arm_dir = Path(out) / f"seed{seed}" / arm
        resume = has_checkpoint(arm_dir)
        h1 = arm_config(config, arm, seed, budget).model_copy(update={
            "policy": str(saved), "out": str(arm_dir.parent), "name": arm, "resume": resume, "overwrite": not resume})
        if resume:
            log(f"seed {seed} {arm}: continuing from the checkpoint in {arm_dir}")
        history = rl_history(train(h1))
        policy = TinyLM.load(arm_dir / "policy")
        tokens = history[-1]["tokens_total"] if history else 0
        budget = budget or tokens
        final = _accuracy(policy, eval_sets, config)
        result[arm] = {
            "accuracy": final,
            "tokens": tokens,
            "iterations": len(history),
            "signal_group_fraction": [m["signal_group_fraction"] for m in history],
            "reward_mean": [m["reward_mean"] for m in history],
            "depth": [m["depth"] for m in history],
            "tokens_total": [m["tokens_total"] for m in history],
            "stage_events": [(m["iteration"], m["stage_event"], m.get("gate_probe"))
                             for m in history if m["stage_event"] != "hold"],
        }
        Run.open(arm_dir).write_summary({k: v for k, v in result[arm].items() if k in ("accuracy", "tokens", "iterations")})
        log(f"seed {seed} {arm}: {final} tokens {tokens} iterations {len(history)} "
            f"signal {_mean(result[arm]['signal_group_fraction']):.2f} ({time.perf_counter() - started:.0f}s)")
    return result


def _accuracy(policy: TinyLM, eval_sets: dict[int, Any], config: ExperimentConfig) -> dict[int, float]:
    return {d: round(a, 4) for d, a in accuracy_by_depth(policy, eval_sets, config.max_tokens).items()}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _spread(values: list[float]) -> dict[str, float]:
    """mean, sample standard deviation (0 for one value) and n."""
    return {"mean": _mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def summarize(config: ExperimentConfig, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Each arm's accuracy at H (mean, spread, n), the curriculum's margin over direct at H per seed, mean
    accuracy per depth, the mean train reward and the mean share of groups with signal, per arm."""
    H = config.max_depth
    per_seed_accuracy = {arm: {s: (r[arm] if arm == "warm_start" else r[arm]["accuracy"]) for s, r in results.items()}
                         for arm in ("warm_start", *ARMS)}
    margins = {s: r["curriculum"]["accuracy"][H] - r["direct"]["accuracy"][H] for s, r in results.items()}
    return {
        "H": H,
        "seeds": list(results),
        "accuracy_at_H": {arm: _spread([acc[H] for acc in by_seed.values()]) for arm, by_seed in per_seed_accuracy.items()},
        "margin_at_H": margins,
        "min_margin_at_H": min(margins.values()),
        "margin_at_H_spread": _spread(list(margins.values())),
        "mean_accuracy": {arm: {str(d): _mean([acc[d] for acc in by_seed.values()]) for d in config.eval_depths}
                          for arm, by_seed in per_seed_accuracy.items()},
        "mean_train_reward": {arm: _mean([_mean(r[arm]["reward_mean"]) for r in results.values()]) for arm in ARMS},
        "mean_signal_group_fraction": {arm: _mean([_mean(r[arm]["signal_group_fraction"]) for r in results.values()])
                                       for arm in ARMS},
    }


def plot(config: ExperimentConfig, results: dict[int, dict[str, Any]], run: Run) -> None:
    """The run's plots/accuracy_by_depth.png (mean over seeds) and plots/signal_groups.png (per seed, against tokens)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarize(config, results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, values in summary["mean_accuracy"].items():
        ax.plot(config.eval_depths, [values[str(d)] for d in config.eval_depths], marker="o", label=arm)
    ax.axvline(config.max_depth, color="grey", linestyle=":", label="H")
    ax.set(xlabel="chain depth h", ylabel="greedy accuracy", title=f"h1 tinylm, {len(results)} seed(s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("accuracy_by_depth"), dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, arm in enumerate(ARMS):
        for j, result in enumerate(results.values()):
            ax.plot(result[arm]["tokens_total"], _rolling_mean(result[arm]["signal_group_fraction"], 10),
                    color=f"C{i + 1}", alpha=0.7, label=arm if j == 0 else None)
    ax.set(xlabel="generated tokens", ylabel="groups with nonzero advantage (10-it. mean)",
           title="vanishing-reward signal")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("signal_groups"), dpi=120)
    plt.close("all")


def _rolling_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the up to `window - 1` before it."""
    return [sum(values[max(0, i + 1 - window):i + 1]) / (i + 1 - max(0, i + 1 - window)) for i in range(len(values))]


def run_experiment(
    config: ExperimentConfig, out: str | Path, seeds: tuple[int, ...], log: Any = print, resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """All seeds into the run directory `out`; after every seed, writes results.json, summary.json and plots.
    An existing `out` is refused unless `resume` (same config; the seeds already there are kept and new ones
    added: finished arms are reloaded, cut ones continue from their checkpoints) or `overwrite` (start clean)."""
    out = Path(out)
    if resume and not overwrite:  # a resumed experiment keeps the seeds it has and adds the new ones
        Run.require_existing(out)
        seeds = tuple(sorted(set(Run.open(out).config().get("seeds", [])) | set(seeds)))
    run = Run.create(out.parent, out.name, {**config.model_dump(), "seeds": list(seeds)}, resume=resume,
                     overwrite=overwrite, ignore=("seeds",))
    if run.config().get("seeds") != list(seeds):
        atomic_write_text(run.config_path, yaml.safe_dump({**run.config(), "seeds": list(seeds)}, sort_keys=False))
    torch.set_num_threads(1)  # tinylm matrices are too small to split; 2 threads are slower on a busy CPU
    results: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        results[seed] = run_seed(config, out, seed, log)
        summary = summarize(config, results)
        atomic_write_json(out / "results.json", {"config": config.model_dump(), "seeds": list(results),
                                                 "results": results, "summary": summary})
        run.write_summary(summary)
        plot(config, results, run)
    return json.loads((out / "results.json").read_text())


@register_demo("h1", "h1: depth curriculum vs direct RL at equal rollout tokens (tinylm, modular chains)")
def quick(run_root: Path) -> Path:
    """The quick preset, one seed (under a minute on a quiet 2-core machine); starts clean every time."""
    out = Path(run_root) / "h1"
    run_experiment(PRESETS["quick"], out, (0,), overwrite=True)
    return out
