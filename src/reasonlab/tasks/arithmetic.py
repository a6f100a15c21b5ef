"""Arithmetic word problems with a numeric answer, and chains of them where each answer feeds the next.

An `Atom` is a problem template with numeric slots plus a solution program over those slots, so the answer
can be recomputed after any slot is replaced. Atoms come from our own templates (`template_atoms`) or from
GSM8K-format JSONL (`load_gsm8k_jsonl`: {"question", "answer": "... <<a*b=c>> ... #### 42"}), whose
calculator annotations become the solution program.

`compose_chain(atoms, rng)` builds a depth-h chain as in h1 (arXiv 2510.07312): y_1 = f_1(x_1); a numeric slot
of problem j+1 is replaced by an adapter of y_j ("the answer to problem j", times k), and the ground truth is
recomputed by the reference solver. Chains with a non-integer, negative or oversized value are rejected.

    atoms = template_atoms()
    chain = compose_chain(atoms[:3], random.Random(0))
    numeric_reward(r"... \\boxed{42}", chain.answer)
"""

from __future__ import annotations

import ast
import json
import operator
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from reasonlab.errors import UserError

__all__ = [
    "ANSWER_INSTRUCTION",
    "Atom",
    "Chain",
    "ChainLink",
    "atom_from_gsm8k",
    "compose_chain",
    "evaluate",
    "extract_answer",
    "load_gsm8k_jsonl",
    "make_chains",
    "numeric_reward",
    "parse_number",
    "template_atoms",
]

ANSWER_INSTRUCTION = "Solve the problems in order and give only the last answer as \\boxed{N}."
MAX_VALUE = 10**6

_OPERATORS: dict[type, Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str, values: dict[str, Fraction | int | float]) -> Fraction:
    """Exact value of an arithmetic expression (+ - * / and parentheses) over named values; the one safe
    evaluator of the package (no names but `values`, no calls). Every problem is a ValueError that says what.

    >>> evaluate("(a + 2) * b / 4", {"a": 4, "b": 3})
    Fraction(9, 2)
    """

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ValueError(f"division by zero in {expression!r}")
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return Fraction(str(node.value))
        if isinstance(node, ast.Name):
            if node.id not in values:
                known = ", ".join(values) or "none"
                raise ValueError(f"unknown variable {node.id!r} in {expression!r}; the known names are {known}")
            return Fraction(values[node.id])
        raise ValueError(f"unsupported expression part {ast.dump(node)[:60]} in {expression!r}")

    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"syntax error in {expression!r}") from None
    return walk(tree.body)


@dataclass(frozen=True)
class Atom:
    """A problem template: `text` has {slot} fields, `program` is a list of (name, expression) steps whose last
    name is the answer; `slots` are the numbers that may be replaced by a previous answer."""

    text: str
    values: dict[str, int]
    program: tuple[tuple[str, str], ...]
    unit: str = ""
    source: str = "template"

    @property
    def slots(self) -> list[str]:
        return sorted(self.values)

    def solve(self, values: dict[str, int] | None = None) -> Fraction:
        """Reference solver: run the program on `values` (default: the atom's own numbers)."""
        env: dict[str, Fraction | int] = dict(self.values if values is None else values)
        result = Fraction(0)
        for name, expression in self.program:
            result = evaluate(expression, env)
            env[name] = result
        return result

    def render(self, values: dict[str, int] | None = None, replaced: dict[str, str] | None = None) -> str:
        """The problem text with numbers filled in; `replaced` maps a slot to a phrase instead of a number."""
        filled = {k: f"{v:,}" for k, v in (self.values if values is None else values).items()}
        filled.update(replaced or {})
        return self.text.format(**filled)


# our own templates: (text, values, program); every program's last step is the answer
_TEMPLATES: list[tuple[str, dict[str, int], list[tuple[str, str]], str]] = [
    ("Mia has {a} apples and buys {b} more. How many apples does Mia have now?",
     {"a": 7, "b": 5}, [("y", "a + b")], "apples"),
    ("A box holds {a} pencils. How many pencils are in {b} boxes?",
     {"a": 12, "b": 4}, [("y", "a * b")], "pencils"),
    ("Leo had {a} dollars and spent {b} dollars on lunch. How many dollars does he have left?",
     {"a": 50, "b": 18}, [("y", "a - b")], "dollars"),
    ("A baker makes {a} muffins and packs them {b} to a tray. How many trays does she fill?",
     {"a": 48, "b": 6}, [("y", "a / b")], "trays"),
    ("A train travels {a} km every hour for {b} hours, then {c} km more. How many km does it travel?",
     {"a": 60, "b": 3, "c": 25}, [("t", "a * b"), ("y", "t + c")], "km"),
    ("Sam reads {a} pages a day for {b} days and then {c} pages on Sunday. How many pages does he read?",
     {"a": 15, "b": 6, "c": 10}, [("t", "a * b"), ("y", "t + c")], "pages"),
    ("A farm has {a} hens. Each hen lays {b} eggs a week, and {c} eggs break. How many eggs are left?",
     {"a": 9, "b": 5, "c": 7}, [("t", "a * b"), ("y", "t - c")], "eggs"),
    ("Tickets cost {a} dollars each. A class of {b} students buys tickets with a {c} dollar discount in total. "
     "How many dollars do they pay?",
     {"a": 8, "b": 25, "c": 20}, [("t", "a * b"), ("y", "t - c")], "dollars"),
    ("A tank has {a} liters. It is split equally into {b} jars. How many liters are in each jar?",
     {"a": 36, "b": 4}, [("y", "a / b")], "liters"),
    ("Nina saves {a} dollars a week. How many dollars does she save in {b} weeks?",
     {"a": 11, "b": 8}, [("y", "a * b")], "dollars"),
    ("A shop had {a} shirts, sold {b} and received {c} more. How many shirts does it have?",
     {"a": 40, "b": 13, "c": 9}, [("t", "a - b"), ("y", "t + c")], "shirts"),
    ("There are {a} rows of {b} chairs, and {c} chairs are taken. How many chairs are free?",
     {"a": 6, "b": 10, "c": 17}, [("t", "a * b"), ("y", "t - c")], "chairs"),
]


def template_atoms() -> list[Atom]:
    """Our templated arithmetic word problems (each one verified by its solver on its own numbers)."""
    return [Atom(text, values, tuple(program), unit) for text, values, program, unit in _TEMPLATES]


# GSM8K-format JSONL

_ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w])")


def atom_from_gsm8k(question: str, answer: str) -> Atom:
    """An atom from a GSM8K row. Its calculator annotations become the program; each number of the question
    that appears exactly once there and in the program becomes a slot. A row whose program does not
    reproduce the '#### N' answer keeps no slots (it can only open a chain)."""
    if "####" not in answer:
        raise ValueError("the answer has no '#### N' final line")
    final = parse_number(answer.rsplit("####", 1)[1])
    if final is None:
        raise ValueError("the '#### N' final line holds no number")
    numbers = [m.group(0) for m in _NUMBER_IN_TEXT.finditer(question)]
    unique = [n for n in dict.fromkeys(numbers) if numbers.count(n) == 1 and "." not in n]
    slot_of = {n.replace(",", ""): f"q{i}" for i, n in enumerate(unique)}
    program: list[tuple[str, str]] = []
    result_of: dict[str, str] = {}
    for i, (expression, result) in enumerate(_ANNOTATION.findall(answer)):
        expression = expression.replace(",", "").replace("x", "*").replace("×", "*").replace("÷", "/")

        def name(match: re.Match[str]) -> str:
            literal = match.group(0)
            return result_of.get(literal) or slot_of.get(literal) or literal

        program.append((f"s{i}", re.sub(r"\d+(?:\.\d+)?", name, expression)))
        result_of.setdefault(result.strip().replace(",", ""), f"s{i}")
    values = {slot: int(number) for number, slot in slot_of.items()}
    text = question.replace("{", "{{").replace("}", "}}")
    for number in unique:
        text = re.sub(rf"(?<![\w.]){re.escape(number)}(?![\w])", "{" + slot_of[number.replace(',', '')] + "}", text)
    used = {s for _, e in program for s in re.findall(r"q\d+", e)}
    try:
        ok = bool(program) and Atom(text, values, tuple(program)).solve() == final
    except (ValueError, ZeroDivisionError, SyntaxError):
        ok = False
    if not ok:  # the annotations do not reproduce the answer: keep the text, no slots
        return Atom(question.replace("{", "{{").replace("}", "}}"), {}, (("y", str(final)),), source="gsm8k")
    kept = {s: v for s, v in values.items() if s in used}
    for slot in set(values) - set(kept):  # a number the program never uses is plain text again
        text = text.replace("{" + slot + "}", f"{values[slot]:,}")
    return Atom(text, kept, tuple(program), source="gsm8k")


def load_gsm8k_jsonl(path: str | Path) -> list[Atom]:
    """Atoms from a GSM8K-format JSONL file; a bad row raises a UserError naming its line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"GSM8K file {path} does not exist: pass a JSONL file with 'question' and 'answer' fields")
    atoms = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not isinstance(
                row.get("answer"), str
            ):
                raise ValueError("it needs string fields 'question' and 'answer'")
            atoms.append(atom_from_gsm8k(row["question"], row["answer"]))
        except (json.JSONDecodeError, ValueError) as err:
            raise UserError(f"{path} line {number} is not a valid GSM8K row ({err}): fix or remove that line") from None
    if not atoms:
        raise UserError(f"GSM8K file {path} has no rows: pass a non-empty JSONL file")
    return atoms


# chains


@dataclass(frozen=True)
class ChainLink:
    """One problem of a chain: its text, the slot fed by the previous answer (if any), its answer."""

    text: str
    answer: int
    slot: str | None = None
    value: int | None = None  # what the slot received: adapter(previous answer)
    atom: Atom | None = None


@dataclass(frozen=True)
class Chain:
    """A depth-h composed problem: all h links in one prompt, only the last answer is rewarded."""

    links: tuple[ChainLink, ...]
    prompt: str
    answer: int
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return len(self.links)


def _adapter(rng: random.Random, previous: int) -> tuple[int, str]:
    """phi_j: identity or a small scaling, as (new value, phrase)."""
    k = rng.choice([1, 1, 2, 3])
    if k == 1:
        return previous, ""
    return previous * k, f" times {k}"


def compose_chain(atoms: Sequence[Atom], rng: random.Random, max_tries: int = 20) -> Chain:
    """Chain `atoms` in order: a slot of atom j+1 takes adapter(y_j); every value is recomputed and checked."""
    for _ in range(max_tries):
        chain = _try_compose(atoms, rng)
        if chain is not None:
            return chain
    raise ValueError(f"no valid chain of these {len(atoms)} atoms in {max_tries} tries")


def _valid(value: Fraction) -> bool:
    return value.denominator == 1 and 0 <= value <= MAX_VALUE


def _try_compose(atoms: Sequence[Atom], rng: random.Random) -> Chain | None:
    first = atoms[0].solve()
    if not _valid(first):
        return None
    links = [ChainLink(atoms[0].render(), int(first), atom=atoms[0])]
    for j, atom in enumerate(atoms[1:], start=2):
        if not atom.slots:
            return None
        slot = rng.choice(atom.slots)
        value, phrase = _adapter(rng, links[-1].answer)
        values = {**atom.values, slot: value}
        try:
            answer = atom.solve(values)
        except ZeroDivisionError:
            return None
        if not _valid(answer):
            return None
        text = atom.render(values, {slot: f"(the answer to problem {j - 1}{phrase})"})
        links.append(ChainLink(text, int(answer), slot, value, atom))
    body = "\n".join(f"Problem {i}: {link.text}" for i, link in enumerate(links, start=1))
    return Chain(tuple(links), f"{body}\n{ANSWER_INSTRUCTION}\n", links[-1].answer)


def make_chains(atoms: Sequence[Atom], depth: int, count: int, seed: int) -> list[Chain]:
    """`count` valid depth-`depth` chains from random atoms (with slots, except the first)."""
    if depth < 1:
        raise UserError(f"chain depth {depth} must be at least 1")
    rng = random.Random(seed)
    openers = [a for a in atoms if _valid(a.solve())]
    followers = [a for a in atoms if a.slots]
    if not openers or (depth > 1 and not followers):
        raise UserError("no atoms with numeric slots to chain: add templates or GSM8K rows with annotations")
    chains = []
    for _ in range(count * 50):
        picked = [rng.choice(openers)] + [rng.choice(followers) for _ in range(depth - 1)]
        chain = _try_compose(picked, rng)
        if chain is not None:
            chains.append(chain)
        if len(chains) == count:
            return chains
    raise UserError(f"only {len(chains)} of {count} depth-{depth} chains passed the checks: use smaller depth")


# answers and reward

_NUMBER = r"-?\$?\s*\d[\d,]*(?:\.\d+)?"
_FINAL = [
    re.compile(r"\\boxed\{\s*(" + _NUMBER + r")"),
    re.compile(r"(?:####|final answer|answer|ans)\s*(?:is|:|=)?\s*(" + _NUMBER + ")", re.IGNORECASE),
]


def parse_number(text: str) -> Fraction | None:
    """The first number in `text`, ignoring $, thousands commas and trailing units.

    >>> parse_number(" $1,234.50 dollars")
    Fraction(2469, 2)
    >>> parse_number("none") is None
    True
    """
    match = re.search(_NUMBER, text)
    if match is None:
        return None
    return Fraction(re.sub(r"[\s$,]", "", match.group(0)))


def extract_answer(text: str) -> Fraction | None:
    """The final answer: the last \\boxed{N}, else the last 'answer: N' / 'ans = N' / '#### N'; None if absent.
    Intermediate numbers are never taken as the answer.

    >>> extract_answer("Problem 1 gives 12. So the answer is 1,250 apples.")
    Fraction(1250, 1)
    >>> extract_answer("12 then 30, \\\\boxed{30} km. Done")
    Fraction(30, 1)
    >>> extract_answer("x1 = 4 ; x2 = 17 ; ans = 17") == 17
    True
    >>> extract_answer("I think 42") is None
    True
    """
    for pattern in _FINAL:
        matches = pattern.findall(text)
        if matches:
            return parse_number(matches[-1])
    return None


def numeric_reward(completion: str, solution: int | float | str | Fraction) -> float:
    """1.0 iff the completion's final answer equals `solution` exactly, else 0.0.

    >>> numeric_reward("The answer is $1,200.", 1200)
    1.0
    >>> numeric_reward("\\\\boxed{7.0} cups", "7")
    1.0
    >>> numeric_reward("answer: 8 (from problem 2, 7)", 7)
    0.0
    >>> numeric_reward("7", 7)
    0.0
    """
    answer = extract_answer(completion)
    expected = parse_number(str(solution)) if not isinstance(solution, (int, Fraction)) else Fraction(solution)
    return float(answer is not None and expected is not None and answer == expected)
