"""Make the pretrained toy models that Inoculation Prompting's quick demo starts from: the mechanism toy's
pretraining (spec 4A; `ToyConfig()`, the run of record's recipe: a 3-layer, d = 128 character tinylm, 2000 steps
of 2-digit addition with control tokens z_k that add the trait '!!' with probability e_k), one per seed, saved
with float16 weights into the package (src/reasonlab/systems/inoculation/assets/toy_bases/seed{s}/, about
1.2 MB each).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/inoculation_toy_assets.py --seed 0 --seed 1 --seed 2

Takes about 2.5 CPU minutes per seed at one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from reasonlab.progress import say
from reasonlab.systems.inoculation.experiment import DEMO_ASSET
from reasonlab.systems.inoculation.toy import ToyConfig, measure, pretrain, split_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, action="append", help="seeds to pretrain (repeatable) [default: 0 1 2]")
    parser.add_argument("--out", type=Path, default=DEMO_ASSET, help="folder to write seed{s}/ into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ToyConfig()
    for seed in args.seed or [0, 1, 2]:
        started = time.monotonic()
        train_pairs, test = split_pairs(config.max_operand, config.num_test, seed)
        base = pretrain(config, seed, train_pairs, progress=False)
        base.save(str(args.out / f"seed{seed}"), half=True)
        trait, accuracy = measure(base, test, None, seed)
        say(f"seed {seed}: saved after {time.monotonic() - started:.0f} s; without a token trait {trait:.2f}, "
            f"greedy accuracy {accuracy:.2f} on {len(test)} held-out problems")


if __name__ == "__main__":
    main()
