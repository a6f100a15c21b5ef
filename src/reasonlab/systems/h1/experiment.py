"""The h1 small-scale reproduction on a CPU: curriculum vs direct vs uniform mix, at equal rollout tokens.

A tinylm is fine-tuned on modular chains of depths 1 and 2 (on depth 1 alone it never learns the chained
answer format). Then, from that warm start, three Dr.GRPO arms:
(a) curriculum: depths min_depth..H, `steps_per_stage` iterations each (the cap, for the adaptive schedule),
    with the stage gate;
(b) direct: depth H only, until it has generated as many tokens as (a) (gate probes included in (a));
(c) uniform: depths U{1..H}, the same token budget.
Reported: greedy accuracy per depth 1..H+2 on fixed held-out chains (slot rows: the depths that fit), the
share of groups with nonzero advantage per iteration (the vanishing-reward signal), plots.

    reasonlab h1 experiment --preset values --seed 0 --seed 1 --seed 2 --out runs/h1-values   # the run of record
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, model_validator

from reasonlab.demo import register_demo
from reasonlab.llm.base import SamplingParams
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.h1.curriculum import CurriculumConfig
from reasonlab.systems.h1.environment import accuracy, accuracy_by_depth
from reasonlab.systems.h1.modular import ModularChain, make_modular_chains, modular_tokenizer, sft_examples
from reasonlab.systems.h1.train import H1Config, train_h1
from reasonlab.train import sft
from reasonlab.train.rl import RLConfig
from reasonlab.train.tinylm import TinyLM, TinyLMConfig

__all__ = ["PRESETS", "ExperimentConfig", "quick", "run_experiment", "warm_start"]

ARMS = ("curriculum", "direct", "uniform")
EVAL_SEED = 10_000  # evaluation chains use seeds far from the training draws
CHECK_SEED = 20_000  # the warm start's stopping test: other held-out chains


class ExperimentConfig(BaseModel):
    """Sizes of the CPU experiment (defaults: the `main` preset)."""

    modulus: int = Field(31, ge=2, description="M: values live in Z_M (a guess is right 1/M of the time)")
    max_constant: int = Field(4, ge=1, description="step constants are 1..max_constant")
    ops: str = Field("+-", description="step operations: '+-', or '+-*' (products leave no 'stay near x0' guess)")
    labelled: bool = Field(False, description="labelled serial chains ('5 k + 3 d - 7 ?'); else the rewrite format")
    width: int = Field(0, ge=0, description="slot layout with this many slots per row (> H); 0: rewrite format")
    rotate: bool = Field(False, description="slot layout: rotate the row (s1 moves to the end) instead of a blank entering")
    lines: Literal["row", "value"] = Field("row", description="slot layout: each worked line holds the value and the "
                                           "moved row, or the value alone")
    n_layer: int = Field(3, ge=1, description="tinylm blocks")
    d_model: int = Field(96, ge=8, description="tinylm width")
    position_encoding: str = Field("rope", description="tinylm positions: rope | none (NoPE; RESULTS.md, h1 follow-up)")
    sft_chains_per_depth: int = Field(3000, ge=1, description="warm-start chains at depths 1 and 2 each")
    sft_skip_rate: float = Field(0.0, ge=0, le=1, description="slot layout: warm-start chains with one blank step "
                                 "(a line that changes nothing), so that 'the second line is the last' is no cue")
    sft_max_skips: int = Field(1, ge=1, description="slot layout: blank steps per warm-start chain that has any "
                               "(1..this many, as the row holds), so that it sees worked chains of every length")
    sft_steps: int = Field(400, ge=1, description="warm-start optimizer steps (with sft_stop_accuracy: the cap)")
    sft_stop_accuracy: float | None = Field(None, gt=0, le=1, description="end the warm start once its greedy "
                                            "accuracy on held-out depth-1 chains reaches this (the spec's 'train to "
                                            "a given atomic accuracy'); None: all sft_steps")
    sft_check_every: int = Field(50, ge=1, description="warm-start steps between sft_stop_accuracy checks")
    sft_learning_rate: float = Field(3e-3, gt=0, description="warm-start AdamW learning rate")
    max_depth: int = Field(4, ge=2, description="H: the curriculum's last depth; direct trains here")
    min_depth: int = Field(2, ge=1, description="the curriculum's first stage")
    schedule: Literal["fixed", "adaptive"] = Field("fixed", description="the curriculum arm's schedule")
    steps_per_stage: int = Field(40, ge=1, description="RL iterations per curriculum stage (adaptive: the cap)")
    advance_threshold: float = Field(0.5, ge=0, le=1, description="adaptive: mean train reward that ends a stage")
    window: int = Field(0, ge=0, description="iterations of the adaptive test and between gate probes; 0: stage / 4")
    tasks_per_iteration: int = Field(8, ge=1, description="groups per RL iteration")
    group_size: int = Field(8, ge=2, description="G")
    learning_rate: float = Field(2e-4, gt=0, description="RL AdamW learning rate")
    loss_type: str = Field("dr_grpo", description="grpo | dr_grpo | gspo")
    eval_chains: int = Field(128, ge=1, description="held-out chains per evaluated depth")
    gate_threshold: float = Field(0.05, ge=0, le=1, description="stage gate")
    probe_chains: int = Field(32, ge=1, description="chains per gate probe")

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if self.width and self.width <= self.max_depth:
            raise ValueError(f"width={self.width} must exceed H = {self.max_depth}: a row holds depth < width")
        return self

    @property
    def eval_depths(self) -> list[int]:
        """1..H + 2 (a slot row holds depths below its width only)."""
        deepest = self.max_depth + 2 if not self.width else min(self.max_depth + 2, self.width - 1)
        return list(range(1, deepest + 1))

    @property
    def max_tokens(self) -> int:
        h = max(self.eval_depths)  # worked targets: 2h + 3 tokens (labelled), h (h + 1) + 3 (rewrite) or
        if self.width:  # h (width + 2) + 3 (slot rows) or h + 3 (slot values), plus EOS
            return h + 6 if self.lines == "value" else h * (self.width + 2) + 6
        return 2 * h + 8 if self.labelled else h * (h + 1) + 6

    def chains(self, depth: int, count: int, seed: int, skip_rate: float = 0.0) -> list[ModularChain]:
        """Chains in this experiment's format."""
        return make_modular_chains(depth, count, seed, self.modulus, self.max_constant, labelled=self.labelled,
                                   ops=self.ops, width=self.width, skip_rate=skip_rate,
                                   rotate=self.rotate, max_skips=self.sft_max_skips, lines=self.lines)


PRESETS: dict[str, ExperimentConfig] = {
    "main": ExperimentConfig(),
    # the slot layout, rotated, with blank steps in the warm start: accuracy falls off softly past depth 3 and is
    # 0 at depth 6 (RESULTS.md, h1, "Slot layout"); H + 2 = 8 does not fit in a row of 8 slots
    "slots": ExperimentConfig(ops="+-*", width=8, rotate=True, sft_chains_per_depth=20000, sft_skip_rate=0.5,
                              sft_steps=4000, max_depth=6, min_depth=1, schedule="adaptive", steps_per_stage=60,
                              window=10, learning_rate=2e-4, probe_chains=64, gate_threshold=0.1),
    # values-only lines over Z_61: the k-th worked value reads the prompt's k-th slot. Three in four warm-start chains
    # carry one blank step, so it writes up to three lines; accuracy then falls off softly past depth 4 and is near 0
    # at depth 10 (RESULTS.md, h1, "Value lines")
    "values": ExperimentConfig(modulus=61, max_constant=6, ops="+-*", width=13, lines="value",
                               sft_chains_per_depth=20000, sft_skip_rate=0.75, sft_steps=2500, max_depth=10,
                               min_depth=1, schedule="adaptive", steps_per_stage=60, window=10, learning_rate=2e-4,
                               probe_chains=64, gate_threshold=0.1),
    "quick": ExperimentConfig(n_layer=2, d_model=64, sft_chains_per_depth=1500, sft_steps=400, max_depth=3,
                              steps_per_stage=6, tasks_per_iteration=6, eval_chains=48, probe_chains=16),
}


def warm_start(
    config: ExperimentConfig, seed: int, watch: Callable[[int, TinyLM], None] | None = None
) -> tuple[TinyLM, int]:
    """A tinylm fine-tuned on depth-1 and depth-2 chains, and its optimizer steps. `watch(steps, policy)` is
    called every `sft_check_every` steps (benchmarks/h1_probes.py follows the accuracy per depth with it)."""
    tokenizer = modular_tokenizer(config.modulus, config.max_depth + 3, config.ops, config.max_constant if config.width else 0)
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=config.n_layer, d_model=config.d_model, n_head=4,
                         position_encoding=config.position_encoding)
    policy = TinyLM.create(shape, tokenizer, seed=seed)
    chains = [c for d in (1, 2) for c in config.chains(d, config.sft_chains_per_depth, seed, config.sft_skip_rate)]
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


def arm_config(config: ExperimentConfig, arm: str, seed: int, token_budget: int | None) -> H1Config:
    stages = config.max_depth - config.min_depth + 1
    schedule = {"curriculum": config.schedule, "direct": "direct", "uniform": "uniform"}[arm]
    curriculum = CurriculumConfig(schedule=schedule, min_depth=config.min_depth if arm == "curriculum" else 1,
                                  max_depth=config.max_depth, steps_per_stage=config.steps_per_stage,
                                  advance_threshold=config.advance_threshold, gate_threshold=config.gate_threshold,
                                  window=config.window or max(config.steps_per_stage // 4, 1))
    # the budget arms may run longer than the curriculum's iterations: they stop on tokens
    iterations = config.steps_per_stage * stages * (1 if token_budget is None else 4)
    rl = RLConfig(loss_type=config.loss_type, iterations=iterations, tasks_per_iteration=config.tasks_per_iteration,
                  group_size=config.group_size, learning_rate=config.learning_rate, seed=seed,
                  sampling=SamplingParams(temperature=1.0, max_tokens=config.max_tokens), progress=False)
    return H1Config(curriculum=curriculum, rl=rl, probe_chains=config.probe_chains, token_budget=token_budget,
                    eval_max_tokens=config.max_tokens)


def run_seed(config: ExperimentConfig, out: Path, seed: int, log: Any = print) -> dict[str, Any]:
    """Warm start, then the three arms from copies of it; returns accuracies and curves per arm."""
    torch.manual_seed(seed)
    started = time.perf_counter()
    saved = out / f"seed{seed}" / "warm_start"
    if (saved / "model.pt").is_file():  # an interrupted experiment keeps its warm start
        base = TinyLM.load(saved)
        sft_steps = json.loads((saved / "sft.json").read_text())["steps"] if (saved / "sft.json").is_file() else None
    else:
        base, sft_steps = warm_start(config, seed)
        base.save(str(saved))
        atomic_write_json(saved / "sft.json", {"steps": sft_steps})
    eval_sets = {d: config.chains(d, config.eval_chains, EVAL_SEED + seed) for d in config.eval_depths}
    result: dict[str, Any] = {"warm_start": _accuracy(base, eval_sets, config), "warm_start_sft_steps": sft_steps}
    log(f"seed {seed}: warm start {result['warm_start']} after {sft_steps} SFT steps "
        f"({time.perf_counter() - started:.0f}s)")

    budget: int | None = None
    for arm in ARMS:
        policy = TinyLM(copy.deepcopy(base.module), base.tokenizer)
        h1 = arm_config(config, arm, seed, budget)
        run = Run.create(out / f"seed{seed}", arm, h1, exist_ok=True)
        history = train_h1(h1, policy, config.chains, run=run, resume=True)  # a finished or cut-short arm continues
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
        run.write_summary({k: v for k, v in result[arm].items() if k in ("accuracy", "tokens", "iterations")})
        log(f"seed {seed} {arm}: {final} tokens {tokens} iterations {len(history)} "
            f"signal {sum(result[arm]['signal_group_fraction']) / max(len(history), 1):.2f} "
            f"({time.perf_counter() - started:.0f}s)")
    return result


def _accuracy(policy: TinyLM, eval_sets: dict[int, Any], config: ExperimentConfig) -> dict[int, float]:
    return {d: round(a, 4) for d, a in accuracy_by_depth(policy, eval_sets, config.max_tokens).items()}


def summarize(config: ExperimentConfig, results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per-arm accuracy per depth (mean and per seed), and the curriculum's margin over direct at H."""
    H = config.max_depth
    table: dict[str, Any] = {}
    for arm in ("warm_start", *ARMS):
        per_seed = {s: (r[arm] if arm == "warm_start" else r[arm]["accuracy"]) for s, r in results.items()}
        table[arm] = {str(d): sum(acc[d] for acc in per_seed.values()) / len(per_seed) for d in config.eval_depths}
    margins = {s: r["curriculum"]["accuracy"][H] - r["direct"]["accuracy"][H] for s, r in results.items()}
    signal = {arm: sum(sum(r[arm]["signal_group_fraction"]) / max(len(r[arm]["signal_group_fraction"]), 1)
                       for r in results.values()) / len(results) for arm in ARMS}
    return {"H": H, "mean_accuracy": table, "margin_at_H": margins, "mean_signal_group_fraction": signal,
            "min_margin_at_H": min(margins.values())}


def plot(config: ExperimentConfig, results: dict[int, dict[str, Any]], out: Path) -> None:
    """accuracy_by_depth.png (mean over seeds) and signal_groups.png (per seed, against tokens)."""
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
    fig.savefig(out / "accuracy_by_depth.png", dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, arm in enumerate(ARMS):
        for j, result in enumerate(results.values()):
            ax.plot(result[arm]["tokens_total"], _rolling_mean(result[arm]["signal_group_fraction"], 10),
                    color=f"C{i + 1}", alpha=0.7, label=arm if j == 0 else None)
    ax.set(xlabel="generated tokens", ylabel="groups with nonzero advantage (10-it. mean)",
           title="vanishing-reward signal")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "signal_groups.png", dpi=120)
    plt.close("all")


def _rolling_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the up to `window - 1` before it."""
    return [sum(values[max(0, i + 1 - window):i + 1]) / (i + 1 - max(0, i + 1 - window)) for i in range(len(values))]


def run_experiment(config: ExperimentConfig, out: Path, seeds: tuple[int, ...], log: Any = print) -> dict[str, Any]:
    """All seeds; writes results.json (+ plots) under `out` after every seed. Arms resume from their checkpoints,
    so rerunning into the same `out` continues an interrupted experiment (use a new `out` for a new config)."""
    torch.set_num_threads(1)  # tinylm matrices are too small to split; 2 threads are slower on a busy CPU
    out.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        results[seed] = run_seed(config, out, seed, log)
        payload = {"config": config.model_dump(), "seeds": list(results), "results": results,
                   "summary": summarize(config, results)}
        atomic_write_json(out / "results.json", payload)
        plot(config, results, out)
    return json.loads((out / "results.json").read_text())


@register_demo("h1", "h1: depth curriculum vs direct RL at equal rollout tokens (tinylm, modular chains)")
def quick(run_root: Path) -> Path:
    """The quick preset, one seed (under a minute on a quiet 2-core machine)."""
    out = Path(run_root) / "h1"
    run_experiment(PRESETS["quick"], out, (0,))
    Run.create(out, "summary", {"preset": "quick"}, exist_ok=True).write_summary(
        json.loads((out / "results.json").read_text())["summary"])
    return out / "summary"
