"""What the hf backend's fast paths save, each against its reference path, side by side in one process, rounds
interleaved: the shared prefix (the tokens every row of a request starts with go through the model once,
`HFPolicy.share_prefix`, against every row whole), batched rows in `logprobs` (`batch_rows`: one right-padded
pass through the decoder, against one forward per row) and merged LoRA decoding (`merge_lora`: the adapter folded
into the base weights, against the adapter beside each layer).

The workload is Moloch's `wide` run, whose prompts share their instructions and worked example (about 233 of
about 315 tokens): the embedded Gemma-3-270M writing two pitches for each of 16 product cards in bf16 (T = 1.0,
at most 64 new tokens; the prompts' pass included), without and then with a LoRA adapter (r8 on every linear
layer), and one SFT step of 8 of its prompts with a pitch each (LoRA dropout off, bf16 autocast) in passes of 2
(the reference: whole rows, one forward each), 2, 4 and 8 rows. The gradients of each step are compared with the
reference's, under bf16 and in float32, beside the reference's own bf16-vs-float32 difference for scale.

    .venv/bin/python benchmarks/hf_shared_prefix.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch


def _decode(policy: Any, anchors: list, shots: Any, params: Any, share: bool) -> float:
    from reasonlab.systems.moloch.rounds import sample_messages

    policy.share_prefix = share
    started = time.perf_counter()
    sample_messages(policy, anchors, params, 0, 2, len(anchors), False, True, None, shots)
    return time.perf_counter() - started


def _sft_step(policy: Any, encoded: list[tuple[list[int], list[int]]], rows_per_pass: int, share: bool,
              bf16: bool = True, batch: bool = False) -> tuple[float, list[torch.Tensor]]:
    """One optimizer step's gradients (8 examples in passes of `rows_per_pass`, as `reasonlab.train.sft` runs it)."""
    policy.share_prefix, policy.batch_rows = share, batch
    trainable = [p for p in policy.module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.grad = None
    tokens = sum(len(c) for _, c in encoded)
    started = time.perf_counter()
    for start in range(0, len(encoded), rows_per_pass):
        batch = encoded[start : start + rows_per_pass]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rows = policy.logprobs([p for p, _ in batch], [c for _, c in batch], 1.0)
        (-torch.cat(rows).sum() / tokens).backward()
    return time.perf_counter() - started, [p.grad.clone() for p in trainable]


def wide_workload(cards: int) -> tuple[Any, list, Any, Any]:
    """The embedded agent as Moloch's `wide` preset decodes it (bf16), the first `cards` training cards, the worked
    example and the sampling parameters."""
    from reasonlab.systems.moloch.config import PRESETS
    from reasonlab.systems.moloch.training import (
        build_anchors,
        load_agent,
        prompt_examples,
        sampling_params,
        set_decoding,
    )

    preset = PRESETS["wide"]
    policy = set_decoding(load_agent("hf:embedded"), preset.agent)
    return (policy, build_anchors(preset.data).train[:cards], prompt_examples(preset.data, preset.agent),
            sampling_params(preset.agent))


def add_trained_lora(policy: Any) -> None:
    """An r8 LoRA adapter on every linear layer with a nonzero B, as after a round of training."""
    from reasonlab.train.sft import LoRAConfig, add_lora

    add_lora(policy, LoRAConfig(r=8, alpha=16, dropout=0.0), seed=0)
    with torch.no_grad():
        for name, parameter in policy.module.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)


def _relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    difference = sum(float(((x - y) ** 2).sum()) for x, y in zip(a, b, strict=True))
    return (difference / sum(float((x**2).sum()) for x in b)) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds per arm")
    parser.add_argument("--cards", type=int, default=16, help="product cards per decoding round (2 pitches each)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from reasonlab.llm.hf import shared_prefix_length
    from reasonlab.systems.moloch.rounds import agent_prompts

    policy, anchors, shots, params = wide_workload(args.cards)
    prompts = agent_prompts(anchors, False, True, shots)
    rows = [policy.prompt_ids(prompts[a.anchor_id]) for a in anchors]

    decode: dict[str, list[float]] = {"whole rows": [], "shared prefix": []}  # seconds per round
    _decode(policy, anchors[:2], shots, params, True)  # warm-up, both arms
    _decode(policy, anchors[:2], shots, params, False)
    for _ in range(args.repeats):
        for name, share in (("whole rows", False), ("shared prefix", True)):
            decode[name].append(_decode(policy, anchors, shots, params, share))

    add_trained_lora(policy)
    lora_decode: dict[str, list[float]] = {"adapter beside each layer": [], "merged": []}
    for _ in range(args.repeats):
        for name, merge in (("adapter beside each layer", False), ("merged", True)):
            policy.merge_lora = merge
            lora_decode[name].append(_decode(policy, anchors, shots, params, True))
    pitch = "Meet it: great value, 2 years of warranty. Yours for just $49.99.</sales_pitch>"
    encoded = [(policy.tokenize(prompts[a.anchor_id]), policy.tokenize(pitch, add_special_tokens=False))
               for a in anchors[:8]]
    policy.module.train()
    arms = {"whole rows, passes of 2": (2, False, False), "shared, passes of 2": (2, True, False),
            "shared, passes of 4": (4, True, False), "shared, passes of 8": (8, True, False),
            "shared and batched, passes of 4": (4, True, True), "shared and batched, passes of 8": (8, True, True)}
    sft: dict[str, list[float]] = {name: [] for name in arms}
    grads: dict[str, list[torch.Tensor]] = {}
    for rows_per_pass, share, batch in arms.values():  # warm-up
        _sft_step(policy, encoded, rows_per_pass, share, batch=batch)
    for _ in range(args.repeats):
        for name, (rows_per_pass, share, batch) in arms.items():
            seconds, grads[name] = _sft_step(policy, encoded, rows_per_pass, share, batch=batch)
            sft[name].append(seconds)
    _, float32 = _sft_step(policy, encoded, 2, False, bf16=False)
    _, float32_shared = _sft_step(policy, encoded, 4, True, bf16=False)
    _, float32_batched = _sft_step(policy, encoded, 8, True, bf16=False, batch=True)

    reference = statistics.median(sft["whole rows, passes of 2"])
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), "
                   f"torch {torch.__version__}",
        "shared_tokens": shared_prefix_length(rows), "prompt_tokens_mean": sum(map(len, rows)) / len(rows),
        "decode_seconds": {k: statistics.median(v) for k, v in decode.items()},
        "decode_speedup": statistics.median(decode["whole rows"]) / statistics.median(decode["shared prefix"]),
        "lora_decode_seconds": {k: statistics.median(v) for k, v in lora_decode.items()},
        "lora_decode_speedup": statistics.median(lora_decode["adapter beside each layer"])
        / statistics.median(lora_decode["merged"]),
        "sft_step_seconds": {k: statistics.median(v) for k, v in sft.items()},
        "sft_speedup": {k: reference / statistics.median(v) for k, v in sft.items()},
        # against whole rows: the shared arms under bf16, then shared passes of 4 in float32 (no autocast); and for
        # scale, bf16 whole rows against float32 whole rows
        "grad_relative_difference": {k: _relative(g, grads["whole rows, passes of 2"]) for k, g in grads.items()
                                     if k != "whole rows, passes of 2"},
        "grad_relative_difference_float32": _relative(float32_shared, float32),
        "grad_relative_difference_float32_batched": _relative(float32_batched, float32),
        "grad_relative_difference_bf16_vs_float32": _relative(grads["whole rows, passes of 2"], float32),
        "rounds": {"decode": decode, "lora_decode": lora_decode, "sft": sft},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
