"""Small-scale reproduction on a tinylm: SFT base, then Delethink-RL vs LongCoT-RL with identical settings.

    reasonlab delethink experiment --out runs/delethink-experiment --seed 0 --seed 1 --seed 2
    reasonlab demo --only delethink                                     # quick version (< 3 min)

Task: the counter-free permutation walk of `tasks.py` (N=127 states, K=5 accumulator letters), trace length
2T + 3 tokens. The SFT base sees LongCoT-format traces with T <= sft_max_steps (plus the non-Markovian
control). RL trains on T ~ U[rl_min_steps, rl_max_steps] under a training budget of 96 thinking tokens:
LongCoT-RL gets one 96-token chunk; Delethink-RL gets C=32, m=16, I=5 (32 + 4 x 16 = 96), so its positions
never exceed |q| + 32. At test time both arms get a larger budget (LongCoT: more new tokens; Delethink: a
larger I) and accuracy (avg@N) is measured against T, including lengths far beyond the training budget.

Deviations from the paper, for a 2-core CPU: a 2-layer tinylm instead of R1-Distill-1.5B; a synthetic task;
8 tasks x 8 samples per iteration instead of 128 x 8; AdamW lr 1e-4 instead of 1e-6; no head tokens.
The paper's PPO details are kept: clip-high 0.26, dual clip 3, truncated IS 2, 2 optimizer steps per iteration.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from reasonlab.demo import register_demo
from reasonlab.runs import Run, atomic_write_json

if TYPE_CHECKING:
    from reasonlab.llm.base import LLM
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.tasks import PermutationWalk
    from reasonlab.train.tinylm import TinyLM

__all__ = [
    "PRESETS",
    "ArithmeticConfig",
    "ExperimentConfig",
    "build_policy",
    "run_arithmetic",
    "run_control",
    "run_experiment",
    "sft_base",
    "train_arm",
]


class ExperimentConfig(BaseModel):
    """Settings of the tinylm experiment (see the module docstring)."""

    num_states: int = Field(127, description="N: states of the permutation walk")
    num_letters: int = Field(5, description="K: accumulator alphabet")
    world_seed: int = Field(0, description="seed of the permutation and weights")
    n_layer: int = Field(2, description="tinylm blocks")
    d_model: int = Field(128, description="tinylm width")
    n_head: int = Field(4, description="tinylm heads")
    sft_examples: int = Field(6000, description="SFT traces")
    sft_max_steps: int = Field(46, description="longest walk T in SFT: the whole training budget (2T+3 <= 96)")
    sft_control_fraction: float = Field(0.25, description="share of non-Markovian control traces in SFT")
    sft_steps: int = Field(1500, description="SFT optimizer steps")
    sft_batch_size: int = Field(32, description="SFT batch")
    sft_learning_rate: float = Field(2e-3, description="SFT AdamW learning rate")
    chunk_size: int = Field(32, description="Delethink C during RL")
    carryover: int = Field(16, description="Delethink m")
    iterations: int = Field(5, description="Delethink I during RL: budget C + (I-1)(C-m)")
    rl_min_steps: int = Field(4, description="shortest walk in RL")
    rl_max_steps: int = Field(44, description="longest walk in RL (2T+3 must fit the training budget)")
    rl_iterations: int = Field(80, description="RL iterations per arm")
    rl_tasks_per_iteration: int = Field(8, description="queries per RL iteration")
    rl_group_size: int = Field(8, description="G: traces per query")
    rl_learning_rate: float = Field(1e-4, description="RL AdamW learning rate")
    temperature: float = Field(0.6, description="sampling temperature, train and eval (paper: 0.6)")
    test_budget: int = Field(256, description="thinking tokens at test time for both arms")
    test_steps: list[int] = Field([8, 16, 24, 32, 40, 48, 64, 80, 96, 120], description="walk lengths T tested")
    control_steps: list[int] = Field([8, 12, 16, 24, 32], description="control walk lengths tested")
    eval_tasks: int = Field(32, description="tasks per length")
    eval_n: int = Field(4, description="samples per task (avg@N)")
    control_sft_steps: int = Field(2500, description="SFT steps of the dedicated control model")
    control_head_tokens: int = Field(8, description="head tokens kept by the head+tail carryover in the control")

    @property
    def train_budget(self) -> int:
        return self.chunk_size + (self.iterations - 1) * (self.chunk_size - self.carryover)


QUICK = ExperimentConfig(sft_examples=1500, sft_steps=300, rl_iterations=6, test_steps=[8, 40, 96],
                         control_steps=[24], eval_tasks=8, eval_n=2)
PRESETS = {"main": ExperimentConfig(), "quick": QUICK}
ARMS = ("delethink", "longcot")


def _world(config: ExperimentConfig) -> PermutationWalk:
    from reasonlab.systems.delethink.tasks import PermutationWalk

    return PermutationWalk(config.num_states, config.num_letters, config.world_seed)


def build_policy(config: ExperimentConfig, seed: int = 0) -> TinyLM:
    """A fresh word-level tinylm over the walk's vocabulary."""
    from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

    tokenizer = Tokenizer(_world(config).vocabulary, level="word")
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=config.n_layer, d_model=config.d_model,
                         n_head=config.n_head, context_length=1024)
    return TinyLM.create(shape, tokenizer, seed=seed)


def sft_base(config: ExperimentConfig, out: Path) -> TinyLM:
    """Train (or load) the SFT base on full LongCoT-format traces; returns the policy."""
    import random

    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM

    model_dir = out / "sft-base" / "model"
    if (model_dir / "model.pt").is_file():
        return TinyLM.load(model_dir)
    world, policy = _world(config), build_policy(config)
    rng = random.Random(1234)
    examples = []
    for _ in range(config.sft_examples):
        task = world.task(rng.randint(1, config.sft_max_steps), rng, control=rng.random() < config.sft_control_fraction)
        examples.append(sft.Example(policy.tokenize(world.query(task)), policy.tokenize(world.trace(task))))
    run = Run.create(out, "sft-base", config, exist_ok=True)
    started = time.perf_counter()
    result = sft.train(sft.SFTConfig(backend="plain", max_steps=config.sft_steps, batch_size=config.sft_batch_size,
                                     learning_rate=config.sft_learning_rate, warmup_ratio=0.05, progress=False),
                       policy, examples, run=run)
    run.write_summary({"final_loss": result.train_losses[-1], "seconds": time.perf_counter() - started})
    policy.save(str(model_dir))
    return policy


def arm_delethink(config: ExperimentConfig, arm: str) -> DelethinkConfig:
    """The environment configuration of an arm at the training budget."""
    from reasonlab.systems.delethink.config import DelethinkConfig

    if arm == "delethink":
        return DelethinkConfig(chunk_size=config.chunk_size, carryover=config.carryover, iterations=config.iterations)
    if arm == "longcot":
        return DelethinkConfig.longcot(config.train_budget)
    raise ValueError(f"unknown arm {arm!r}: use delethink or longcot")


def train_arm(config: ExperimentConfig, arm: str, seed: int, out: Path) -> TinyLM:
    """RL from the SFT base in one arm; identical settings except the environment. Resumes a killed run."""
    from reasonlab.llm.base import SamplingParams
    from reasonlab.systems.delethink.environment import DelethinkEnvironment, rl_config
    from reasonlab.train import rl
    from reasonlab.train.tinylm import TinyLM

    name = f"{arm}-seed{seed}"
    model_dir = out / name / "model"
    if (model_dir / "model.pt").is_file():
        return TinyLM.load(model_dir)
    world, policy = _world(config), sft_base(config, out)
    delethink = arm_delethink(config, arm)
    base = rl.RLConfig(
        loss_type="grpo", iterations=config.rl_iterations, tasks_per_iteration=config.rl_tasks_per_iteration,
        group_size=config.rl_group_size, learning_rate=config.rl_learning_rate, epsilon_high=0.26, dual_clip=3.0,
        tis_cap=2.0, optimizer_steps_per_iteration=2, seed=seed, progress=False, checkpoint_every=20,
        sampling=SamplingParams(temperature=config.temperature), resume=True,
    )
    run = Run.create(out, name, {"experiment": config.model_dump(), "arm": arm, "seed": seed}, exist_ok=True)
    environment = DelethinkEnvironment(delethink, policy, world.query, world.reward)
    tasks = world.tasks(4000, config.rl_min_steps, config.rl_max_steps, seed=10_000 + seed)
    history = rl.train(rl_config(delethink, base), policy, environment, tasks, run=run)
    run.write_summary({"reward_last20": sum(h["reward_mean"] for h in history[-20:]) / min(20, len(history)),
                       "seconds": sum(h["seconds"] for h in history)})
    policy.save(str(model_dir))
    return policy


def accuracy_curve(config: ExperimentConfig, policy: LLM, mode: str, steps: list[int], control: bool = False,
                   seed: int = 0) -> dict[str, float]:
    """avg@N accuracy per walk length T under `mode` (delethink or longcot) at the test budget."""
    from reasonlab.llm.base import SamplingParams
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.evaluate import evaluate

    world = _world(config)
    if mode == "longcot":
        delethink = DelethinkConfig.longcot(config.test_budget)
    else:
        delethink = arm_delethink(config, mode).with_budget(config.test_budget)
    curve = {}
    for T in steps:
        tasks = world.tasks(config.eval_tasks, T, T, seed=50_000 + T + 7 * seed, control=control)
        result = evaluate(policy, tasks, delethink, world.query, world.reward,
                          SamplingParams(temperature=config.temperature, seed=seed), n=config.eval_n)
        curve[str(T)] = result.accuracy
    return curve


def run_experiment(config: ExperimentConfig, out: str | Path, seeds: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    """SFT base, both RL arms for every seed, accuracy-vs-length curves, control; writes results.json + plot."""
    import torch

    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.update(config=config.model_dump(), train_budget=config.train_budget, seeds=list(seeds))
    curves = results.setdefault("curves", {})
    base = sft_base(config, out)
    for mode in ARMS:
        key = f"sft/{mode}"
        if key not in curves:
            curves[key] = accuracy_curve(config, base, mode, config.test_steps)
            curves[f"sft/{mode}/control"] = accuracy_curve(config, base, mode, config.control_steps, control=True)
            atomic_write_json(results_path, results)
    for seed in seeds:
        for arm in ARMS:
            key = f"{arm}-rl/seed{seed}"
            if key in curves:
                continue
            policy = train_arm(config, arm, seed, out)
            curves[key] = accuracy_curve(config, policy, arm, config.test_steps, seed=seed)
            # the other inference mode on the same weights (zero-shot Delethink on LongCoT-RL, and back)
            other = "longcot" if arm == "delethink" else "delethink"
            curves[f"{arm}-rl/seed{seed}/as-{other}"] = accuracy_curve(config, policy, other, config.test_steps, seed=seed)
            curves[f"{arm}-rl/seed{seed}/control"] = accuracy_curve(config, policy, arm, config.control_steps,
                                                                   control=True, seed=seed)
            atomic_write_json(results_path, results)
    results["table"] = summary_table(results, seeds)
    atomic_write_json(results_path, results)
    plot_curves(results, seeds, out / "accuracy_vs_length.png")
    return results


def summary_table(results: dict[str, Any], seeds: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Mean (over seeds) accuracy per arm and length, plus in-budget / beyond-budget averages."""
    budget_steps = (results["train_budget"] - 3) // 2
    table: dict[str, dict[str, float]] = {}
    for arm in ARMS:
        runs = [results["curves"][f"{arm}-rl/seed{s}"] for s in seeds if f"{arm}-rl/seed{s}" in results["curves"]]
        if not runs:
            continue
        lengths = sorted(int(t) for t in runs[0])
        mean = {t: sum(r[str(t)] for r in runs) / len(runs) for t in lengths}
        inside = [mean[t] for t in lengths if t <= budget_steps]
        beyond = [mean[t] for t in lengths if t > budget_steps]
        table[arm] = {**{f"T={t}": round(v, 3) for t, v in mean.items()},
                      "within_budget": round(sum(inside) / max(len(inside), 1), 3),
                      "beyond_budget": round(sum(beyond) / max(len(beyond), 1), 3), "seeds": len(runs)}
    return table


def plot_curves(results: dict[str, Any], seeds: tuple[int, ...], path: Path) -> None:
    """Accuracy vs walk length: each RL arm (mean and per seed), the SFT base, the training budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colors = {"delethink": "tab:blue", "longcot": "tab:red"}
    for arm in ARMS:
        for s in seeds:
            curve = results["curves"].get(f"{arm}-rl/seed{s}")
            if curve:
                xs = sorted(int(t) for t in curve)
                ax.plot(xs, [curve[str(t)] for t in xs], color=colors[arm], alpha=0.3)
        sft = results["curves"].get(f"sft/{arm}")
        if sft:
            xs = sorted(int(t) for t in sft)
            ax.plot(xs, [sft[str(t)] for t in xs], color=colors[arm], ls=":",
                    label=f"SFT base, {arm} inference")
    for arm, row in results.get("table", {}).items():
        xs = sorted(int(k[2:]) for k in row if k.startswith("T="))
        ax.plot(xs, [row[f"T={t}"] for t in xs], color=colors[arm], lw=2.5, label=f"{arm}-RL (mean of {row['seeds']})")
    ax.axvline((results["train_budget"] - 3) / 2, color="gray", ls="--", label="training budget")
    ax.set_xlabel("walk length T (trace = 2T+3 tokens)")
    ax.set_ylabel("avg@N accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_control(config: ExperimentConfig, out: str | Path) -> dict[str, Any]:
    """The non-Markovian control on its own SFT model (control traces only): accuracy vs T under LongCoT,
    Delethink (tail carryover), and Delethink with the official code's head + tail carryover."""
    import random

    import torch

    from reasonlab.llm.base import SamplingParams
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.evaluate import evaluate
    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM

    torch.set_num_threads(1)
    out = Path(out)
    model_dir = out / "control-sft" / "model"
    world = _world(config)
    if (model_dir / "model.pt").is_file():
        policy = TinyLM.load(model_dir)
    else:
        policy, rng = build_policy(config), random.Random(4321)
        examples = []
        for _ in range(config.sft_examples):
            task = world.task(rng.randint(1, config.sft_max_steps), rng, control=True)
            examples.append(sft.Example(policy.tokenize(world.query(task)), policy.tokenize(world.trace(task))))
        run = Run.create(out, "control-sft", config, exist_ok=True)
        result = sft.train(sft.SFTConfig(backend="plain", max_steps=config.control_sft_steps,
                                         batch_size=config.sft_batch_size, learning_rate=config.sft_learning_rate,
                                         warmup_ratio=0.05, progress=False), policy, examples, run=run)
        run.write_summary({"final_loss": result.train_losses[-1]})
        policy.save(str(model_dir))
    tail = DelethinkConfig(chunk_size=config.chunk_size, carryover=config.carryover, iterations=config.iterations)
    modes = {"longcot": DelethinkConfig.longcot(config.test_budget), "delethink": tail.with_budget(config.test_budget),
             "delethink-head": tail.model_copy(update={"head_tokens": config.control_head_tokens}).with_budget(
                 config.test_budget)}
    curves: dict[str, dict[str, float]] = {}
    for name, mode in modes.items():
        curves[name] = {}
        for T in config.control_steps:
            tasks = world.tasks(config.eval_tasks, T, T, seed=60_000 + T, control=True)
            curves[name][str(T)] = evaluate(policy, tasks, mode, world.query, world.reward,
                                            SamplingParams(temperature=config.temperature, seed=0),
                                            n=config.eval_n).accuracy
    results = {"curves": curves, "modes": {k: v.model_dump() for k, v in modes.items()}}
    atomic_write_json(out / "control-results.json", results)
    return results


# zero-shot tracing of a base model on templated arithmetic


class ArithmeticConfig(BaseModel):
    """Zero-shot Delethink tracing vs LongCoT on templated sums, at the same token budget."""

    llm: str = Field("hf:embedded", description="model spec")
    operands: int = Field(6, ge=2, description="numbers per sum")
    problems: int = Field(12, ge=1, description="problems (all decoded in one batch)")
    n: int = Field(2, ge=1, description="samples per problem (avg@N)")
    chunk_size: int = Field(32, description="C")
    carryover: int = Field(16, description="m")
    iterations: int = Field(4, description="I")
    temperature: float = Field(0.6, ge=0, description="sampling temperature")
    seed: int = Field(0, description="task and sampling seed")


def run_arithmetic(
    config: ArithmeticConfig, out: str | Path, name: str = "arithmetic", llm: LLM | None = None
) -> dict[str, Any]:
    """avg@N of Delethink tracing and of LongCoT (one chunk of the same budget) on the same problems."""
    from reasonlab.llm import SamplingParams, load_llm
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.evaluate import evaluate
    from reasonlab.systems.delethink.tasks import (
        ARITHMETIC_STOP,
        arithmetic_prompt,
        arithmetic_tasks,
        extract_arithmetic_answer,
    )

    llm = llm or load_llm(config.llm)
    run = Run.create(out, name, config, exist_ok=True)
    tasks = arithmetic_tasks(config.problems, config.operands, config.seed)
    delethink = DelethinkConfig(chunk_size=config.chunk_size, carryover=config.carryover, iterations=config.iterations)
    sampling = SamplingParams(temperature=config.temperature, seed=config.seed, stop=ARITHMETIC_STOP)

    def reward(task, text: str) -> float:
        return float(extract_arithmetic_answer(text) == task.answer)

    summary: dict[str, Any] = {"budget": delethink.budget}
    for arm, env in (("delethink", delethink), ("longcot", DelethinkConfig.longcot(delethink.budget))):
        started = time.perf_counter()
        result = evaluate(llm, tasks, env, arithmetic_prompt, reward, sampling, n=config.n, batch_tasks=config.problems)
        summary[arm] = {**result.as_dict(), "seconds": time.perf_counter() - started}
        summary[arm].pop("per_task")
        run.log({"kind": "eval", "arm": arm, **summary[arm]})
    run.write_summary(summary)
    return summary


@register_demo("delethink", "Delethink vs LongCoT RL on a tinylm permutation walk (accuracy vs length)")
def quick(run_root: Path) -> Path:
    """A few RL iterations per arm from a short SFT base; writes results.json and the plot."""
    out = Path(run_root) / "delethink"
    results = run_experiment(QUICK, out, seeds=(0,))
    run = Run.create(out, "summary", QUICK, exist_ok=True)
    run.write_summary({f"{arm}_{k}": v for arm, row in results["table"].items() for k, v in row.items()
                       if k in ("within_budget", "beyond_budget")})
    return run.dir
