"""The TRM quick demo's spread over training seeds: the `quick` preset once per seed, each seed its own
experiment run, and the demo's headline line for each (benchmarks/RESULTS.md, TRM, "The quick demo").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/trm_demo_seeds.py --seeds 1 2 --out runs

Seed k runs into OUT/trm-quick-seed<k>, the folder of `reasonlab trm experiment --preset quick --seed k --out
runs/trm-quick-seed<k>`: a finished seed is reused (the experiment's `resume`), so the sweep continues those runs.
Seed 0 is the demo itself (`reasonlab demo --only trm`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasonlab.systems.trm.config import PRESETS
from reasonlab.systems.trm.experiment import demo_headline, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs"))
    args = parser.parse_args()
    lines = []
    for seed in args.seeds:
        config = PRESETS["quick"].model_copy(update={"seeds": [seed]})
        summary = run_experiment(config, args.out / f"trm-quick-seed{seed}", resume=True)
        headline = demo_headline(config, summary)
        lines.append(f"seed {seed}: {'holds' if headline.holds else 'does not hold'}: {headline.result}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
