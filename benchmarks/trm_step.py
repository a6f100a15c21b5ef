"""Training throughput (samples/s) of TRM-MLP, TRM-Att and HRM: one optimizer step = one supervision step.

    python benchmarks/trm_step.py                      # CPU: a laptop-size config and the paper-size models
    python benchmarks/trm_step.py --device cuda --sizes paper --batch-paper 768 --bf16   # a GPU

Shapes are Sudoku-Extreme's (L = 81 cells, V = 11). "paper" = D 512, 8 heads, TRM T=3 n=6 (P=16);
HRM 4+4 layers, T=2 n=2 (P=1). "cpu" = the same recursion at D 128, 4 heads. Each measurement runs a
warm-up step, then times `--steps` full steps (forward of all recursions, stablemax + halting loss,
backward through the last cycle, AdamATan2, EMA). Prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

import torch

from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.optim import EMA, AdamATan2
from reasonlab.systems.trm.supervision import SupervisionConfig, initial_carry, supervision_step

VARIANTS = {
    "trm-mlp": {"arch": "trm", "mixer": "mlp", "T": 3, "n": 6, "prefix_len": 16},
    "trm-att": {"arch": "trm", "mixer": "attention", "T": 3, "n": 6, "prefix_len": 16},
    "hrm": {"arch": "hrm", "mixer": "attention", "T": 2, "n": 2, "num_layers": 4, "prefix_len": 1},
}
SIZES = {"paper": {"hidden_size": 512, "num_heads": 8}, "cpu": {"hidden_size": 128, "num_heads": 4}}


def measure(variant: str, size: str, batch: int, steps: int, device: str, bf16: bool) -> dict:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=11, seq_len=81, **SIZES[size], **VARIANTS[variant])
    model = RecursiveReasoner(config).to(device)
    optimizer = AdamATan2(model.parameters(), lr=1e-4, weight_decay=1.0)
    ema = EMA(model, 0.999)
    supervision = SupervisionConfig(n_sup=16, act_continue=False)
    inputs = torch.randint(1, 11, (batch, 81), device=device)
    labels = torch.randint(2, 11, (batch, 81), device=device)
    ids = torch.zeros(batch, dtype=torch.long, device=device)
    carry = initial_carry(model, inputs, labels, ids)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 and device == "cuda" else contextlib.nullcontext()

    def step() -> None:
        nonlocal carry
        with autocast:
            carry, loss, _ = supervision_step(model, carry, inputs, labels, ids, supervision)
        optimizer.zero_grad(set_to_none=True)
        (loss.total / batch).backward()
        optimizer.step()
        ema.update(model)

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "model": variant, "size": size, "parameters": model.num_parameters(), "batch": batch, "steps": steps,
        "seconds": round(seconds, 3), "samples_per_second": round(batch * steps / seconds, 2),
        "device": device, "threads": torch.get_num_threads(), "bf16": bf16 and device == "cuda",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=["cpu", "paper"], choices=list(SIZES))
    parser.add_argument("--models", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch-cpu", type=int, default=16, help="batch of the 'cpu' size")
    parser.add_argument("--batch-paper", type=int, default=2, help="batch of the 'paper' size")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                      "cuda": torch.cuda.get_device_name() if args.device == "cuda" else None}))
    for size in args.sizes:
        batch = args.batch_cpu if size == "cpu" else args.batch_paper
        for variant in args.models:
            print(json.dumps(measure(variant, size, batch, args.steps, args.device, args.bf16)), flush=True)


if __name__ == "__main__":
    main()
