"""The ARC-lite mechanism experiment (spec section 10) and the quick demo.

Per seed: generate seed tasks (with their programs, the BARC-seed analogue) and held-out tasks; build each arm's
memory from the seed programs; solve every held-out task by enumerative search at each budget, the arm ordering
the search; continual arms write train-verified solves back every `batch_size` tasks. The summary gives each arm's
held-out solve rate per budget (mean ± sd over seeds), selection recall@k, and the per-seed margins of the concept
arm over no memory and over instance memory at the headline budget; the plot shows solve rate against budget.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from reasonlab import progress
from reasonlab.demo import register_demo, write_headline
from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.arcmemo import arclite
from reasonlab.systems.arcmemo.arms import ARMS, make_arm
from reasonlab.systems.arcmemo.config import EXPERIMENT_PRESETS, ArcLiteConfig
from reasonlab.systems.arcmemo.continual import Step, run_continual
from reasonlab.systems.arcmemo.evaluation import lite_headline, summarize_lite

__all__ = ["build_tasks", "plot_budgets", "run_arm", "run_experiment", "run_seed"]


def build_tasks(config: ArcLiteConfig, seed: int) -> tuple[list[arclite.ArcLiteTask], list[arclite.ArcLiteTask]]:
    """(seed tasks with their programs, held-out tasks) of one seed; ids say which is which."""
    seeds = arclite.generate_tasks(config.seed_tasks, seed=10_000 * seed + 1, depths=tuple(config.depths))
    held_out = arclite.generate_tasks(config.eval_tasks, seed=10_000 * seed + 2, depths=tuple(config.depths))
    seeds = [dataclasses.replace(t, id=f"seed-{i:03d}") for i, t in enumerate(seeds)]
    held_out = [dataclasses.replace(t, id=f"eval-{i:03d}") for i, t in enumerate(held_out)]
    return seeds, held_out


def run_arm(arm_name: str, config: ArcLiteConfig, seed: int, budget: int, seed_tasks: list[arclite.ArcLiteTask],
            held_out: list[arclite.ArcLiteTask], embedder: Any = None) -> list[dict[str, Any]]:
    """One arm at one budget over the held-out tasks: a record per task (solved, tried, selection, depth)."""
    spec = ARMS[arm_name]
    arm = make_arm(spec, max(config.depths), config.top_k, config.unselected_weight, embedder)
    arm.write([(task, task.program) for task in seed_tasks])
    by_id = {task.id: task for task in held_out}
    index = {task.id: i for i, task in enumerate(held_out)}

    def solve_batch(batch: list[arclite.ArcLiteTask], threads: dict, pass_index: int) -> list[Step]:
        steps = []
        for task in batch:
            rng = np.random.default_rng([seed, index[task.id]])  # the same tie-breaks at every budget
            selected = arm.selection(task)
            result = arclite.search(task, arm.candidates(task, rng), budget)
            true = {name for name, _ in task.program}
            steps.append(Step(result.program is not None, {
                "task": task.id, "depth": len(task.program), "train_correct": result.program is not None,
                "solved": bool(result.test_correct), "tried": result.tried,
                "program": None if result.program is None else arclite.program_text(result.program),
                "selected": selected,
                "recall": len(true & set(selected)) / len(true) if selected else None,
            }))
        return steps

    def write(verified: list[tuple[str, Step]]) -> list[str]:
        return arm.write([(by_id[task_id], _program(step)) for task_id, step in verified])

    result = run_continual(held_out, solve_batch, write, batch_size=config.batch_size, update=spec.continual)
    records = []
    for task_id, step in result.last_steps().items():
        records.append({**step.payload, "arm": arm_name,
                        "budget": budget, "seed": seed, "memory_version": step.memory_version, "task": task_id})
    return records


def _program(step: Step) -> arclite.Program:
    return arclite.parse_program(step.payload["program"])


def run_seed(config: ArcLiteConfig, seed: int, out: Path, embedder: Any = None) -> list[dict[str, Any]]:
    """Every arm x budget of one seed; the records are saved as `seeds/seed<N>.json` and reused when present."""
    path = out / "seeds" / f"seed{seed}.json"
    if path.is_file():
        progress.say(f"seed {seed}: reusing {path}")
        return json.loads(path.read_text())
    seed_tasks, held_out = build_tasks(config, seed)
    if "concept-embedding" in config.arms and embedder is None:
        from reasonlab.llm.embed import load_embedder

        embedder = load_embedder(config.embedder)
    records: list[dict[str, Any]] = []
    started, total, done = time.monotonic(), len(config.arms) * len(config.budgets), 0
    for arm_name in config.arms:
        for budget in config.budgets:
            rows = run_arm(arm_name, config, seed, budget, seed_tasks, held_out, embedder)
            records.extend(rows)
            done += 1
            solved = sum(r["solved"] for r in rows)
            progress.say(f"seed {seed}: {arm_name:<18} budget {budget:>5}: {solved}/{len(rows)} held-out tasks "
                         f"solved ({done}/{total}, {progress.eta(done, total, started)})")
    atomic_write_json(path, records)
    return records


def _run_seed_worker(config: ArcLiteConfig, seed: int, out: Path) -> list[dict[str, Any]]:
    from reasonlab.threads import configure_threads

    configure_threads(1)
    return run_seed(config, seed, out)


def run_experiment(config: ArcLiteConfig, out: str | Path, name: str = "arclite", overwrite: bool = False,
                   resume: bool = False) -> Path:
    """Every seed (in `config.jobs` processes), then the summary, the headline and the plot; returns the run dir."""
    run = Run.create(out, name, config, resume=resume, overwrite=overwrite, ignore=("jobs",))
    with progress.heartbeat("arcmemo experiment"):
        if config.jobs > 1 and len(config.seeds) > 1:
            per_seed = _parallel(config, run.dir)
        else:
            per_seed = [run_seed(config, seed, run.dir) for seed in config.seeds]
    records = [r for rows in per_seed for r in rows]
    summary = summarize_lite(records, config)
    run.write_summary(summary)
    plot_budgets(summary, run.plot_path("solve_rate_vs_budget"))
    write_headline(run.dir, lite_headline(summary, plot="plots/solve_rate_vs_budget.png"))
    return run.dir


def _parallel(config: ArcLiteConfig, out: Path) -> list[list[dict[str, Any]]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(min(config.jobs, len(config.seeds)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_run_seed_worker, config, seed, out) for seed in config.seeds]
            return [future.result() for future in futures]
    except BrokenProcessPool:
        raise UserError(f"a worker process of --jobs {config.jobs} died (out of memory?): run the same command "
                        "with --resume and fewer --jobs; finished seeds are reused") from None


_ARM_COLORS = {"none": "tab:blue", "instance": "tab:orange", "concept": "tab:red", "concept-embedding": "tab:brown"}


def plot_budgets(summary: dict[str, Any], path: Path) -> None:
    """Held-out solve rate against search budget, one line per arm (mean ± sd over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for arm, rows in summary["arms"].items():
        budgets = sorted(int(b) for b in rows["by_budget"])
        means = [100 * rows["by_budget"][str(b)]["solve_rate"]["mean"] for b in budgets]
        sds = [100 * rows["by_budget"][str(b)]["solve_rate"]["sd"] for b in budgets]
        base = arm.removesuffix("-continual")
        axis.errorbar(budgets, means, yerr=sds, capsize=3, label=arm, color=_ARM_COLORS.get(base, "grey"),
                      linestyle="--" if arm.endswith("-continual") else "-",
                      marker="s" if arm.endswith("-continual") else "o")
    axis.set_xscale("log")
    axis.set_xlabel("search budget (programs tried per task)")
    axis.set_ylabel("held-out tasks solved (%)")
    axis.axvline(summary["headline_budget"], color="grey", linestyle=":", linewidth=1)
    axis.set_title(f"ARC-lite: {summary['eval_tasks']} held-out tasks x {len(summary['seeds'])} seeds")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


@register_demo("arcmemo", "ArcMemo on ARC-lite: concept-level memory against no memory and instance memory at "
               "equal search budget", minutes=2.0)
def quick(run_root: Path, fresh: bool) -> Path:
    config = EXPERIMENT_PRESETS["quick"]
    run_dir = Path(run_root) / "arcmemo-quick"
    if (run_dir / "summary.json").is_file() and not fresh:
        progress.say(f"arcmemo: reusing {run_dir} (--fresh recomputes)")
        return run_dir
    return run_experiment(config, run_root, "arcmemo-quick", overwrite=True)

