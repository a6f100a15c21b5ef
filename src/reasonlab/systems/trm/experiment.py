"""Small-scale reproduction: does recursion add to deep supervision? Three arms, same net, equal compute.

    reasonlab trm experiment --out runs/trm-main                  # run of record (9 runs x 120 CPU-s)
    reasonlab trm experiment --preset equal-steps --out runs/trm-equal-steps   # 1500 optimizer steps per arm
    reasonlab demo trm                                            # quick version (< 3 min of CPU)

Arms (`ARMS` in config.py; identical network, data, optimizer, EMA, so parameter counts are equal):
  trm               T=2, n=3, N_sup=8 (depth per step 2*(3+1)*2 = 16): recursion + deep supervision
  deep_supervision  T=1, n=1, N_sup=8: deep supervision without recursion (n=1 so that y still sees x via z)
  neither           T=1, n=1, N_sup=1: one pass, no recursion, no deep supervision
Each arm trains for the same budget of process CPU seconds with one torch thread (on a CPU shared with other
jobs, CPU time is the fair stand-in for wall-clock), or for the same number of optimizer steps (`steps`). The
checkpoint is chosen on a validation split, and exact-puzzle accuracy is measured on held-out test puzzles
after every supervision step.

The experiment is a run directory (config.yaml, summary.json with each arm's mean, spread and n, plots/arms.png).
Each arm and seed trains into `<out>/arms/<arm>-seed<seed>-<hash>`, the hash being `runs.config_hash` of its
training config, so a finished arm is reused (and said so) only under exactly the config that made it.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from reasonlab.demo import register_demo
from reasonlab.runs import Run, config_hash
from reasonlab.systems.trm.config import PRESETS, ExperimentConfig, TRMTrainConfig

__all__ = ["arm_run_name", "run_experiment", "summarize"]

# run-location fields: they do not change what an arm computes
_LOCATION = ("out", "name", "resume", "overwrite", "progress")
# per-seed numbers kept in the experiment's summary
_PER_SEED = ("test_exact", "val_exact", "best_step", "train_steps", "train_seconds", "test_exact_by_step",
             "test_halted_exact", "test_mean_halt_step")


def arm_run_name(arm: str, seed: int, config: TRMTrainConfig) -> str:
    """`<arm>-seed<seed>-<config_hash>`: the folder of one arm's run, unique to the config that trains it."""
    return f"{arm}-seed{seed}-{config_hash(config, ignore=_LOCATION)}"


def run_experiment(
    config: ExperimentConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False
) -> dict[str, Any]:
    """Train every arm for every seed (one after another) into the run directory `out`; returns its summary.

    `resume` continues an experiment made with the same config: finished arms are reused, a partly trained
    arm continues from its last checkpoint. `overwrite` deletes `out` first."""
    out = Path(out)
    run = Run.create(out.parent, out.name, config, resume=resume, overwrite=overwrite)
    arms_dir = run.dir / "arms"
    per_seed: dict[str, dict[str, dict[str, Any]]] = {}
    for seed in config.seeds:
        for arm in config.arms:
            summary = _train_arm(config.arm_config(arm, seed, str(arms_dir)), arm, seed)
            per_seed.setdefault(arm, {})[str(seed)] = {key: summary[key] for key in _PER_SEED}
    summary = summarize(per_seed, config.recipe.n_sup)
    run.write_summary(summary)
    _plot(run, summary, config.recipe.n_sup)
    return summary


def _train_arm(arm_config: TRMTrainConfig, arm: str, seed: int) -> dict[str, Any]:
    """The summary of one arm's run: reused when finished, continued from its checkpoint, or trained."""
    from reasonlab.systems.trm.training import train

    name = arm_run_name(arm, seed, arm_config)
    run_dir = Path(arm_config.out) / name
    if (run_dir / "summary.json").is_file():
        print(f"reusing {arm} seed {seed} from {run_dir}", flush=True)
        return Run(run_dir).summary()
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    print(f"{'continuing' if resume else 'training'} {arm} seed {seed} in {run_dir}", flush=True)
    options = {"name": name, "resume": resume, "overwrite": run_dir.exists() and not resume}
    return Run(train(arm_config.model_copy(update=options))).summary()


def summarize(per_seed: dict[str, dict[str, dict[str, Any]]], n_sup: int) -> dict[str, Any]:
    """`arms`: each arm's mean, spread (sample std) and n of test exact accuracy; `per_seed`: every seed's
    numbers; TRM minus deep supervision alone, and TRM's gain from supervision step 1 to N_sup, by seed."""
    arms = {arm: _spread([r["test_exact"] for r in seeds.values()]) for arm, seeds in per_seed.items()}
    summary: dict[str, Any] = {"arms": arms, "per_seed": per_seed}
    trm, ds = per_seed.get("trm", {}), per_seed.get("deep_supervision", {})
    margins = {s: trm[s]["test_exact"] - ds[s]["test_exact"] for s in trm if s in ds}
    gains = {s: r["test_exact_by_step"][n_sup - 1] - r["test_exact_by_step"][0] for s, r in trm.items()}
    if margins:
        summary["trm_minus_deep_supervision"] = {**_spread(list(margins.values())), "by_seed": margins}
    if gains:
        summary["trm_gain_step1_to_nsup"] = {**_spread(list(gains.values())), "by_seed": gains}
    return summary


def _spread(values: list[float]) -> dict[str, float | int]:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _plot(run: Run, summary: dict[str, Any], n_sup: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = summary["per_seed"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"trm": "C0", "deep_supervision": "C1", "neither": "C2"}
    for position, (arm, seeds) in enumerate(arms.items()):
        for index, record in enumerate(seeds.values()):
            curve = record["test_exact_by_step"]
            ax[0].plot(range(1, len(curve) + 1), curve, "o-", ms=3, color=colors[arm], alpha=0.8,
                       label=arm if index == 0 else None)
        values = [record["test_exact"] for record in seeds.values()]
        ax[1].scatter([position] * len(values), values, color=colors[arm])
    ax[0].axvline(n_sup, color="gray", linestyle=":")
    ax[0].set(xlabel="supervision steps at test time", ylabel="test exact accuracy", ylim=(0, 1.02))
    ax[0].legend()
    ax[1].set_xticks(range(len(arms)), list(arms))
    ax[1].set(ylabel="test exact accuracy (per seed)", ylim=(0, 1.02))
    fig.tight_layout()
    fig.savefig(run.plot_path("arms"), dpi=120)
    plt.close(fig)


@register_demo("trm", "6x6 Sudoku: TRM vs. deep supervision alone vs. neither (one seed, 40 CPU-s each)")
def quick(run_root: Path) -> Path:
    out = Path(run_root) / "trm-quick"
    run_experiment(PRESETS["quick"], out, resume=True)
    return out
