"""What one sampled token costs on the hf backend at Gemma's vocabulary (262,144 entries): `sample_token` (softmax,
then an inverse-CDF draw: one uniform number and a binary search over the cumulative probabilities) against the
same softmax followed by `torch.multinomial` (which draws an exponential per vocabulary entry), interleaved, and
the draws' agreement with the softmax on a small vocabulary.

    .venv/bin/python benchmarks/hf_sampling.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from reasonlab.llm.hf import sample_token


def _multinomial(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> int:
    return int(torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator))


def _milliseconds(draw, logits: torch.Tensor, tokens: int) -> float:  # type: ignore[no-untyped-def]
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for _ in range(tokens):
        draw(logits, generator)
    return (time.perf_counter() - started) / tokens * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vocab", type=int, default=262_144)
    parser.add_argument("--tokens", type=int, default=100, help="draws per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds per arm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logits = torch.randn(args.vocab, generator=torch.Generator().manual_seed(0)) * 3
    arms = {"sample_token (inverse CDF)": lambda x, g: sample_token(x, 1.0, 1.0, g),
            "softmax + torch.multinomial": lambda x, g: _multinomial(x, 1.0, g)}
    times: dict[str, list[float]] = {name: [] for name in arms}
    for draw in arms.values():  # warm-up
        _milliseconds(draw, logits, 5)
    for _ in range(args.repeats):
        for name, draw in arms.items():
            times[name].append(_milliseconds(draw, logits, args.tokens))
    small = torch.tensor([0.0, 1.0, float("-inf"), 2.0, -1.0])
    generator, counts = torch.Generator().manual_seed(1), torch.zeros(len(small))
    for _ in range(20_000):
        counts[sample_token(small, 1.0, 1.0, generator)] += 1
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), "
                   f"torch {torch.__version__}",
        "ms_per_token": {name: statistics.median(values) for name, values in times.items()},
        "speedup": statistics.median(times["softmax + torch.multinomial"])
        / statistics.median(times["sample_token (inverse CDF)"]),
        "small_vocabulary": {"frequencies (20k draws)": [round(float(c), 4) for c in counts / 20_000],
                             "softmax": [round(float(p), 4) for p in torch.softmax(small, dim=-1)]},
        "rounds": times,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
