"""Experiments: every arm x seed of one setting on a real model (`run_experiment`, spec 4B/4C), and the
mechanism toy over its control tokens and seeds (`run_toy`, spec 4A). Both write one run folder with a
`summary.json` that the report, the README row and the `experiment` tests read.

    summary = run_experiment(ExperimentConfig(base=PRESETS["cpu"]), out="runs/inoculation", name="gcd")
    for arm, row in summary["arms"].items():
        print(arm, row["flaw"]["pooled"], row["capability"]["pooled"])

The elicitation of each arm's train-time text (I for ip, the control for irrelevant, none for no-ip and PTST) is
measured on the untuned model first (spec section 1, step 2), so the summary can say whether the heuristic
predicted the arms' order: Pearson r between elicitation and the tuned flaw rate across arms.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reasonlab.demo import Headline, register_demo, write_headline
from reasonlab.progress import say
from reasonlab.runs import Run, atomic_write_json
from reasonlab.stats import mean_spread, wilson_interval
from reasonlab.systems.inoculation.config import ElicitConfig, ExperimentConfig, TrainConfig
from reasonlab.systems.inoculation.toy import CONTROL_TOKENS, ToyConfig, ToyRow, pearson, run_seed, summarize
from reasonlab.systems.inoculation.training import elicit, train

__all__ = ["DEMO_ASSET", "arm_texts", "quick", "run_experiment", "run_toy", "summarize_experiment", "toy_headline"]

# the quick demo's shipped pretrained toy models, one per seed (benchmarks/inoculation_toy_assets.py makes them)
DEMO_ASSET = Path(__file__).parent / "assets" / "toy_bases"


def arm_texts(base: TrainConfig) -> dict[str, str]:
    """Each arm's train-time text (empty for no-ip and ptst, which train with N)."""
    from reasonlab.systems.inoculation.settings import setting_prompts
    from reasonlab.systems.inoculation.training import arm_prompts

    prompts = arm_prompts(setting_prompts(base.data.setting), base.prompts)
    return {"no-ip": "", "ip": prompts.instruction, "irrelevant": prompts.control_text, "ptst": ""}


def run_experiment(config: ExperimentConfig, out: str | Path, name: str, judge: Any = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Elicitation on the untuned model, then each seed x arm (finished runs are reused), then the summary."""
    run = Run.create(out, name, config, resume=not overwrite, overwrite=overwrite)
    elicitation_path = run.dir / "elicitation.json"
    texts = arm_texts(config.base)
    if elicitation_path.exists():
        say(f"reusing the elicitation measured in {elicitation_path}")
        elicitation = json.loads(elicitation_path.read_text())
    else:
        say("measuring elicitation on the untuned model")
        candidates = [text for text in dict.fromkeys(texts.values()) if text]
        elicitation = elicit(ElicitConfig(llm=config.base.llm, data=config.base.data, candidates=candidates,
                                          generation=config.base.generation), judge=judge)
        atomic_write_json(elicitation_path, elicitation)
    run_dirs = []
    for seed in config.seeds:
        for arm in config.arms:
            arm_config = config.base.model_copy(update={"arm": arm, "seed": seed, "out": str(run.dir / "arms"),
                                                        "name": f"{arm}-s{seed}", "overwrite": False,
                                                        "report_to": config.report_to})
            arm_dir = run.dir / "arms" / arm_config.run_name
            if (arm_dir / "summary.json").exists():
                say(f"reusing the finished arm {arm_dir}")
            else:
                arm_config = arm_config.model_copy(update={"overwrite": True})  # a torn run starts over
                train(arm_config, judge=judge)
            run_dirs.append(arm_dir)
    summary = summarize_experiment(run_dirs, elicitation, texts)
    run.write_summary(summary)
    return summary


def metric_value(metric: dict[str, Any]) -> float | None:
    """The number of a stored metric: a Rate's rate, a robust accuracy, a mean over replies."""
    for key in ("rate", "robust_accuracy", "value", "mean"):
        if key in metric:
            return metric[key]
    return None


def _pooled(rates: list[dict[str, Any]]) -> dict[str, Any]:
    k = sum(rate["k"] for rate in rates)
    n = sum(rate["n"] for rate in rates)
    low, high = wilson_interval(k, n)
    return {"rate": k / n if n else None, "k": k, "n": n, "ci_low": low, "ci_high": high}


def _metric(summaries: list[dict[str, Any]], section: str, key: str) -> dict[str, Any]:
    rates = [s[section][key] for s in summaries if key in s.get(section, {})]
    values = [metric_value(rate) for rate in rates]
    row: dict[str, Any] = {"per_seed": values, "seeds": mean_spread(values)}
    if rates and all("k" in rate for rate in rates):
        row["pooled"] = _pooled(rates)
    return row


def summarize_experiment(run_dirs: list[Path], elicitation: list[dict[str, Any]],
                         texts: dict[str, str]) -> dict[str, Any]:
    """Per arm: the flaw and capability over seeds (mean, sd, min, max) and pooled (k/n with a Wilson
    interval), the flaw with I present; across arms: elicitation of the train-time text vs the flaw."""
    summaries = [json.loads((Path(d) / "summary.json").read_text()) for d in run_dirs]
    flaw, capability = summaries[0]["flaw"], summaries[0]["capability"]
    by_text = {row["instruction"]: row["elicitation"] for row in elicitation}
    arms: dict[str, Any] = {}
    for arm in dict.fromkeys(s["arm"] for s in summaries):
        group = [s for s in summaries if s["arm"] == arm]
        arms[arm] = {
            "seeds": [s["seed"] for s in group],
            "flaw": _metric(group, "test", flaw),
            "capability": _metric(group, "test", capability),
            "flaw_with_instruction": _metric(group, "with_instruction", flaw),
            "all": {key: _metric(group, "test", key) for key in group[0]["test"]},
            "elicitation": by_text.get(texts.get(arm, ""), 0.0),
        }
    trained = [arm for arm in arms if arm != "ptst" and arms[arm]["elicitation"] is not None
               and arms[arm]["flaw"]["seeds"]["mean"] is not None]
    xs = [arms[arm]["elicitation"] for arm in trained]
    ys = [arms[arm]["flaw"]["seeds"]["mean"] for arm in trained]
    return {
        "setting": summaries[0]["setting"], "flaw": flaw, "capability": capability, "arms": arms,
        "elicitation": elicitation,
        "heuristic": {"arms": trained, "elicitation": xs, "flaw": ys,
                      "pearson_r": _defined(pearson(xs, ys)) if len(xs) >= 2 else None},
    }


def run_toy(config: ToyConfig, out: str | Path, name: str, overwrite: bool = False,
            progress: bool = False, bases: Path | None = None) -> dict[str, Any]:
    """Every seed of the mechanism toy (a finished seed is reused from rows/), then the summary. With `bases`,
    seed s starts from the pretrained model in bases/seed{s} instead of pretraining it."""
    from reasonlab.train.tinylm import TinyLM

    run = Run.create(out, name, config, resume=not overwrite, overwrite=overwrite)
    rows: list[ToyRow] = []
    for seed in config.seeds:
        path = run.dir / "rows" / f"seed{seed}.json"
        if path.exists():
            say(f"reusing the finished seed {seed} from {path}")
            rows += [ToyRow(**row) for row in json.loads(path.read_text())]
            continue
        base = TinyLM.load(bases / f"seed{seed}") if bases is not None else None
        seed_rows = run_seed(config, seed, progress=progress, say=say, base=base)
        path.parent.mkdir(exist_ok=True)
        atomic_write_json(path, [row.as_dict() for row in seed_rows])
        rows += seed_rows
    summary = summarize(rows, config)
    run.write_summary(summary)
    _toy_plot(rows, run.plot_path("trait_vs_elicitation"))
    return summary


def _toy_plot(rows: list[ToyRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.6))
    tokened = [r for r in rows if r.elicitation is not None]
    axis.scatter([r.elicitation for r in tokened], [r.trait_rate for r in tokened], label="z_k (one per seed)")
    baseline = [r.trait_rate for r in rows if r.elicitation is None]
    if baseline:
        axis.axhline(sum(baseline) / len(baseline), color="grey", linestyle="--", label="no-IP (mean)")
    axis.set_xlabel("elicitation of z_k before fine-tuning")
    axis.set_ylabel("trait rate, tested without a token")
    axis.set_ylim(-0.05, 1.05)
    axis.legend(loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


@register_demo("inoculation", "Inoculation mechanism toy: the trait rate falls as the train-time token's elicitation "
               "rises, accuracy flat (tinylm, 3 shipped pretrained seeds)", minutes=2)
def quick(run_root: Path, fresh: bool) -> Path:
    """The mechanism toy from the shipped pretrained models: 6 fine-tuning conditions x 3 seeds, and a headline."""
    config, out = ToyConfig(), Path(run_root) / "inoculation"
    say("inoculation: starting from the pretrained toy models shipped in the package (made by "
        "benchmarks/inoculation_toy_assets.py: the run of record's pretraining, seeds 0-2)")
    summary = run_toy(config, out.parent, out.name, overwrite=fresh or not (out / "summary.json").exists(),
                      bases=DEMO_ASSET)
    write_headline(out, toy_headline(config, summary))
    return out


def _defined(value: float) -> float | None:
    """None for an undefined correlation (every arm at the same flaw rate, or the same elicitation)."""
    return None if math.isnan(value) else value


def _signed(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:+.2f}"


def toy_headline(config: ToyConfig, summary: dict[str, Any]) -> Headline:
    """The toy's claim: Pearson r between measured elicitation and the trait rate (<= -0.8), accuracy flat
    (range <= 5 points), with the per-value trait rates and the no-IP baseline."""
    r, spread = summary["pearson_r"], summary["accuracy_range"]
    n = summary["n_per_condition"]
    values = "; ".join(f"e={v['nominal']:.2f}: {v['trait_rate']['mean']:.2f} ± {v['trait_rate']['sd']:.2f}"
                       for v in summary["per_value"])
    no_ip = summary["no_ip"]["trait_rate"]
    return Headline(
        system="inoculation",
        measures=(f"Trait rate ('!!' after the answer, one sample per problem at T = 1) on {n} held-out additions "
                  f"with no control token, after fine-tuning on 100% trait data with z_k before every problem; "
                  f"z_k's elicitation measured before fine-tuning; {len(summary['seeds'])} seeds "
                  f"(mean ± sd over seeds)."),
        result=(f"Pearson r = {_signed(r)} over {summary['points']} points (values x seeds); trait rate by e_k: {values}; "
                f"no token in training (no-IP): {no_ip['mean']:.2f}; greedy accuracy range across values "
                f"{100 * spread:.1f} points"),
        paper=("Inoculation Prompting (arXiv 2510.05024), spec 4A: the more a train-time instruction already elicits "
               "the trait, the less the trait is learned for prompts without it; the bar is r <= -0.8 with accuracy "
               "within 5 points"),
        holds=r is not None and r <= -0.8 and spread <= 0.05,
        plot="plots/trait_vs_elicitation.png",
        note=(f"our claim: Pearson r <= -0.8 and accuracy within 5 points; {len(config.elicitations)} control "
              f"tokens ({CONTROL_TOKENS[: len(config.elicitations)]}), fine-tuning the last "
              f"{config.finetune_blocks or config.n_layer} block(s); the tinylm shows the gradient argument, not "
              "natural-language instruction following"),
    )
