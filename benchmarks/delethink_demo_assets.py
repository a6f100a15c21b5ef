"""Make the Delethink demo's shipped models: the two RL models of one seed of a finished experiment run, in float16,
with a provenance file, into src/reasonlab/systems/delethink/assets/.

    .venv/bin/python benchmarks/delethink_demo_assets.py --from runs/delethink-record-t1 --seed 0

The experiment run is `reasonlab delethink experiment --preset main --out runs/delethink-record-t1` (the run of
record). `reasonlab demo --only delethink` traces these models with both inference modes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from reasonlab.systems.delethink.demo import ASSETS, export_assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", required=True, help="a finished `delethink experiment` run")
    parser.add_argument("--seed", type=int, default=0, help="the RL seed whose two models to ship")
    parser.add_argument("--dest", type=Path, default=ASSETS, help="assets folder [default: the package's]")
    args = parser.parse_args()
    provenance = export_assets(args.source, args.seed, args.dest)
    size = sum(path.stat().st_size for path in args.dest.rglob("*") if path.is_file())
    print(json.dumps(provenance, indent=2))
    print(f"wrote {args.dest} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
