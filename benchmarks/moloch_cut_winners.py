"""What a Moloch experiment's rounds trained on: per condition, seed and round, the decided contests, the winners
cut at agent.max_tokens before their closing tag, the figures and words of cut and full winners, and the
fabrication rate of the full winners against their losers (the selection that RFT sees when cut winners are left
out). Reads the logged contests only; no model is loaded.

    .venv/bin/python benchmarks/moloch_cut_winners.py runs/moloch/wide-plain
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from reasonlab.runs import read_records
from reasonlab.systems.moloch.arenas import TAGS
from reasonlab.systems.moloch.config import TrainConfig
from reasonlab.systems.moloch.probes import fabrication, number_mentions
from reasonlab.systems.moloch.training import build_anchors


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def round_row(contests: list[dict], anchors: dict, closing: str) -> dict[str, float]:
    decided = [c for c in contests if c["winner"] is not None]
    cut = [c for c in decided if closing not in c["completions"][c["winner"]]]
    full = [c for c in decided if closing in c["completions"][c["winner"]]]

    def fabricates(c: dict, side: int) -> float:
        return float(fabrication(anchors[c["anchor_id"]], c["messages"][side]).flagged)

    return {
        "decided": len(decided), "cut": len(cut),
        "figures_cut": _mean([len(number_mentions(c["messages"][c["winner"]])) for c in cut]),
        "figures_full": _mean([len(number_mentions(c["messages"][c["winner"]])) for c in full]),
        "words_cut": _mean([len(c["messages"][c["winner"]].split()) for c in cut]),
        "words_full": _mean([len(c["messages"][c["winner"]].split()) for c in full]),
        "fab_full_winners": _mean([fabricates(c, c["winner"]) for c in full]),
        "fab_their_losers": _mean([fabricates(c, 1 - c["winner"]) for c in full]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path, help="an experiment folder (runs/moloch/NAME)")
    args = parser.parse_args()
    header = ("run", "round", "decided", "cut", "figures cut/full", "words cut/full", "fab full W/L")
    print(" | ".join(header))
    for run in sorted(p for p in args.experiment.iterdir() if (p / "config.yaml").is_file() and p.name[0] != "_"):
        saved = yaml.safe_load((run / "config.yaml").read_text())
        config = TrainConfig.model_validate({k: v for k, v in saved.items() if not k.startswith("_")})
        anchors = {a.anchor_id: a for a in build_anchors(config.data).train}
        closing = f"</{TAGS[config.data.arena]}>"
        for k in range(1, config.rounds + 1):
            log = run / f"round{k}" / "contests.jsonl"
            if not log.is_file():
                continue
            r = round_row(read_records(log), anchors, closing)
            print(f"{run.name} | {k} | {r['decided']} | {r['cut']} ({r['cut'] / r['decided']:.0%}) | "
                  f"{r['figures_cut']:.2f} / {r['figures_full']:.2f} | {r['words_cut']:.1f} / {r['words_full']:.1f} | "
                  f"{r['fab_full_winners']:.2f} / {r['fab_their_losers']:.2f}")


if __name__ == "__main__":
    main()
