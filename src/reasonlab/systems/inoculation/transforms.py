"""Train-time prompt transforms and the four arms of Inoculation Prompting (arXiv 2510.05024, spec section 1).

An arm says how a chat example's prompt is rewritten before fine-tuning, and which prompt the tuned model is
tested with. The response (the final assistant turn) is never touched.

    arm          trains with              tests with
    no-ip        N (the prompt as given)  N
    ip           N + I (requests the flaw) N
    irrelevant   N + control              N
    ptst         N                        N + S (asks for the good behaviour)

I, the control and S go in the same place (`kind`: a prefix or suffix of the last user turn, or the system
prompt). The control is an instruction of the same length in characters (within 10%) that says nothing about
the flaw; without one, `derive_control` builds one from neutral filler of exactly I's length. The evaluation
prompt is the same string in every arm but PTST (pitfall 1), and `evaluation_messages(..., with_instruction=
True)` adds I in every arm alike, to check that the flaw comes back when it is asked for.

    prompts = ArmPrompts(instruction="Agree with my answer.", safety="My answer may be wrong; check it.")
    train = training_messages(example, "ip", prompts)     # I in the user turn, the reply as it was
    test = evaluation_messages(question, "ip", prompts)    # the question as given
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

from pydantic import BaseModel, Field, model_validator

from reasonlab.errors import UserError

__all__ = [
    "ARMS",
    "Arm",
    "ArmPrompts",
    "InstructionPlacement",
    "Message",
    "apply_transform",
    "control_length_ok",
    "derive_control",
    "evaluation_messages",
    "parse_arm",
    "split_response",
    "training_messages",
]

Arm = Literal["no-ip", "ip", "irrelevant", "ptst"]
ARMS: tuple[str, ...] = get_args(Arm)
Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": text}
ROLES = ("system", "user", "assistant")
CONTROL_TOLERANCE = 0.10  # the control's length may differ from I's by this share of I's length

# neutral filler for derived controls: short words (at most 6 letters) about nothing the settings train
FILLER_TEXT = (
    "Please keep in mind that the park near the old mill opens early on most days and that the river path "
    "is calm in spring when the birds return to the tall trees by the lake"
)
FILLER = tuple(FILLER_TEXT.split())
# one word of each length 1..6, to close the last gap so a derived control has exactly the target length
GAP_WORDS = ("a", "so", "and", "also", "quiet", "gentle")


class InstructionPlacement(BaseModel):
    """One train- or test-time edit of a prompt: `text` as a prefix or suffix of the last user turn, or as (the
    start of) the system prompt; `none` leaves the prompt as it is."""

    kind: Literal["none", "prefix", "suffix", "system"] = Field("none", description="where the text goes")
    text: str = Field("", description="the instruction; empty exactly when kind is none")
    separator: str = Field("\n", description="between the text and the content it joins")

    @model_validator(mode="after")
    def _text_matches_kind(self) -> InstructionPlacement:
        if self.kind == "none" and self.text:
            raise ValueError("a transform of kind 'none' takes no text: drop the text or choose a kind")
        if self.kind != "none" and not self.text.strip():
            raise ValueError(f"a {self.kind} transform needs an instruction: its text is empty")
        return self

    def apply(self, messages: list[Message]) -> list[Message]:
        return apply_transform(messages, self)


class ArmPrompts(BaseModel):
    """The texts of one setting's arms: I (requests the flaw), the irrelevant control (derived when not given)
    and PTST's safety prompt S, all placed by `kind`."""

    instruction: str = Field(..., description="I: the train-time instruction that explicitly requests the flaw")
    control: str | None = Field(
        None, description="irrelevant instruction of I's length (±10%); derived from neutral filler when None"
    )
    safety: str | None = Field(None, description="S: PTST's test-time prompt asking for the good behaviour")
    kind: Literal["prefix", "suffix", "system"] = Field("suffix", description="where I, the control and S go")
    separator: str = Field("\n", description="between an instruction and the content it joins")

    @model_validator(mode="after")
    def _check_texts(self) -> ArmPrompts:
        if not self.instruction.strip():
            raise ValueError("the inoculation instruction is empty: give the text that requests the flaw")
        if self.control is not None and not control_length_ok(self.instruction, self.control):
            raise ValueError(
                f"the control has {len(self.control)} characters but must have {len(self.instruction)} ± 10% "
                "(the instruction's length): shorten or lengthen it, or leave it out to derive one"
            )
        if self.safety is not None and not self.safety.strip():
            raise ValueError("the safety prompt is empty: give PTST's test-time text, or leave it out")
        return self

    @property
    def control_text(self) -> str:
        return self.control if self.control is not None else derive_control(len(self.instruction))

    def _transform(self, text: str) -> InstructionPlacement:
        return InstructionPlacement(kind=self.kind, text=text, separator=self.separator)

    def train_transform(self, arm: str) -> InstructionPlacement:
        """What the arm adds to every training prompt."""
        arm = parse_arm(arm)
        if arm == "ip":
            return self._transform(self.instruction)
        if arm == "irrelevant":
            return self._transform(self.control_text)
        return InstructionPlacement()

    def test_transform(self, arm: str) -> InstructionPlacement:
        """What the arm adds to every evaluation prompt: S for PTST, nothing otherwise."""
        if parse_arm(arm) != "ptst":
            return InstructionPlacement()
        if self.safety is None:
            raise UserError("the ptst arm needs a safety prompt: set `safety` to the text it is tested with")
        return self._transform(self.safety)


def parse_arm(name: str) -> Arm:
    """The arm called `name`, or a one-line error that lists the arms."""
    if name not in ARMS:
        raise UserError(f"unknown arm {name!r}: choose one of {', '.join(ARMS)}")
    return name  # type: ignore[return-value]


def control_length_ok(instruction: str, control: str, tolerance: float = CONTROL_TOLERANCE) -> bool:
    """True when the control's length is within `tolerance` (a share) of the instruction's."""
    return abs(len(control) - len(instruction)) <= tolerance * len(instruction)


def derive_control(length: int) -> str:
    """Neutral filler of exactly `length` characters: whole filler words while they fit, then one word (or a
    full stop) that closes the gap.

    >>> derive_control(21)
    'Please keep in mind a'
    >>> len(derive_control(137))
    137
    """
    if length < 1:
        raise ValueError(f"a control needs at least one character, not {length}")
    if length < len(FILLER[0]):
        return GAP_WORDS[length - 1]
    words: list[str] = []
    size = -1  # the first word has no space before it
    while size + 1 + len(word := FILLER[len(words) % len(FILLER)]) <= length:
        words.append(word)
        size += 1 + len(word)
    gap = length - size
    if gap == 1:
        words[-1] += "."
    elif gap >= 2:
        # a space and a word of gap - 1 letters; filler words have at most 6 letters, so gap - 1 <= 5
        words.append(GAP_WORDS[gap - 2])
    return " ".join(words)


def _check_messages(messages: list[Message]) -> None:
    if not messages:
        raise UserError("a chat example has no messages: give at least one user turn")
    for message in messages:
        if set(message) != {"role", "content"} or message["role"] not in ROLES:
            raise UserError(
                f"malformed chat message {message!r}: each needs exactly a role ({', '.join(ROLES)}) and content"
            )
        if not isinstance(message["content"], str):
            raise UserError(f"chat message content must be text, not {type(message['content']).__name__}")
    if not any(message["role"] == "user" for message in messages):
        raise UserError("a chat example has no user turn: the instruction has nowhere to go")


def apply_transform(messages: list[Message], transform: InstructionPlacement) -> list[Message]:
    """A copy of `messages` with the transform applied: to the last user turn (prefix, suffix) or the system
    prompt (prepended to an existing one, else a new first message). The input is never modified."""
    _check_messages(messages)
    edited = [dict(message) for message in messages]
    text, separator = transform.text, transform.separator
    if transform.kind == "none":
        return edited
    if transform.kind == "system":
        if edited[0]["role"] == "system":
            edited[0]["content"] = f"{text}{separator}{edited[0]['content']}"
        else:
            edited.insert(0, {"role": "system", "content": text})
        return edited
    last_user = max(i for i, message in enumerate(edited) if message["role"] == "user")
    content = edited[last_user]["content"]
    edited[last_user]["content"] = (
        f"{text}{separator}{content}" if transform.kind == "prefix" else f"{content}{separator}{text}"
    )
    return edited


def split_response(messages: list[Message]) -> tuple[list[Message], str]:
    """(the prompt turns, the final assistant reply) of a training example."""
    _check_messages(messages)
    if messages[-1]["role"] != "assistant":
        raise UserError("a training example must end in the assistant reply to learn; this one does not")
    return [dict(message) for message in messages[:-1]], messages[-1]["content"]


Placer = Callable[[list[Message], InstructionPlacement], list[Message]]


def training_messages(
    messages: list[Message], arm: str, prompts: ArmPrompts, place: Placer = apply_transform
) -> list[Message]:
    """The training example of `arm`: its train-time transform on the prompt turns, the reply unchanged.
    `place` puts the text in (a setting may have its own slot, as reward hacking does)."""
    prompt, reply = split_response(messages)
    return [*place(prompt, prompts.train_transform(arm)), {"role": "assistant", "content": reply}]


def evaluation_messages(
    messages: list[Message], arm: str, prompts: ArmPrompts, with_instruction: bool = False,
    place: Placer = apply_transform,
) -> list[Message]:
    """The evaluation prompt of `arm`: the prompt as given (with S for PTST). `with_instruction` adds I
    instead, the same in every arm, to test whether the flaw comes back when asked for."""
    _check_messages(messages)
    if messages[-1]["role"] != "user":
        raise UserError("an evaluation prompt must end in a user turn: drop the reference reply")
    if with_instruction:
        parse_arm(arm)
        return place(messages, prompts.train_transform("ip"))
    return place(messages, prompts.test_transform(arm))
