"""RFT and TFB training sets: winners only (ties dropped), 3x repeated, thoughts mixed 1:1."""

from __future__ import annotations

from reasonlab.systems.moloch.audience import Vote
from reasonlab.systems.moloch.datasets import (
    Contest,
    audience_modelling_prompt,
    full_winners,
    rft_examples,
    tfb_examples,
)


def votes(*thoughts: str, swapped: bool = False) -> tuple[Vote, ...]:
    order = (1, 0) if swapped else (0, 1)
    return tuple(Vote(f"v{i}", 0, thought, order) for i, thought in enumerate(thoughts))


def contests() -> list[Contest]:
    return [
        Contest("a", "prompt a", ("first a", "second a"), winner=1, votes=votes("likes the numbers") + votes("short", swapped=True),
                messages=("m1 a", "m2 a")),
        Contest("b", "prompt b", ("first b", "second b"), winner=None, votes=votes("cannot decide"),
                messages=("m1 b", "m2 b")),  # a tie: no RFT example, never the previous winner
        Contest("c", "prompt c", ("first c", "second c"), winner=0, votes=votes("urgent", "", "bold claims"),
                messages=("m1 c", None)),  # the second message had no tag: its thoughts are not modelled
    ]


def test_rft_trains_on_winners_only_three_times_and_skips_ties():
    examples = rft_examples(contests(), seed=0)
    pairs = sorted((e.prompt, e.completion) for e in examples)
    assert pairs == sorted([("prompt a", "second a")] * 3 + [("prompt c", "first c")] * 3)
    assert all(e.prompt != "prompt b" for e in examples)
    assert [e.prompt for e in rft_examples(contests(), seed=0)] == [e.prompt for e in examples]  # seeded order
    assert [e.prompt for e in rft_examples(contests(), seed=1)] != [e.prompt for e in examples]


def test_tfb_adds_thought_examples_up_to_the_rft_size():
    sources = {"a": "card a", "b": "card b", "c": "card c"}
    examples = tfb_examples(contests(), sources, seed=0)
    thoughts = [e for e in examples if e.completion.startswith("<think>")]
    assert len(examples) - len(thoughts) == 6
    # 3 thoughts with both messages tagged (a: 2, b: 1; c's second message had no tag), fewer than 6: all kept
    assert sorted(e.completion for e in thoughts) == ["<think> cannot decide </think>",
                                                      "<think> likes the numbers </think>", "<think> short </think>"]
    shown = next(e.prompt for e in thoughts if "numbers" in e.completion)
    assert shown == audience_modelling_prompt("card a", ("m1 a", "m2 a"))
    assert "Option 1:\nm1 a" in shown and "Option 2:\nm2 a" in shown and "card a" in shown
    swapped = next(e.prompt for e in thoughts if "short" in e.completion)
    assert swapped == audience_modelling_prompt("card a", ("m2 a", "m1 a"))  # as that voter saw them


def test_tfb_subsamples_thoughts_to_a_one_to_one_mix():
    many = [Contest(f"x{i}", f"p{i}", ("a", "b"), winner=0, votes=votes(*(f"t{i}-{j}" for j in range(20))),
                    messages=("a", "b")) for i in range(2)]
    examples = tfb_examples(many, {"x0": "s", "x1": "s"}, seed=3)
    thoughts = [e for e in examples if e.completion.startswith("<think>")]
    assert len(thoughts) == len(examples) - len(thoughts) == 6


def test_a_winner_cut_before_its_closing_tag_gives_no_example():
    cut = [Contest("a", "prompt a", ("Buy it now.</sales_pitch>", "It has 9 ports and 12 more"), winner=1,
                   votes=votes("likes the numbers"), messages=("Buy it now.", "It has 9 ports and 12 more")),
           Contest("b", "prompt b", ("Only $5.</sales_pitch>", "Ends 3 days"), winner=0, votes=votes("cheap"),
                   messages=("Only $5.", "Ends 3 days"))]
    assert [c.anchor_id for c in full_winners(cut, "</sales_pitch>")] == ["b"]
    assert {e.completion for e in rft_examples(cut, seed=0, closing="</sales_pitch>")} == {"Only $5.</sales_pitch>"}
    assert len(rft_examples(cut, seed=0)) == 6  # without the tag every winner counts, as before
    tfb = tfb_examples(cut, {"a": "card a", "b": "card b"}, seed=0, closing="</sales_pitch>")
    assert sum(not e.completion.startswith("<think>") for e in tfb) == 3
    assert sum(e.completion.startswith("<think>") for e in tfb) == 2  # the cut contest's thoughts still model voters
