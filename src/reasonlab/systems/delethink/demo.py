"""The quick demo (`reasonlab demo --only delethink`): the run of record's claim in miniature, in about a minute.

Training the walk tinylm takes far longer than a demo may (`reasonlab delethink experiment --preset main`), so the
demo starts from the two RL models of one seed of the run of record, shipped in float16 in `assets/` and made by
`benchmarks/delethink_demo_assets.py` (`ASSET_COMMAND`). It traces each model with each inference mode at the test
budget, within the 96-token RL budget (T = 16, 32) and beyond it (T = 64, 96), on walks none of them was trained
or tested on, and reports every accuracy with its n and a 95% Wilson interval. The four cells split the gap beyond
the budget into the part that comes from the inference mode (LongCoT-RL's weights traced both ways) and the part
that comes from training (both RL models traced with Delethink).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reasonlab.demo import Headline, write_headline
from reasonlab.errors import UserError
from reasonlab.progress import phase, say
from reasonlab.runs import Run, atomic_write_json
from reasonlab.stats import format_rate, wilson_interval
from reasonlab.systems.delethink.config import DEMO, ExperimentConfig
from reasonlab.systems.delethink.evaluation import COMPARISONS, CURVE_STYLES, MODELS

if TYPE_CHECKING:
    from reasonlab.train.tinylm import TinyLM

__all__ = ["ASSETS", "ASSET_COMMAND", "export_assets", "load_assets", "run_demo"]

ASSETS = Path(__file__).parent / "assets"
ASSET_ARMS = ("delethink", "longcot")
PROVENANCE = "provenance.json"
ASSET_COMMAND = ".venv/bin/python benchmarks/delethink_demo_assets.py --from runs/delethink-record-t1 --seed 0"


def export_assets(experiment_dir: str | Path, seed: int, dest: Path = ASSETS) -> dict[str, Any]:
    """Copy the finished RL models of `seed` from an experiment run into `dest` in float16, with a provenance
    file (source run, RL runs, setup, the SFT base's record); returns the provenance."""
    import torch

    from reasonlab.systems.delethink.training import sft_base_dir
    from reasonlab.train.tinylm import TinyLM

    source = Run.open(experiment_dir)
    setup = ExperimentConfig.model_validate({k: v for k, v in source.config().items() if not k.startswith("_")})
    arms = {}
    for arm in ASSET_ARMS:
        found = sorted(source.dir.glob(f"{arm}-seed{seed}-*/model/model.pt"))
        if not found:
            raise UserError(f"{source.dir} has no finished {arm}-RL model of seed {seed}: run the experiment first")
        arms[arm] = found[0].parent.parent.name
        policy = TinyLM.load(found[0].parent)
        policy.module.to(torch.float16)
        target = dest / f"{arm}-rl"
        shutil.rmtree(target, ignore_errors=True)
        policy.save(str(target))
    base = Run.open(sft_base_dir(setup, source.dir)).summary()
    provenance = {"source": source.dir.name, "seed": seed, "runs": arms, "setup": setup.setup_fields(),
                  "sft_base": {key: base.get(key) for key in ("steps", "check_accuracy", "reached_target")},
                  "command": ASSET_COMMAND}
    atomic_write_json(dest / PROVENANCE, provenance)
    return provenance


def load_assets(dest: Path = ASSETS) -> tuple[dict[str, TinyLM], dict[str, Any]]:
    """The shipped RL models (float32 in memory) by arm, and their provenance."""
    from reasonlab.train.tinylm import TinyLM

    if not (dest / PROVENANCE).is_file():
        raise UserError(f"{dest} holds no shipped Delethink models: make them with `{ASSET_COMMAND}`")
    provenance = json.loads((dest / PROVENANCE).read_text())
    models = {}
    for arm in ASSET_ARMS:
        policy = TinyLM.load(dest / f"{arm}-rl")
        policy.module.float()
        models[arm] = policy
    return models, provenance


def run_demo(run_root: str | Path, fresh: bool, assets: Path = ASSETS, config: ExperimentConfig = DEMO) -> Path:
    """Trace both shipped RL models with both inference modes; write results.json, the summary, the plot and the
    headline into `run_root/delethink`, reusing curves measured earlier unless `fresh`."""
    from reasonlab.systems.delethink.evaluation import accuracy_curve

    models, provenance = load_assets(assets)
    if provenance["setup"] != config.setup_fields():
        raise UserError(f"the shipped models in {assets} were trained on another walk setup: remake them with "
                        f"`{ASSET_COMMAND}`")
    say(f"using the RL models of seed {provenance['seed']} of the run of record ({provenance['source']}), shipped "
        f"in {assets} and made by `{provenance['command']}`")
    out = Path(run_root) / "delethink"
    run = _open_run(out, {**config.model_dump(), "assets": provenance}, fresh)
    results_path = run.dir / "results.json"
    curves: dict[str, dict[str, float]] = {}
    if results_path.is_file():
        curves = json.loads(results_path.read_text())["curves"]
        say(f"reusing {len(curves)} accuracy curves from {results_path} (pass --fresh to measure again)")
    for index, model in enumerate(MODELS, start=1):
        arm, mode = model.split("/")
        if model in curves:
            continue
        with phase(f"[{index}/{len(MODELS)}] {arm.replace('-rl', '')}-RL traced with {mode} inference"):
            curves[model] = accuracy_curve(models[arm.removesuffix("-rl")], config, config.test_environment(mode),
                                           config.test_steps, task_seed=90_000)
        atomic_write_json(results_path, {"curves": curves})
    summary = summarize_demo(curves, config)
    run.write_summary({**summary, "assets": provenance})
    _plot(curves, config, run.plot_path("accuracy_vs_length"))
    write_headline(run.dir, headline(summary, provenance))
    return run.dir


def _open_run(out: Path, config: dict[str, Any], fresh: bool) -> Run:
    if fresh:
        return Run.create(out.parent, out.name, config, overwrite=True)
    try:
        return Run.create(out.parent, out.name, config, resume=True)
    except UserError:
        say(f"the earlier demo run in {out} was made with other settings or models: measuring again")
        return Run.create(out.parent, out.name, config, overwrite=True)


def summarize_demo(curves: dict[str, dict[str, float]], config: ExperimentConfig) -> dict[str, Any]:
    """Per model/inference: correct samples k of n within and beyond the budget, with the rate's 95% Wilson
    interval; per comparison of `COMPARISONS`: the gap in rates with a 95% interval (Newcombe's, from the two
    Wilson intervals)."""
    per_length = config.eval_tasks * config.eval_n
    models: dict[str, Any] = {}
    for model, curve in curves.items():
        models[model] = {}
        for part, lengths in _parts(config).items():
            k = round(sum(curve[str(t)] * per_length for t in lengths))
            n = per_length * len(lengths)
            low, high = wilson_interval(k, n)
            models[model][part] = {"k": k, "n": n, "rate": k / n, "low": low, "high": high}
    comparisons = {}
    for name, (a, b) in COMPARISONS.items():
        if a in models and b in models:
            comparisons[name] = {"a": a, "b": b, **{part: _gap(models[a][part], models[b][part])
                                                     for part in _parts(config)}}
    return {"budget_steps": config.budget_steps, "lengths": _parts(config), "models": models,
            "comparisons": comparisons}


def _parts(config: ExperimentConfig) -> dict[str, list[int]]:
    return {"within_budget": [t for t in config.test_steps if t <= config.budget_steps],
            "beyond_budget": [t for t in config.test_steps if t > config.budget_steps]}


def _gap(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """a - b with Newcombe's hybrid score interval (95%)."""
    gap = a["rate"] - b["rate"]
    low = gap - ((a["rate"] - a["low"]) ** 2 + (b["high"] - b["rate"]) ** 2) ** 0.5
    high = gap + ((a["high"] - a["rate"]) ** 2 + (b["rate"] - b["low"]) ** 2) ** 0.5
    return {"gap": gap, "low": low, "high": high}


def claim_holds(summary: dict[str, Any]) -> bool:
    """The README row in miniature, each part a 95% interval on the right side of 0:
    - within the budget LongCoT-RL/LongCoT is ahead of Delethink-RL/Delethink, and Delethink training recovers
      part of that (Delethink-RL above LongCoT-RL, both traced with Delethink);
    - beyond it Delethink-RL/Delethink is ahead, the inference mode carries it (LongCoT-RL's weights gain from
      Delethink tracing), and Delethink training adds nothing (its interval, inference held fixed, reaches 0 or
      below)."""
    comparisons = summary["comparisons"]

    def cell(name: str, part: str) -> dict[str, float]:
        return comparisons[name][part]

    return (cell("method_vs_baseline", "within_budget")["high"] < 0
            and cell("rl_effect_delethink_inference", "within_budget")["low"] > 0
            and cell("method_vs_baseline", "beyond_budget")["low"] > 0
            and cell("inference_effect_longcot_rl", "beyond_budget")["low"] > 0
            and cell("rl_effect_delethink_inference", "beyond_budget")["low"] <= 0)


def headline(summary: dict[str, Any], provenance: dict[str, Any]) -> Headline:
    models, comparisons = summary["models"], summary["comparisons"]

    def rate(model: str, part: str) -> str:
        cell = models[model][part]
        return format_rate(cell["k"], cell["n"])

    def points(name: str, part: str) -> str:
        cell = comparisons[name][part]
        return f"{100 * cell['gap']:+.1f} points (95% CI {100 * cell['low']:+.1f} to {100 * cell['high']:+.1f})"

    parts = []
    for part, label in (("within_budget", "within the budget"), ("beyond_budget", "beyond it")):
        lengths = ", ".join(map(str, summary["lengths"][part]))
        parts.append(f"{label} (T = {lengths}): Delethink-RL/Delethink {rate('delethink-rl/delethink', part)} vs "
                     f"LongCoT-RL/LongCoT {rate('longcot-rl/longcot', part)}, {points('method_vs_baseline', part)}; "
                     f"inference effect (LongCoT-RL's weights, Delethink - LongCoT tracing) "
                     f"{points('inference_effect_longcot_rl', part)}; training effect (both traced with Delethink) "
                     f"{points('rl_effect_delethink_inference', part)}")
    sft = provenance.get("sft_base") or {}
    base = (f"; its SFT base reached check accuracy {sft['check_accuracy']:.2f} after {sft['steps']} steps"
            if sft.get("check_accuracy") is not None else "")
    return Headline(
        system="delethink",
        measures=("Accuracy of a tinylm on a permutation walk after RL under Delethink (C=32, m=16) or LongCoT "
                  "(one 96-token chunk), each model traced with each inference mode, within the RL budget and "
                  "beyond it."),
        result="; ".join(parts),
        paper=("Delethink-RL matches LongCoT-RL within the training budget and keeps improving beyond it "
               "(R1-Distill-1.5B, 24K budget)."),
        holds=claim_holds(summary),
        plot="plots/accuracy_vs_length.png",
        note=(f"Starts from the RL models of seed {provenance['seed']} of the run of record "
              f"({provenance['source']}{base}), shipped in float16 in reasonlab/systems/delethink/assets and made by "
              f"`{provenance['command']}`; training them is `reasonlab delethink experiment --preset main`. The claim "
              "checked (our README row's, not the paper's): within the budget LongCoT ahead and Delethink training "
              "recovering part of it; beyond it Delethink ahead, carried by the inference mode, with no gain from "
              "Delethink training. The paper's tie within the budget does not hold at this scale. n counts "
              "samples (walks x avg@N); samples of one walk are not independent, so the intervals are somewhat narrow."),
    )


def _plot(curves: dict[str, dict[str, float]], config: ExperimentConfig, path: Path) -> None:
    """Accuracy vs walk length for each model/inference, with 95% Wilson intervals, and the RL budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_length = config.eval_tasks * config.eval_n
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for model, (color, line) in CURVE_STYLES.items():
        curve = curves.get(model)
        if curve is None:
            continue
        xs = sorted(int(t) for t in curve)
        ks = [round(curve[str(t)] * per_length) for t in xs]
        intervals = [wilson_interval(k, per_length) for k in ks]
        rates = [k / per_length for k in ks]
        ax.errorbar(xs, rates, yerr=[[r - lo for r, (lo, _) in zip(rates, intervals, strict=True)],
                                     [hi - r for r, (_, hi) in zip(rates, intervals, strict=True)]],
                    color=color, ls=line, lw=2, capsize=3, label=f"{model} (n={per_length} per point)")
    ax.axvline((config.train_budget - 3) / 2, color="gray", ls=":", label="RL budget")
    ax.set_xlabel("walk length T (trace = 2T+3 tokens)")
    ax.set_ylabel(f"avg@{config.eval_n} accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("RL model / inference mode (shipped models, 95% intervals)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
