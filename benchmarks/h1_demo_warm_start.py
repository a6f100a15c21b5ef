"""Make the warm start that h1's quick demo starts from: the `values` preset's warm start (the run of record's
recipe: a 3-layer, d = 96 tinylm, 2500 fine-tuning steps on depth-1 and depth-2 value-line chains), saved with its
weights in float16 into the package (src/reasonlab/systems/h1/assets/values_warm_start/, about 0.7 MB).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/h1_demo_warm_start.py --seed 1

Prints the greedy accuracy per depth every 250 steps; takes about 5 CPU minutes at one thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from reasonlab.progress import eta, say
from reasonlab.runs import atomic_write_json
from reasonlab.systems.h1.config import EVAL_SEED, PRESETS
from reasonlab.systems.h1.evaluation import accuracy_by_depth
from reasonlab.systems.h1.experiment import DEMO_ASSET, save_half, warm_start, warm_start_record
from reasonlab.train.tinylm import TinyLM


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="the warm start's seed (the shipped one: 1)")
    parser.add_argument("--out", type=Path, default=DEMO_ASSET, help="folder to write the tinylm into")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = PRESETS["values"]
    checks = {d: config.chains(d, 64, EVAL_SEED + 999) for d in range(1, 9)}
    started = time.monotonic()

    def watch(step: int, policy: TinyLM) -> None:
        if step % 250 == 0:
            by_depth = accuracy_by_depth(policy, checks, config.max_tokens)
            say(f"warm start step {step}/{config.sft_steps}: greedy accuracy d1..d8 "
                f"{' '.join(f'{a:.2f}' for a in by_depth.values())} ({eta(step, config.sft_steps, started)})")

    policy, steps = warm_start(config, args.seed, watch)
    save_half(policy, args.out)
    atomic_write_json(args.out / "warm_start.json", warm_start_record(config, args.seed, steps))
    say(f"saved to {args.out} after {steps} steps in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
