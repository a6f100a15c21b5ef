"""Tasks for Delethink: a counter-free permutation walk for the tinylm experiment, and templated arithmetic
for zero-shot tracing of a base model.

Permutation walk (Markovian by design). A fixed random single-cycle permutation f of Z_N and a fixed weight
map w: Z_N -> Z_K. The query names a start x_0 and a target; the trace walks x_t = f(x_{t-1}) and keeps a
running accumulator s_t = s_{t-1} + w(x_t) mod K, one step "x_t s_t" at a time, until x_T is the target:

    query  "17 > 93 :"       trace "45 c 3 a ... 93 d </think> d" <eos>

The length T is set by how far the target lies along the cycle, and there is no step counter: every token of
a long trace (states, accumulator letters) also appears in short ones, so lengths beyond the training budget
need no unseen token. The live state (x_t, s_t) is two tokens, so it fits any carryover m >= 2.
Control (non-Markovian): the query ends in "?", the trace marks step CONTROL_STEP with "!" after its letter
("45 c 12 a ! 77 d ..."), and the answer is that marked letter s_CONTROL_STEP, not s_T: a fact from early in the
trace that a bounded carryover loses. The marker makes it content-addressed (attend to "!", read the letter
before it), so a 2-layer model can learn it at any T; only the deletion of old tokens can take it away.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from reasonlab.systems.delethink.prompts import ANSWER_MARKER

__all__ = [
    "CONTROL_STEP",
    "ArithmeticTask",
    "PermutationWalk",
    "WalkTask",
    "arithmetic_tasks",
    "extract_arithmetic_answer",
    "extract_walk_answer",
]

END_THINK = "</think>"
CONTROL_STEP = 2  # the control's answer is s_2, marked by "!" at trace token 5
CONTROL_MARK = "!"


@dataclass(frozen=True)
class WalkTask:
    """One walk: start, target, number of steps T, and whether it is the non-Markovian control."""

    start: int
    target: int
    steps: int
    control: bool = False


class PermutationWalk:
    """The walk world: permutation f (one N-cycle), weights w, accumulator alphabet of K letters."""

    def __init__(self, num_states: int = 127, num_letters: int = 5, seed: int = 0) -> None:
        rng = random.Random(seed)
        order = list(range(num_states))
        rng.shuffle(order)
        # one cycle through every state, so any target is reachable from any start in at most N - 1 steps
        self.next_state = {order[i]: order[(i + 1) % num_states] for i in range(num_states)}
        self.weight = {x: rng.randrange(num_letters) for x in range(num_states)}
        self.num_states = num_states
        self.letters = [chr(ord("a") + k) for k in range(num_letters)]

    @property
    def vocabulary(self) -> list[str]:
        """Every word the task uses (for a word-level tinylm tokenizer)."""
        return [str(x) for x in range(self.num_states)] + self.letters + [">", ":", "?", CONTROL_MARK, END_THINK]

    def task(self, steps: int, rng: random.Random, control: bool = False) -> WalkTask:
        """A walk of exactly `steps` steps from a random start."""
        if not 1 <= steps < self.num_states:
            raise ValueError(f"steps={steps} must be in [1, {self.num_states - 1}] for N={self.num_states}")
        start = rng.randrange(self.num_states)
        target = start
        for _ in range(steps):
            target = self.next_state[target]
        return WalkTask(start, target, steps, control)

    def tasks(self, count: int, min_steps: int, max_steps: int, seed: int, control: bool = False) -> list[WalkTask]:
        """`count` walks with T uniform in [min_steps, max_steps]."""
        rng = random.Random(seed)
        return [self.task(rng.randint(min_steps, max_steps), rng, control) for _ in range(count)]

    def walks_of_length(self, steps: int, count: int | None = None) -> list[WalkTask]:
        """One walk of `steps` steps from each of the first `count` start states (every start when None): the
        walks of one length without repeats (there are only `num_states` of them)."""
        count = self.num_states if count is None else count
        if not 1 <= steps < self.num_states:
            raise ValueError(f"steps={steps} must be in [1, {self.num_states - 1}] for N={self.num_states}")
        if not 1 <= count <= self.num_states:
            raise ValueError(f"count={count} must be in [1, {self.num_states}]: a length has {self.num_states} walks")
        walks = []
        for start in range(count):
            target = start
            for _ in range(steps):
                target = self.next_state[target]
            walks.append(WalkTask(start, target, steps))
        return walks

    def query(self, task: WalkTask) -> str:
        return f"{task.start} > {task.target} {'?' if task.control else ':'}"

    def states(self, task: WalkTask) -> list[tuple[int, int]]:
        """(x_t, s_t) for t = 1..T."""
        x, s, out = task.start, 0, []
        for _ in range(task.steps):
            x = self.next_state[x]
            s = (s + self.weight[x]) % len(self.letters)
            out.append((x, s))
        return out

    def answer(self, task: WalkTask) -> str:
        states = self.states(task)
        return self.letters[states[min(CONTROL_STEP, task.steps) - 1 if task.control else -1][1]]

    def trace(self, task: WalkTask) -> str:
        """The reference trace, `</think>` and the answer (the SFT completion, before EOS)."""
        marked = min(CONTROL_STEP, task.steps) if task.control else 0
        steps = " ".join(f"{x} {self.letters[s]}" + (f" {CONTROL_MARK}" if t == marked else "")
                         for t, (x, s) in enumerate(self.states(task), start=1))
        return f"{steps} {END_THINK} {self.answer(task)}"

    def trace_length(self, task: WalkTask) -> int:
        """Tokens of the reference completion including EOS: 2T + 3 (+ 1 for the control's mark)."""
        return 2 * task.steps + 3 + int(task.control)

    def reward(self, task: WalkTask, text: str) -> float:
        """1.0 when the answer after `</think>` is right, else 0.0."""
        return float(extract_walk_answer(text) == self.answer(task))


def extract_walk_answer(text: str) -> str | None:
    """The first word after the last `</think>`; None when the block was never closed.

    >>> extract_walk_answer("45 c 93 d </think> d")
    'd'
    >>> extract_walk_answer("45 c 93") is None
    True
    """
    _, marker, tail = text.rpartition(END_THINK)
    words = tail.split()
    return words[0] if marker and words else None


# templated arithmetic for a base model (its prompt text is in prompts.py)


@dataclass(frozen=True)
class ArithmeticTask:
    """Add up `operands` left to right."""

    operands: tuple[int, ...]

    @property
    def answer(self) -> int:
        return sum(self.operands)


def arithmetic_tasks(count: int, num_operands: int, seed: int) -> list[ArithmeticTask]:
    rng = random.Random(seed)
    return [ArithmeticTask(tuple(rng.randint(1, 9) for _ in range(num_operands))) for _ in range(count)]


def extract_arithmetic_answer(text: str) -> int | None:
    """The integer after the last answer marker.

    >>> extract_arithmetic_answer(" 3 + 4 = 7. Answer: 7")
    7
    """
    found = re.findall(rf"{ANSWER_MARKER}\s*(-?\d+)", text)
    return int(found[-1]) if found else None
