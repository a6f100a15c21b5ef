"""Small-scale reproduction on a tinylm: SFT base, then Delethink-RL vs LongCoT-RL with identical settings.

    reasonlab delethink experiment --preset main --out runs/delethink-experiment      # seeds 0, 1, 2
    reasonlab delethink control --preset main --out runs/delethink-control
    reasonlab demo --only delethink              # the shipped RL models of one seed, traced both ways (demo.py)

Task: the counter-free permutation walk of `tasks.py` (N=127 states, K=5 accumulator letters), trace length
2T + 3 tokens. The SFT base sees LongCoT-format traces with T <= sft_max_steps (plus the non-Markovian
control) and trains until its greedy accuracy on check walks reaches `sft_stop_accuracy` (checked every
`sft_check_every` steps, `sft_steps` the cap): a fixed step count sat on the edge of a sudden drop in loss, so
the same seed gave bases of very different strength on two CPUs (issue 18). RL trains on T ~ U[rl_min_steps, rl_max_steps] under a training budget of 96 thinking tokens:
LongCoT-RL gets one 96-token chunk; Delethink-RL gets C=32, m=16, I=5 (32 + 4 x 16 = 96), so its positions
never exceed |q| + 32. At test time both models get a larger budget under both inference modes (LongCoT:
more new tokens; Delethink: a larger I), so the RL effect can be read with the inference mode held fixed
(`evaluation.COMPARISONS`), and accuracy (avg@N) is measured against T, far beyond the training budget.

The experiment folder is a run directory (config.yaml; summary.json with each model's mean, spread and n and
the paired comparisons; results.json with every curve; plots/). The SFT base and each arm's RL run are run
directories inside it, named with the `config_hash` of the fields that made them, and reused when present.

Deviations from the paper, for a 2-core CPU: a 2-layer tinylm instead of R1-Distill-1.5B; a synthetic task;
8 tasks x 8 samples per iteration instead of 128 x 8; AdamW lr 1e-4 instead of 1e-6; no head tokens.
The paper's PPO details are kept: clip-high 0.26, dual clip 3, truncated IS 2, 2 optimizer steps per iteration.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonlab.demo import register_demo
from reasonlab.progress import phase, say
from reasonlab.runs import Run, atomic_write_json, config_hash
from reasonlab.systems.delethink.config import ArithmeticConfig, ExperimentConfig, TrainConfig
from reasonlab.systems.delethink.training import step_lines
from reasonlab.threads import current_threads, explicit_threads

if TYPE_CHECKING:
    from reasonlab.llm.base import LLM
    from reasonlab.train.tinylm import TinyLM

__all__ = ["ARMS", "control_sft", "run_arithmetic", "run_control", "run_experiment", "train_arm"]

ARMS = ("delethink", "longcot")


def train_arm(config: ExperimentConfig, arm: str, seed: int, root: Path) -> TinyLM:
    """The RL run of one arm and seed, in `root/<arm>-seed<seed>-<hash>/`: reused when finished, resumed from
    its checkpoint when killed, trained otherwise."""
    from reasonlab.systems.delethink.training import train
    from reasonlab.train import rl
    from reasonlab.train.tinylm import TinyLM

    settings = TrainConfig(**config.setup_fields(), arm=arm, seed=seed, report_to=config.report_to)
    run_dir = Path(root) / f"{arm}-seed{seed}-{config_hash(settings, ignore=('out',))}"
    if (run_dir / "model" / "model.pt").is_file():
        say(f"reusing the {arm}-RL model of seed {seed} from {run_dir}")
        return TinyLM.load(run_dir / "model")
    resume = (run_dir / "checkpoints" / rl.CHECKPOINT_NAME).is_file()
    if resume:
        say(f"resuming the {arm}-RL run of seed {seed} from its checkpoint in {run_dir}")
    train(settings.model_copy(update={"out": str(run_dir), "resume": resume, "overwrite": not resume}))
    return TinyLM.load(run_dir / "model")


def run_experiment(
    config: ExperimentConfig,
    out: str | Path,
    seeds: Sequence[int] | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """SFT base, both arms for every seed, each model under both inference modes; writes the run's summary,
    results.json and plots/accuracy_vs_length.png and returns {"curves", "summary"}."""
    import torch

    from reasonlab.systems.delethink.evaluation import accuracy_curve, summarize
    from reasonlab.systems.delethink.training import sft_base, sft_base_dir

    torch.set_num_threads(current_threads())
    if seeds is not None:
        config = config.model_copy(update={"seeds": list(seeds)})
    out = Path(out)
    run = Run.create(out.parent, out.name, config, resume=resume, overwrite=overwrite)
    results_path = run.dir / "results.json"
    curves: dict[str, dict[str, float]] = {}
    if results_path.is_file():
        curves = json.loads(results_path.read_text())["curves"]
        say(f"reusing {len(curves)} accuracy curves from {results_path}")

    def measure(key: str, policy: LLM, mode: str, steps: list[int], control: bool = False, seed: int = 0) -> None:
        if key not in curves:
            with phase(f"evaluating {key} at T = {', '.join(map(str, steps))}"):
                curves[key] = accuracy_curve(policy, config, config.test_environment(mode), steps, control=control,
                                             seed=seed, task_seed=50_000 + 7 * seed)
            atomic_write_json(results_path, {"curves": curves})

    base = sft_base(config, run.dir)
    for mode in ARMS:
        measure(f"sft/{mode}", base, mode, config.test_steps)
        measure(f"sft/{mode}/control", base, mode, config.control_steps, control=True)
    for seed in config.seeds:
        for arm in ARMS:
            if all(key in curves for key in _arm_keys(arm, seed)):
                continue
            policy = train_arm(config, arm, seed, run.dir)
            other = "longcot" if arm == "delethink" else "delethink"
            measure(f"{arm}-rl/seed{seed}", policy, arm, config.test_steps, seed=seed)
            # the other inference mode on the same weights: the RL effect with the inference mode held fixed
            measure(f"{arm}-rl/seed{seed}/as-{other}", policy, other, config.test_steps, seed=seed)
            measure(f"{arm}-rl/seed{seed}/control", policy, arm, config.control_steps, control=True, seed=seed)
    summary = {"train_budget": config.train_budget, "threads": torch.get_num_threads(),
               **summarize(curves, config.seeds, config.budget_steps),
               "sft_base": _base_record(Run.open(sft_base_dir(config, run.dir)).summary())}
    run.write_summary(summary)
    plot_curves(summary, config.train_budget, run.plot_path("accuracy_vs_length"))
    return {"curves": curves, "summary": summary}


def _base_record(sft_summary: dict[str, Any]) -> dict[str, Any]:
    """What the experiment's summary says about its SFT base: steps, the last check, every check."""
    keys = ("steps", "check_accuracy", "reached_target", "checks", "seconds")
    return {key: sft_summary[key] for key in keys if key in sft_summary}


def _arm_keys(arm: str, seed: int) -> list[str]:
    other = "longcot" if arm == "delethink" else "delethink"
    return [f"{arm}-rl/seed{seed}", f"{arm}-rl/seed{seed}/as-{other}", f"{arm}-rl/seed{seed}/control"]


def plot_curves(summary: dict[str, Any], train_budget: int, path: Path) -> None:
    """Accuracy vs walk length: each model under each inference mode (mean over seeds, sd band), the budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    from reasonlab.systems.delethink.evaluation import CURVE_STYLES

    for model, (color, line) in CURVE_STYLES.items():
        by_length = summary["models"].get(model, {}).get("by_length")
        if not by_length:
            continue
        xs = sorted(int(t) for t in by_length)
        mean = [by_length[str(t)]["mean"] for t in xs]
        sd = [by_length[str(t)]["sd"] for t in xs]
        n = by_length[str(xs[0])]["n"]
        ax.plot(xs, mean, color=color, ls=line, lw=2, label=f"{model} (mean of {n})")
        ax.fill_between(xs, [m - s for m, s in zip(mean, sd, strict=True)],
                        [m + s for m, s in zip(mean, sd, strict=True)], color=color, alpha=0.1)
    ax.axvline((train_budget - 3) / 2, color="gray", ls=":", label="training budget")
    ax.set_xlabel("walk length T (trace = 2T+3 tokens)")
    ax.set_ylabel("avg@N accuracy")
    ax.set_title("RL model / inference mode", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def control_sft(config: ExperimentConfig, root: Path) -> TinyLM:
    """The dedicated control model (control traces only), in `root/control-sft-<hash>/`, reused when present."""
    from reasonlab.systems.delethink.training import build_policy
    from reasonlab.train import sft
    from reasonlab.train.tinylm import TinyLM

    fields = config.model_dump(include={"num_states", "num_letters", "world_seed", "n_layer", "d_model", "n_head",
                                        "sft_examples", "sft_max_steps", "sft_batch_size", "sft_learning_rate",
                                        "control_sft_steps"})
    name = f"control-sft-{config_hash(fields)}"
    model_dir = Path(root) / name / "model"
    if (model_dir / "model.pt").is_file():
        say(f"reusing the control SFT model from {model_dir}")
        return TinyLM.load(model_dir)
    world, policy, rng = config.world(), build_policy(config), random.Random(4321)
    examples = []
    for _ in range(config.sft_examples):
        task = world.task(rng.randint(1, config.sft_max_steps), rng, control=True)
        examples.append(sft.Example(policy.tokenize(world.query(task)), policy.tokenize(world.trace(task))))
    # SFT keeps no checkpoint: a model left unfinished by a killed process is trained again
    run = Run.create(root, name, {**fields, "report_to": config.report_to} if config.report_to else fields,
                     overwrite=True)  # reports where the control does (report_to is no part of the name)
    with phase(f"control SFT model into {run.dir} ({config.control_sft_steps} steps)"):
        result = sft.train(sft.SFTConfig(backend="plain", max_steps=config.control_sft_steps,
                                         batch_size=config.sft_batch_size, learning_rate=config.sft_learning_rate,
                                         warmup_ratio=0.05, progress=False), policy, examples, run=run,
                           should_stop=step_lines("control SFT", config.control_sft_steps))
    run.write_summary({"final_loss": result.train_losses[-1]})
    policy.save(str(model_dir))
    return policy


def run_control(
    config: ExperimentConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False
) -> dict[str, Any]:
    """The non-Markovian control on its own SFT model: accuracy vs T under LongCoT, Delethink (tail
    carryover) and Delethink with the official code's head + tail carryover; the run's summary."""
    import torch

    from reasonlab.systems.delethink.evaluation import accuracy_curve

    torch.set_num_threads(explicit_threads() or 1)  # a tinylm: one thread unless the user chose
    out = Path(out)
    run = Run.create(out.parent, out.name, config, resume=resume, overwrite=overwrite)
    if "curves" in run.summary():
        say(f"reusing the control curves from {run.summary_path}")
        return run.summary()
    policy = control_sft(config, run.dir)
    tail = config.environment("delethink")
    modes = {"longcot": config.test_environment("longcot"), "delethink": tail.with_budget(config.test_budget),
             "delethink-head": tail.model_copy(update={"head_tokens": config.control_head_tokens}).with_budget(
                 config.test_budget)}
    curves = {name: accuracy_curve(policy, config, mode, config.control_steps, control=True, task_seed=60_000)
              for name, mode in modes.items()}
    summary = {"curves": curves, "modes": {name: mode.model_dump() for name, mode in modes.items()}}
    run.write_summary(summary)
    return summary


# zero-shot tracing of a base model on templated arithmetic


def run_arithmetic(
    config: ArithmeticConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    llm: LLM | None = None,
) -> dict[str, Any]:
    """avg@N of Delethink tracing and of LongCoT (one chunk of the same budget) on the same problems; with
    `resume`, an arm already measured in the run is reused."""
    from reasonlab.llm import SamplingParams, load_llm
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.systems.delethink.evaluation import evaluate
    from reasonlab.systems.delethink.prompts import ARITHMETIC_STOP, arithmetic_prompt
    from reasonlab.systems.delethink.tasks import arithmetic_tasks, extract_arithmetic_answer

    out = Path(out)
    delethink = DelethinkConfig(chunk_size=config.chunk_size, carryover=config.carryover, iterations=config.iterations)
    run = Run.create(out.parent, out.name, config, resume=resume, overwrite=overwrite)
    done = {m["arm"]: m for m in run.metrics() if m.get("kind") == "eval"}
    tasks = arithmetic_tasks(config.problems, config.operands, config.seed)
    sampling = SamplingParams(temperature=config.temperature, seed=config.seed, stop=ARITHMETIC_STOP)

    def reward(task, text: str) -> float:
        return float(extract_arithmetic_answer(text) == task.answer)

    summary: dict[str, Any] = {"budget": delethink.budget}
    for arm, env in (("delethink", delethink), ("longcot", DelethinkConfig.longcot(delethink.budget))):
        if arm in done:
            say(f"reusing the {arm} measurement from {run.metrics_path}")
            summary[arm] = {k: v for k, v in done[arm].items() if k not in ("kind", "arm", "time")}
            continue
        llm = llm or load_llm(config.llm)
        started = time.perf_counter()
        result = evaluate(llm, tasks, env, arithmetic_prompt, reward, sampling, n=config.n, batch_tasks=config.problems)
        summary[arm] = {**result.as_dict(), "seconds": time.perf_counter() - started}
        summary[arm].pop("per_task")
        run.log({"kind": "eval", "arm": arm, **summary[arm]})
    run.write_summary(summary)
    return summary


@register_demo("delethink", "Delethink vs LongCoT RL models on a tinylm walk: within and beyond the RL budget, "
               "inference and training effects split", minutes=1)
def quick(run_root: Path, fresh: bool) -> Path:
    """The shipped RL models of one seed of the run of record, each traced with both inference modes (demo.py)."""
    from reasonlab.systems.delethink.demo import run_demo

    return run_demo(run_root, fresh)
