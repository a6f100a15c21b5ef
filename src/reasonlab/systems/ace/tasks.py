"""Verifiable task suites for ACE: two generated ones (invented financial formulas; a small banking API
standing in for AppWorld) and loaders for FiNER/Formula-format JSONL.

A task gives each sample a checker that reads the gold label (`check`) and an execution signal that does not
(`execute`): label-free adaptation only ever calls `execute`.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.ace import prompts
from reasonlab.tasks.arithmetic import evaluate

__all__ = [
    "BankAPI",
    "Feedback",
    "FormulaSuite",
    "JsonlTask",
    "Sample",
    "Task",
    "ToolSuite",
    "formula_part",
    "formula_value",
    "load_finance_jsonl",
    "load_task",
]


@dataclass
class Sample:
    """One question. The gold label is reached only through `label` (label-free code never reads it)."""

    id: str
    question: str
    gold: Any = None
    family: str = ""
    context: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> Any:
        return self.gold


@dataclass
class Feedback:
    """Environment feedback on an answer: a verdict (None = unknown) and the text the Reflector sees."""

    correct: bool | None
    message: str


class Task:
    """A suite: splits of samples, an answer schema for constrained decoding, a checker, an executor."""

    name = "task"
    demo = "default"
    instructions: str | None = None

    def __init__(self, train: list[Sample], val: list[Sample], test: list[Sample]):
        self.train, self.val, self.test = train, val, test

    def answer_schema(self, sample: Sample) -> dict[str, Any]:
        return {"type": "string", "maxLength": 80}

    def check(self, sample: Sample, answer: str) -> bool:
        """Exact match against the label (normalized whitespace and case)."""
        return " ".join(answer.lower().split()) == " ".join(str(sample.label).lower().split())

    def label_feedback(self, sample: Sample, answer: str) -> Feedback:
        correct = self.check(sample, answer)
        return Feedback(correct, "correct" if correct else f"wrong: expected {sample.label}")

    def execute(self, sample: Sample, answer: str) -> Feedback:
        """Label-free signal; the default task has none."""
        return Feedback(None, "no execution feedback available")

    def rule(self, family: str) -> str | None:
        """The true rule of a generated family (for the oracle Reflector); None for real data."""
        return None

    def seed_facts(self) -> list[str]:
        """Reference facts seeded into both memories to measure retention (context collapse)."""
        return []


def _round_robin(samples: list[Sample]) -> list[Sample]:
    """Interleave families (a, b, c, a, b, c, ...) so that any prefix of the training split covers them."""
    families: dict[str, list[Sample]] = {}
    for sample in samples:
        families.setdefault(sample.family, []).append(sample)
    columns = list(families.values())
    return [column[i] for i in range(max(map(len, columns), default=0)) for column in columns if i < len(column)]


def formula_part(answer: str) -> str:
    """`drift index = debt / cash` -> `debt / cash` (a bare formula is returned as is)."""
    return answer.rsplit("=", 1)[-1]


def formula_value(answer: str, values: dict[str, float]) -> float:
    """The value of an answer's formula over the question's variables (the shared safe evaluator of
    `reasonlab.tasks.arithmetic`); a ValueError says what is wrong with it."""
    return float(evaluate(formula_part(answer), values))


_METRICS = {
    "zeta margin": "(revenue - cost) / revenue",
    "drift index": "debt / (equity + cash)",
    "kappa yield": "(cash + revenue) / assets",
    "orbit ratio": "assets / debt",
    "flux score": "revenue - cost - debt",  # every formula fits the answer pattern (no digits)
    "lumen spread": "(equity - debt) / assets",
    "nova cover": "cash / cost",
    "tau burn": "(cost - revenue) / cash",
}
_VARIABLES = ("revenue", "cost", "assets", "debt", "cash", "equity")
_COMPANIES = ("Acme", "Borealis", "Cobalt", "Dynamo", "Ember", "Fjord", "Granite", "Helix", "Ionic", "Juniper")


class FormulaSuite(Task):
    """Invented financial metrics (a Formula-style suite): the answer is a formula over the question's
    variables, checked by evaluating it against the gold value. The formulas cannot be guessed, only learned."""

    name = "formula"
    demo = "formula"

    def __init__(self, families: int = 4, per_family: int = 12, seed: int = 0, split: tuple[int, int] = (4, 2),
                 seeded_test: int = 0):
        """`families` metrics are asked about (`per_family` questions each, `split` = train, val; the rest is
        test); the other metrics' rules are the seed facts, and `seeded_test` test questions per seeded metric
        (marked `meta["seeded"]`) measure what losing them costs."""
        if seeded_test < 0:
            raise ValueError("seeded_test must be >= 0")
        rng = random.Random(seed)
        self.metrics = dict(list(_METRICS.items())[:families])
        train: list[Sample] = []
        val: list[Sample] = []
        test: list[Sample] = []
        for name, formula in self.metrics.items():
            samples = [self._sample(rng, name, formula, i) for i in range(per_family)]
            n_train, n_val = split
            train += samples[:n_train]
            val += samples[n_train:n_train + n_val]
            test += samples[n_train + n_val:]
        # drawn after the stream's questions, so the stream is the same with or without them
        seeded = [self._sample(rng, name, formula, i, seeded=True)
                  for name, formula in list(_METRICS.items())[families:] for i in range(seeded_test)]
        super().__init__(_round_robin(train), val, _round_robin(test) + _round_robin(seeded))

    def _sample(self, rng: random.Random, name: str, formula: str, index: int, seeded: bool = False) -> Sample:
        values = {v: float(rng.randint(2, 60)) for v in _VARIABLES}
        company = rng.choice(_COMPANIES)
        given = ", ".join(f"{k}={int(v)}" for k, v in values.items())
        question = f"{company} reports {given}. What is its {name}?"
        prefix = "seeded-" if seeded else ""
        return Sample(f"{prefix}{name.replace(' ', '_')}-{index}", question, formula_value(formula, values),
                      family=name, meta={"values": values, "seeded": seeded})

    def answer_schema(self, sample: Sample) -> dict[str, Any]:
        # "<metric> = <formula>": letters, parentheses and operators only, so the model names variables
        # instead of inventing numbers; writing the metric's name first lets a small model copy the rule
        return {"type": "string", "pattern": "^[a-z ]{1,24} = [a-z ()+*/-]{1,60}$"}

    def check(self, sample: Sample, answer: str) -> bool:
        try:
            value = formula_value(answer, sample.meta["values"])
        except ValueError:
            return False
        return math.isclose(value, float(sample.label), rel_tol=1e-6, abs_tol=1e-9)

    def label_feedback(self, sample: Sample, answer: str) -> Feedback:
        if self.check(sample, answer):
            return Feedback(True, "correct")
        return Feedback(False, f"wrong: expected {float(sample.label):.4g}; {self.execute(sample, answer).message}")

    def execute(self, sample: Sample, answer: str) -> Feedback:
        try:
            value = formula_value(answer, sample.meta["values"])
        except ValueError as err:
            return Feedback(False, f"error: {err}")
        return Feedback(None, f"the formula evaluates to {value:.4g}")

    def rule(self, family: str) -> str | None:
        formula = self.metrics.get(family)
        return f"{family} = {formula}" if formula else None

    def seed_facts(self) -> list[str]:
        return [f"{name} = {formula}" for name, formula in list(_METRICS.items())[len(self.metrics):]]


# ---- a small banking API (an AppWorld stand-in)

_PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_TOOL_RULES = {
    "balance": "Balance questions: call get_balance(acct_<name>); account ids are acct_ plus the lowercase name",
    "transfer": "Transfers: call transfer(acct_<from>, acct_<to>, <coins>00); amounts are in cents",
    "freeze": "Lost or stolen cards: call freeze(acct_<name>) to block the account",
}


class BankAPI:
    """A tiny world with accounts; `run(call)` executes one call and returns (result, error)."""

    def __init__(self, people: tuple[str, ...] = _PEOPLE):
        self.balances = {f"acct_{p}": 10_000 + 100 * i for i, p in enumerate(people)}
        self.frozen: set[str] = set()

    def state(self) -> tuple[tuple[tuple[str, int], ...], tuple[str, ...]]:
        return tuple(sorted(self.balances.items())), tuple(sorted(self.frozen))

    def _account(self, name: str) -> str:
        if name not in self.balances:
            raise ValueError(f"no account '{name}'; account ids look like acct_<name>")
        return name

    def run(self, call: str) -> tuple[Any, str | None]:
        match = re.fullmatch(r"\s*([a-z_]+)\((.*)\)\s*", call)
        if not match:
            return None, f"not an API call: {call!r}; write name(arg, ...)"
        name, raw_args = match.groups()
        args = [a.strip() for a in raw_args.split(",") if a.strip()]
        api = {"get_balance": (self.get_balance, 1), "transfer": (self.transfer, 3), "freeze": (self.freeze, 1)}
        if name not in api:
            return None, f"unknown API '{name}'; available: get_balance, transfer, freeze"
        function, arity = api[name]
        if len(args) != arity:
            return None, f"{name} takes {arity} arguments, got {len(args)}"
        try:
            return function(*args), None
        except ValueError as err:
            return None, str(err)

    def get_balance(self, account: str) -> int:
        return self.balances[self._account(account)]

    def transfer(self, source: str, target: str, cents: str) -> int:
        source, target = self._account(source), self._account(target)
        if not cents.isdigit():
            raise ValueError(f"amount '{cents}' must be a whole number of cents")
        if int(cents) > self.balances[source]:
            raise ValueError(f"insufficient funds in {source}")
        self.balances[source] -= int(cents)
        self.balances[target] += int(cents)
        return self.balances[source]

    def freeze(self, account: str) -> str:
        self.frozen.add(self._account(account))
        return "frozen"


class ToolSuite(Task):
    """Requests answered by one call to a small banking API. Correct = same result and world state as the gold
    call; the label-free signal is the API's own error message (or its success)."""

    name = "tools"
    demo = "tools"

    def __init__(self, per_family: int = 12, seed: int = 0, split: tuple[int, int] = (4, 2)):
        rng = random.Random(seed)
        train: list[Sample] = []
        val: list[Sample] = []
        test: list[Sample] = []
        for family in _TOOL_RULES:
            samples = [self._sample(rng, family, i) for i in range(per_family)]
            n_train, n_val = split
            train += samples[:n_train]
            val += samples[n_train:n_train + n_val]
            test += samples[n_train + n_val:]
        super().__init__(_round_robin(train), val, _round_robin(test))

    def _sample(self, rng: random.Random, family: str, index: int) -> Sample:
        person, other = rng.sample(_PEOPLE, 2)
        if family == "balance":
            question, gold = f"{person.title()} asks how much money is in their account.", f"get_balance(acct_{person})"
        elif family == "transfer":
            coins = rng.randint(2, 60)
            question = f"{person.title()} wants to send {coins} coins to {other.title()}."
            gold = f"transfer(acct_{person}, acct_{other}, {coins}00)"
        else:
            question, gold = f"{person.title()} lost their card; secure the account.", f"freeze(acct_{person})"
        return Sample(f"{family}-{index}", question, gold, family=family)

    def answer_schema(self, sample: Sample) -> dict[str, Any]:
        return {"type": "string", "pattern": "^[a-z_]{1,20}\\([a-z0-9_, ]{0,50}\\)$"}

    def _outcome(self, call: str) -> tuple[Any, str | None, Any]:
        world = BankAPI()
        result, error = world.run(call)
        return result, error, world.state()

    def check(self, sample: Sample, answer: str) -> bool:
        result, error, state = self._outcome(answer)
        gold_result, _, gold_state = self._outcome(str(sample.label))
        return error is None and result == gold_result and state == gold_state

    def label_feedback(self, sample: Sample, answer: str) -> Feedback:
        if self.check(sample, answer):
            return Feedback(True, "correct")
        return Feedback(False, f"wrong: expected {sample.label}; {self.execute(sample, answer).message}")

    def execute(self, sample: Sample, answer: str) -> Feedback:
        result, error, _ = self._outcome(answer)
        if error is not None:
            return Feedback(False, f"error: {error}")
        return Feedback(True, f"ok: returned {result}")

    def rule(self, family: str) -> str | None:
        return _TOOL_RULES.get(family)

    def seed_facts(self) -> list[str]:
        return ["To list orders call orders(shop_<city>)", "Refunds: call refund(pay_<number>) within 30 days",
                "Exchange rates: call rate(<from>, <to>) with 3-letter lowercase codes"]


# ---- FiNER / Formula JSONL (the official repo's data format)

class JsonlTask(Task):
    """FiNER (comma-separated entity types, per-entity accuracy) or Formula (numeric, float-equal) samples."""

    def __init__(self, kind: str, train: list[Sample], val: list[Sample], test: list[Sample]):
        self.name = kind
        self.instructions = prompts.JSONL_INSTRUCTIONS[kind]
        super().__init__(train, val, test)

    def answer_schema(self, sample: Sample) -> dict[str, Any]:
        if self.name == "formula":
            return {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,6})?$"}
        return {"type": "string", "maxLength": 400}

    def score(self, sample: Sample, answer: str) -> float:
        if self.name == "formula":
            try:
                return float(math.isclose(float(answer), float(sample.label), rel_tol=1e-4, abs_tol=1e-2))
            except ValueError:
                return 0.0
        gold = [x.strip() for x in str(sample.label).split(",")]
        given = [x.strip() for x in answer.split(",")]
        return sum(g == a for g, a in zip(gold, given, strict=False)) / max(len(gold), 1)

    def check(self, sample: Sample, answer: str) -> bool:
        return self.score(sample, answer) == 1.0


def load_finance_jsonl(path: str | Path, kind: str) -> list[Sample]:
    """Read `{"context", "question", "target"}` lines (the ACE repo's finance files); errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file {path} does not exist: pass a FiNER/Formula JSONL file")
    samples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not valid JSON ({err.msg}): fix or remove the line") from None
        if not isinstance(record, dict) or "question" not in record or not ({"target", "answer"} & set(record)):
            raise UserError(f"{path}:{number}: a record needs 'question' and 'target' (or 'answer') keys")
        gold = record.get("target", record.get("answer"))
        question = f"{record.get('context', '')}\n{record['question']}".strip()
        samples.append(Sample(f"{kind}-{number}", question, gold, family=kind, context=record.get("context", "")))
    if not samples:
        raise UserError(f"{path} holds no records: pass a non-empty JSONL file")
    return samples


def load_task(name: str, seed: int = 0, data: dict[str, str] | None = None, **options: Any) -> Task:
    """`formula` / `tools` (generated), or `finer` / `formula-jsonl` with data={'train','val','test'} paths."""
    if name in ("formula", "tools"):
        suite = FormulaSuite if name == "formula" else ToolSuite
        try:
            return suite(seed=seed, **options)
        except (TypeError, ValueError) as err:
            raise UserError(f"task_options {options} do not fit the {name} suite ({err}): see "
                            f"{suite.__name__}'s arguments") from None
    if name in ("finer", "formula-jsonl"):
        kind = "finer" if name == "finer" else "formula"
        paths = data or {}
        if "test" not in paths:
            raise UserError(f"task {name} needs --data test=PATH (and train=, val= for offline adaptation)")
        splits = {split: load_finance_jsonl(p, kind) if p else [] for split, p in
                  ((s, paths.get(s)) for s in ("train", "val", "test"))}
        return JsonlTask(kind, splits["train"], splits["val"], splits["test"])
    raise UserError(f"unknown task '{name}': use formula, tools, finer or formula-jsonl")
