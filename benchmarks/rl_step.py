"""Seconds per RL iteration and tokens/s for a tinylm: the cost of reasonlab.train.rl on this machine.

One iteration = batched rollout of tasks x G episodes (KV-cache sampling) + the fixed optimizer steps
(forward/backward of every segment). Random weights and a synthetic reward (share of even tokens): a random
model rarely samples EOS, so lengths stay near max_tokens and the numbers measure the engine, not learning.

    .venv/bin/python benchmarks/rl_step.py                       # CPU, default shapes, 1 and 2 threads
    .venv/bin/python benchmarks/rl_step.py --device cuda --threads 0   # on a GPU machine
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from reasonlab.llm.base import SamplingParams
from reasonlab.train.rl import Episode, RLConfig, RLTrainer, Step
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer


class EvenTokens:
    """Synthetic environment: prompt = the task's tokens; chunks carry the last `carry` tokens over;
    reward = share of even token ids in the whole episode."""

    def __init__(self, segments: int, carry: int) -> None:
        self.segments, self.carry = segments, carry

    def reset(self, task):
        return list(task)

    def step(self, history: Episode, completion):
        if len(history.segments) >= self.segments:
            tokens = [t for s in history.segments for t in s.completion_ids]
            return Step.finish(sum(t % 2 == 0 for t in tokens) / max(len(tokens), 1))
        return Step.next(list(history.task) + completion.token_ids[-self.carry :])


def measure(args: argparse.Namespace, threads: int) -> dict:
    if threads > 0:
        torch.set_num_threads(threads)
    tokenizer = Tokenizer([f"t{i}" for i in range(args.vocab - 4)], level="word")
    config = TinyLMConfig(
        vocab_size=len(tokenizer), n_layer=args.layers, d_model=args.width, n_head=args.heads
    )
    policy = TinyLM.create(config, tokenizer, seed=0)
    policy.model.to(args.device)
    generator = torch.Generator().manual_seed(0)
    tasks = [
        torch.randint(4, args.vocab, (args.prompt_tokens,), generator=generator).tolist() for _ in range(256)
    ]
    rl_config = RLConfig(
        loss_type=args.loss_type,
        tasks_per_iteration=args.tasks,
        group_size=args.group_size,
        max_segments=args.segments,
        sampling=SamplingParams(temperature=1.0, max_tokens=args.max_tokens),
        optimizer_steps_per_iteration=args.steps,
        micro_batch_size=args.micro_batch,
        learning_rate=1e-4,
        progress=False,
    )
    trainer = RLTrainer(rl_config, policy, EvenTokens(args.segments, args.carry))
    records = []
    for iteration in range(args.warmup + args.iterations):
        batch = tasks[iteration * args.tasks % 256 :][: args.tasks]
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        metrics = trainer.iteration(iteration, batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        metrics["wall"] = time.perf_counter() - started
        if iteration >= args.warmup:
            records.append(metrics)
    mean = lambda key: sum(r[key] for r in records) / len(records)  # noqa: E731
    episodes = args.tasks * args.group_size
    generated = mean("completion_tokens_mean") * episodes
    return {
        "threads": threads or torch.get_num_threads(),
        "parameters": sum(p.numel() for p in policy.module.parameters()),
        "episodes_per_iteration": episodes,
        "generated_tokens_per_iteration": round(generated),
        "seconds_per_iteration": round(mean("wall"), 3),
        "rollout_seconds": round(mean("rollout_seconds"), 3),
        "train_seconds": round(mean("train_seconds"), 3),
        "rollout_tokens_per_second": round(generated / mean("rollout_seconds")),
        "train_tokens_per_second": round(generated / mean("train_seconds")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # model
    parser.add_argument("--layers", type=int, default=3, help="tinylm blocks")
    parser.add_argument("--width", type=int, default=96, help="tinylm d_model")
    parser.add_argument("--heads", type=int, default=4, help="attention heads")
    parser.add_argument("--vocab", type=int, default=128, help="vocabulary size")
    # iteration shape
    parser.add_argument("--tasks", type=int, default=16, help="tasks (groups) per iteration")
    parser.add_argument("--group-size", type=int, default=8, help="G, episodes per task")
    parser.add_argument("--prompt-tokens", type=int, default=16, help="prompt length")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per segment")
    parser.add_argument("--segments", type=int, default=1, help="segments per episode (Delethink chunks)")
    parser.add_argument("--carry", type=int, default=16, help="tokens carried into the next segment's prompt")
    parser.add_argument("--loss-type", default="grpo", help="grpo, dr_grpo or gspo")
    parser.add_argument("--steps", type=int, default=1, help="optimizer steps per iteration")
    parser.add_argument("--micro-batch", type=int, default=64, help="rows per forward pass")
    # measurement
    parser.add_argument("--iterations", type=int, default=5, help="measured iterations")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured iterations first")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op threads (0: default)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    results = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads available",
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "args": vars(args),
        "runs": [measure(args, threads) for threads in args.threads],
    }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
