"""Per-seed tables of a `reasonlab delethink experiment` run, in Markdown (the tables of benchmarks/RESULTS.md).

    .venv/bin/python benchmarks/delethink_tables.py runs/delethink-record-t1 runs/delethink-record-t2

For each run: its threads and SFT base (steps, check accuracy, within/beyond-budget accuracy under both
inference modes), each RL model under each inference mode per seed, and the paired comparisons per seed: the
paper's (each model with its own inference), the RL effect with the inference held fixed, and the inference
effect with the weights held fixed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROWS = {
    "delethink-rl/delethink": "Delethink-RL / Delethink",
    "longcot-rl/longcot": "LongCoT-RL / LongCoT",
    "longcot-rl/delethink": "LongCoT-RL / Delethink",
    "delethink-rl/longcot": "Delethink-RL / LongCoT",
}
COMPARISON_ROWS = {
    "method_vs_baseline": "Delethink-RL/Delethink − LongCoT-RL/LongCoT (the paper's)",
    "rl_effect_delethink_inference": "RL effect, Delethink inference held fixed",
    "rl_effect_longcot_inference": "RL effect, LongCoT inference held fixed",
    "inference_effect_longcot_rl": "inference effect, LongCoT-RL weights",
    "inference_effect_delethink_rl": "inference effect, Delethink-RL weights",
}


def _values(cell: dict[str, Any], scale: float = 1.0, digits: int = 3, sign: str = "") -> str:
    per_seed = ", ".join(f"{v * scale:{sign}.{digits}f}" for v in cell["per_seed"])
    return f"{per_seed} (mean {cell['mean'] * scale:{sign}.{digits}f})" if cell["n"] > 1 else per_seed


def tables(summary: dict[str, Any], name: str) -> str:
    seeds = ", ".join(map(str, summary["seeds"]))
    base = summary.get("sft_base", {})
    lines = [f"**{name}** (threads {summary.get('threads', '?')}; seeds {seeds}; SFT base: {base.get('steps', '?')} "
             f"steps, greedy check accuracy {base.get('check_accuracy', float('nan')):.3f}, target reached: "
             f"{base.get('reached_target', '?')})", "",
             "| model / inference | within the budget (T ≤ 40), per seed | beyond it (T ≥ 48), per seed |",
             "|---|---|---|"]
    models = summary["models"]
    for mode, label in (("longcot", "SFT base / LongCoT"), ("delethink", "SFT base / Delethink")):
        if f"sft/{mode}" in models:
            row = models[f"sft/{mode}"]
            lines.append(f"| {label} | {_values(row['within_budget'])} | {_values(row['beyond_budget'])} |")
    for key, label in ROWS.items():
        if key in models:
            row = models[key]
            lines.append(f"| {label} | {_values(row['within_budget'])} | {_values(row['beyond_budget'])} |")
    lines += ["", "| comparison (a − b), points per seed | within | beyond |", "|---|---|---|"]
    for key, label in COMPARISON_ROWS.items():
        if key in summary["comparisons"]:
            row = summary["comparisons"][key]
            lines.append(f"| {label} | {_values(row['within_budget'], 100, 1, '+')} | "
                         f"{_values(row['beyond_budget'], 100, 1, '+')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="experiment run directories")
    args = parser.parse_args()
    for run in args.runs:
        summary = json.loads((run / "summary.json").read_text())
        print(tables(summary, run.name), end="\n\n")


if __name__ == "__main__":
    main()
