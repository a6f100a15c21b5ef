"""AHN decode cost against context length on one model, in one run: cache bytes and per-token decode time of full
attention, sinks + SWA and AHN from 1k to 16k tokens, with analytic FLOPs and cache beside them (also for
Qwen2.5-3B at the paper's 128k setting: cache -74.0%, FLOPs -40.5%).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ahn_cost.py --json runs/ahn-cost/summary.json \\
        --plot runs/ahn-cost/cost.png

Model: a random-weight TinyTransformer (default 2 layers, d 128, 4 heads of 32, vocab 128, RoPE, float32,
batch 1); weights are random because only the cost is measured. The same base decodes three ways:
- full: its own KV cache (TinyTransformer.forward with cache/start), preallocated for the longest context; the
  prefix is filled by chunked prefill (chunks of 512 queries, mask (1, 1, chunk, S)), no L x L mask.
- ahn: AHNStudent(base, kind, sinks, window) with non-zero memory output weights; AHNStudent.prefill on the first
  context, then AHNStudent.step token by token up to each longer context (its 16k x 16k parallel mask would
  not fit), so every cache after N tokens holds exactly the first N tokens of one random sequence.
- swa: the same student decoding with `use_memory=False` (AHNStudent.prefill / step): the identical step code
  without the memory write and readout; its cache holds the sink and window keys/values only.
Per context N and method: cache bytes after N tokens, then per round `--warmup` untimed and `--steps` timed
decode steps from a copy of that cache; ms/token is the median over rounds of each round's median step. The
methods take turns within a round (the order rotates) so background load hits them alike.
"""

from __future__ import annotations

import argparse
import copy
import io
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write_bytes, atomic_write_json
from reasonlab.systems.ahn.memory import KINDS, ahn_parameter_count
from reasonlab.systems.ahn.model import AHNStudent, DecodeCache
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer

CONTEXTS = (1024, 2048, 4096, 8192, 16384)
QUICK_CONTEXTS = (1024, 2048)
METHODS = ("full", "swa", "ahn")
FLAT_LIMIT = 1.2  # the bar on AHN's longest / shortest per-token time
# the paper's costs for Qwen2.5-3B at 128k (spec section 4) and its LV-Eval / InfiniteBench budget (section 2)
PAPER = {"flops_full": 3.29, "flops_ahn": 1.95, "flops_change": -0.405, "cache_full_gb": 9.44,
         "cache_ahn_gb": 2.45, "cache_change": -0.740, "attention_flops_ratio": 0.467, "swa_cache_ratio": 0.256,
         "params_full": 3.09e9, "params_ahn": 3.10e9}
PAPER_SINKS, PAPER_WINDOW = 128, 32_640
# 128k as the paper counts it: its 9.44 GB is exactly 128,000 tokens x 73,728 bytes (3B's K and V at 4 bytes)
PAPER_CONTEXT = 128_000
# dh^2 multiply-adds of one memory step per head, counted as FLOPs: decay (1), recall k^T S (2), rank-1 write (2),
# readout S^T q (2) for GDN; DeltaNet has no decay; Mamba2 has no recall
RECURRENCE_FLOPS = {"gdn": 7, "deltanet": 6, "mamba2": 5}
WRITE_GATES = {"gdn": 2, "deltanet": 1, "mamba2": 1}


@dataclass(frozen=True)
class Architecture:
    """The shapes that set a decoder's cost (GQA: kv_heads <= heads)."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied_embeddings: bool = True
    qkv_bias: bool = False


QWEN25_3B = Architecture(layers=36, hidden=2048, heads=16, kv_heads=2, head_dim=128, intermediate=11008,
                         vocab=151936, tied_embeddings=True, qkv_bias=True)


def tiny_architecture(config: TinyLMConfig) -> Architecture:
    """A tinylm's shapes: no GQA, SwiGLU width config.hidden_dim, tied head, no biases."""
    return Architecture(config.n_layer, config.d_model, config.n_head, config.n_head, config.head_dim,
                        config.hidden_dim, config.vocab_size)


# ---- analytic cost


def matrix_parameters(arch: Architecture) -> int:
    """Weights every token multiplies: attention and MLP matrices of all layers plus the output head."""
    attention = arch.hidden * arch.head_dim * (2 * arch.heads + 2 * arch.kv_heads)  # q, o and k, v
    return arch.layers * (attention + 3 * arch.hidden * arch.intermediate) + arch.vocab * arch.hidden


def parameter_count(arch: Architecture) -> int:
    """All parameters: matrices, embeddings (a second copy unless tied), norms and q/k/v biases."""
    biases = arch.head_dim * (arch.heads + 2 * arch.kv_heads) if arch.qkv_bias else 0
    vectors = arch.layers * (2 * arch.hidden + biases) + arch.hidden
    embedding = 0 if arch.tied_embeddings else arch.vocab * arch.hidden
    return matrix_parameters(arch) + embedding + vectors


def attended_pairs(length: int, budget: int | None) -> int:
    """(query, key) pairs of a causal prefill over `length` tokens; with a budget T each query sees at most T."""
    if budget is None or length <= budget:
        return length * (length + 1) // 2
    return budget * (budget + 1) // 2 + (length - budget) * budget


def memory_flops_per_token(arch: Architecture, kind: str) -> int:
    """FLOPs of one AHN write + read in one layer: write gates, the dh x dh recurrence per head, output gate and
    the per-head dh x dh output linear (O(dh) terms such as the norms left out)."""
    gates = 2 * arch.hidden * arch.heads * (WRITE_GATES[kind] + 1)
    return gates + arch.heads * arch.head_dim**2 * (RECURRENCE_FLOPS[kind] + 2)


def kv_bytes(arch: Architecture, tokens: int, bytes_per_value: int) -> int:
    """Keys and values of `tokens` positions in every layer."""
    return 2 * arch.layers * arch.kv_heads * arch.head_dim * tokens * bytes_per_value


def method_cost(arch: Architecture, length: int, method: str, sinks: int, window: int, kind: str,
                bytes_per_value: int) -> dict[str, int]:
    """Cache bytes after `length` tokens, prefill FLOPs over them and the FLOPs of the next decode step."""
    budget = None if method == "full" else sinks + window
    evicted = 0 if budget is None else max(length - budget, 0)
    memory = method == "ahn"
    per_memory_token = arch.layers * memory_flops_per_token(arch, kind) if memory else 0
    attention = 4 * arch.heads * arch.head_dim * arch.layers * attended_pairs(length, budget)
    linear = 2 * matrix_parameters(arch) * length
    kv = kv_bytes(arch, length if budget is None else min(length, budget), bytes_per_value)
    state = arch.layers * arch.heads * arch.head_dim**2 * bytes_per_value if memory else 0
    keys_next = length + 1 if budget is None else min(length + 1, budget)
    evicts_next = budget is not None and length >= budget  # the step at position `length` writes a token
    decode = (2 * matrix_parameters(arch) + 4 * arch.heads * arch.head_dim * arch.layers * keys_next
              + (per_memory_token if evicts_next else 0))
    cached_tokens = sinks + window  # the decoder allocates a gate slot per sink and window position up front
    projections = 2 * arch.layers * arch.hidden * arch.head_dim * (2 * arch.heads + 2 * arch.kv_heads) * length
    return {"cache_bytes": kv + state, "kv_bytes": kv, "state_bytes": state,
            # the spec's decoder caches the write gates of each window token (not counted in the paper's total)
            "gate_bytes": arch.layers * arch.heads * WRITE_GATES[kind] * cached_tokens * 4 if memory else 0,
            "linear_flops": linear, "attention_flops": attention, "memory_flops": evicted * per_memory_token,
            # the input embedding as a one-hot matmul (FLOP counters count it) and the q/k/v/o share of linear_flops
            "embedding_flops": 2 * arch.vocab * arch.hidden * length, "projection_flops": projections,
            "prefill_flops": linear + attention + evicted * per_memory_token, "decode_flops_per_token": decode}


def analytic_cost(arch: Architecture, length: int, sinks: int, window: int, kind: str = "gdn",
                  bytes_per_value: int = 2) -> dict[str, Any]:
    """Full attention, sinks + SWA and AHN at `length` tokens: caches, FLOPs and AHN's changes against full."""
    if kind not in KINDS:
        raise UserError(f"AHN memory kind {kind!r} is unknown: use one of {', '.join(KINDS)}")
    costs = {method: method_cost(arch, length, method, sinks, window, kind, bytes_per_value) for method in METHODS}
    full, ahn = costs["full"], costs["ahn"]
    mixing = ahn["attention_flops"] + ahn["memory_flops"]
    counted = {name: costs[name]["prefill_flops"] + costs[name]["embedding_flops"] for name in ("full", "ahn")}
    return {
        "architecture": asdict(arch), "length": length, "sinks": sinks, "window": window, "kind": kind,
        "bytes_per_value": bytes_per_value, **costs,
        "params_full": parameter_count(arch),
        "params_ahn": parameter_count(arch) + ahn_parameter_count(kind, arch.layers, arch.hidden, arch.heads,
                                                                  arch.head_dim, include_vectors=False),
        "cache_change": ahn["cache_bytes"] / full["cache_bytes"] - 1,
        "swa_cache_ratio": costs["swa"]["cache_bytes"] / full["cache_bytes"],
        "flops_change": ahn["prefill_flops"] / full["prefill_flops"] - 1,
        "attention_flops_ratio": mixing / full["attention_flops"],
        "flops_change_counting_embedding": counted["ahn"] / counted["full"] - 1,
        "mixing_with_projections_ratio": ((mixing + ahn["projection_flops"])
                                          / (full["attention_flops"] + full["projection_flops"])),
    }


def paper_comparison() -> dict[str, Any]:
    """Qwen2.5-3B with a GDN memory at the paper's 128k budget, ours (bf16 and fp32 caches) beside the paper's."""
    return {"ours_bf16": analytic_cost(QWEN25_3B, PAPER_CONTEXT, PAPER_SINKS, PAPER_WINDOW, "gdn", 2),
            "ours_fp32": analytic_cost(QWEN25_3B, PAPER_CONTEXT, PAPER_SINKS, PAPER_WINDOW, "gdn", 4),
            "paper": PAPER}


# ---- the three decoders


class FullAttentionDecoder:
    """The base model with its own KV cache, preallocated for `capacity` positions."""

    def __init__(self, model: TinyTransformer, sequence: torch.Tensor, capacity: int, chunk: int) -> None:
        config = model.config
        shape = (1, config.n_head, capacity, config.head_dim)
        self.model, self.sequence, self.chunk = model, sequence, chunk
        self.cache = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(config.n_layer)]
        self.filled = 0

    @torch.no_grad()
    def advance(self, length: int) -> None:
        """Prefill tokens filled..length in chunks (over what earlier timed steps wrote past `filled`)."""
        for start in range(self.filled, length, self.chunk):
            stop = min(start + self.chunk, length)
            mask = torch.arange(stop)[None, :] <= torch.arange(start, stop)[:, None]  # (chunk, S) causal
            self.model(self.sequence[:, start:stop], torch.arange(start, stop)[None], mask[None, None],
                       self.cache, start=start)
        self.filled = length

    def cache_bytes(self) -> int:
        return sum(t[:, :, :self.filled].nbytes for layer in self.cache for t in layer)

    @torch.no_grad()
    def step(self, position: int) -> torch.Tensor:
        """Logits (1, V) after the token at `position`, which attends over everything before it."""
        mask = torch.ones(1, 1, 1, position + 1, dtype=torch.bool)
        return self.model(self.sequence[:, position:position + 1], torch.tensor([[position]]), mask, self.cache,
                          start=position)[:, -1]

    def time_steps(self, warmup: int, steps: int) -> list[float]:
        return timed_steps(self.step, self.filled, warmup, steps)


class StudentDecoder:
    """An AHNStudent's constant-size decode (AHN, or sinks + SWA with `use_memory=False`)."""

    def __init__(self, student: AHNStudent, sequence: torch.Tensor, first_length: int, memory: bool) -> None:
        self.student, self.sequence, self.memory = student, sequence, memory
        _, self.cache = student.prefill(sequence[:, :first_length], use_memory=memory)

    def advance(self, length: int) -> None:
        while self.cache.position < length:
            self.student.step(self.sequence[:, self.cache.position], self.cache)

    def cache_bytes(self) -> int:
        return self.cache.nbytes()

    def time_steps(self, warmup: int, steps: int) -> list[float]:
        """Steps on a copy of the cache, so every round starts from the same N tokens."""
        cache: DecodeCache = copy.deepcopy(self.cache)
        return timed_steps(lambda position: self.student.step(self.sequence[:, position], cache),
                           cache.position, warmup, steps)


def timed_steps(step: Callable[[int], object], first: int, warmup: int, steps: int) -> list[float]:
    """Seconds of each of `steps` decode steps after `warmup` untimed ones, from position `first`."""
    for position in range(first, first + warmup):
        step(position)
    seconds = []
    for position in range(first + warmup, first + warmup + steps):
        started = time.perf_counter()
        step(position)
        seconds.append(time.perf_counter() - started)
    return seconds


def build_decoders(args: argparse.Namespace, contexts: Sequence[int]) -> dict[str, Any]:
    """One random-weight base and its three decoders over one random token sequence."""
    torch.manual_seed(args.seed)
    longest = contexts[-1] + args.warmup + args.steps
    config = TinyLMConfig(vocab_size=args.vocab, n_layer=args.layers, d_model=args.d_model, n_head=args.heads,
                          context_length=longest)
    base = TinyTransformer(config).eval()
    ahn = AHNStudent(base, args.kind, sinks=args.sinks, window=args.window).eval()
    with torch.no_grad():
        for memory in ahn.memories:
            memory.out_proj.normal_(0.0, 0.02)  # a zero output linear would add nothing
    sequence = torch.randint(0, args.vocab, (1, longest), generator=torch.Generator().manual_seed(args.seed))
    return {"full": FullAttentionDecoder(base, sequence, longest, args.prefill_chunk),
            "swa": StudentDecoder(ahn, sequence, contexts[0], memory=False),
            "ahn": StudentDecoder(ahn, sequence, contexts[0], memory=True), "base": base}


# ---- measurement


def measure(args: argparse.Namespace, contexts: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Per context and method: cache bytes and per-round median seconds per decode step."""
    decoders = build_decoders(args, contexts)
    arch = tiny_architecture(decoders["base"].config)
    rows: dict[int, dict[str, dict[str, Any]]] = {}
    for length in contexts:
        started = time.perf_counter()
        rows[length] = {}
        for method in METHODS:
            decoders[method].advance(length)
            cost = method_cost(arch, length, method, args.sinks, args.window, args.kind, 4)
            rows[length][method] = {"cache_bytes": decoders[method].cache_bytes(), "round_ms": [],
                                    "analytic_cache_bytes": cost["cache_bytes"], "gate_bytes": cost["gate_bytes"],
                                    "analytic_decode_flops": cost["decode_flops_per_token"]}
        for round_index in range(args.repeats):
            shift = round_index % len(METHODS)
            for method in METHODS[shift:] + METHODS[:shift]:
                seconds = decoders[method].time_steps(args.warmup, args.steps)
                rows[length][method]["round_ms"].append(1e3 * statistics.median(seconds))
        for row in rows[length].values():
            row["ms_per_token"] = statistics.median(row["round_ms"])
        print(f"context {length}: measured in {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def ratios(rows: dict[int, dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Longest / shortest context, per method: per-token time, cache bytes and analytic decode FLOPs."""
    first, last = rows[min(rows)], rows[max(rows)]
    return {method: {key: last[method][key] / first[method][key]
                     for key in ("ms_per_token", "cache_bytes", "analytic_decode_flops")} for method in METHODS}


# ---- output


def kib(value: float) -> str:
    return f"{value / 1024:,.1f}"


def measured_table(results: dict[str, Any]) -> str:
    lines = ["| context | method | cache KiB | ms/token | analytic MFLOP/token |", "|---|---|---|---|---|"]
    for length, row in results["by_context"].items():
        for method in METHODS:
            cell = row[method]
            lines.append(f"| {length} | {method} | {kib(cell['cache_bytes'])} | {cell['ms_per_token']:.3f} | "
                         f"{cell['analytic_decode_flops'] / 1e6:.2f} |")
    span = results["span"]
    lines += ["", f"| method | {span}: ms/token | cache | analytic FLOPs/token |", "|---|---|---|---|"]
    for method, ratio in results["ratios"].items():
        lines.append(f"| {method} | {ratio['ms_per_token']:.2f}x | {ratio['cache_bytes']:.2f}x | "
                     f"{ratio['analytic_decode_flops']:.2f}x |")
    verdict = "holds" if results["ahn_flat"] else "does not hold"
    lines.append(f"\nAHN {span} per-token time {results['ratios']['ahn']['ms_per_token']:.2f}x "
                 f"(bar <= {FLAT_LIMIT}: {verdict})")
    return "\n".join(lines)


def analytic_table(paper: dict[str, Any], tiny: dict[str, Any]) -> str:
    bf16, fp32, claim = paper["ours_bf16"], paper["ours_fp32"], paper["paper"]
    gb = 1e9
    lines = [f"Qwen2.5-3B + GDN at L={PAPER_CONTEXT:,}, s={PAPER_SINKS}, W={PAPER_WINDOW:,} (analytic) vs the paper",
             "| quantity | ours full -> AHN | ours change | paper full -> AHN | paper change |",
             "|---|---|---|---|---|",
             f"| params | {bf16['params_full'] / 1e9:.3f}B -> {bf16['params_ahn'] / 1e9:.3f}B | "
             f"+{bf16['params_ahn'] / bf16['params_full'] - 1:.2%} | 3.09B -> 3.10B | |",
             f"| cache, bf16 | {bf16['full']['cache_bytes'] / gb:.2f} -> {bf16['ahn']['cache_bytes'] / gb:.2f} GB | "
             f"{bf16['cache_change']:+.1%} | {claim['cache_full_gb']} -> {claim['cache_ahn_gb']} GB | "
             f"{claim['cache_change']:+.1%} |",
             f"| cache, fp32 | {fp32['full']['cache_bytes'] / gb:.2f} -> {fp32['ahn']['cache_bytes'] / gb:.2f} GB | "
             f"{fp32['cache_change']:+.1%} | | |",
             f"| SWA cache / full | {bf16['swa_cache_ratio']:.1%} | | {claim['swa_cache_ratio']:.1%} | |",
             f"| prefill FLOPs | {bf16['full']['prefill_flops'] / 1e15:.2f} -> "
             f"{bf16['ahn']['prefill_flops'] / 1e15:.2f} PFLOP | {bf16['flops_change']:+.1%} | "
             f"{claim['flops_full']} -> {claim['flops_ahn']} (as printed: TFLOPs) | {claim['flops_change']:+.1%} |",
             f"| prefill FLOPs, embedding counted as a matmul | "
             f"{(bf16['full']['prefill_flops'] + bf16['full']['embedding_flops']) / 1e15:.2f} -> "
             f"{(bf16['ahn']['prefill_flops'] + bf16['ahn']['embedding_flops']) / 1e15:.2f} PFLOP | "
             f"{bf16['flops_change_counting_embedding']:+.1%} | | |",
             f"| (attention + memory) / full attention FLOPs | {bf16['attention_flops_ratio']:.1%} | | "
             f"{claim['attention_flops_ratio']:.1%} (mixing) | |",
             f"| the same with q/k/v/o projections | {bf16['mixing_with_projections_ratio']:.1%} | | | |",
             "",
             f"benchmarked tiny model at L={tiny['length']:,} (fp32): cache {kib(tiny['full']['cache_bytes'])} -> "
             f"{kib(tiny['ahn']['cache_bytes'])} KiB ({tiny['cache_change']:+.1%}), prefill FLOPs "
             f"{tiny['full']['prefill_flops'] / 1e9:.1f} -> {tiny['ahn']['prefill_flops'] / 1e9:.1f} GFLOP "
             f"({tiny['flops_change']:+.1%})"]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """ms/token and cache KiB against context, one line per method, as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    contexts = [int(length) for length in results["by_context"]]
    for panel, (key, label, scale) in enumerate((("ms_per_token", "ms per decoded token", 1.0),
                                                  ("cache_bytes", "cache KiB", 1 / 1024)), start=1):
        axes = figure.add_subplot(1, 2, panel)
        for method in METHODS:
            values = [results["by_context"][length][method][key] * scale for length in results["by_context"]]
            axes.plot(contexts, values, marker="o", label=method)
        axes.set_xscale("log", base=2)
        axes.set_xlabel("context tokens")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(f"decode cost vs context ({results['model']['short']}, {results['threads']} thread)",
                    fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())


# ---- entry


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=None, help="context lengths (default 1k..16k)")
    parser.add_argument("--quick", action="store_true", help="contexts 1k and 2k, 2 rounds of 16 steps")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=128)
    parser.add_argument("--kind", default="gdn", choices=KINDS, help="AHN memory")
    parser.add_argument("--sinks", type=int, default=4)
    parser.add_argument("--window", type=int, default=508, help="window W (budget T = sinks + W)")
    parser.add_argument("--steps", type=int, default=None, help="timed decode steps per round (default 64)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed decode steps before them")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per context (default 7)")
    parser.add_argument("--prefill-chunk", type=int, default=512, help="queries per full-attention prefill chunk")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write every number here (atomically)")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of time and cache vs context")
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 16 if args.quick else 64
    if args.repeats is None:
        args.repeats = 2 if args.quick else 7
    return args


def check_contexts(contexts: Sequence[int], budget: int) -> list[int]:
    """Sorted distinct contexts, each past the attention budget (else the AHN memory is never used)."""
    ordered = sorted(set(contexts))
    if len(ordered) < 2:
        raise UserError(f"--contexts {' '.join(map(str, contexts))}: give at least two distinct lengths")
    if ordered[0] <= budget:
        raise UserError(f"--contexts starts at {ordered[0]}, within the budget sinks + window = {budget}: "
                        "use longer contexts or a smaller --window")
    return ordered


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Measure, compute the analytic costs and return every number (what --json writes)."""
    for name in ("steps", "repeats", "threads", "prefill_chunk", "layers", "heads", "vocab"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least 1")
    contexts = check_contexts(args.contexts or (QUICK_CONTEXTS if args.quick else CONTEXTS),
                              args.sinks + args.window)
    torch.set_num_threads(args.threads)
    rows = measure(args, contexts)
    config = TinyLMConfig(vocab_size=args.vocab, n_layer=args.layers, d_model=args.d_model, n_head=args.heads)
    description = (f"random-weight TinyTransformer n_layer={args.layers} d_model={args.d_model} "
                   f"n_head={args.heads} vocab={args.vocab} float32 batch 1, {args.kind} memory, "
                   f"sinks {args.sinks} + window {args.window}")
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "model": {"description": description, "parameters": parameter_count(tiny_architecture(config)),
                  "short": f"{args.layers}-layer d={args.d_model} tinylm, {args.kind}, T={args.sinks + args.window}"},
        "settings": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "contexts": contexts, "by_context": rows, "span": f"{contexts[-1]}/{contexts[0]}",
        "ratios": ratios(rows),
        "analytic": {"tiny": analytic_cost(tiny_architecture(config), contexts[-1], args.sinks, args.window,
                                           args.kind, 4),
                     "qwen2.5-3b": paper_comparison()},
    }
    results["ahn_flat"] = results["ratios"]["ahn"]["ms_per_token"] <= FLAT_LIMIT
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write --json and --plot; return the results."""
    args = parse_args(argv)
    results = run(args)
    print(measured_table(results))
    print()
    print(analytic_table(results["analytic"]["qwen2.5-3b"], results["analytic"]["tiny"]))
    if args.json is not None:
        atomic_write_json(args.json, results)
        print(f"\nwrote {args.json}")
    if args.plot is not None:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return results


if __name__ == "__main__":
    try:
        main()
    except UserError as err:  # this script's root handler: one line, no traceback
        raise SystemExit(f"error: {err}") from None
