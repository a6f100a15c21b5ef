"""What a Moloch experiment's rounds trained on: per condition, seed and round, the decided contests, the winners
cut at agent.max_tokens before their closing tag, the figures (digit groups) and words of cut and full winners, and
the fabrication rate of the full winners against their losers (the selection RFT sees when cut winners are left
out). Recomputes `round_stats` from the logged contests, so it also reads runs made before those stats were kept;
no model is loaded.

    .venv/bin/python benchmarks/moloch_cut_winners.py runs/moloch/wide-plain
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasonlab.runs import Run
from reasonlab.systems.moloch.arenas import TAGS
from reasonlab.systems.moloch.config import TrainConfig
from reasonlab.systems.moloch.rounds import load_contests
from reasonlab.systems.moloch.training import build_anchors, round_stats


def _mean(stats: dict, feature: str) -> str:
    value = stats.get(f"mean_{feature}")
    return "-" if value is None else f"{value:.2f}" if feature == "numbers" else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="an experiment folder (runs/moloch/NAME)")
    args = parser.parse_args()
    print("run | round | decided | cut | figures cut/full | words cut/full | fabrication full W/L")
    for run in sorted(p for p in args.experiment.iterdir() if (p / "config.yaml").is_file() and p.name[0] != "_"):
        config = TrainConfig.model_validate(Run(run).settings())
        anchors = build_anchors(config.data).train
        for k in range(1, config.rounds + 1):
            log = run / f"round{k}" / "contests.jsonl"
            if not log.is_file():
                continue
            s = round_stats(anchors, load_contests(log), closing=f"</{TAGS[config.data.arena]}>")
            cut, full = s["cut"]["winners"], s["full"]
            print(f"{run.name} | {k} | {s['decided']} | {s['cut_winners']} ({s['cut_winners'] / s['decided']:.0%}) | "
                  f"{_mean(cut, 'numbers')} / {_mean(full['winners'], 'numbers')} | "
                  f"{_mean(cut, 'length')} / {_mean(full['winners'], 'length')} | "
                  f"{full['winners']['fabrication']['rate']:.2f} / {full['losers']['fabrication']['rate']:.2f}")


if __name__ == "__main__":
    main()
