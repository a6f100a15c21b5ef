"""Modular chains: the reference solver, both renderings, the tokenizer and the reward on the worked target."""

from __future__ import annotations

import pytest

from reasonlab.systems.h1.modular import (
    ModularChain,
    make_modular_chains,
    modular_tokenizer,
    sft_examples,
    solve_modular,
)
from reasonlab.tasks.arithmetic import extract_answer, numeric_reward


def test_serial_chain_renders_compactly_and_solves():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 9), (2, "+", 20)), modulus=23)
    assert chain.serial and chain.depth == 3
    assert solve_modular(chain) == [5, 8, 22, 19]  # 8 - 9 = -1 = 22 (mod 23), 22 + 20 = 42 = 19
    assert chain.prompt == "5 + 3 - 9 + 20 ?"
    assert chain.target == "8 - 9 + 20 ? 22 + 20 ? 19 ? ans = 19"
    assert numeric_reward(chain.target, chain.answer) == 1.0
    assert numeric_reward("8 - 9 ? 22 ? ans = 22", chain.answer) == 0.0


def test_back_reference_chain_needs_the_earlier_state():
    chain = ModularChain(start=5, steps=((0, "+", 3), (0, "-", 7), (1, "+", 1)), modulus=23)
    assert not chain.serial
    assert chain.values == [5, 8, 21, 9]
    assert chain.prompt == "x0 = 5 ; x1 = x0 + 3 ; x2 = x0 - 7 ; x3 = x1 + 1 ; ? x3 :"
    assert chain.target == "x1 = 8 ; x2 = 21 ; x3 = 9 ; ans = 9"
    assert extract_answer(chain.target) == 9


def test_generated_chains_are_seeded_valid_and_tokenizable():
    tokenizer = modular_tokenizer(31, max_depth=8)
    for serial in (True, False):
        chains = make_modular_chains(6, 50, seed=1, serial=serial)
        assert chains == make_modular_chains(6, 50, seed=1, serial=serial)
        assert chains != make_modular_chains(6, 50, seed=2, serial=serial)
        for chain in chains:
            assert chain.depth == 6 and chain.serial == serial
            assert all(0 <= v < 31 for v in chain.values)
            assert all(r < j and 1 <= c <= 4 for j, (r, _, c) in enumerate(chain.steps, start=1))
            ids = tokenizer.encode(chain.prompt + " " + chain.target)
            assert tokenizer.unk_id not in ids
    example = sft_examples(make_modular_chains(2, 1, seed=0))[0]
    assert example.prompt.endswith("? ") and example.completion.endswith(f"ans = {extract_answer(example.completion)}")


def test_labelled_chain_names_each_step():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 4)), modulus=31, labels=("k", "d"))
    assert chain.prompt == "5 k + 3 d - 4 ?"
    assert chain.target == "k 8 d 4 ans = 4"
    chains = make_modular_chains(5, 20, seed=0, labelled=True)
    assert all(len(set(c.labels)) == 5 and c.serial for c in chains)
    assert len({c.labels for c in chains}) == 20  # labels are random: a model has to copy them
    tokenizer = modular_tokenizer()
    assert all(tokenizer.unk_id not in tokenizer.encode(c.prompt + " " + c.target) for c in chains)


def test_products_scramble_the_chain_and_need_their_own_token():
    chain = ModularChain(start=5, steps=((0, "*", 4), (1, "-", 2)), modulus=31)
    assert chain.values == [5, 20, 18] and chain.prompt == "5 * 4 - 2 ?"
    chains = make_modular_chains(4, 200, seed=3, ops="+-*")
    ops = [op for c in chains for _, op, _ in c.steps]
    assert set(ops) == {"+", "-", "*"}
    assert all(2 <= c <= 5 for chain in chains for _, op, c in chain.steps if op == "*")  # never the identity
    assert make_modular_chains(4, 20, seed=3) == make_modular_chains(4, 20, seed=3, ops="+-")  # default unchanged
    assert "*" not in modular_tokenizer().tokens
    tokenizer = modular_tokenizer(ops="+-*")
    assert all(tokenizer.unk_id not in tokenizer.encode(c.prompt + " " + c.target) for c in chains)
    with pytest.raises(ValueError, match="ops='/'"):
        make_modular_chains(2, 1, seed=0, ops="/")


def test_slot_layout_shifts_a_fixed_width_row_and_stops_on_the_end_mark():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 7)), modulus=31, filler=("*2", "."), width=5)
    assert chain.slots == ["+3", "-7", ".", "*2", "."]
    assert chain.prompt == "5 : +3 -7 . *2 ."
    assert chain.target == "8 : -7 . *2 . _ 1 : . *2 . _ _ ans = 1"
    assert numeric_reward(chain.target, chain.answer) == 1.0
    lines = chain.target.split(" ans = ")[0].split()
    assert len(lines) == 2 * (5 + 2)  # every worked line has width + 2 tokens, at every depth


def test_generated_slot_chains_keep_the_width_and_are_tokenizable():
    tokenizer = modular_tokenizer(31, max_depth=8, ops="+-*", max_constant=4)
    for depth in (1, 3, 6):
        chains = make_modular_chains(depth, 100, seed=0, ops="+-*", width=7)
        for chain in chains:
            assert len(chain.slots) == 7 and chain.slots[depth] == "."
            assert solve_modular(chain)[-1] == chain.answer == extract_answer(chain.target)
            ids = tokenizer.encode(chain.prompt + " " + chain.target)
            assert tokenizer.unk_id not in ids
            rows = chain.target.split(" ans = ")[0].split()
            assert len(rows) == depth * 9 and rows[9 * (depth - 1) + 2] == "."  # the last line starts at the end mark
        fillers = {word for chain in chains for word in chain.filler}
        if depth < 6:  # the filler is random ops and end marks: copying has to be general
            assert "." in fillers and len(fillers) > 5
    assert make_modular_chains(3, 10, seed=0, ops="+-*") == make_modular_chains(3, 10, seed=0, ops="+-*", width=0)
    with pytest.raises(ValueError, match="width=3"):
        make_modular_chains(3, 1, seed=0, width=3)
    with pytest.raises(ValueError, match="width=5"):
        make_modular_chains(2, 1, seed=0, width=5, serial=False)


def test_a_blank_step_adds_a_line_that_keeps_the_value():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 7)), modulus=31, filler=("*2",), width=5, skips=(1,))
    assert chain.prompt == "5 : +3 _ -7 . *2" and chain.depth == 2 and chain.answer == 1
    assert chain.target == "8 : _ -7 . *2 _ 8 : -7 . *2 _ _ 1 : . *2 _ _ _ ans = 1"
    chains = make_modular_chains(2, 400, seed=0, ops="+-*", width=6, skip_rate=0.5)
    with_blank = [c for c in chains if c.skips]
    assert len(with_blank) == 186 and {c.skips[0] for c in with_blank} == {0, 1, 2}  # seeded, at skip_rate 0.5
    assert all(c.answer == extract_answer(c.target) and len(c.slots) == 6 for c in chains)
    assert all(c.target.count(" : ") == 3 for c in with_blank)  # three lines for a depth-2 chain
    with pytest.raises(ValueError, match=r"skip_rate=0\.5 needs the slot layout"):
        make_modular_chains(2, 1, seed=0, skip_rate=0.5)


def test_value_lines_write_one_value_per_slot_before_the_end_mark():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 7)), modulus=31, filler=("*2", "."), width=6, skips=(1,),
                         lines="value")
    assert chain.prompt == "5 : +3 _ -7 . *2 ." and chain.target == "8 8 1 ans = 1"
    for chain in make_modular_chains(3, 50, seed=0, ops="+-*", width=9, skip_rate=0.5, max_skips=4, lines="value"):
        written = chain.target.split(" ans = ")[0].split()
        assert len(written) == chain.depth + len(chain.skips) and int(written[-1]) == chain.answer
        assert all(0 <= int(v) < 31 for v in written) and extract_answer(chain.target) == chain.answer
    with pytest.raises(ValueError, match="lines='values'"):
        make_modular_chains(2, 1, seed=0, width=8, lines="values")
    with pytest.raises(ValueError, match="needs the slot layout"):
        make_modular_chains(2, 1, seed=0, lines="value")


def test_many_blank_steps_give_worked_chains_of_every_length():
    chains = make_modular_chains(2, 600, seed=0, ops="+-*", width=8, skip_rate=0.75, max_skips=5, rotate=True)
    lines = {c.target.count(" : ") for c in chains}
    assert lines == {2, 3, 4, 5, 6, 7}  # 2 real steps and 0..5 blanks, the row holding at most 7 steps
    for chain in chains:
        assert chain.depth == 2 and len(chain.slots) == 8 and chain.answer == extract_answer(chain.target)
        assert chain.slots.count("_") == len(chain.skips) and len(set(chain.skips)) == len(chain.skips)
    assert make_modular_chains(2, 50, seed=0, width=8, skip_rate=0.5, max_skips=1) == make_modular_chains(
        2, 50, seed=0, width=8, skip_rate=0.5)  # one blank: the first layout's draw
    with pytest.raises(ValueError, match="max_skips=0"):
        make_modular_chains(2, 1, seed=0, width=8, skip_rate=0.5, max_skips=0)


def test_a_rotated_row_keeps_its_steps_and_shows_no_line_count():
    chain = ModularChain(start=5, steps=((0, "+", 3), (1, "-", 7)), modulus=31, filler=("*2",), width=4, rotate=True)
    assert chain.prompt == "5 : +3 -7 . *2"
    assert chain.target == "8 : -7 . *2 +3 1 : . *2 +3 -7 ans = 1"
    for chain in make_modular_chains(3, 50, seed=0, ops="+-*", width=7, skip_rate=0.5, rotate=True):
        lines = chain.target.split(" ans = ")[0].split(" : ")[1:]
        rows = [line.split()[:7] for line in lines]
        assert all(sorted(row) == sorted(chain.slots) for row in rows)  # every line holds the prompt's slots
        assert rows[-1][0] == "." and all(row[0] != "." for row in rows[:-1])
        assert ("_" in chain.target) == bool(chain.skips)  # no blank enters a rotated row
