"""Modular state-tracking chains for a tinylm: the CPU-sized form of h1's composed problems.

A depth-h chain over Z_M: x0 = c0, then x_j = x_{r_j} op_j c_j (mod M) for j = 1..h. Serial chains
(the default, and h1's chains) read the previous answer, r_j = j - 1, and render compactly:
prompt "5 + 3 - 7 ?", worked target "8 - 7 ? 1 ? ans = 1": after each step the remaining chain is
rewritten, so every step is the same local operation at any depth (a format meant to extend past the
depths seen in fine-tuning). With `serial=False`, r_j is drawn uniformly from the
earlier variables (spec section 7's back-references): prompt "x0 = 5 ; x1 = x0 + 3 ; x2 = x0 - 7 ; ? x2 :",
target "x1 = 8 ; x2 = 21 ; ans = 21". With `width=W`, the slot layout: each line is "v : s1 .. sW", the
chain's steps as one-token ops, an end mark ".", then filler; each worked line applies s1 to v and shifts
the slots left ("_" enters at sW); a line whose s1 is "." is followed by the answer. Prompt "5 : +3 -7 . *2",
target "8 : -7 . *2 _ 1 : . *2 _ _ ans = 1". Every line has W + 2 tokens at every depth, so each step copies
from the same offset and the stop test reads one slot. With `rotate=True`, s1 moves to the end instead of a
blank ("8 : -7 . *2 +3 1 : . *2 +3 -7"), so no line shows how many lines came before it. `skip_rate` gives
some chains one blank step "_" among their steps: a line that keeps the value (the chain's depth, its number
of real steps, is unchanged), so that fine-tuning on depths 1 and 2 does not teach "the second line is the
last" (benchmarks/RESULTS.md, h1, "Slot layout"); `max_skips` > 1 gives them several. With
`lines="value"` each worked line is the value alone ("8 1 ans = 1"): the k-th value reads the prompt's k-th
slot, at the same distance at every depth (the `values` experiment preset). Tokens are words (numbers 0..M-1 are single tokens); a random guess
is right 1/M of the time.

    chains = make_modular_chains(depth=3, count=4, seed=0)
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasonlab.train.sft import Example
from reasonlab.train.tinylm import Tokenizer

__all__ = ["ModularChain", "make_modular_chains", "modular_tokenizer", "op_words", "sft_examples", "solve_modular"]


LABELS = tuple("abcdefghijklmnopqrst")  # step names of labelled chains: random, so they must be copied
OPERATIONS = {"+": lambda x, c: x + c, "-": lambda x, c: x - c, "*": lambda x, c: x * c}
END, BLANK = ".", "_"  # slot layout: end of the chain's steps; what enters the row as it shifts


@dataclass(frozen=True)
class ModularChain:
    """x0 = start; step j: (reference r_j, op_j, constant c_j); `answer` is x_h."""

    start: int
    steps: tuple[tuple[int, str, int], ...]
    modulus: int
    labels: tuple[str, ...] = ()  # serial chains only: a random name per step, copied into the worked target
    filler: tuple[str, ...] = ()  # slot layout only: the slots after the end mark
    width: int = 0  # slot layout: slots per row (0: another layout)
    skips: tuple[int, ...] = ()  # slot layout: row positions of blank steps (a line that changes nothing)
    rotate: bool = False  # slot layout: s1 moves to the end of the row (else a blank enters there)
    lines: str = "row"  # slot layout: each worked line holds the value and the moved row ("row") or the value ("value")

    @property
    def depth(self) -> int:
        return len(self.steps)

    @property
    def values(self) -> list[int]:
        return solve_modular(self)

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def serial(self) -> bool:
        """Every step reads the previous value (r_j = j - 1)."""
        return all(r == j for j, (r, _, _) in enumerate(self.steps))

    @property
    def slots(self) -> list[str]:
        """Slot layout: the prompt's slot row (steps with any blank steps among them, end mark, filler)."""
        row = [f"{op}{c}" for _, op, c in self.steps]
        for position in sorted(self.skips):
            row.insert(position, BLANK)
        return [*row, END, *self.filler]

    @property
    def prompt(self) -> str:
        if self.width:  # "5 : +3 -7 . *2"
            return " ".join([str(self.start), ":", *self.slots])
        if self.labels:  # "5 k + 3 d - 7 ?": each step carries its label
            return " ".join([str(self.start), *(f"{n} {op} {c}" for n, (_, op, c) in zip(self.labels, self.steps, strict=True)), "?"])
        if self.serial:  # compact form: "x0 op1 c1 op2 c2 ... ?"
            return " ".join([str(self.start), *(f"{op} {c}" for _, op, c in self.steps), "?"])
        lines = [f"x0 = {self.start}"]
        lines += [f"x{j} = x{r} {op} {c}" for j, (r, op, c) in enumerate(self.steps, start=1)]
        return " ; ".join(lines) + f" ; ? x{self.depth} :"

    @property
    def target(self) -> str:
        if self.width and self.lines == "value":  # "8 1 ans = 1": the k-th value reads the prompt's k-th slot
            values, value, written = iter(self.values[1:]), self.start, []
            for slot in self.slots[:self.slots.index(END)]:
                value = value if slot == BLANK else next(values)
                written.append(str(value))
            return " ".join([*written, f"ans = {self.answer}"])
        if self.width:  # "8 : -7 . *2 _ 1 : . *2 _ _ ans = 1"
            row, values, value, lines = self.slots, iter(self.values[1:]), self.start, []
            while row[0] != END:  # s1 gives the next value (a blank step keeps it); the row moves one slot left
                value = value if row[0] == BLANK else next(values)
                row = [*row[1:], row[0] if self.rotate else BLANK]
                lines.append(" ".join([str(value), ":", *row]))
            return " ".join([*lines, f"ans = {self.answer}"])
        if self.labels:  # "k 8 d 1 ans = 1"
            steps = [f"{n} {v}" for n, v in zip(self.labels, self.values[1:], strict=True)]
            return " ".join([*steps, f"ans = {self.answer}"])
        if self.serial:  # rewrite the remaining chain after each step: "8 - 2 + 4 ? 6 + 4 ? 10 ? ans = 10"
            lines = [" ".join([str(v), *(f"{op} {c}" for _, op, c in self.steps[j:]), "?"])
                     for j, v in enumerate(self.values[1:], start=1)]
            return " ".join([*lines, f"ans = {self.answer}"])
        worked = [f"x{j} = {v}" for j, v in enumerate(self.values[1:], start=1)]
        return " ; ".join([*worked, f"ans = {self.answer}"])


def solve_modular(chain: ModularChain) -> list[int]:
    """Reference solver: x0..x_h."""
    values = [chain.start]
    for r, op, c in chain.steps:
        values.append(OPERATIONS[op](values[r], c) % chain.modulus)
    return values


def make_modular_chains(
    depth: int, count: int, seed: int, modulus: int = 31, max_constant: int = 4, serial: bool = True,
    labelled: bool = False, ops: str = "+-", width: int = 0, skip_rate: float = 0.0,
    rotate: bool = False, max_skips: int = 1, lines: str = "row",
) -> list[ModularChain]:
    """`count` random depth-`depth` chains; constants are 1..max_constant; `serial` chains read
    the previous value at every step, the others a uniformly drawn earlier variable. `ops` is drawn from
    "+", "-" and "*" ("*" uses constants 2..max_constant + 1, so no step is the identity). `width` > 0
    renders serial chains in the slot layout, the slots after the end mark filled with random ops and end
    marks (so copying is trained on every slot); there, `skip_rate` is the chance that a chain gets one
    blank step at a random place among its steps (the depth is unchanged, the worked chain one line longer);
    with `max_skips` > 1 such a chain gets 1..max_skips blank steps (as many as the row holds), so that the
    warm start sees worked chains of every length; `rotate` moves each applied step to the end of the row
    instead of letting a blank in; `lines="value"` writes each worked line as the value alone."""
    if not ops or set(ops) - set(OPERATIONS):
        raise ValueError(f"ops={ops!r} must be a non-empty string of {''.join(OPERATIONS)}")
    if width and (width <= depth + (skip_rate > 0) or not serial or labelled):
        raise ValueError(f"width={width} holds serial, unlabelled chains of depth < width only "
                         f"(one less with skip_rate > 0): got depth {depth}")
    if skip_rate and not width:
        raise ValueError(f"skip_rate={skip_rate} needs the slot layout: pass width > 0")
    if lines not in ("row", "value"):
        raise ValueError(f"lines={lines!r} must be 'row' or 'value'")
    if lines == "value" and not width:
        raise ValueError("lines='value' needs the slot layout: pass width > 0")
    if max_skips < 1:
        raise ValueError(f"max_skips={max_skips} must be at least 1")
    rng = random.Random(f"{seed}-{depth}-{modulus}-{serial}-{labelled}" + (f"-w{width}" if width else ""))
    fillers = [*op_words(ops, max_constant), END, END, END]
    chains = []
    for _ in range(count):
        steps = tuple(_step(rng, j - 1 if serial else rng.randrange(j), ops, max_constant) for j in range(1, depth + 1))
        labels = tuple(rng.sample(LABELS, depth)) if labelled and serial else ()
        skips = _skips(rng, depth, width, max_skips) if skip_rate and rng.random() < skip_rate else ()
        filler = tuple(rng.choice(fillers) for _ in range(width - depth - len(skips) - 1)) if width else ()
        chains.append(ModularChain(rng.randrange(modulus), steps, modulus, labels, filler, width, skips, rotate, lines))
    return chains


def _skips(rng: random.Random, depth: int, width: int, max_skips: int) -> tuple[int, ...]:
    """Row positions of a chain's blank steps: one (the first slot layout's draw), or 1..max_skips that fit."""
    if max_skips == 1:
        return (rng.randint(0, depth),)
    count = rng.randint(1, min(max_skips, width - depth - 1))
    return tuple(sorted(rng.sample(range(depth + count), count)))


def op_words(ops: str, max_constant: int) -> list[str]:
    """The slot layout's one-token steps: '+1'.., '*2'.. (constants as `make_modular_chains` draws them)."""
    return [f"{op}{c}" for op in ops for c in range(1 + (op == "*"), max_constant + 1 + (op == "*"))]


def _step(rng: random.Random, reference: int, ops: str, max_constant: int) -> tuple[int, str, int]:
    op = rng.choice(ops)
    return reference, op, rng.randint(1, max_constant) + (op == "*")


def modular_tokenizer(modulus: int = 31, max_depth: int = 12, ops: str = "+-", max_constant: int = 0) -> Tokenizer:
    """Word tokens: 0..M-1, x0..x_maxdepth, = + - ; ? : ans (and * when `ops` has it); with `max_constant`,
    also the slot layout's one-token steps and its marks "." and "_"."""
    words = [str(i) for i in range(max(modulus, 10))] + [f"x{j}" for j in range(max_depth + 1)]
    slot_words = [*op_words(ops, max_constant), END, BLANK] if max_constant else []
    return Tokenizer([*words, *LABELS, "=", "+", "-", ";", "?", ":", "ans", *("*" if "*" in ops else ""), *slot_words],
                     level="word")


def sft_examples(chains: list[ModularChain]) -> list[Example]:
    """Warm-start examples: prompt -> worked chain (the trailing space keeps word tokens apart)."""
    return [Example(chain.prompt + " ", chain.target) for chain in chains]
