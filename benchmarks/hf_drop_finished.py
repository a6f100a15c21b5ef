"""What dropping finished rows from a decoding batch saves (`HFPolicy.drop_finished`), against keeping every row to
the end (the reference path), side by side in one process, rounds interleaved.

The workload is Moloch's `wide` decoding: the embedded Gemma-3-270M writing two pitches for each of 16 product cards
in bf16 (T = 1.0, at most 64 new tokens, stopping at the closing tag), as the base agent (`--lora` adds an r8
adapter with a nonzero B, as after a round of training). Pitches end anywhere from about 20 tokens to the 64-token
cap, so a batch that keeps every row to the end decodes pad tokens for most of its rows for most of its steps.
Reports seconds per round, the tokens written, and whether both arms wrote the same tokens.

    .venv/bin/python benchmarks/hf_drop_finished.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch


def _decode(policy: Any, anchors: list, shots: Any, params: Any, drop: bool) -> tuple[float, list[str | None]]:
    from reasonlab.systems.moloch.rounds import sample_messages

    policy.drop_finished = drop
    started = time.perf_counter()
    messages = sample_messages(policy, anchors, params, 0, 2, len(anchors), False, True, None, shots)
    return time.perf_counter() - started, [m for pair in messages for m in pair]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per arm")
    parser.add_argument("--cards", type=int, default=16, help="product cards per round (2 pitches each)")
    parser.add_argument("--lora", action="store_true", help="decode with a LoRA adapter (r8, nonzero B)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from hf_shared_prefix import add_trained_lora, wide_workload  # beside this script

    policy, anchors, shots, params = wide_workload(args.cards)
    if args.lora:
        add_trained_lora(policy)
    _decode(policy, anchors[:2], shots, params, True)  # warm-up
    seconds: dict[str, list[float]] = {"every row to the end": [], "finished rows dropped": []}
    texts: dict[str, list[str | None]] = {}
    for _ in range(args.repeats):
        for name, drop in (("every row to the end", False), ("finished rows dropped", True)):
            elapsed, texts[name] = _decode(policy, anchors, shots, params, drop)
            seconds[name].append(elapsed)
    tokens = [len(policy.tokenize(t, add_special_tokens=False)) for t in texts["finished rows dropped"] if t]
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), "
                   f"torch {torch.__version__}",
        "pitches": 2 * len(anchors), "lora": args.lora,
        "pitch_tokens": {"mean": statistics.mean(tokens), "min": min(tokens), "max": max(tokens)},
        "seconds": {k: statistics.median(v) for k, v in seconds.items()},
        "speedup": statistics.median(seconds["every row to the end"]) / statistics.median(seconds["finished rows dropped"]),
        "same_texts": texts["every row to the end"] == texts["finished rows dropped"],
        "rounds": seconds,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
