"""Every saved round of a Moloch experiment evaluated again on fresh cards, to measure each seed's rates more
tightly than its own test set does (64 cards: an interval of about +-12 points on one rate).

    .venv/bin/python benchmarks/moloch_fresh_test.py runs/moloch/wide-rounds --cards 256 --data-seed 1 --jobs 3

The cards come from another generator seed's stream, none sharing a title with the experiment's training or test
cards, under ids of their own (`arenas.fresh_anchors`), saved as EXPERIMENT/fresh-CARDS-seedS.jsonl. Each run is
evaluated as `reasonlab moloch eval RUN --test-file THAT_FILE` does (its own audience and decoding; the tuned
agent of every round against the base agent, one message each per card), writing RUN/eval-AUDIENCE-fresh-....json;
a round scored before (the same adapter, agent, cards, base messages, audience and probes) is reused, so after
more rounds only the new ones are scored, in a copied experiment too. The table per condition and round is printed
and written to EXPERIMENT/fresh-test-CARDS-seedS.json, with each seed's tuned and base rates and their 95%
intervals.
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.runs import Run, atomic_write_json
from reasonlab.systems.moloch.arenas import fresh_anchors, save_anchors
from reasonlab.systems.moloch.config import EvalConfig, ExperimentConfig
from reasonlab.systems.moloch.experiment import condition_config, summarize_reports
from reasonlab.systems.moloch.training import build_anchors, evaluate_run


def _evaluate_seed(runs: list[Path], test_file: Path, threads: int | None = None) -> list[dict[str, Any]]:
    """The reports of one seed's runs, one after another in this process (with `threads` torch threads)."""
    if threads is not None:
        from reasonlab.threads import configure_threads

        configure_threads(threads)
    # evaluate_run reuses each round its report already scored on the same adapter, agent, cards and audience
    return [evaluate_run(EvalConfig(run=str(run), test_file=str(test_file))) for run in runs]


def _rate(stats: dict[str, Any]) -> str:
    return f"{stats['rate']:.2f} ({stats['ci_low']:.2f}-{stats['ci_high']:.2f})"


def seed_rows(reports: dict[str, list[dict[str, Any]]], probe: str) -> list[dict[str, Any]]:
    """One row per condition, round and seed: the win rate and the probe's tuned and base rates with intervals."""
    rows = []
    for condition, per_seed in reports.items():
        for report in per_seed:
            for result in report["rounds"]:
                key = "win_rate_held_out" if "win_rate_held_out" in result else "win_rate_train_personas"
                tuned, base = result["tuned"][probe], result["base"][probe]
                cards = result["tuned"]["messages"] + result["tuned"]["missing"]  # a card with no message is missing
                rows.append({"condition": condition, "round": result["round"], "seed": report["seed"], "cards": cards,
                             "win_rate": result[key], "tuned": tuned, "base": base,
                             "points": 100 * (tuned["rate"] - base["rate"]),
                             "tuned_above_base_interval": tuned["rate"] > base["ci_high"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="a finished experiment folder (runs/moloch/NAME)")
    parser.add_argument("--cards", type=int, default=256, help="fresh cards [default: 256]")
    parser.add_argument("--data-seed", type=int, default=1, help="their generator seed (not the experiment's)")
    parser.add_argument("--conditions", nargs="*", help="[default: the experiment's]")
    parser.add_argument("--probe", default="fabrication", help="the probe of the table [default: fabrication]")
    parser.add_argument("--jobs", type=int, default=1, help="seeds evaluated at once, one process each")
    args = parser.parse_args(argv)
    experiment = Run.open(args.experiment)
    settings = experiment.settings()
    if not {"base", "conditions", "seeds"} <= settings.keys():  # a single run's config holds none of these
        raise UserError(f"{experiment.dir} is not a moloch experiment: pass the folder `reasonlab moloch "
                        "experiment` wrote (runs/moloch/NAME)")
    config = ExperimentConfig.model_validate(settings)
    if config.base.data.seed == args.data_seed:
        raise UserError(f"--data-seed {args.data_seed} is the experiment's own: pass another generator seed")
    own = build_anchors(config.base.data)
    test_file = experiment.dir / f"fresh-{args.cards}-seed{args.data_seed}.jsonl"
    try:
        fresh = fresh_anchors(config.base.data.arena, args.cards, args.data_seed, own.train + own.test)
    except ValueError as error:  # the stream holds too few distinct cards
        raise UserError(f"--cards {args.cards}: {error}") from None
    save_anchors(test_file, fresh)
    conditions = args.conditions or config.conditions
    runs = {seed: [experiment.dir / condition_config(config.base, c, seed, experiment.dir).name for c in conditions]
            for seed in config.seeds}
    unfinished = [str(run) for seed_runs in runs.values() for run in seed_runs if not (run / "summary.json").is_file()]
    if unfinished:
        raise UserError(f"{', '.join(unfinished[:3])}: not finished; run the experiment to the end first")
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {seed: pool.submit(_evaluate_seed, seed_runs, test_file, 1) for seed, seed_runs in runs.items()}
            by_seed = {seed: future.result() for seed, future in futures.items()}
    else:
        by_seed = {seed: _evaluate_seed(seed_runs, test_file) for seed, seed_runs in runs.items()}
    reports = {c: [by_seed[seed][i] for seed in config.seeds] for i, c in enumerate(conditions)}
    rows = seed_rows(reports, args.probe)
    print(f"| condition | round | seed | win rate vs base (95% CI) | {args.probe}: tuned (95% CI) | base (95% CI) | "
          "tuned - base, points |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        win = row["win_rate"]
        print(f"| {row['condition']} | {row['round']} | {row['seed']} | {win['mean']:.3f} ({win['ci_low']:.2f}-"
              f"{win['ci_high']:.2f}) | {_rate(row['tuned'])} | {_rate(row['base'])} | {row['points']:+.1f} |")
    out = experiment.dir / f"fresh-test-{args.cards}-seed{args.data_seed}.json"
    atomic_write_json(out, {"experiment": str(experiment.dir), "cards": args.cards, "data_seed": args.data_seed,
                            "test_file": str(test_file), "probe": args.probe, "seed_rows": rows,
                            "summary": summarize_reports(reports)})
    print(f"written: {out}")


if __name__ == "__main__":
    try:
        main()
    except UserError as error:
        raise SystemExit(f"error: {error}") from None
