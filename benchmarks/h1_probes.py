"""h1 probes: does a warm start fine-tuned on depths 1-2 solve deeper chains, and how fast does RL move a depth?

    # warm start: greedy and sampled (T=1) accuracy per depth on 128 held-out chains
    .venv/bin/python benchmarks/h1_probes.py warm-start --position-encoding none --ops "+-*" --sft-steps 3000
    # the same for a preset of the experiment, with fields changed (--set as in the CLI); held-out chains as the experiment's
    .venv/bin/python benchmarks/h1_probes.py warm-start --preset slots --set width=8 --set max_depth=5 --depths 1 2 3 4 5 6 7
    # the same, followed during fine-tuning: accuracy per depth every 100 steps
    .venv/bin/python benchmarks/h1_probes.py warm-start --preset values --every 100 --depths 1 2 3 4 6 8 10
    # RL at depth 2 only from the main preset's warm start: sampled reward per 20 iterations, greedy after
    .venv/bin/python benchmarks/h1_probes.py rl-speed --loss grpo --lr 3e-4 --iterations 200

Both use `systems/h1/experiment.py` (the same warm start and chains as the experiment) on one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from reasonlab.config import lookup_preset, resolve_config
from reasonlab.llm.base import SamplingParams
from reasonlab.systems.h1.config import EVAL_SEED, PRESETS, ExperimentConfig
from reasonlab.systems.h1.environment import ChainEnvironment
from reasonlab.systems.h1.evaluation import accuracy
from reasonlab.systems.h1.experiment import warm_start
from reasonlab.systems.h1.modular import make_modular_chains
from reasonlab.train.rl import RLConfig, RLTrainer
from reasonlab.train.tinylm import TinyLM


def probe_warm_start(
    config: ExperimentConfig, seed: int, depths: list[int], preset: bool = False, every: int = 0
) -> None:
    started = time.perf_counter()
    if preset:  # the experiment's own held-out chains for this seed
        held_out = {d: config.chains(d, 128, EVAL_SEED + seed) for d in depths}
    else:
        held_out = {d: make_modular_chains(d, 128, EVAL_SEED, config.modulus, config.max_constant, ops=config.ops)
                    for d in depths}

    def report(policy: TinyLM) -> str:
        greedy = {d: accuracy(policy, chains, config.max_tokens)[0] for d, chains in held_out.items()}
        sampled = {d: accuracy(policy, chains, config.max_tokens, temperature=1.0)[0] for d, chains in held_out.items()}
        return "  ".join(f"d{d} {greedy[d]:.2f} ({sampled[d]:.2f})" for d in depths)

    def watch(steps: int, policy: TinyLM) -> None:
        if every and steps % every == 0:
            print(f"step {steps}: {report(policy)}", flush=True)

    if every:
        config = config.model_copy(update={"sft_check_every": every})
    policy, steps = warm_start(config, seed, watch)
    print(f"warm start: {steps} steps, {time.perf_counter() - started:.0f} s")
    print(f"greedy (T=1): {report(policy)}", flush=True)


def probe_rl_speed(config: ExperimentConfig, seed: int, loss: str, lr: float, iterations: int) -> None:
    base, _ = warm_start(config, seed)
    held_out = make_modular_chains(2, 96, EVAL_SEED, config.modulus, config.max_constant, ops=config.ops)
    print(f"warm start, greedy depth 2: {accuracy(base, held_out, config.max_tokens)[0]:.3f}")
    policy = TinyLM(copy.deepcopy(base.module), base.tokenizer)
    rl = RLConfig(loss_type=loss, iterations=iterations, tasks_per_iteration=8, group_size=8, learning_rate=lr,
                  seed=seed, sampling=SamplingParams(temperature=1.0, max_tokens=config.max_tokens), progress=False)
    trainer = RLTrainer(rl, policy, ChainEnvironment())
    rewards = [trainer.iteration(i, make_modular_chains(2, 8, 100 + i, config.modulus, config.max_constant,
                                                        ops=config.ops))["reward_mean"] for i in range(iterations)]
    means = [sum(rewards[i:i + 20]) / len(rewards[i:i + 20]) for i in range(0, iterations, 20)]
    print(f"{loss} lr {lr}: sampled reward per 20 iterations {[round(m, 2) for m in means]}")
    print(f"greedy depth 2 after: {accuracy(policy, held_out, config.max_tokens)[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["warm-start", "rl-speed"])
    parser.add_argument("--position-encoding", default="rope", choices=["rope", "none"])
    parser.add_argument("--ops", default="+-")
    parser.add_argument("--sft-steps", type=int, default=400)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=96)
    parser.add_argument("--sft-lr", type=float, default=3e-3)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--loss", default="grpo", choices=["grpo", "dr_grpo", "gspo"])
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=0, help="warm-start: also report every N fine-tuning steps")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="warm-start only: start from this preset "
                        "(the options above are then ignored)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="with --preset: change a field")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # max_depth sizes the tokenizer (and so the initial weights): 4 as in the main preset, 2 for the depth-2 RL probe
    config = ExperimentConfig(position_encoding=args.position_encoding, ops=args.ops, sft_steps=args.sft_steps,
                              n_layer=args.layers, d_model=args.d_model, sft_learning_rate=args.sft_lr,
                              max_depth=4 if args.probe == "warm-start" else 2)
    if args.preset:
        config = resolve_config(ExperimentConfig, lookup_preset(PRESETS, args.preset), None, args.set)
    if args.probe == "warm-start":
        probe_warm_start(config, args.seed, args.depths, preset=bool(args.preset), every=args.every)
    else:
        probe_rl_speed(config, args.seed, args.loss, args.lr, args.iterations)


if __name__ == "__main__":
    main()
