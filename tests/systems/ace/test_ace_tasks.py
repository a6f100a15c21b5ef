"""Task suites: formula evaluation, the banking API executor, JSONL loaders."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.ace.tasks import (
    BankAPI,
    FormulaSuite,
    JsonlTask,
    Sample,
    ToolSuite,
    formula_value,
    load_finance_jsonl,
    load_task,
)


def test_formula_value_uses_the_shared_safe_evaluator() -> None:
    assert formula_value("zeta margin = (a - b) / a", {"a": 4.0, "b": 1.0}) == 0.75
    assert formula_value("-a * 2 + 1", {"a": 3.0}) == -5.0
    with pytest.raises(ValueError, match="unknown variable 'c'"):
        formula_value("c + 1", {"a": 1.0})
    with pytest.raises(ValueError, match="division by zero"):
        formula_value("a / (a - a)", {"a": 1.0})
    with pytest.raises(ValueError, match="unsupported"):
        formula_value("__import__('os')", {})
    with pytest.raises(ValueError, match="syntax"):
        formula_value("a +", {"a": 1.0})


def test_formula_suite_splits_check_and_feedback() -> None:
    task = FormulaSuite(families=3, per_family=10, split=(4, 2))
    assert (len(task.train), len(task.val), len(task.test)) == (12, 6, 12)
    sample = task.test[0]
    formula = task.rule(sample.family).split(" = ", 1)[1]
    assert task.check(sample, formula) and task.check(sample, f"({formula})")
    assert task.check(sample, f"{sample.family} = {formula}")  # the answer format the schema asks for
    assert not task.check(sample, "revenue") and not task.check(sample, "nonsense")
    assert task.label_feedback(sample, formula).correct is True
    wrong = task.label_feedback(sample, "revenue")
    assert wrong.correct is False and "expected" in wrong.message
    assert task.execute(sample, "bogus").correct is False and task.execute(sample, "revenue").correct is None
    assert len(task.seed_facts()) == 5 and all(" = " in f for f in task.seed_facts())
    assert FormulaSuite(families=3, per_family=10).test[0].question == sample.question  # seeded


def test_bank_api_executes_calls_and_explains_errors() -> None:
    world = BankAPI()
    assert world.run("get_balance(acct_alice)") == (10_000, None)
    assert world.run("transfer(acct_alice, acct_bob, 2500)") == (7_500, None)
    assert world.balances["acct_bob"] == 12_600
    assert "acct_<name>" in world.run("get_balance(alice)")[1]
    assert "unknown API" in world.run("pay(acct_alice)")[1]
    assert "takes 3 arguments" in world.run("transfer(acct_alice)")[1]
    assert "insufficient" in world.run("transfer(acct_alice, acct_bob, 999999)")[1]


def test_tool_suite_check_compares_effects_and_execute_ignores_the_label() -> None:
    task = ToolSuite(per_family=6, split=(2, 1))
    transfer = next(s for s in task.test if s.family == "transfer")
    assert task.check(transfer, transfer.label)
    assert not task.check(transfer, transfer.label.replace("00)", ")"))  # coins instead of cents
    assert task.execute(transfer, transfer.label.replace("00)", ")")).correct is True  # runs fine, still wrong
    assert task.execute(transfer, "transfer(alice, bob, 5)").message.startswith("error: no account")
    assert len(task.train) == 6 and task.rule("freeze").startswith("Lost")


def test_jsonl_loader_reads_the_repo_format_and_names_bad_lines(tmp_path) -> None:
    good = tmp_path / "formula_test.jsonl"
    good.write_text(json.dumps({"context": "ctx", "question": "q?", "target": "12.5"}) + "\n\n"
                    + json.dumps({"question": "q2", "answer": "3"}) + "\n")
    samples = load_finance_jsonl(good, "formula")
    assert [(s.id, s.question, s.label) for s in samples] == [("formula-1", "ctx\nq?", "12.5"), ("formula-3", "q2", "3")]
    task = load_task("formula-jsonl", data={"test": str(good)})
    assert task.check(samples[0], "12.5") and not task.check(samples[0], "12")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "target": "1"}) + "\n{broken\n")
    with pytest.raises(UserError, match=r"bad.jsonl:2: not valid JSON"):
        load_finance_jsonl(bad, "finer")
    bad.write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(UserError, match=r"bad.jsonl:1: a record needs 'question' and 'target'"):
        load_finance_jsonl(bad, "finer")
    with pytest.raises(UserError, match="needs --data test=PATH"):
        load_task("finer")
    with pytest.raises(UserError, match="unknown task"):
        load_task("appworld")


def test_finer_scores_per_entity() -> None:
    finer = JsonlTask("finer", [], [], [Sample("1", "q", "A, B, C")])
    sample = finer.test[0]
    assert finer.score(sample, "A,B,X") == pytest.approx(2 / 3)
    assert finer.check(sample, "A, B, C") and not finer.check(sample, "A, B")


def test_seeded_test_questions_ask_about_the_seeded_rules_and_leave_the_stream_unchanged() -> None:
    plain = FormulaSuite(families=2, per_family=2, split=(1, 0), seed=4)
    task = FormulaSuite(families=2, per_family=2, split=(1, 0), seed=4, seeded_test=2)
    assert [s.question for s in task.train] == [s.question for s in plain.train]
    assert [s.id for s in task.test[:2]] == [s.id for s in plain.test]  # the stream's own test questions first
    seeded = task.test[2:]
    assert len(seeded) == 12 and all(s.meta["seeded"] for s in seeded)
    assert not any(s.meta["seeded"] for s in task.test[:2])
    assert sorted({f"{s.family} = " for s in seeded}) == sorted(f.split(" = ")[0] + " = " for f in task.seed_facts())
    for sample in seeded:  # the seeded rule answers its question; the stream's rules do not
        rule = next(f for f in task.seed_facts() if f.startswith(f"{sample.family} = "))
        assert task.check(sample, rule) and task.rule(sample.family) is None
    with pytest.raises(UserError, match="seeded_test must be >= 0"):
        load_task("formula", seeded_test=-1)


def test_every_metric_can_be_written_in_the_answer_pattern() -> None:
    import re

    task = FormulaSuite(families=8, per_family=1, split=(0, 0))
    pattern = re.compile(task.answer_schema(task.test[0])["pattern"])
    assert len(task.test) == 8
    for sample in task.test:
        rule = task.rule(sample.family)
        assert pattern.match(rule), rule  # a rule with a digit could never be answered under constraints
        assert task.check(sample, rule)
