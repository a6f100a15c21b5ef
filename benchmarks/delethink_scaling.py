"""Delethink vs LongCoT decode cost on the same model, in one run: per-token time and KV-cache bytes vs thinking
length (512 to 8192 tokens), with the analytic attention-FLOPs ratio beside the measured ones.

    .venv/bin/python benchmarks/delethink_scaling.py --out runs/delethink-scaling

Model: a random-weight tinylm architecture (TinyTransformer: 4 layers, d=256, 4 heads of 64, RoPE, vocab 512,
~3.4M parameters), batch 1, float32, one torch thread, greedy decoding with the same KV-cache code path as
TinyLM.generate (preallocated buffers; a step attends over the positions filled so far). Weights are random
because only the cost is measured. LongCoT decodes 8192 tokens in one context; Delethink decodes the same
count in chunks of C=512 with m=256 carried over (a fresh request per chunk: new cache, carryover re-prefilled,
positions from 0). Per-token time at length L is the median decode step over the 128 tokens before L; the
amortised time adds the re-prefills. KV bytes at L is the largest key/value footprint of any step so far:
the positions a step attends over x 2 (K, V) x layers x width x 4 bytes (what a paged cache such as vLLM's
holds; the dense buffers here are allocated for the chunk or the whole budget up front).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from reasonlab.errors import UserError
from reasonlab.runs import Run
from reasonlab.systems.delethink import DelethinkConfig, attention_flops, carryover_ids
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer

LENGTHS = [512, 1024, 2048, 4096, 8192]
WINDOW = 128


def build_model(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    config = TinyLMConfig(vocab_size=512, n_layer=4, d_model=256, n_head=4, context_length=8192 + 64)
    return TinyTransformer(config).eval()


@torch.no_grad()
def decode(model: TinyTransformer, prompt: list[int], new_tokens: int) -> tuple[list[int], list[float], float, int]:
    """Greedy decode `new_tokens` after `prompt` in one request: tokens, per-step seconds, prefill seconds,
    and the most positions any step attended over."""
    cfg = model.config
    P = len(prompt)
    shape = (1, cfg.n_head, P + new_tokens, cfg.head_dim)
    cache = [(torch.zeros(shape), torch.zeros(shape)) for _ in range(cfg.n_layer)]
    idx = torch.tensor([prompt])
    positions = torch.arange(P)[None]
    mask = torch.ones(P, P, dtype=torch.bool).tril()[None, None]
    started = time.perf_counter()
    logits = model(idx, positions, mask, cache, start=0)[:, -1]
    prefill = time.perf_counter() - started
    tokens, steps = [], []
    for step in range(new_tokens):
        token = int(logits.argmax(-1))
        tokens.append(token)
        if step == new_tokens - 1:
            break
        S = P + step + 1
        started = time.perf_counter()
        logits = model(torch.tensor([[token]]), torch.tensor([[S - 1]]), torch.ones(1, 1, 1, S, dtype=torch.bool),
                       cache, start=S - 1)[:, -1]
        steps.append(time.perf_counter() - started)
    steps.append(steps[-1] if steps else 0.0)  # the last token needs no forward pass: count it like its neighbour
    return tokens, steps, prefill, P + new_tokens - 1


def run_method(model: TinyTransformer, query: list[int], config: DelethinkConfig, total: int) -> dict[str, list[float]]:
    """Decode `total` thinking tokens under `config`; per generated token: step seconds, prefill seconds
    charged to it, and attended positions (for the KV footprint)."""
    generated: list[int] = []
    step_s: list[float] = []
    prefill_s: list[float] = []
    context: list[int] = []
    index = 0
    while len(generated) < total:
        prompt = query + carryover_ids(generated, config.carryover, config.head_tokens)
        new = min(config.chunk_tokens(index), total - len(generated))
        tokens, steps, prefill, _ = decode(model, prompt, new)
        generated += tokens
        step_s += steps
        prefill_s += [prefill] + [0.0] * (new - 1)
        context += [len(prompt) + j for j in range(new)]
        index += 1
    return {"step_s": step_s, "prefill_s": prefill_s, "context": context}


def summarise(trace: dict[str, list[float]], model: TinyTransformer, config: DelethinkConfig, query: int) -> dict:
    cfg = model.config
    bytes_per_position = 2 * cfg.n_layer * cfg.d_model * 4
    rows = {}
    for L in LENGTHS:
        rows[L] = {
            "decode_ms_per_token": 1e3 * statistics.median(trace["step_s"][L - WINDOW : L]),
            "amortised_ms_per_token": 1e3 * (sum(trace["step_s"][:L]) + sum(trace["prefill_s"][:L])) / L,
            "peak_kv_bytes": int(max(trace["context"][:L]) + 1) * bytes_per_position,
            "attention_flops": attention_flops(L, config, cfg.n_layer, cfg.d_model, query_tokens=query),
        }
    first, last = rows[LENGTHS[0]], rows[LENGTHS[-1]]
    ratios = {key: last[key] / first[key] for key in first}
    return {"by_length": rows, "ratio_8k_over_512": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/delethink-scaling"), help="run directory")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run at --out")
    parser.add_argument("--chunk", type=int, default=512, help="Delethink C")
    parser.add_argument("--carryover", type=int, default=256, help="Delethink m")
    parser.add_argument("--query", type=int, default=64, help="query tokens")
    args = parser.parse_args()
    # a timing has nothing to resume: an existing run is refused (before measuring) unless --overwrite
    run = Run.create(args.out.parent, args.out.name, vars(args) | {"out": str(args.out)}, overwrite=args.overwrite)
    torch.set_num_threads(1)
    model = build_model()
    query = torch.randint(0, 512, (args.query,), generator=torch.Generator().manual_seed(1)).tolist()
    total = LENGTHS[-1]
    methods = {
        "longcot": DelethinkConfig.longcot(total),
        "delethink": DelethinkConfig(chunk_size=args.chunk, carryover=args.carryover, iterations=10_000).with_budget(total),
    }
    results = {"machine": f"{platform.machine()} {platform.processor() or ''} torch threads=1".strip(),
               "model": "random-weight TinyTransformer n_layer=4 d_model=256 n_head=4 vocab=512 float32 batch 1",
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "methods": {}}
    decode(model, query, 64)  # warm-up
    for name, config in methods.items():
        started = time.perf_counter()
        trace = run_method(model, query, config, total)
        results["methods"][name] = {"config": config.model_dump(), "seconds": time.perf_counter() - started,
                                    **summarise(trace, model, config, args.query)}
    run.write_summary(results)
    print(table(results))
    print(f"\nwrote {run.summary_path}")


def table(results: dict) -> str:
    lines = ["| method | L | decode ms/token | amortised ms/token | peak KV MiB | attention GFLOPs |",
             "|---|---|---|---|---|---|"]
    for name, method in results["methods"].items():
        for L, row in method["by_length"].items():
            lines.append(f"| {name} | {L} | {row['decode_ms_per_token']:.3f} | {row['amortised_ms_per_token']:.3f} | "
                         f"{row['peak_kv_bytes'] / 2**20:.2f} | {row['attention_flops'] / 1e9:.2f} |")
    lines += ["", "| method | 8k/512: decode time | amortised time | peak KV | attention FLOPs (analytic) |",
              "|---|---|---|---|---|"]
    for name, method in results["methods"].items():
        r = method["ratio_8k_over_512"]
        lines.append(f"| {name} | {r['decode_ms_per_token']:.2f}x | {r['amortised_ms_per_token']:.2f}x | "
                     f"{r['peak_kv_bytes']:.2f}x | {r['attention_flops']:.1f}x (per token {r['attention_flops'] / 16:.2f}x) |")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        main()
    except UserError as err:  # this script's root handler: one line, no traceback
        raise SystemExit(f"error: {err}") from None
