"""The quick demo (`reasonlab demo --only delethink`): the run of record's claim in miniature, in about a minute.

Training the walk tinylm takes far longer than a demo may (`reasonlab delethink experiment --preset main`), so the
demo starts from the two RL models of one seed of the run of record, shipped in float16 in `assets/` and made by
`benchmarks/delethink_demo_assets.py` (`ASSET_COMMAND`). It traces each model with each inference mode at the test
budget, within the 96-token RL budget (T = 16, 32) and beyond it (T = 64, 96). A walk is a start state and a
length, so a length has only `num_states` (127) walks: the demo traces every one of them once (avg@N samples each).
T = 16, 32 lie inside the training range (SFT: T <= 46, RL: 4 <= T <= 44), and most of those walks were trained
on (with the record's setup, 133 of the 254 occur as SFT traces, 202 as SFT traces or RL queries of seed 0); the
within-budget cells measure how well the models do on their training distribution, not on unseen walks.
T = 64, 96 lie beyond every walk trained on. Every rate and gap comes with a 95% interval over walks: a normal
interval on per-start means (a start's walks at the part's two lengths share their first steps, so a start state
is the unit), and for a gap on the per-start differences, paired because both models trace the same walks. The
four cells split the gap beyond the budget into the part that comes from the inference mode (LongCoT-RL's weights
traced both ways) and the part that comes from training (both RL models traced with Delethink).
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
from reasonlab.stats import mean_spread
from reasonlab.systems.delethink.config import DEMO, ExperimentConfig
from reasonlab.systems.delethink.evaluation import COMPARISONS, CURVE_STYLES, MODELS, evaluate

if TYPE_CHECKING:
    from reasonlab.systems.delethink.config import DelethinkConfig
    from reasonlab.train.tinylm import TinyLM

__all__ = ["ASSETS", "ASSET_COMMAND", "export_assets", "load_assets", "run_demo"]

ASSETS = Path(__file__).parent / "assets"
ASSET_ARMS = ("delethink", "longcot")
PROVENANCE = "provenance.json"
ASSET_COMMAND = ".venv/bin/python benchmarks/delethink_demo_assets.py --from runs/delethink-record-t1 --seed 0"
# "no gain from Delethink training" beyond the budget: the upper end of its 95% interval stays below this (the
# experiment test's bound on every seed)
NO_GAIN_BOUND = 0.05
Z95 = 1.96


def export_assets(experiment_dir: str | Path, seed: int, dest: Path = ASSETS) -> dict[str, Any]:
    """Copy the finished RL models of `seed` from an experiment run into `dest` in float16, with a provenance
    file (source run, RL runs, setup, the SFT base's record); returns the provenance."""
    import torch

    from reasonlab.systems.delethink.training import sft_base_dir
    from reasonlab.train.tinylm import TinyLM

    source = Run.open(experiment_dir)
    setup = ExperimentConfig.model_validate(source.settings())
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
    """Trace both shipped RL models with both inference modes on every walk of each length (the first
    `config.eval_tasks` start states; all 127 in `DEMO`); write results.json (per-walk accuracies), the summary,
    the plot and the headline into `run_root/delethink`, reusing walks measured earlier unless `fresh`."""
    models, provenance = load_assets(assets)
    if provenance["setup"] != config.setup_fields():
        raise UserError(f"the shipped models in {assets} were trained on another walk setup: remake them with "
                        f"`{ASSET_COMMAND}`")
    say(f"using the RL models of seed {provenance['seed']} of the run of record ({provenance['source']}), shipped "
        f"in {assets} and made by `{provenance['command']}`")
    out = Path(run_root) / "delethink"
    run = _open_run(out, {**config.model_dump(), "assets": provenance}, fresh)
    results_path = run.dir / "results.json"
    per_walk: dict[str, dict[str, list[float]]] = {}
    if results_path.is_file():
        per_walk = json.loads(results_path.read_text()).get("per_walk", {})
        if per_walk:
            say(f"reusing {len(per_walk)} accuracy curves from {results_path} (pass --fresh to measure again)")
    for index, model in enumerate(MODELS, start=1):
        arm, mode = model.split("/")
        if model in per_walk:
            continue
        with phase(f"[{index}/{len(MODELS)}] {arm.replace('-rl', '')}-RL traced with {mode} inference"):
            per_walk[model] = walk_accuracies(models[arm.removesuffix("-rl")], config, config.test_environment(mode))
        atomic_write_json(results_path, {"per_walk": per_walk})
    summary = summarize_demo(per_walk, config)
    run.write_summary({**summary, "assets": provenance})
    _plot(per_walk, config, run.plot_path("accuracy_vs_length"))
    write_headline(run.dir, headline(summary, provenance))
    return run.dir


def walk_accuracies(policy: TinyLM, config: ExperimentConfig, mode: DelethinkConfig) -> dict[str, list[float]]:
    """avg@N accuracy of each walk, by length T: one walk from each of the first `config.eval_tasks` start
    states, in start order (the same walks for every model, so gaps can be paired by walk)."""
    from reasonlab.llm.base import SamplingParams

    world = config.world()
    if config.eval_tasks > world.num_states:
        raise UserError(f"eval_tasks={config.eval_tasks} walks per length, but a length has only "
                        f"{world.num_states} (one per start state): lower eval_tasks")
    accuracies = {}
    for T in config.test_steps:
        result = evaluate(policy, world.walks_of_length(T, config.eval_tasks), mode, world.query, world.reward,
                          SamplingParams(temperature=config.temperature, seed=0), n=config.eval_n)
        accuracies[str(T)] = result.per_task
        say(f"  T={T}: accuracy {result.accuracy:.3f} (avg@{config.eval_n} over {result.num_tasks} walks)")
    return accuracies


def _open_run(out: Path, config: dict[str, Any], fresh: bool) -> Run:
    if fresh:
        return Run.create(out.parent, out.name, config, overwrite=True)
    try:
        return Run.create(out.parent, out.name, config, resume=True)
    except UserError:
        say(f"the earlier demo run in {out} was made with other settings or models: measuring again")
        return Run.create(out.parent, out.name, config, overwrite=True)


def summarize_demo(per_walk: dict[str, dict[str, list[float]]], config: ExperimentConfig) -> dict[str, Any]:
    """Per model/inference, within and beyond the budget: the mean walk accuracy with a 95% interval over
    start states (normal, on each start's mean over the part's lengths); per comparison of `COMPARISONS`: the
    gap with a 95% interval on the per-start differences (paired: both models trace the same walks)."""
    parts = _parts(config)
    starts: dict[str, dict[str, list[float]]] = {
        model: {part: _per_start(walks, lengths) for part, lengths in parts.items()}
        for model, walks in per_walk.items()}
    models: dict[str, Any] = {}
    for model, by_part in starts.items():
        models[model] = {}
        for part, values in by_part.items():
            mean, low, high = _normal_interval(values)
            models[model][part] = {"rate": mean, "low": max(low, 0.0), "high": min(high, 1.0),
                                   "walks": len(values) * len(parts[part]), "start_states": len(values),
                                   "samples_per_walk": config.eval_n}
    comparisons = {}
    for name, (a, b) in COMPARISONS.items():
        if a in starts and b in starts:
            comparisons[name] = {"a": a, "b": b, **{part: _gap(starts[a][part], starts[b][part]) for part in parts}}
    return {"budget_steps": config.budget_steps, "lengths": parts, "models": models, "comparisons": comparisons,
            "interval": "95%, normal, over start states (each start's walks at the part's lengths pooled); gaps "
                        "paired by start"}


def _parts(config: ExperimentConfig) -> dict[str, list[int]]:
    return {"within_budget": [t for t in config.test_steps if t <= config.budget_steps],
            "beyond_budget": [t for t in config.test_steps if t > config.budget_steps]}


def _per_start(walks: dict[str, list[float]], lengths: list[int]) -> list[float]:
    """Each start state's mean accuracy over its walks at `lengths`."""
    columns = [walks[str(t)] for t in lengths]
    return [sum(values) / len(values) for values in zip(*columns, strict=True)]


def _normal_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and its 95% normal interval (mean ± 1.96 sd / sqrt(n)) over `values`."""
    stats = mean_spread(values)
    mean, sd, n = float(stats["mean"] or 0.0), float(stats["sd"] or 0.0), int(stats["n"] or 0)
    half = Z95 * sd / n ** 0.5 if n else float("inf")
    return mean, mean - half, mean + half


def _gap(a: list[float], b: list[float]) -> dict[str, float]:
    """mean(a - b) over start states with its paired 95% normal interval."""
    gap, low, high = _normal_interval([x - y for x, y in zip(a, b, strict=True)])
    return {"gap": gap, "low": low, "high": high}


def claim_holds(summary: dict[str, Any]) -> bool:
    """The README row in miniature, each part read from a 95% interval:
    - within the budget LongCoT-RL/LongCoT is ahead of Delethink-RL/Delethink, and Delethink training recovers
      part of that (Delethink-RL above LongCoT-RL, both traced with Delethink): intervals on the right side of 0;
    - beyond it Delethink-RL/Delethink is ahead and the inference mode carries it (LongCoT-RL's weights gain from
      Delethink tracing): intervals above 0; and Delethink training, inference held fixed, gains nothing: its
      interval's upper end below +5 points (`NO_GAIN_BOUND`, the experiment test's bound)."""
    comparisons = summary["comparisons"]

    def cell(name: str, part: str) -> dict[str, float]:
        return comparisons[name][part]

    return (cell("method_vs_baseline", "within_budget")["high"] < 0
            and cell("rl_effect_delethink_inference", "within_budget")["low"] > 0
            and cell("method_vs_baseline", "beyond_budget")["low"] > 0
            and cell("inference_effect_longcot_rl", "beyond_budget")["low"] > 0
            and cell("rl_effect_delethink_inference", "beyond_budget")["high"] < NO_GAIN_BOUND)


def headline(summary: dict[str, Any], provenance: dict[str, Any]) -> Headline:
    models, comparisons = summary["models"], summary["comparisons"]

    def rate(model: str, part: str) -> str:
        cell = models[model][part]
        return f"{cell['rate']:.2f} (95% CI {cell['low']:.2f}-{cell['high']:.2f})"

    def points(name: str, part: str) -> str:
        cell = comparisons[name][part]
        return f"{100 * cell['gap']:+.1f} points (95% CI {100 * cell['low']:+.1f} to {100 * cell['high']:+.1f})"

    parts = []
    for part, label in (("within_budget", "within the budget"), ("beyond_budget", "beyond it")):
        lengths = ", ".join(map(str, summary["lengths"][part]))
        cell = models["delethink-rl/delethink"][part]
        parts.append(f"{label} (T = {lengths}; n = {cell['walks']} walks, {cell['start_states']} starts x "
                     f"{len(summary['lengths'][part])} lengths, avg@{cell['samples_per_walk']}): "
                     f"Delethink-RL/Delethink {rate('delethink-rl/delethink', part)} vs "
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
              "Delethink training (the upper end of its interval below +5 points). The paper's tie within the "
              "budget does not hold at this scale. A length has only 127 walks (one per start state); each is traced "
              "once with avg@N samples. The within-budget lengths lie inside the training range, and most of those "
              "walks were trained on; the lengths beyond the budget were never trained on. Intervals are 95%, "
              "normal, over start states (a start's walks pooled over the part's lengths), gaps paired by start."),
    )


def _plot(per_walk: dict[str, dict[str, list[float]]], config: ExperimentConfig, path: Path) -> None:
    """Mean walk accuracy vs walk length for each model/inference, with 95% intervals over walks, and the RL
    budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for model, (color, line) in CURVE_STYLES.items():
        walks = per_walk.get(model)
        if walks is None:
            continue
        xs = sorted(int(t) for t in walks)
        points = [_normal_interval(walks[str(t)]) for t in xs]
        rates = [mean for mean, _, _ in points]
        count = len(walks[str(xs[0])])
        ax.errorbar(xs, rates, yerr=[[mean - max(low, 0.0) for mean, low, _ in points],
                                     [min(high, 1.0) - mean for mean, _, high in points]],
                    color=color, ls=line, lw=2, capsize=3,
                    label=f"{model} ({count} walks x avg@{config.eval_n} per point)")
    ax.axvline((config.train_budget - 3) / 2, color="gray", ls=":", label="RL budget")
    ax.set_xlabel("walk length T (trace = 2T+3 tokens)")
    ax.set_ylabel(f"avg@{config.eval_n} accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("RL model / inference mode (shipped models, 95% intervals over walks)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
