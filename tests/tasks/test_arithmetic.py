"""Templated and GSM8K atoms, chain composition checked by the reference solver, and the numeric reward."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest

from reasonlab.errors import UserError
from reasonlab.tasks.arithmetic import (
    ANSWER_INSTRUCTION,
    Atom,
    atom_from_gsm8k,
    compose_chain,
    evaluate,
    extract_answer,
    load_gsm8k_jsonl,
    make_chains,
    numeric_reward,
    template_atoms,
)

NATALIA = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
)
WENG = (
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n"
    "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
)


def test_every_template_reproduces_its_own_answer():
    atoms = template_atoms()
    assert len(atoms) == 12
    answers = [atom.solve() for atom in atoms]
    assert answers[:4] == [12, 48, 32, 8]
    assert all(a.denominator == 1 and a > 0 for a in answers)
    for atom in atoms:
        text = atom.render()
        assert all(f"{v:,}" in text for v in atom.values.values())


def test_evaluate_is_exact_and_refuses_other_syntax():
    assert evaluate("a / 3", {"a": 1}) == Fraction(1, 3)
    assert evaluate("-(2 - 5) * 1.5", {}) == Fraction(9, 2)
    with pytest.raises(ValueError, match="unsupported"):
        evaluate("__import__('os')", {})


def test_evaluate_names_every_problem_as_a_value_error():
    assert evaluate("(revenue - cost) / revenue", {"revenue": 40.0, "cost": 10.0}) == Fraction(3, 4)
    with pytest.raises(ValueError, match="unknown variable 'c' in 'c \\+ 1'; the known names are a"):
        evaluate("c + 1", {"a": 1})
    with pytest.raises(ValueError, match="division by zero"):
        evaluate("a / (a - a)", {"a": 1})
    with pytest.raises(ValueError, match="syntax error"):
        evaluate("a +", {"a": 1})
    with pytest.raises(ValueError, match="unsupported"):
        evaluate("a ** 2", {"a": 3})
    with pytest.raises(ValueError, match="unsupported"):
        evaluate("True + 1", {})


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_every_composed_chain_is_verified_by_the_reference_solver(depth):
    chains = make_chains(template_atoms(), depth, count=40, seed=depth)
    assert len(chains) == 40 and all(c.depth == depth for c in chains)
    for chain in chains:
        first = chain.links[0]
        assert first.atom is not None and first.atom.solve() == first.answer
        for j, (previous, link) in enumerate(zip(chain.links, chain.links[1:], strict=False), start=2):
            # the slot got adapter(previous answer): identity, x2 or x3
            assert link.value in (previous.answer, 2 * previous.answer, 3 * previous.answer)
            assert link.atom is not None and link.slot in link.atom.slots
            assert link.atom.solve({**link.atom.values, link.slot: link.value}) == link.answer
            assert f"(the answer to problem {j - 1}" in link.text
            # every other quantity the problem needs is written out
            others = [v for s, v in link.atom.values.items() if s != link.slot]
            assert all(f"{v:,}" in link.text for v in others)
        assert all(0 <= link.answer <= 10**6 for link in chain.links)
        assert chain.answer == chain.links[-1].answer
        assert all(link.text in chain.prompt for link in chain.links)
        assert chain.prompt.rstrip().endswith(ANSWER_INSTRUCTION)


def test_a_hand_checked_chain():
    apples, boxes, _, trays = template_atoms()[:4]
    chain = compose_chain([apples, boxes, trays], random.Random(5))
    y1 = 7 + 5
    assert chain.links[0].answer == y1
    second = chain.links[1]
    other = {"a": 4, "b": 12}[second.slot]  # the slot's partner number
    assert second.answer == second.value * other
    third = chain.links[2]
    values = {**trays.values, third.slot: third.value}
    assert third.answer == values["a"] // values["b"] == chain.answer


def test_compose_rejects_invalid_values():
    # dividing by a previous answer that does not divide 7 gives a fraction: no valid chain exists
    seven = Atom("Share 7 cakes among {n} kids. How many each?", {"n": 7}, (("y", "7 / n"),))
    big = Atom("{a} times 5?", {"a": 2}, (("y", "a * 5"),))
    with pytest.raises(ValueError, match="no valid chain"):
        compose_chain([big, seven], random.Random(0))


def test_gsm8k_annotations_become_the_program():
    atom = atom_from_gsm8k(*NATALIA)
    assert atom.slots == ["q0"] and atom.values == {"q0": 48}
    assert atom.solve() == 72
    assert atom.solve({"q0": 10}) == 15  # recomputed ground truth after substitution
    assert "{q0}" in atom.text and atom.render({"q0": 10}).startswith("Natalia sold clips to 10 of")
    weng = atom_from_gsm8k(*WENG)
    assert weng.solve() == 10 and sorted(weng.values.values()) == [12, 50]
    assert weng.solve({"q0": 24, "q1": 50}) == 20


def test_gsm8k_chains_and_an_unreproducible_row(tmp_path):
    broken = {"question": "Tom has 3 cats and 4 dogs. How many pets?", "answer": "3*4=<<3*4=12>>12 \n#### 7"}
    path = tmp_path / "train.jsonl"
    rows = [dict(zip(("question", "answer"), NATALIA, strict=True)),
            dict(zip(("question", "answer"), WENG, strict=True)), broken]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    atoms = load_gsm8k_jsonl(path)
    assert [len(a.slots) for a in atoms] == [1, 2, 0]
    assert atoms[2].solve() == 7  # it keeps the stated answer and can only open a chain
    for chain in make_chains(atoms, 3, count=10, seed=0):
        assert chain.links[-1].atom.solve({**chain.links[-1].atom.values,
                                           chain.links[-1].slot: chain.links[-1].value}) == chain.answer


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"question": "q", "answer": "#### 3"}\nnot json\n', "line 2"),
        ('{"question": "q", "answer": "#### 3"}\n\n{"question": "q"}\n', "line 3"),
        ('{"question": "q", "answer": "no final line"}\n', "line 1"),
        ('["q", "a"]\n', "line 1"),
    ],
)
def test_bad_jsonl_rows_name_their_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        load_gsm8k_jsonl(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_or_empty_gsm8k_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_gsm8k_jsonl(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UserError, match="no rows"):
        load_gsm8k_jsonl(tmp_path / "empty.jsonl")


@pytest.mark.parametrize(
    ("completion", "solution", "reward"),
    [
        ("\\boxed{1,250}", 1250, 1.0),
        ("The answer is $1,250.00 dollars.", 1250, 1.0),
        ("Problem 1 gives 12 apples, problem 2 gives 30. Answer: 30 apples. Hope that helps! 7", 30, 1.0),
        ("First 12, then \\boxed{12} wait no \\boxed{30} km", 30, 1.0),
        ("x1 = 4 ; x2 = 17 ; ans = 17", "17", 1.0),
        ("#### 72", 72.0, 1.0),
        ("answer: -3", -3, 1.0),
        ("answer is 2.5 liters", Fraction(5, 2), 1.0),
        ("the answer is 12, then 30", 30, 0.0),  # only the marked number counts
        ("30", 30, 0.0),  # no final-answer format: no reward
        ("\\boxed{31}", 30, 0.0),
        ("", 30, 0.0),
    ],
)
def test_numeric_reward_is_exact_and_robust(completion, solution, reward):
    assert numeric_reward(completion, solution) == reward


def test_extract_answer_prefers_boxed_over_answer_lines():
    assert extract_answer("answer: 5, but \\boxed{6}") == 6
    assert extract_answer("nothing here") is None


def test_doctests_pass():
    import doctest

    from reasonlab.tasks import arithmetic

    result = doctest.testmod(arithmetic)
    assert result.attempted >= 10 and result.failed == 0
