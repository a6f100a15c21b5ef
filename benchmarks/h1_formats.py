"""h1 probe: chain formats meant to let a depth-1/2 warm start extend to depth 3 (RESULTS.md, h1, "Formats").

Each format trains a fresh tinylm on `--chains` (default 3000) chains each of depths 1 and 2 (Z_31, ops + - *), and
reports greedy and sampled (T=1) accuracy on 128 held-out chains per depth every `--eval-every` steps (default 500;
each block restarts AdamW; 0 = one block); chance is 1/31 = 0.03.

    # pointer board: six shuffled statements "label op c next-label" (distractor chains fill the board)
    .venv/bin/python benchmarks/h1_formats.py board --steps 1500
    .venv/bin/python benchmarks/h1_formats.py board --label-last --steps 3000   # statements 'op c next label'
    # labelled steps whose stop marker is copied from the prompt ("k 8 d 4 ? ans = 4"), prompt padded by
    # 0-10 filler tokens in front and 0-3 distractor steps behind, so no absolute position marks a step
    .venv/bin/python benchmarks/h1_formats.py labelled --padding random --steps 3000
    # the experiment's rewrite format plus a generic copy corpus of 1-8-step sequences
    .venv/bin/python benchmarks/h1_formats.py copy --steps 2500
    # two registers, a fixed-length walk; depth = the steps on the asked register (the rest are distractors)
    .venv/bin/python benchmarks/h1_formats.py walk --walk 6 --chains 20000 --steps 6000 --eval-every 0
    # the same, asking for the register of the last step (the answer is the last value written)
    .venv/bin/python benchmarks/h1_formats.py walk --ask-last --walk 6 --chains 20000 --steps 6000 --eval-every 0
    # fixed-width slot rows shifted left one slot per step, an end mark, random filler (see modular.py)
    .venv/bin/python benchmarks/h1_formats.py slots --chains 20000 --steps 4000 --eval-every 0

Everything here is probe code: the experiment's formats live in `reasonlab.systems.h1.modular`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from reasonlab.llm.base import SamplingParams
from reasonlab.systems.h1.evaluation import accuracy
from reasonlab.systems.h1.modular import LABELS, OPERATIONS, make_modular_chains, modular_tokenizer
from reasonlab.train import sft
from reasonlab.train.sft import Example
from reasonlab.train.tinylm import TinyLM, TinyLMConfig

MODULUS, OPS, MAX_CONSTANT = 31, "+-*", 4
EVAL_SEED = 10_000


@dataclass(frozen=True)
class Chain:
    prompt: str
    target: str
    answer: int
    depth: int


def _step(rng: random.Random) -> tuple[str, int]:
    op = rng.choice(OPS)
    return op, rng.randint(1, MAX_CONSTANT) + (op == "*")


def board_chains(depth: int, count: int, seed: int, board: int = 6, label_last: bool = False) -> list[Chain]:
    """'f - 2 ? ; i - 4 f ; a * 2 i ; ... : a 21' -> 'i 11 f 7 ? 5 ans = 5': follow labels from the start.
    `label_last` writes each statement as 'op c next label' ('- 4 f i'), so a label's own token sees its
    statement (causal attention) and one lookup reads all of it."""
    rng = random.Random(f"board-{seed}-{depth}")
    chains = []
    for _ in range(count):
        labels = rng.sample(LABELS, board)

        def statements(names: list[str]) -> list[tuple[str, str, int, str]]:
            return [(name, *_step(rng), names[j + 1] if j + 1 < len(names) else "?") for j, name in enumerate(names)]

        walk = statements(labels[:depth])
        rest, lines = labels[depth:], list(walk)
        while rest:  # distractor chains of 1-3 statements
            size = rng.randint(1, min(3, len(rest)))
            lines, rest = lines + statements(rest[:size]), rest[size:]
        rng.shuffle(lines)
        value = start = rng.randrange(MODULUS)
        worked = []
        for _, op, c, following in walk:
            value = OPERATIONS[op](value, c) % MODULUS
            worked.append(f"{following} {value}")
        rendered = [(*line[1:], line[0]) if label_last else line for line in lines]
        prompt = " ; ".join(" ".join(map(str, line)) for line in rendered) + f" : {labels[0]} {start}"
        chains.append(Chain(prompt, " ".join(worked) + f" ans = {value}", value, depth))
    return chains


def labelled_chains(depth: int, count: int, seed: int, padding: str = "none") -> list[Chain]:
    """'5 k + 3 d - 4 ?' -> 'k 8 d 4 ? ans = 4'; padding 'random' adds 0-10 ';' in front, 0-3 steps behind."""
    rng = random.Random(f"labelled-{seed}-{depth}-{padding}")
    chains = []
    for _ in range(count):
        names = rng.sample(LABELS, depth)
        steps = [(name, *_step(rng)) for name in names]
        value = start = rng.randrange(MODULUS)
        worked = []
        for name, op, c in steps:
            value = OPERATIONS[op](value, c) % MODULUS
            worked.append(f"{name} {value}")
        prompt = f"{start} " + " ".join(f"{n} {op} {c}" for n, op, c in steps) + " ?"
        if padding == "random":
            tail = [f"{n} {op} {c}" for n in rng.sample([x for x in LABELS if x not in names], rng.randint(0, 3))
                    for op, c in [_step(rng)]]
            prompt = " ".join([";"] * rng.randint(0, 10) + [prompt] + ([" ".join(tail) + " ?"] if tail else []))
        chains.append(Chain(prompt, " ".join(worked) + f" ? ans = {value}", value, depth))
    return chains


def walk_chains(depth: int, count: int, seed: int, walk: int = 6, ask_last: bool = False) -> list[Chain]:
    """Two registers, `walk` steps, `depth` of them on the asked register and the rest on the other:
    'a 5 b 7 : b + 3 a * 2 b - 4 ... ? a' -> 'b 10 a 10 b 6 ... ans = 10'. The worked walk has the same
    length at every depth, so depth only changes how many steps the answer depends on. `ask_last` asks for
    the register of the last step, so the answer is the last value written (no final lookup)."""
    rng = random.Random(f"walk-{seed}-{depth}-{walk}" + ("-last" if ask_last else ""))
    chains = []
    for _ in range(count):
        asked, other = rng.sample("ab", 2)
        names = [asked] * (depth - ask_last) + [other] * (walk - depth)
        rng.shuffle(names)
        names += [asked] * ask_last
        values = {"a": rng.randrange(MODULUS), "b": rng.randrange(MODULUS)}
        start = f"a {values['a']} b {values['b']}"
        steps, worked = [], []
        for name in names:
            op, c = _step(rng)
            values[name] = OPERATIONS[op](values[name], c) % MODULUS
            steps.append(f"{name} {op} {c}")
            worked.append(f"{name} {values[name]}")
        prompt = f"{start} : " + " ".join(steps) + f" ? {asked}"
        chains.append(Chain(prompt, " ".join(worked) + f" ans = {values[asked]}", values[asked], depth))
    return chains


def slot_chains(depth: int, count: int, seed: int, width: int = 7) -> list[Chain]:
    """The slot layout of `modular.make_modular_chains(width=...)`: '5 : +3 -7 . *2' -> '8 : -7 . *2 _ 1 : ...'."""
    return [Chain(c.prompt, c.target, c.answer, c.depth)
            for c in make_modular_chains(depth, count, seed, MODULUS, MAX_CONSTANT, ops=OPS, width=width)]


def rewrite_chains(depth: int, count: int, seed: int) -> list[Chain]:
    return [Chain(c.prompt, c.target, c.answer, c.depth)
            for c in make_modular_chains(depth, count, seed, MODULUS, MAX_CONSTANT, ops=OPS)]


def copy_corpus(count: int, seed: int, max_steps: int = 8) -> list[Example]:
    """': 19 * 5 - 2 ?' -> '19 * 5 - 2 ?': copying of 1-8-step sequences in the chains' own tokens."""
    rng = random.Random(f"copy-{seed}")
    examples = []
    for _ in range(count):
        words = [str(rng.randrange(MODULUS))]
        for _ in range(rng.randint(1, max_steps)):
            words += map(str, _step(rng))
        text = " ".join(words) + " ?"
        examples.append(Example(f": {text} ", text))
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=["board", "labelled", "copy", "walk", "slots"])
    parser.add_argument("--width", type=int, default=7, help="slots format only: slots per line")
    parser.add_argument("--walk", type=int, default=6, help="walk format only: steps per chain")
    parser.add_argument("--ask-last", action="store_true", help="walk format only: ask for the last step's register")
    parser.add_argument("--label-last", action="store_true", help="board format only: 'op c next label'")
    parser.add_argument("--padding", choices=["none", "random"], default="none", help="labelled format only")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--eval-every", type=int, default=500,
                        help="evaluate every N steps; each block of N steps restarts the optimizer (0: one block)")
    parser.add_argument("--chains", type=int, default=3000, help="fine-tuning chains per depth (1 and 2)")
    parser.add_argument("--position-encoding", default="rope", choices=["rope", "none"])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--d-model", type=int, default=96)
    args = parser.parse_args()
    torch.set_num_threads(1)
    make: Callable[[int, int, int], list[Chain]] = {
        "board": lambda d, n, s: board_chains(d, n, s, label_last=args.label_last), "copy": rewrite_chains,
        "walk": lambda d, n, s: walk_chains(d, n, s, args.walk, args.ask_last),
        "labelled": lambda d, n, s: labelled_chains(d, n, s, args.padding),
        "slots": lambda d, n, s: slot_chains(d, n, s, args.width)}[args.format]
    tokenizer = modular_tokenizer(MODULUS, 8, OPS, MAX_CONSTANT if args.format == "slots" else 0)
    shape = TinyLMConfig(vocab_size=len(tokenizer), n_layer=args.layers, d_model=args.d_model, n_head=4,
                         position_encoding=args.position_encoding)
    policy = TinyLM.create(shape, tokenizer, seed=0)
    data = [Example(c.prompt + " ", c.target) for depth in (1, 2) for c in make(depth, args.chains, 0)]
    if args.format == "copy":
        data += copy_corpus(3000, 0)
    depths = range(1, args.walk + 1) if args.format == "walk" else range(1, args.width if args.format == "slots" else 6)
    eval_sets = {depth: make(depth, 128, EVAL_SEED) for depth in depths}
    max_tokens = {"walk": max(48, 2 * args.walk + 8), "slots": (args.width + 2) * args.width + 4}.get(args.format, 48)
    started = time.perf_counter()
    block_steps = args.eval_every or args.steps
    for block in range(args.steps // block_steps):
        config = sft.SFTConfig(max_steps=block_steps, batch_size=64, learning_rate=3e-3, warmup_ratio=0.05,
                               seed=block, progress=False)
        sft.train(config, policy, data)  # each block is a new optimizer (fresh AdamW state and warm-up)
        greedy = {d: round(accuracy(policy, s, max_tokens)[0], 3) for d, s in eval_sets.items()}
        sampled = {d: round(accuracy(policy, s, max_tokens, temperature=1.0)[0], 3) for d, s in eval_sets.items() if d >= 3}
        print(f"{block_steps * (block + 1)} steps ({time.perf_counter() - started:.0f} s): greedy {greedy}  T=1 {sampled}",
              flush=True)
    outputs = policy.generate([c.prompt for c in eval_sets[3][:4]], SamplingParams(temperature=0, max_tokens=max_tokens))
    for chain, output in zip(eval_sets[3][:4], outputs, strict=True):
        print(f"depth 3: {chain.prompt} | want {chain.target} | got {output[0].text}")


if __name__ == "__main__":
    main()
