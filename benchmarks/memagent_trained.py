"""The trained memory agent against its baselines, one markdown table per task set (the RESULTS.md tables of
issue 24): each row is one arm of a finished `reasonlab memagent bench` run, named on the command line.

    .venv/bin/python benchmarks/memagent_trained.py \
        "base 270M=runs/memagent/base-mini:agent" "SFT=runs/memagent/trained-mini:agent" \
        "SFT+GSPO=runs/memagent/gspo-mini:agent" "MiniLM-RAG=runs/memagent/base-mini:rag" \
        "scripted correct=runs/memagent/base-mini:oracle"

Per row: overall score with its 95% Wilson interval, the score per category (k/n), the share of turns in the
format, the share of code runs that raised, turns per episode, tokens and seconds per task. Then the bar:
the row named SFT scores >= 0.5 and beats the row named MiniLM-RAG in every category but filters.
"""

from __future__ import annotations

import argparse
import platform

from reasonlab.errors import UserError
from reasonlab.stats import wilson_interval
from reasonlab.systems.memagent.experiment import CATEGORY_ORDER, arm_row, trained_bar


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def table(rows: dict[str, dict]) -> str:
    lines = ["| agent | all (95% CI) | " + " | ".join(CATEGORY_ORDER) + " | format-valid | tool errors | turns/ep | "
             "tokens/task | s/task |", "|---" * 10 + "|"]
    for label, row in rows.items():
        low, high = wilson_interval(row["correct"], row["n"])
        cats = " | ".join(f"{row['categories'][c]['correct']}/{row['categories'][c]['n']}" for c in CATEGORY_ORDER)
        lines.append(f"| {label} | **{row['correct'] / row['n']:.2f}** ({row['correct']}/{row['n']}, {low:.2f}-{high:.2f}) "
                     f"| {cats} | {_pct(row['format_valid_rate'])} | {_pct(row['tool_error_rate'])} | "
                     f"{row['turns_per_episode']:.1f} | {row['tokens_per_task']:,.0f} | {row['seconds_per_task']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="LABEL=RUN_DIR:ARM, in table order")
    args = parser.parse_args()
    rows = {}
    for item in args.rows:
        label, _, target = item.partition("=")
        run, _, arm = target.rpartition(":")
        if not label or not run or not arm:
            parser.error(f"{item!r} is not LABEL=RUN_DIR:ARM")
        try:
            rows[label] = arm_row(run, arm)
        except UserError as error:  # a run that is not a finished bench, or an arm it did not run
            parser.error(str(error))
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}")
    print(table(rows))
    if "SFT" in rows and "MiniLM-RAG" in rows:
        bar = trained_bar(rows)
        beats = ", ".join(f"{c} {'yes' if ok else 'no'}" for c, ok in bar["beats_baseline"].items())
        print(f"\nbar: SFT overall {bar['overall']:.2f} (>= 0.5: {bar['overall_holds']}); beats MiniLM-RAG: {beats}; "
              f"holds: {bar['holds']}")


if __name__ == "__main__":
    main()
