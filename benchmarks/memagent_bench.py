"""The RESULTS.md tables of a finished mem-agent benchmark run: per-category scores, format statistics and cost
of each arm (per seed), then the agreement of the judges with the 54 hand labels.

    reasonlab memagent bench --preset mini --out runs/memagent                 # makes runs/memagent/memagent-mini
    .venv/bin/python benchmarks/memagent_bench.py runs/memagent/memagent-mini   # prints the tables
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from reasonlab.runs import Run

COLUMNS = ("retrieval", "update", "clarification", "filter")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def table(summary: dict) -> str:
    """The markdown rows RESULTS.md quotes: one per arm and seed, then the judges' agreement."""
    lines = ["| seed | arm | " + " | ".join(COLUMNS) + " | all | format-valid | ast.parse | tool errors | turns/ep | "
             "prompt+completion tokens | s/task |", "|---" * 12 + "|"]
    for seed, reports in summary["per_seed"].items():
        for arm, s in reports.items():
            scores = " | ".join(f"{s['categories'][c]['score']:.2f}" for c in COLUMNS)
            lines.append(f"| {seed} | {arm} | {scores} | **{s['score']:.2f}** | {_pct(s['format_valid_rate'])} | "
                         f"{_pct(s['ast_parse_rate'])} | {_pct(s['tool_error_rate'])} | "
                         f"{s['turns_per_episode']:.1f} | {s['prompt_tokens']:,} + {s['completion_tokens']:,} | "
                         f"{s['seconds_per_task']:.1f} |")
    lines += ["", "| judge | agreement | Cohen's kappa | judge failures | " + " | ".join(COLUMNS) + " |",
              "|---" * 8 + "|"]
    for judge, a in summary["judge_agreement"].items():
        per = " | ".join(f"{a['per_category'][c]:.2f}" for c in COLUMNS)
        lines.append(f"| {judge} | {a['accuracy']:.2f} | {a['kappa']:.2f} | {a['judge_failures']} | {per} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished `reasonlab memagent bench` run directory")
    args = parser.parse_args()
    summary = Run.open(args.run).summary()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}; llm {summary['llm']}")
    print(table(summary))
    print("reward table:", json.dumps(summary["reward_table"]))


if __name__ == "__main__":
    main()
