"""h1's quick demo with other seeds or settings: the curriculum and direct arms of the `demo` preset (with JSON
overrides) from the shipped warm start, into a run directory, printing the demo's headline.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/h1_demo_probe.py runs/h1-demo-seed2 --seed 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/h1_demo_probe.py runs/h1-demo-h8 --seed 2 \\
        --set '{"max_depth": 8, "steps_per_stage": 40}'

About 60 CPU-s per seed at H = 10 (RESULTS.md, h1, "The quick demo").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reasonlab.systems.h1.config import PRESETS, ExperimentConfig
from reasonlab.systems.h1.experiment import DEMO_ASSET, demo_headline, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the run directory (overwritten)")
    parser.add_argument("--seed", type=int, action="append", help="RL seeds (repeatable; default 0)")
    parser.add_argument("--set", default="{}", help="JSON object of ExperimentConfig fields over the demo preset")
    args = parser.parse_args()
    config = ExperimentConfig.model_validate({**PRESETS["demo"].model_dump(), **json.loads(args.set)})
    results = run_experiment(config, args.out, tuple(args.seed or [0]), overwrite=True,
                             arms=("curriculum", "direct"), warm=DEMO_ASSET)
    headline = demo_headline(config, results)
    print(headline.result)
    print(f"holds: {headline.holds}")


if __name__ == "__main__":
    main()
