"""Training throughput (samples/s) of TRM-MLP, TRM-Att and HRM: one optimizer step = one supervision step.

    python benchmarks/trm_step.py --threads 1          # CPU: a laptop-size config and the paper-size models
    python benchmarks/trm_step.py --device cuda --sizes paper --batch-paper 768 --bf16   # a GPU
    # ours beside the official model code, interleaved in one process (PATH: a checkout of
    # SamsungSAILMontreal/TinyRecursiveModels, e.g. `git clone ... ../TinyRecursiveModels`)
    python benchmarks/trm_step.py --official PATH --models trm-mlp trm-att --sizes cpu paper --threads 1
    python benchmarks/trm_step.py --official PATH --device cuda --bf16 --compile --batch 768

Shapes are Sudoku-Extreme's (L = 81 cells, V = 11). "paper" = D 512, 8 heads, TRM T=3 n=6 (P=16);
HRM 4+4 layers, T=2 n=2 (P=1). "cpu" = the same recursion at D 128, 4 heads. One step is the full
recursion, stablemax + halting loss, backward through the last cycle, AdamATan2, sign-SGD on the puzzle
embedding and EMA. Arms: `ours` (the fast path training uses), `ours-reference` (with `--reference`:
`RecursiveReasoner(fast=False)`, the plain loop and layers), `ours-chunkK` (with `--chunks K ...`: the fast path
running K samples at a time instead of its own choice) and `official` (with `--official PATH`, TRM only).
`--profile` also prints each arm's top ops of one step (torch.profiler) to stderr. `--gemm` (CPU) records the
matrix multiplies (aten::mm and addmm) of one extra step of each arm (torch.profiler with shapes), times each
distinct shape alone under torch's BLAS (MKL on x86 builds) and under oneDNN (`torch.ops.mkldnn._linear_pointwise`),
the two in turn, with contiguous operands, and prints one JSON line per arm: the step's GEMM seconds under each
library and their share of the measured step. Timed alone, a multiply runs faster than inside the step (warm
cache, no transposed operands), so read the two libraries' ratio, not the seconds, as the finding.
Every arm gets the same seed, batch, threads and device; after `--warmup` steps per arm, `--repeats`
rounds run `--steps` steps of each arm in turn (A B A B ...), so a load change on a shared machine hits all
arms alike. Reported: the median seconds per step over the rounds and batch / that median; the peak memory
of one step (CUDA: max allocated above what was allocated before the step; CPU: growth of the peak RSS,
Linux VmHWM reset through /proc/self/clear_refs after a malloc_trim, an approximation). One JSON line per
model and arm.

The official arm imports `models/recursive_reasoning/trm.py` and `models/losses.py` from PATH at run time
(nothing of it is copied here) and builds its config from ours: H_cycles=T, L_cycles=n, L_layers=2,
hidden_size, num_heads, expansion 4, pos_encodings rope (TRM-Att) or none with mlp_t (TRM-MLP),
puzzle_emb_ndim=D with puzzle_emb_len=16, halt_max_steps=16, halt_exploration_prob=0.1, no_ACT_continue,
forward_dtype float32 (bfloat16 with --bf16, their config's default: their weights cast per call, where ours
autocasts). It runs under their ACTLossHead (stablemax) with their sparse-embedding sign-SGD, as their pretrain.py does.
Deviations from their pretrain.py: AdamATan2 is ours in plain PyTorch for both arms (theirs is the
`adam-atan2` CUDA extension), and `--compile` compiles their whole loss head (as pretrain.py) but our
recursed networks only (as `reasonlab trm train --set compile=true`). Their current layers.py calls torch
SDPA; older checkouts import `flash_attn_func` from flash-attn, which is then given by a small shim module
over torch SDPA put into sys.modules (nothing is installed).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import functools
import gc
import importlib
import importlib.util
import json
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.optim import EMA, AdamATan2, SignSGD
from reasonlab.systems.trm.supervision import SupervisionConfig, initial_carry, supervision_step

VARIANTS = {
    "trm-mlp": {"arch": "trm", "mixer": "mlp", "T": 3, "n": 6, "prefix_len": 16},
    "trm-att": {"arch": "trm", "mixer": "attention", "T": 3, "n": 6, "prefix_len": 16},
    "hrm": {"arch": "hrm", "mixer": "attention", "T": 2, "n": 2, "num_layers": 4, "prefix_len": 1},
}
SIZES = {"paper": {"hidden_size": 512, "num_heads": 8}, "cpu": {"hidden_size": 128, "num_heads": 4}}
SEQ_LEN, VOCAB, N_SUP, EXPLORATION = 81, 11, 16, 0.1
LR, WEIGHT_DECAY, EMA_DECAY = 1e-4, 1.0, 0.999
OFFICIAL_VARIANTS = ("trm-mlp", "trm-att")  # their trm.py; their HRM is another file


@dataclass
class Arm:
    """One contender: a name, a closure doing one full training step, and its trainable parameter count."""

    name: str
    step: Callable[[], None]
    parameters: int


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, L) tokens 1..V-1
    labels: torch.Tensor  # (B, L) tokens 2..V-1
    puzzle_ids: torch.Tensor  # (B,) all 0: Sudoku has one puzzle identifier


def make_batch(batch: int, device: str) -> Batch:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, VOCAB, (batch, SEQ_LEN), generator=generator)
    labels = torch.randint(2, VOCAB, (batch, SEQ_LEN), generator=generator)
    return Batch(inputs.to(device), labels.to(device), torch.zeros(batch, dtype=torch.long, device=device))


def our_arm(variant: str, size: str, data: Batch, device: str, bf16: bool, compile_: bool, fast: bool,
            chunk: int | None = None) -> Arm:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=VOCAB, seq_len=SEQ_LEN, **SIZES[size], **VARIANTS[variant])
    model = RecursiveReasoner(config, fast=fast, chunk_samples=chunk).to(device).train()
    if compile_:
        model.compile_networks()
    optimizer = AdamATan2(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sign_sgd = SignSGD(model.puzzle_emb, LR, WEIGHT_DECAY)
    ema = EMA(model, EMA_DECAY)
    supervision = SupervisionConfig(n_sup=N_SUP, exploration=EXPLORATION, act_continue=False)
    carry = initial_carry(model, data.inputs, data.labels, data.puzzle_ids)
    autocast = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    batch = data.inputs.shape[0]

    def step() -> None:
        nonlocal carry
        with autocast:
            carry, loss, _ = supervision_step(model, carry, data.inputs, data.labels, data.puzzle_ids, supervision)
        optimizer.zero_grad(set_to_none=True)
        (loss.total / batch).backward()
        optimizer.step()
        sign_sgd.step()
        ema.update(model)

    name = "ours-reference" if not fast else "ours" if chunk is None else f"ours-chunk{chunk}"
    return Arm(name, step, model.num_parameters())


def install_flash_attn_shim() -> list[str]:
    """Give `flash_attn_func` (flash-attn's (B, S, H, hd) layout) over torch SDPA to code that imports it,
    where flash-attn is not installed; returns the module names shimmed."""

    def flash_attn_func(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, **_: object):
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal)
        return out.transpose(1, 2)  # (B, S, H, hd)

    shimmed = []
    for name in ("flash_attn_interface", "flash_attn"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            module = types.ModuleType(name)
            module.flash_attn_func = flash_attn_func  # type: ignore[attr-defined]
            sys.modules[name] = module
            shimmed.append(name)
    return shimmed


def load_official(path: Path) -> dict[str, types.ModuleType]:
    """Import the official trm, losses and sparse_embedding modules from a checkout at `path`."""
    if not (path / "models" / "recursive_reasoning" / "trm.py").is_file():
        raise SystemExit(f"--official {path}: no models/recursive_reasoning/trm.py there; pass a checkout of "
                         "SamsungSAILMontreal/TinyRecursiveModels")
    install_flash_attn_shim()
    sys.path.insert(0, str(path.resolve()))
    names = {"trm": "models.recursive_reasoning.trm", "losses": "models.losses",
             "sparse_embedding": "models.sparse_embedding"}
    try:
        return {key: importlib.import_module(name) for key, name in names.items()}
    except ModuleNotFoundError as err:  # the official code imports einops (and more) that reasonlab does not need
        raise SystemExit(f"--official {path}: its code needs the module {err.name!r}, which is not installed: "
                         f"`.venv/bin/pip install {err.name}`, then run again") from None


def official_config(variant: str, size: str, batch: int, bf16: bool) -> dict:
    """Their TinyRecursiveReasoningModel_ACTV1Config fields for our variant and size (config/arch/trm.yaml and
    the README's Sudoku commands)."""
    ours = {**SIZES[size], **VARIANTS[variant]}
    mlp = ours["mixer"] == "mlp"
    return {
        "batch_size": batch, "seq_len": SEQ_LEN, "vocab_size": VOCAB, "num_puzzle_identifiers": 1,
        "puzzle_emb_ndim": ours["hidden_size"], "puzzle_emb_len": ours["prefix_len"],
        "H_cycles": ours["T"], "L_cycles": ours["n"], "H_layers": 0, "L_layers": 2,
        "hidden_size": ours["hidden_size"], "num_heads": ours["num_heads"], "expansion": 4,
        "pos_encodings": "none" if mlp else "rope", "mlp_t": mlp,
        "halt_max_steps": N_SUP, "halt_exploration_prob": EXPLORATION, "no_ACT_continue": True,
        "forward_dtype": "bfloat16" if bf16 else "float32",
    }


def official_arm(modules: dict[str, types.ModuleType], variant: str, size: str, data: Batch, device: str,
                 bf16: bool, compile_: bool) -> Arm:
    torch.manual_seed(0)
    batch = data.inputs.shape[0]
    with torch.device(device):
        model = modules["trm"].TinyRecursiveReasoningModel_ACTV1(official_config(variant, size, batch, bf16))
        head = modules["losses"].ACTLossHead(model, loss_type="stablemax_cross_entropy").train()
        tensors = {"inputs": data.inputs, "labels": data.labels, "puzzle_identifiers": data.puzzle_ids}
        carry = head.initial_carry(tensors)
    sign_sgd = modules["sparse_embedding"].CastedSparseEmbeddingSignSGD_Distributed(
        model.puzzle_emb.buffers(), world_size=1, lr=LR, weight_decay=WEIGHT_DECAY)
    optimizers = [sign_sgd, AdamATan2(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)]
    ema = EMA(model, EMA_DECAY)
    forward = torch.compile(head) if compile_ else head

    def step() -> None:
        nonlocal carry
        carry, loss, _, _, _ = forward(carry=carry, batch=tensors, return_keys=[])
        (loss / batch).backward()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
        ema.update(model)

    return Arm("official", step, sum(p.numel() for p in model.parameters()))


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_step_memory_mib(step: Callable[[], None], device: str) -> float | None:
    """Memory one step needs above what was held before it (see the module docstring); None where unknown."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if not Path("/proc/self/clear_refs").exists():
        return None
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap pages back, so the step must touch new ones
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - before) / 1024


def time_interleaved(arms: list[Arm], warmup: int, repeats: int, steps: int, device: str) -> dict[str, list[float]]:
    """Seconds per step of each arm in each round, the arms taking turns (A B A B ...)."""
    for arm in arms:
        for _ in range(warmup):
            arm.step()
    _synchronize(device)
    seconds: dict[str, list[float]] = {arm.name: [] for arm in arms}
    for _ in range(repeats):
        for arm in arms:
            start = time.perf_counter()
            for _ in range(steps):
                arm.step()
            _synchronize(device)
            seconds[arm.name].append((time.perf_counter() - start) / steps)
    return seconds


def print_profile(arm: Arm, variant: str, size: str) -> None:
    """The ops that took most of one step of `arm` (torch.profiler, self CPU time), to stderr."""
    with torch.profiler.profile() as profile:
        arm.step()
    table = profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    print(f"profile of one step: {variant} {size} {arm.name}\n{table}", file=sys.stderr)


def step_gemms(arm: Arm) -> collections.Counter[tuple[int, int, int]]:
    """(M, K, N) of every aten::mm and aten::addmm one step of `arm` makes, with their counts."""
    with torch.profiler.profile(record_shapes=True) as profile:
        arm.step()
    shapes: collections.Counter[tuple[int, int, int]] = collections.Counter()
    for event in profile.events():
        if event.name in ("aten::mm", "aten::addmm"):
            first = 1 if event.name == "aten::addmm" else 0  # addmm(bias, a, b, beta, alpha)
            (m, k), (_, n) = event.input_shapes[first:first + 2]
            shapes[(m, k, n)] += 1
    return shapes


def gemm_seconds(shapes: collections.Counter[tuple[int, int, int]], repeats: int) -> dict[str, float]:
    """Seconds the multiplies of `shapes` take under torch's BLAS and under oneDNN: per shape the fastest of
    `repeats` + 1 rounds (the first also warms both up), contiguous operands, times its count in the step."""
    total = {"blas": 0.0, "onednn": 0.0}
    for (m, k, n), count in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        weight = b.t().contiguous()  # oneDNN's linear takes (N, K), as nn.Linear stores it
        calls = {"blas": functools.partial(torch.mm, a, b),
                 "onednn": functools.partial(torch.ops.mkldnn._linear_pointwise, a, weight, None, "none", [], "")}
        best = {name: float("inf") for name in calls}
        for _ in range(repeats + 1):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                best[name] = min(best[name], time.perf_counter() - start)
        for name in total:
            total[name] += count * best[name]
    return total


def gemm_records(arms: list[Arm], seconds: dict[str, list[float]], repeats: int) -> list[dict]:
    """Per arm: its GEMM calls, their seconds timed alone under each library, oneDNN's gain on them, and
    their share (under torch's BLAS) of the arm's measured step."""
    records = []
    for arm in arms:
        shapes = step_gemms(arm)
        total = gemm_seconds(shapes, max(repeats, 3))
        step = statistics.median(seconds[arm.name])
        records.append({"arm": arm.name, "gemm_calls": sum(shapes.values()), "distinct_shapes": len(shapes),
                        "median_seconds_per_step": round(step, 4),
                        **{f"gemm_seconds_{name}": round(value, 4) for name, value in total.items()},
                        "onednn_speedup_on_gemms": round(total["blas"] / total["onednn"], 3),
                        "gemm_share_of_step": round(total["blas"] / step, 3)})
    return records


def compare(variant: str, size: str, batch: int, args: argparse.Namespace,
            official: dict[str, types.ModuleType] | None) -> list[dict]:
    """Build the arms of one model and size, measure memory and interleaved time; one record per arm."""
    bf16 = args.bf16
    data = make_batch(batch, args.device)
    arms = [our_arm(variant, size, data, args.device, bf16, args.compile, fast=True)]
    arms += [our_arm(variant, size, data, args.device, bf16, args.compile, True, chunk) for chunk in args.chunks]
    if args.reference:
        arms.append(our_arm(variant, size, data, args.device, bf16, args.compile, fast=False))
    if official is not None and variant in OFFICIAL_VARIANTS:
        arms.append(official_arm(official, variant, size, data, args.device, bf16, args.compile))
    seconds = time_interleaved(arms, args.warmup, args.repeats, args.steps, args.device)
    if args.profile:
        for arm in arms:
            print_profile(arm, variant, size)
    if args.gemm:
        for record in gemm_records(arms, seconds, args.repeats):
            print(json.dumps({"model": variant, "size": size, "gemm": True, **record}), flush=True)
    memory = {arm.name: peak_step_memory_mib(arm.step, args.device) for arm in arms}
    records = []
    for arm in arms:
        median = statistics.median(seconds[arm.name])
        records.append({
            "model": variant, "size": size, "arm": arm.name, "parameters": arm.parameters, "batch": batch,
            "repeats": args.repeats, "steps_per_repeat": args.steps, "median_seconds_per_step": round(median, 4),
            "min_seconds_per_step": round(min(seconds[arm.name]), 4),
            "samples_per_second": round(batch / median, 2),
            "peak_step_memory_mib": None if memory[arm.name] is None else round(memory[arm.name], 1),
            "device": args.device, "threads": torch.get_num_threads(), "bf16": bf16, "compile": args.compile,
        })
    return records


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", nargs="+", default=["cpu", "paper"], choices=list(SIZES))
    parser.add_argument("--models", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--batch", type=int, default=None,
                        help="batch of every size [default: 32 with --official, else --batch-cpu / --batch-paper]")
    parser.add_argument("--batch-cpu", type=int, default=16, help="batch of the 'cpu' size")
    parser.add_argument("--batch-paper", type=int, default=2, help="batch of the 'paper' size")
    parser.add_argument("--steps", type=int, default=3, help="steps per arm in each round")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of interleaved timing (A B A B ...)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per arm first (compile needs 3+)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads [default: torch's]")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 on any device (ours autocast, theirs native: "
                        "their config's default forward_dtype)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (see the docstring for the scope)")
    parser.add_argument("--reference", action="store_true", help="also time our plain reference path")
    parser.add_argument("--profile", action="store_true", help="also print each arm's top ops of one step (stderr)")
    parser.add_argument("--gemm", action="store_true", help="also time each arm's matrix multiplies under torch's "
                        "BLAS and oneDNN (CPU; one JSON line per arm)")
    parser.add_argument("--chunks", nargs="*", type=int, default=[],
                        help="also time ours with these samples per chunk (the default arm picks its own)")
    parser.add_argument("--official", type=Path, default=None,
                        help="checkout of SamsungSAILMontreal/TinyRecursiveModels: also time its TRM model code")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.gemm and (args.device != "cpu" or args.bf16):
        raise SystemExit("--gemm times float32 CPU matrix multiplies: run it with --device cpu and without --bf16")
    official = load_official(args.official) if args.official else None
    print(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                      "cuda": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                      "official": str(args.official) if args.official else None}))
    for size in args.sizes:
        batch = args.batch or (32 if official else args.batch_cpu if size == "cpu" else args.batch_paper)
        for variant in args.models:
            for record in compare(variant, size, batch, args, official):
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
