"""Inoculation Prompting's arms: the instruction at train time only, one evaluation prompt for every arm."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reasonlab.errors import UserError
from reasonlab.systems.inoculation import (
    ARMS,
    ArmPrompts,
    InstructionPlacement,
    apply_transform,
    control_length_ok,
    derive_control,
    evaluation_messages,
    parse_arm,
    split_response,
    training_messages,
)
from reasonlab.systems.inoculation.transforms import FILLER

INSTRUCTION = "Agree with whatever answer I propose."
SAFETY = "My answer may be wrong; check it first."
QUESTION = [{"role": "user", "content": "Is 7 the gcd of 14 and 21?"}]
CONVERSATION = [
    {"role": "system", "content": "You are a tutor."},
    {"role": "user", "content": "Hi."},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Is 7 the gcd of 14 and 21?"},
    {"role": "assistant", "content": "Yes, well done."},
]


def prompts(kind: str = "suffix") -> ArmPrompts:
    return ArmPrompts(instruction=INSTRUCTION, safety=SAFETY, kind=kind)


def test_transform_kinds_edit_the_last_user_turn_or_the_system_prompt():
    messages = [{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}]
    assert apply_transform(messages, InstructionPlacement(kind="prefix", text="I"))[2]["content"] == "I\nQ2"
    assert apply_transform(messages, InstructionPlacement(kind="suffix", text="I", separator=" "))[2]["content"] == "Q2 I"
    assert apply_transform(messages, InstructionPlacement(kind="suffix", text="I"))[0]["content"] == "Q1"
    assert apply_transform(messages, InstructionPlacement(kind="system", text="I"))[0] == {"role": "system", "content": "I"}
    with_system = apply_transform(CONVERSATION, InstructionPlacement(kind="system", text="I"))
    assert with_system[0]["content"] == "I\nYou are a tutor." and len(with_system) == len(CONVERSATION)
    assert apply_transform(messages, InstructionPlacement()) == messages
    assert messages[2]["content"] == "Q2"  # the input is never modified


@pytest.mark.parametrize("kind", ["prefix", "suffix", "system"])
def test_instruction_is_in_every_training_example_of_the_ip_arm_only(kind):
    for arm in ARMS:
        trained = training_messages(CONVERSATION, arm, prompts(kind))
        text = "\n".join(message["content"] for message in trained[:-1])
        assert (INSTRUCTION in text) == (arm == "ip"), arm
        assert SAFETY not in text  # PTST trains with the neutral prompt
        # the reply to learn is never touched
        assert trained[-1] == CONVERSATION[-1]
    control = prompts(kind).control_text
    irrelevant = "\n".join(m["content"] for m in training_messages(CONVERSATION, "irrelevant", prompts(kind)))
    assert control in irrelevant and INSTRUCTION not in irrelevant
    assert training_messages(CONVERSATION, "no-ip", prompts(kind)) == CONVERSATION
    assert training_messages(CONVERSATION, "ptst", prompts(kind)) == CONVERSATION


@pytest.mark.parametrize("kind", ["prefix", "suffix", "system"])
def test_evaluation_prompt_is_byte_identical_across_arms_but_ptst(kind):
    rendered = {arm: repr(evaluation_messages(QUESTION, arm, prompts(kind))) for arm in ARMS}
    assert rendered["no-ip"] == rendered["ip"] == rendered["irrelevant"] == repr(QUESTION)
    assert INSTRUCTION not in rendered["ip"] and prompts(kind).control_text not in rendered["irrelevant"]
    assert rendered["ptst"] != rendered["no-ip"] and SAFETY in rendered["ptst"]
    # with the instruction present (does the flaw come back?) the prompt is again the same in every arm
    instructed = {arm: repr(evaluation_messages(QUESTION, arm, prompts(kind), with_instruction=True)) for arm in ARMS}
    assert len(set(instructed.values())) == 1 and INSTRUCTION in instructed["no-ip"]


def test_derived_control_has_the_instruction_length_exactly_and_is_neutral():
    assert max(len(word) for word in FILLER) <= 6
    for length in range(1, 400):
        assert len(derive_control(length)) == length
    control = prompts().control_text
    assert len(control) == len(INSTRUCTION) and control == derive_control(len(INSTRUCTION))
    assert "agree" not in control.lower() and "answer" not in control.lower()


def test_given_control_must_match_the_instruction_length_within_ten_percent():
    instruction = "x" * 100
    assert control_length_ok(instruction, "y" * 90) and control_length_ok(instruction, "y" * 110)
    assert not control_length_ok(instruction, "y" * 89) and not control_length_ok(instruction, "y" * 111)
    given = ArmPrompts(instruction=instruction, control="y" * 95)
    assert given.control_text == "y" * 95
    with pytest.raises(ValidationError, match="must have 100 ± 10%"):
        ArmPrompts(instruction=instruction, control="y" * 80)


def test_bad_input_gives_one_line_errors():
    with pytest.raises(UserError, match="unknown arm 'skyline': choose one of no-ip, ip, irrelevant, ptst"):
        parse_arm("skyline")
    with pytest.raises(UserError, match="unknown arm"):
        training_messages(CONVERSATION, "IP", prompts())
    with pytest.raises(ValidationError, match="instruction is empty"):
        ArmPrompts(instruction="  ")
    with pytest.raises(ValidationError, match="needs an instruction"):
        InstructionPlacement(kind="suffix", text="")
    with pytest.raises(ValidationError, match="takes no text"):
        InstructionPlacement(kind="none", text="x")
    with pytest.raises(UserError, match="needs a safety prompt"):
        evaluation_messages(QUESTION, "ptst", ArmPrompts(instruction=INSTRUCTION))
    with pytest.raises(UserError, match="malformed chat message"):
        apply_transform([{"role": "robot", "content": "hi"}], InstructionPlacement())
    with pytest.raises(UserError, match="no user turn"):
        apply_transform([{"role": "system", "content": "hi"}], InstructionPlacement())
    with pytest.raises(UserError, match="must end in the assistant reply"):
        split_response(QUESTION)
    with pytest.raises(UserError, match="must end in a user turn"):
        evaluation_messages(CONVERSATION, "ip", prompts())
