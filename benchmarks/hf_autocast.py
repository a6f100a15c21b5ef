"""What bf16 autocast saves on the hf backend: decoding in bf16 (`HFPolicy.decode_dtype`) against float32, and a
LoRA SFT pass under bf16 autocast with frozen weights cast once (the backend's `_CastOnceLinear`) against
autocast's own per-call casts (plain `nn.Linear`), side by side in one process, rounds interleaved.

The workload is Moloch's `worked` run: the embedded Gemma-3-270M writing two pitches for each of 16 product cards
(the prompt holds one worked example; T = 1.0, at most 64 new tokens), and an SFT pass of 8 of its prompts with a
pitch each (LoRA r8 on every linear layer, dropout off so both arms compute the same thing; the losses and
gradients are checked equal).

    .venv/bin/python benchmarks/hf_autocast.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch
from torch import nn


def _arms(policy: Any) -> tuple[list[nn.Module], type]:
    from reasonlab.llm.hf import _CastOnceLinear

    return [m for m in policy.module.modules() if type(m) is _CastOnceLinear], _CastOnceLinear


def _set_cast_once(modules: list[nn.Module], cast_once: type, on: bool) -> None:
    for module in modules:
        module.__class__ = cast_once if on else nn.Linear


def _decode(policy: Any, anchors: list, shots: Any, params: Any, dtype: torch.dtype | None) -> tuple[float, int]:
    from reasonlab.systems.moloch.rounds import sample_messages

    policy.decode_dtype = dtype
    started = time.perf_counter()
    before = policy.usage.completion_tokens
    sample_messages(policy, anchors, params, 0, 2, len(anchors), False, True, None, shots)
    return time.perf_counter() - started, policy.usage.completion_tokens - before


def _sft_pass(policy: Any, encoded: list[tuple[list[int], list[int]]]) -> tuple[float, float, list[torch.Tensor]]:
    trainable = [p for p in policy.module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.grad = None
    started = time.perf_counter()
    total = 0.0
    for start in range(0, len(encoded), 2):
        batch = encoded[start : start + 2]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rows = policy.logprobs([p for p, _ in batch], [c for _, c in batch], 1.0)
        loss = -torch.cat(rows).sum() / 100
        loss.backward()
        total += float(loss.detach())
    return time.perf_counter() - started, total, [p.grad.clone() for p in trainable]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per arm")
    parser.add_argument("--cards", type=int, default=16, help="product cards per decoding round (2 pitches each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from reasonlab.systems.moloch.config import PRESETS
    from reasonlab.systems.moloch.rounds import agent_prompts
    from reasonlab.systems.moloch.training import build_anchors, load_agent, prompt_examples, sampling_params
    from reasonlab.train.sft import LoRAConfig, add_lora

    preset = PRESETS["worked"]
    anchors = build_anchors(preset.data).train[: args.cards]
    shots = prompt_examples(preset.data, preset.agent)
    params = sampling_params(preset.agent)
    policy = load_agent("hf:embedded")

    decode: dict[str, list[float]] = {"float32": [], "bf16": []}  # completion tokens per second, per round
    _decode(policy, anchors[:2], shots, params, torch.bfloat16)  # warm-up, both arms
    _decode(policy, anchors[:2], shots, params, None)
    for _ in range(args.repeats):
        for name, dtype in (("float32", None), ("bf16", torch.bfloat16)):
            seconds, count = _decode(policy, anchors, shots, params, dtype)
            decode[name].append(count / seconds)
    policy.decode_dtype = None

    add_lora(policy, LoRAConfig(r=8, alpha=16, dropout=0.0), seed=0)
    modules, cast_once = _arms(policy)
    prompts = agent_prompts(anchors[:8], False, True, shots)
    pitch = "Meet it: great value, 2 years of warranty. Yours for just $49.99.</sales_pitch>"
    encoded = [(policy.tokenize(prompts[a.anchor_id]), policy.tokenize(pitch)) for a in anchors[:8]]
    policy.module.train()
    sft: dict[str, list[float]] = {"autocast casts": [], "cast once": []}
    results = {}
    for on in (False, True):  # warm-up
        _set_cast_once(modules, cast_once, on)
        _sft_pass(policy, encoded)
    for _ in range(args.repeats):
        for name, on in (("autocast casts", False), ("cast once", True)):
            _set_cast_once(modules, cast_once, on)
            seconds, loss, grads = _sft_pass(policy, encoded)
            sft[name].append(seconds)
            results[name] = (loss, grads)
    identical = results["autocast casts"][0] == results["cast once"][0] and all(
        torch.equal(a, b) for a, b in zip(results["autocast casts"][1], results["cast once"][1], strict=True))

    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), "
                   f"torch {torch.__version__}",
        "decode_tokens_per_s": {k: statistics.median(v) for k, v in decode.items()},
        "decode_speedup": statistics.median(decode["bf16"]) / statistics.median(decode["float32"]),
        "sft_pass_seconds": {k: statistics.median(v) for k, v in sft.items()},
        "sft_speedup": statistics.median(sft["autocast casts"]) / statistics.median(sft["cast once"]),
        "sft_identical": identical,
        "rounds": {"decode": decode, "sft": sft},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
