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

The quick demo (`reasonlab demo --only h1`, `quick`) is the run of record in miniature: the `demo` preset's
curriculum and direct arms, RL seeds 0 and 1, from the warm start shipped in assets/values_warm_start (made by
benchmarks/h1_demo_warm_start.py); its headline gives each arm's accuracy at H with n and a 95% interval.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from reasonlab.demo import Headline, register_demo, write_headline
from reasonlab.progress import eta, phase, say
from reasonlab.runs import Run, atomic_write_json, atomic_write_text, config_hash
from reasonlab.stats import format_mean, format_rate, mean_spread, wilson_interval
from reasonlab.systems.h1.config import CHECK_SEED, EVAL_SEED, PRESETS, ExperimentConfig, arm_config
from reasonlab.systems.h1.evaluation import accuracy, accuracy_by_depth
from reasonlab.systems.h1.modular import sft_examples
from reasonlab.systems.h1.training import REPORT_SECONDS, has_checkpoint, rl_history, train
from reasonlab.threads import explicit_threads
from reasonlab.train import sft
from reasonlab.train.tinylm import TinyLM, TinyLMConfig

__all__ = ["ARMS", "DEMO_ASSET", "cached_warm_start", "quick", "run_experiment", "run_seed",
           "save_half", "summarize", "warm_start", "warm_start_record"]

ARMS = ("curriculum", "direct", "uniform")
# the quick demo's shipped warm start (benchmarks/h1_demo_warm_start.py makes it)
DEMO_ASSET = Path(__file__).parent / "assets" / "values_warm_start"
# the ExperimentConfig fields that make a warm start (with the seed): its cache key
WARM_START_FIELDS = ("modulus", "max_constant", "ops", "labelled", "width", "rotate", "lines", "n_layer", "d_model",
                     "position_encoding", "sft_chains_per_depth", "sft_skip_rate", "sft_max_skips", "sft_steps",
                     "sft_stop_accuracy", "sft_check_every", "sft_learning_rate", "max_depth", "eval_chains")


def warm_start(
    config: ExperimentConfig, seed: int, watch: Callable[[int, TinyLM], None] | None = None
) -> tuple[TinyLM, int]:
    """A tinylm fine-tuned on depth-1 and depth-2 chains, and its optimizer steps. `watch(steps, policy)` is
    called every `sft_check_every` steps (benchmarks/h1_probes.py follows the accuracy per depth with it). A
    progress line (step, held-out depth-1 accuracy, ETA) comes at least every REPORT_SECONDS."""
    tokenizer = config.tokenizer(config.max_depth)
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=config.n_layer, d_model=config.d_model, n_head=4,
                         position_encoding=config.position_encoding)
    policy = TinyLM.create(shape, tokenizer, seed=seed)
    chains = [c for d in (1, 2) for c in config.chains(d, config.sft_chains_per_depth, seed, config.sft_skip_rate,
                                                       config.sft_max_skips)]
    sft_config = sft.SFTConfig(max_steps=config.sft_steps, batch_size=64, learning_rate=config.sft_learning_rate,
                               warmup_ratio=0.05, seed=seed, progress=False)
    checks = config.chains(1, config.eval_chains, CHECK_SEED + seed)
    started = last_line = time.monotonic()

    def should_stop(step: int) -> bool:
        nonlocal last_line
        checked = (step + 1) % config.sft_check_every == 0
        if checked and watch is not None:
            watch(step + 1, policy)
        target = config.sft_stop_accuracy if checked else None
        report = time.monotonic() - last_line >= REPORT_SECONDS
        if target is None and not report:
            return False
        score = accuracy(policy, checks, config.max_tokens)[0]
        if report:
            last_line = time.monotonic()
            say(f"warm start step {step + 1}/{config.sft_steps}: greedy accuracy {score:.2f} on held-out depth-1 "
                f"chains, {eta(step + 1, config.sft_steps, started)}")
        return target is not None and score >= target

    result = sft.train(sft_config, policy, sft_examples(chains), should_stop=should_stop)
    return policy, result.steps


def warm_start_record(config: ExperimentConfig, seed: int, steps: int) -> dict[str, Any]:
    """What made a warm start: the config fields of its cache key, the seed and the optimizer steps."""
    return {"config": {name: getattr(config, name) for name in WARM_START_FIELDS} | {"seed": seed}, "sft_steps": steps}


def save_half(policy: TinyLM, folder: Path) -> None:
    """Save the tinylm with float16 weights (half the bytes; `TinyLM.load` reads them back into float32)."""
    policy.save(str(folder), half=True)


def cached_warm_start(config: ExperimentConfig, seed: int, root: Path, log: Any = print) -> Path:
    """The folder of the warm start for (config, seed) under `root`, keyed by the hash of the fields that make
    it: trained and saved the first time, reused (and said so) after."""
    folder = Path(root) / config_hash(warm_start_record(config, seed, 0)["config"])
    if (folder / "model.pt").is_file() and (folder / "warm_start.json").is_file():
        log(f"seed {seed}: reusing the warm start from {folder}")
        return folder
    with phase(f"seed {seed}: warm start, {config.sft_steps} fine-tuning steps at most"):
        policy, steps = warm_start(config, seed)
    policy.save(str(folder))
    atomic_write_json(folder / "warm_start.json", warm_start_record(config, seed, steps))
    return folder


def run_seed(
    config: ExperimentConfig, out: Path, seed: int, log: Any = print, arms: tuple[str, ...] = ARMS,
    warm: Path | None = None,
) -> dict[str, Any]:
    """Warm start (`warm`, a tinylm folder, or the cached one), then the arms from it (the curriculum first: the
    others get its tokens), each a run out/seed<S>/<arm>; returns accuracies and curves per arm. An arm with a
    checkpoint continues from it (a finished one just reloads), one without starts clean."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    saved = warm if warm is not None else cached_warm_start(config, seed, Path(out) / "warm_starts", log)
    base = TinyLM.load(saved)
    sft_steps = json.loads((saved / "warm_start.json").read_text())["sft_steps"]
    eval_sets = {d: config.chains(d, config.eval_chains, EVAL_SEED + seed) for d in config.eval_depths}
    with phase(f"seed {seed}: evaluating the warm start on {config.eval_chains} chains per depth"):
        result: dict[str, Any] = {"warm_start": _accuracy(base, eval_sets, config), "warm_start_sft_steps": sft_steps}
    log(f"seed {seed}: warm start {result['warm_start']} after {sft_steps} SFT steps "
        f"({time.perf_counter() - started:.0f}s)")

    budget: int | None = None
    for arm in arms:
        arm_dir = Path(out) / f"seed{seed}" / arm
        resume = has_checkpoint(arm_dir)
        h1 = arm_config(config, arm, seed, budget).model_copy(update={
            "policy": str(saved), "out": str(arm_dir.parent), "name": arm, "resume": resume, "overwrite": not resume})
        if resume:
            log(f"seed {seed} {arm}: continuing from the checkpoint in {arm_dir}")
        with phase(f"seed {seed}: {arm} arm" + (f", until {budget:,} generated tokens" if budget else "")):
            history = rl_history(train(h1))
        policy = TinyLM.load(arm_dir / "policy")
        tokens = history[-1]["tokens_total"] if history else 0
        budget = budget or tokens
        with phase(f"seed {seed}: evaluating the {arm} arm"):
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


def _arms(results: dict[int, dict[str, Any]]) -> list[str]:
    """The arms every seed of `results` ran, in ARMS order."""
    return [arm for arm in ARMS if all(arm in result for result in results.values())]


def summarize(config: ExperimentConfig, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Each arm's accuracy at H (mean, sd, min, max, n over seeds), the curriculum's margin over direct at H per
    seed, mean accuracy per depth, the mean train reward and the mean share of groups with signal, per arm."""
    H, arms = config.max_depth, _arms(results)
    per_seed_accuracy = {arm: {s: (r[arm] if arm == "warm_start" else r[arm]["accuracy"]) for s, r in results.items()}
                         for arm in ("warm_start", *arms)}
    margins = {s: r["curriculum"]["accuracy"][H] - r["direct"]["accuracy"][H] for s, r in results.items()}
    return {
        "H": H,
        "seeds": list(results),
        "accuracy_at_H": {arm: mean_spread([acc[H] for acc in by_seed.values()])
                          for arm, by_seed in per_seed_accuracy.items()},
        "margin_at_H": margins,
        "min_margin_at_H": min(margins.values()),
        "margin_at_H_spread": mean_spread(list(margins.values())),
        "mean_accuracy": {arm: {str(d): _mean([acc[d] for acc in by_seed.values()]) for d in config.eval_depths}
                          for arm, by_seed in per_seed_accuracy.items()},
        "mean_train_reward": {arm: _mean([_mean(r[arm]["reward_mean"]) for r in results.values()]) for arm in arms},
        "mean_signal_group_fraction": {arm: _mean([_mean(r[arm]["signal_group_fraction"]) for r in results.values()])
                                       for arm in arms},
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
    for i, arm in enumerate(_arms(results)):
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
    overwrite: bool = False, arms: tuple[str, ...] = ARMS, warm: Path | None = None,
) -> dict[str, Any]:
    """All seeds into the run directory `out`; after every seed, writes results.json, summary.json and plots.
    An existing `out` is refused unless `resume` (same config; the seeds already there are kept and new ones
    added: finished arms are reloaded, cut ones continue from their checkpoints) or `overwrite` (start clean).
    `arms` (curriculum first) and `warm` (a tinylm folder every seed starts from) are for the quick demo."""
    out = Path(out)
    if resume and not overwrite:  # a resumed experiment keeps the seeds it has and adds the new ones
        Run.require_existing(out)
        seeds = tuple(sorted(set(Run.open(out).config().get("seeds", [])) | set(seeds)))
    run = Run.create(out.parent, out.name, {**config.model_dump(), "seeds": list(seeds)}, resume=resume,
                     overwrite=overwrite, ignore=("seeds",))
    if run.config().get("seeds") != list(seeds):
        atomic_write_text(run.config_path, yaml.safe_dump({**run.config(), "seeds": list(seeds)}, sort_keys=False))
    # tinylm matrices are too small to split (2 threads are slower on a busy CPU): one thread unless the user chose
    torch.set_num_threads(explicit_threads() or 1)
    results: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        with phase(f"h1 experiment: seed {seed} ({len(results) + 1}/{len(seeds)})"):
            results[seed] = run_seed(config, out, seed, log, arms, warm)
        summary = summarize(config, results)
        atomic_write_json(out / "results.json", {"config": config.model_dump(), "seeds": list(results),
                                                 "results": results, "summary": summary})
        run.write_summary(summary)
        plot(config, results, run)
    return json.loads((out / "results.json").read_text())


DEMO_SEEDS = (0, 1)
LUCKY_GUESS_TIMES = 2  # direct's reward "vanishes" when its mean train reward is at most this many lucky guesses
SHORT_DEPTHS = (1, 2, 3)  # the depths whose accuracy the demo checks is kept


@register_demo("h1", "h1: depth curriculum vs direct RL at equal rollout tokens (tinylm, value-line chains)",
               minutes=2.5)
def quick(run_root: Path, fresh: bool) -> Path:
    """The `demo` preset from the shipped warm start: the curriculum and direct arms, DEMO_SEEDS, and a headline.
    Without `fresh`, a finished demo run of the same config is reused (and said so)."""
    config, out = PRESETS["demo"], Path(run_root) / "h1"
    if not fresh and _finished_demo(out, config):
        say(f"h1: reusing the demo results in {out} (pass --fresh to recompute them)")
        results = json.loads((out / "results.json").read_text())
    else:
        say(f"h1: reusing the warm start shipped in the package ({DEMO_ASSET.name}, made by "
            "benchmarks/h1_demo_warm_start.py: the values preset's warm start, seed 1)")
        results = run_experiment(config, out, DEMO_SEEDS, log=say, overwrite=True, arms=("curriculum", "direct"),
                                 warm=DEMO_ASSET)
    write_headline(out, demo_headline(config, results))
    return out


def _finished_demo(out: Path, config: ExperimentConfig) -> bool:
    """Whether `out` holds a finished demo run of `config` and DEMO_SEEDS."""
    if not (out / "results.json").is_file() or not (out / "config.yaml").is_file():
        return False
    saved = json.loads((out / "results.json").read_text())
    made_with = {k: v for k, v in (saved.get("config") or {}).items() if k != "report_to"}  # trackers change no result
    return made_with == config.model_dump(exclude={"report_to"}) and saved.get("seeds") == list(DEMO_SEEDS)


def demo_headline(config: ExperimentConfig, results: dict[str, Any]) -> Headline:
    """The demo's claim from results.json: accuracy at H per arm (k of n chains, 95% Wilson interval, per seed),
    direct's mean train reward against a lucky guess, and the accuracy kept at short depths."""
    H, n, lucky = config.max_depth, config.eval_chains, 1 / config.modulus
    per_seed = results["results"]
    correct = {arm: [round(r[arm]["accuracy"][str(H)] * n) for r in per_seed.values()] for arm in ("curriculum", "direct")}
    separated = all(wilson_interval(c, n)[0] > wilson_interval(d, n)[1]
                    for c, d in zip(correct["curriculum"], correct["direct"], strict=True))
    rewards = [_mean(r["direct"]["reward_mean"]) for r in per_seed.values()]
    vanished = max(rewards) <= LUCKY_GUESS_TIMES * lucky

    def short(arm: str) -> str:
        values = [_mean([(r[arm] if arm == "warm_start" else r[arm]["accuracy"])[str(d)] for d in SHORT_DEPTHS])
                  for r in per_seed.values()]
        return " / ".join(f"{v:.2f}" for v in values)

    at_h = "; ".join(f"seed {seed}: curriculum {format_rate(c, n)} vs direct {format_rate(d, n)}"
                     for seed, c, d in zip(per_seed, correct["curriculum"], correct["direct"], strict=True))
    seeds = ", ".join(per_seed)
    return Headline(
        system="h1",
        measures=(f"Greedy accuracy on {n} held-out depth-{H} chains over Z_{config.modulus} after Dr.GRPO from one "
                  f"shipped warm start (exact at depths 1-3, near 0 at depth {H}): a depth curriculum "
                  f"{config.min_depth}..{H} vs direct RL at depth {H}, equal generated tokens, RL seed(s) {seeds}."),
        result=(f"depth {H}, {at_h}. Direct's mean train reward {format_mean(rewards)} (a lucky guess: {lucky:.3f}). "
                f"Depths 1-3 (per seed): warm start {short('warm_start')}, curriculum {short('curriculum')}, "
                f"direct {short('direct')}"),
        paper=("h1 (arXiv 2510.07312): a depth curriculum teaches long chains that direct RL at the long depth cannot, "
               "because direct training's reward vanishes; our run of record (H = 10, 3 seeds, README) "
               "has the curriculum ahead by 23-98 points"),
        holds=separated and vanished,
        plot="plots/accuracy_by_depth.png",
        note=(f"{len(per_seed)} RL seed(s), {config.steps_per_stage * (H - config.min_depth + 1)} curriculum "
              "iterations (the run of record: 3 seeds, 600), from one warm start shipped in "
              "src/reasonlab/systems/h1/assets/values_warm_start (the values preset's, seed 1, float16; made by "
              "`python benchmarks/h1_demo_warm_start.py --seed 1`). The claim holds when on every seed the "
              "curriculum's interval lies above direct's and direct's mean train reward is at most "
              f"{LUCKY_GUESS_TIMES} lucky guesses"),
    )
