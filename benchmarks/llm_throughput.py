"""Generated tokens/s of every CPU backend on the embedded Gemma-3-270M, measured side by side in one run.

    .venv/bin/python benchmarks/llm_throughput.py [--max-tokens 64] [--repeats 2] [--out benchmarks/llm_throughput.json]

Rows: raw llama-cpp-python (`Llama.create_completion`, the CPU reference), reasonlab's llamacpp backend, the
openai backend against llama-cpp-python's own server, and the hf backend, each at batch 1 and batch 8 (eight
prompts in one `generate` call). Greedy decoding, no logprobs, the same prompts everywhere; tokens/s counts
the tokens actually generated. Targets: llamacpp backend within 10% of raw llama-cpp-python; hf batch 8 at
least 3x hf batch 1. llama-cpp-python's server decodes one request at a time, so its batch 8 is sequential.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROMPTS = [
    "The history of the printing press begins",
    "Q: What is the capital of France?\nA:",
    "def quicksort(items):",
    "In a small village by the sea, there lived",
    "The three laws of thermodynamics are",
    "Photosynthesis is the process by which",
    "Once upon a time, a robot",
    "The main causes of the French Revolution were",
]


def measure(name: str, batch: int, run: Callable[[list[str]], int], repeats: int) -> dict:
    """Best of `repeats` timed calls (after one warm-up) of `run(prompts) -> generated tokens`."""
    prompts = PROMPTS[:batch]
    run(prompts[:1])
    best = None
    for _ in range(repeats):
        started = time.perf_counter()
        tokens = run(prompts)
        seconds = time.perf_counter() - started
        rate = tokens / seconds
        if best is None or rate > best["tokens_per_s"]:
            best = {"backend": name, "batch": batch, "tokens": tokens, "seconds": round(seconds, 2),
                    "tokens_per_s": round(rate, 1)}
    print(f"{name:32s} batch {batch}: {best['tokens_per_s']:7.1f} tok/s ({best['tokens']} tokens)", flush=True)
    return best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_llamacpp_server(gguf: Path, n_ctx: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(Path(tempfile.mkdtemp()) / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", str(n_ctx), "--model_alias", "gemma"], stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("llama-cpp-python server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per prompt")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats per row (best is kept)")
    parser.add_argument("--n-ctx", type=int, default=2048, help="llama.cpp context size")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/llm_throughput.json"), help="JSON results")
    args = parser.parse_args()

    import torch
    from llama_cpp import Llama

    from reasonlab.llm import LLM, SamplingParams, load_llm
    from reasonlab.llm.embedded import embedded_gemma_gguf

    gguf = embedded_gemma_gguf()
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0, logprobs=False)
    rows = []

    raw = Llama(model_path=str(gguf), n_ctx=args.n_ctx, n_threads=os.cpu_count(), verbose=False)

    def run_raw(prompts: list[str]) -> int:
        outputs = [raw.create_completion(p, max_tokens=args.max_tokens, temperature=0.0) for p in prompts]
        return sum(o["usage"]["completion_tokens"] for o in outputs)

    def run_llm(llm: LLM) -> Callable[[list[str]], int]:
        return lambda prompts: sum(g[0].completion_tokens for g in llm.generate(prompts, params))

    for batch in (1, 8):
        rows.append(measure("llama-cpp-python (raw)", batch, run_raw, args.repeats))
    llamacpp = load_llm("llamacpp:embedded", n_ctx=args.n_ctx)
    for batch in (1, 8):
        rows.append(measure("reasonlab llamacpp", batch, run_llm(llamacpp), args.repeats))
    server, url = start_llamacpp_server(gguf, args.n_ctx)
    try:
        remote = load_llm(f"openai:{url}#gemma")
        for batch in (1, 8):
            rows.append(measure("reasonlab openai -> llama.cpp server", batch, run_llm(remote), args.repeats))
    finally:
        server.terminate()
    hf = load_llm("hf:embedded")
    for batch in (1, 8):
        rows.append(measure("reasonlab hf (torch)", batch, run_llm(hf), args.repeats))

    rate = {(r["backend"], r["batch"]): r["tokens_per_s"] for r in rows}
    ratios = {
        "llamacpp_vs_raw_batch1": rate[("reasonlab llamacpp", 1)] / rate[("llama-cpp-python (raw)", 1)],
        "llamacpp_vs_raw_batch8": rate[("reasonlab llamacpp", 8)] / rate[("llama-cpp-python (raw)", 8)],
        "hf_batch8_vs_batch1": rate[("reasonlab hf (torch)", 8)] / rate[("reasonlab hf (torch)", 1)],
    }
    machine = {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
               "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}")
    args.out.write_text(json.dumps({"machine": machine, "max_tokens": args.max_tokens, "rows": rows,
                                    "ratios": {k: round(v, 3) for k, v in ratios.items()}}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
