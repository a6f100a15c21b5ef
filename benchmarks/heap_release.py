"""What giving freed memory back to the system costs in a CPU fine-tuning loop, and what it saves in resident memory.

`reasonlab.heap.release_memory` (glibc's `malloc_trim`) after every SFT step bounds a process by what its step holds
live; the pages it returns must be faulted in again by the next step. This runs the same LoRA fine-tuning of the
embedded Gemma-3-270M (Moloch's `wide` step: 8 of its prompts with a pitch each, one pass of 8, bf16 autocast) in a
fresh process per arm, arms interleaved over the repeats:

- `every step`: `release_memory()` after each optimizer step (what `reasonlab.train.sft` did before);
- `end only`: once, after the last step;
- `never`;
- with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`, which lets glibc ask for transparent huge pages (one fault per 2 MB
  instead of per 4 KB) where the kernel grants them on request (`madvise`);
- with the head's log-softmax a block of the vocabulary at a time (`HFPolicy.head_blocks`, `reasonlab.llm.head`),
  whose allocations stay under glibc's mmap threshold, against the whole (tokens x vocabulary) logits.

Default arms: release every step or at the end, each with and without head blocks; `--arms` picks others.

For each arm: seconds per step, user and system CPU seconds, minor page faults per step (the fine-tuning only, not
the model's loading) and the process's peak resident memory.

    .venv/bin/python benchmarks/heap_release.py --steps 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

ARMS = {"every step": ("step", False, False), "end only": ("end", False, False), "never": ("never", False, False),
        "every step + huge pages": ("step", True, False), "end only + huge pages": ("end", True, False),
        "every step + head blocks": ("step", False, True), "end only + head blocks": ("end", False, True)}
DEFAULT_ARMS = ["every step", "end only", "every step + head blocks", "end only + head blocks"]
HUGE_PAGES = "glibc.malloc.hugetlb=1"


def _child(release: str, blocks: bool, steps: int, words: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    import reasonlab.train.sft as sft
    from reasonlab.heap import release_memory
    from reasonlab.systems.moloch.config import PRESETS
    from reasonlab.systems.moloch.rounds import agent_prompts
    from reasonlab.systems.moloch.training import build_anchors, load_agent, prompt_examples, set_decoding

    preset = PRESETS["wide"]
    anchors = build_anchors(preset.data).train[:16]
    policy = set_decoding(load_agent("hf:embedded"), preset.agent)
    policy.head_blocks = blocks
    prompts = agent_prompts(anchors, False, True, prompt_examples(preset.data, preset.agent))
    # a pitch of about the length the `wide` run's agents write after a round (25-35 words, 3 figures)
    pitch = " ".join(["Meet the lightest kettle yet: 1.2 kg, 2 years of warranty, boils in 90 s, great value."]
                     * max(1, words // 16)) + "</sales_pitch>"
    examples = [sft.Example(prompt=prompts[a.anchor_id], completion=pitch) for a in anchors]
    config = preset.sft.model_copy(update={"max_steps": steps, "progress": False})
    if release != "step":
        sft.release_memory = lambda: True  # type: ignore[assignment]
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    sft.train(config, policy, examples)
    if release == "end":
        release_memory()
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status") as status:
        rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {"seconds_per_step": seconds / steps, "user_seconds": after.ru_utime - before.ru_utime,
            "system_seconds": after.ru_stime - before.ru_stime,
            "minor_faults_per_step": (after.ru_minflt - before.ru_minflt) / steps,
            "peak_rss_gb": after.ru_maxrss / 2**20, "rss_after_gb": rss / 2**20}


def _run_arm(release: str, huge: bool, blocks: bool, steps: int, words: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("GLIBC_TUNABLES", None)
    if huge:
        env["GLIBC_TUNABLES"] = HUGE_PAGES
    out = subprocess.run([sys.executable, __file__, "--child", release, *(["--blocks"] if blocks else []), "--steps", str(steps), "--words", str(words)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per arm")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved processes per arm")
    parser.add_argument("--words", type=int, default=32, help="words per training pitch")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated arms, of {list(ARMS)}")
    parser.add_argument("--blocks", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(_child(args.child, args.blocks, args.steps, args.words)))
        return
    arms = [name.strip() for name in args.arms.split(",")]
    unknown = [name for name in arms if name not in ARMS]
    if unknown:
        raise SystemExit(f"--arms: unknown arm(s) {unknown}; choose from {list(ARMS)}")
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name in arms:
            rounds[name].append(_run_arm(*ARMS[name], args.steps, args.words))
            print(name, json.dumps(rounds[name][-1]), file=sys.stderr, flush=True)
    medians = {name: {key: statistics.median(r[key] for r in results) for key in results[0]}
               for name, results in rounds.items()}
    reference = medians[arms[0]]["seconds_per_step"]
    report = {"machine": f"{platform.processor() or platform.machine()}, 1 thread, {os.cpu_count()} cores",
              "steps": args.steps, "words": args.words, "medians": medians,
              "speedup_vs_first_arm": {name: reference / m["seconds_per_step"] for name, m in medians.items()},
              "rounds": rounds}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
