"""The turn format: parsing (spec §3), cutting and history rules, and the grammar on the real tokenizer/model."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonlab.systems.memagent import TURN_GRAMMAR, cut_action, drop_think, parse_turn, turn_sampling
from reasonlab.systems.memagent.prompts import BOTH_ACTIONS, MISSING_ACTION
from reasonlab.systems.memagent.turns import clean_code

# the language of TURN_GRAMMAR as a regular expression
CHAR = r"(?:[^<]|<[^/])"
TURN = (rf"<think>{CHAR}*</think>\n(?:<python>{CHAR}+</python>|<python></python>\n<reply>{CHAR}*</reply>)")


def test_a_python_turn() -> None:
    turn = parse_turn("<think> look it up </think>\n<python>user = read_file('user.md')</python>")
    assert (turn.think, turn.python, turn.reply, turn.problem) == ("look it up", "user = read_file('user.md')",
                                                                   None, None)


def test_a_reply_turn_needs_an_empty_python_block() -> None:
    turn = parse_turn("<think>done</think>\n<python></python>\n<reply> You live in Lyon. </reply>")
    assert (turn.python, turn.reply, turn.problem) == ("", "You live in Lyon.", None)
    assert parse_turn("<think>done</think>\n<reply>Lyon</reply>").reply == "Lyon"


def test_format_problems_are_hints_not_crashes() -> None:
    both = parse_turn("<think>x</think><python>a = 1</python><reply>hi</reply>")
    assert both.problem == BOTH_ACTIONS and "either" in both.problem
    for text in ("<think>only thinking</think>", "no tags at all", "<think>x</think><python>  </python>", ""):
        assert parse_turn(text).problem == MISSING_ACTION
    unclosed = parse_turn("<think>never closed <python>x = 1")
    assert unclosed.think.startswith("never closed") and unclosed.python == "x = 1"


def test_code_fences_are_stripped() -> None:
    assert clean_code("\n```python\nx = read_file('user.md')\ny = 2\n```\n") == "x = read_file('user.md')\ny = 2"
    assert parse_turn("<think>t</think><python>```\nx = 1\n```</python>").python == "x = 1"
    assert clean_code("  x = 1  ") == "x = 1"


def test_cut_action_drops_an_invented_result_and_trailing_text() -> None:
    text = "<think>t</think>\n<python>x = 1</python>\n<result>\n{'x': 1}\n</result> and more"
    assert cut_action(text) == "<think>t</think>\n<python>x = 1</python>"
    assert cut_action("<think>t</think><python></python><reply>ok</reply>\nUser: next") == (
        "<think>t</think><python></python><reply>ok</reply>")
    assert cut_action("<think>unfinished") == "<think>unfinished"


def test_drop_think_keeps_only_the_action() -> None:
    assert drop_think("<think>long thoughts\n</think>\n<python>x = 1</python>") == "<python>x = 1</python>"
    assert drop_think("<python>x = 1</python>") == "<python>x = 1</python>"


def test_turn_sampling_constrains_and_stops_at_result() -> None:
    params = turn_sampling(128, temperature=0.7, seed=3)
    assert (params.grammar, params.stop, params.max_tokens, params.temperature, params.seed) == (
        TURN_GRAMMAR, ["<result>"], 128, 0.7, 3)
    assert turn_sampling(64, constrained=False).grammar is None


def test_the_regex_mirror_of_the_grammar() -> None:
    import re

    assert re.fullmatch(TURN, "<think>a < b</think>\n<python>x = 1 if 2 < 3 else 0</python>")
    assert re.fullmatch(TURN, "<think></think>\n<python></python>\n<reply>Lyon</reply>")
    assert not re.fullmatch(TURN, "<think></think>\n<python></python>")  # empty code needs a reply
    assert not re.fullmatch(TURN, "<think></think>\n<python>x = 1</python>\n<reply>hi</reply>")


@pytest.mark.slow
def test_turn_grammar_on_the_hf_tokenizer_accepts_turns_and_rejects_the_rest(embedded_hf) -> None:
    from reasonlab.llm import SamplingParams
    from reasonlab.llm.constrained import ConstraintFactory

    factory = ConstraintFactory.from_huggingface(embedded_hf.tokenizer, embedded_hf.vocab_size,
                                                [embedded_hf.eos_token_id])

    def accepts(text: str) -> tuple[bool, bool]:
        """(every token accepted, the grammar then ends at EOS)."""
        constraint = factory.new(SamplingParams(grammar=TURN_GRAMMAR))
        ok = all(constraint.accept(t) for t in embedded_hf.tokenize(text, add_special_tokens=False))
        return ok, ok and constraint.accept(embedded_hf.eos_token_id) and constraint.finished

    assert accepts("<think>Read user.md.</think>\n<python>user = read_file(\"user.md\")</python>") == (True, True)
    assert accepts("<think>Known.</think>\n<python></python>\n<reply>You live in Lyon.</reply>") == (True, True)
    assert accepts("<think>unfinished") == (True, False)
    assert accepts("<reply>Lyon</reply>")[0] is False
    assert accepts("<think>x</think>\n<python>a = 1</python>\n<reply>")[0] is False


@pytest.mark.slow
def test_hf_embedded_stays_in_the_turn_format(embedded_hf, tmp_path: Path) -> None:
    regex = pytest.importorskip("regex")
    from reasonlab.systems.memagent import Agent, AgentConfig, Memory

    memory = Memory.from_files(tmp_path / "memory", {"user.md": "# User\n- name: Bob Stone\n- city: Oslo\n"})
    # without the few-shot episodes the prompt is half as long: this test is about the grammar, not the answer
    agent = Agent(embedded_hf, memory, AgentConfig(max_turns=1, max_tokens_per_turn=8, few_shot=False))
    result = agent.run("Which city do I live in?")
    completion = result.turns[0].completion
    assert completion.startswith("<think>") and result.completion_tokens <= 8
    # a complete turn, or a prefix of one cut by max_tokens: never outside the grammar
    assert regex.fullmatch(TURN, completion, partial=True), completion
    if regex.fullmatch(TURN, completion) and result.turns[0].turn.python:
        assert result.turns[0].tool_run is not None
