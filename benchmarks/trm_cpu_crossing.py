"""Where TRM overtakes deep supervision alone at equal CPU time: each arm's validation curve against its training
seconds, read from a finished `reasonlab trm experiment` run made with a CPU budget (`--budget-s`).

    python benchmarks/trm_cpu_crossing.py runs/trm-nine16-deep-1k-time2500 --at 500 1000 1500 2000 2500

A run given a budget of t seconds tests the checkpoint that validated best within those t seconds, so each arm
is read as its best validation accuracy reached by t ("best so far"). The crossing of a seed is the first
validation time of the TRM arm from which TRM's best-so-far stays above deep supervision's at every later
evaluation of either arm (none if it never does). Validation is the recipe's `val_size` puzzles (200 in the
presets), so the table reads to a few points; the test split at the budget's end is the measure of record.
Prints a markdown table and one JSON line per seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reasonlab.systems.trm.experiment import best_within, crossing_seconds

Curve = list[list[float]]

def read_curves(run: Path) -> dict[str, dict[str, Curve]]:
    """{arm: {seed: [[seconds, validation accuracy], ...]}} from the experiment's summary.json."""
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        sys.exit(f"{summary_path} not found: give the folder of a finished `reasonlab trm experiment` run")
    try:
        per_seed = json.loads(summary_path.read_text())["per_seed"]
    except (ValueError, KeyError, TypeError):
        sys.exit(f"{summary_path} is not an experiment's summary (no per_seed): give a `reasonlab trm experiment` run")
    curves = {arm: {seed: record.get("val_exact_by_train_seconds") or [] for seed, record in seeds.items()}
              for arm, seeds in per_seed.items()}
    if not any(curves.get("trm", {}).values()):
        sys.exit(f"{summary_path} has no validation curves against seconds: rerun the same `reasonlab trm "
                 "experiment` command with --resume (finished arms are reused) to write them")
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished `reasonlab trm experiment` run folder")
    parser.add_argument("--at", nargs="+", type=float, default=[500, 1000, 1500, 2000, 2500],
                        help="training seconds at which to read both arms")
    args = parser.parse_args()
    curves = read_curves(args.run)
    trm, deep = curves["trm"], curves.get("deep_supervision", {})
    header = " | ".join(f"{at:g} s" for at in args.at)
    print(f"| seed | arm | {header} | crossing (s) |")
    print("|---" * (len(args.at) + 3) + "|")
    for seed in sorted(trm, key=int):
        if seed not in deep:
            continue
        cross = crossing_seconds(trm[seed], deep[seed])
        rows = {"trm": trm[seed], "deep_supervision": deep[seed]}
        for arm, curve in rows.items():
            cells = " | ".join(_cell(best_within(curve, at)) for at in args.at)
            last = f"{cross:.0f}" if cross is not None and arm == "trm" else ("never" if arm == "trm" else "")
            print(f"| {seed} | {arm} | {cells} | {last} |")
        record = {"seed": int(seed), "crossing_seconds": cross,
                  **{f"{arm}_best_by": {f"{at:g}": best_within(curve, at) for at in args.at}
                     for arm, curve in rows.items()}}
        print(json.dumps(record))


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
