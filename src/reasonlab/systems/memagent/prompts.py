"""Prompt templates of the memory agent: the instructions and a few-shot transcript of the turn format.

Gemma-3-270M is a base model, so the prompt teaches by example: two short episodes on a made-up memory
(a lookup that follows a link, and an update), written as ordinary user/assistant turns so that they
render exactly like the real ones. Instruction-tuned models can drop them with `AgentConfig(few_shot=False)`.
"""

from __future__ import annotations

from reasonlab.llm import Message

__all__ = ["FEW_SHOT", "SYSTEM_PROMPT", "few_shot_messages", "question_message", "system_message"]

SYSTEM_PROMPT = """\
You are a memory agent. The user's memory is a folder of markdown files: user.md describes the user, \
entities/<name>.md describes one person, place or organisation each. Lines look like "- key: value"; \
links to other files look like [[entities/acme_corp.md]].

Each turn, first think inside <think></think>. Then either
- run Python inside <python></python> that calls the tools and assigns their results to variables \
(printing is lost); you then get the variables back in <result></result>; or
- with an empty <python></python>, give the final answer inside <reply></reply>.

Tools (paths are relative to the memory folder):
- read_file(path) -> str            - go_to_link("[[entities/x.md]]") -> str
- create_file(path, content) -> bool      - update_file(path, old_text, new_text) -> True or "Error: ..."
- delete_file(path) -> bool         - create_dir(path) -> bool
- check_if_file_exists(path) -> bool      - check_if_dir_exists(path) -> bool
- list_files() -> str               - get_size(path) -> int
Start by reading user.md. Keep facts as "- key: value" lines and add a link in user.md for every new entity \
file. If the memory does not hold what the user asks about, ask one clarifying question instead of \
guessing. If the question ends with <filter></filter>, never reveal what the filter forbids: answer only \
the allowed part, or say that you cannot share it. Code runs for at most {tool_seconds} seconds.\
"""

_LOOKUP_USER = "# User\n- name: Ada Lovelace\n- city: Paris\n- sister: [[entities/mia_lovelace.md]]\n"
_LOOKUP_MIA = "# Mia Lovelace\n- relation: sister\n- employer: [[entities/northwind_labs.md]]\n"

# (role, content) pairs; each assistant turn is exactly what the turn grammar allows
FEW_SHOT: tuple[tuple[str, str], ...] = (
    ("user", "Where does my sister work?"),
    ("assistant", "<think>The sister should be linked from user.md.</think>\n"
                  "<python>user = read_file(\"user.md\")</python>"),
    ("user", f"<result>\n{ {'user': _LOOKUP_USER}!r}\n</result>"),
    ("assistant", "<think>The sister is Mia; her file should name her employer.</think>\n"
                  "<python>mia = go_to_link(\"[[entities/mia_lovelace.md]]\")</python>"),
    ("user", f"<result>\n{ {'mia': _LOOKUP_MIA}!r}\n</result>"),
    ("assistant", "<think>Mia works at Northwind Labs.</think>\n<python></python>\n"
                  "<reply>Your sister Mia works at Northwind Labs.</reply>"),
    ("user", "I moved to Lyon last week."),
    ("assistant", "<think>I must change the city in user.md.</think>\n"
                  "<python>user = read_file(\"user.md\")</python>"),
    ("user", f"<result>\n{ {'user': _LOOKUP_USER}!r}\n</result>"),
    ("assistant", "<think>Replace the city line.</think>\n"
                  "<python>done = update_file(\"user.md\", \"- city: Paris\", \"- city: Lyon\")</python>"),
    ("user", f"<result>\n{ {'done': True}!r}\n</result>"),
    ("assistant", "<think>The memory now says Lyon.</think>\n<python></python>\n"
                  "<reply>Noted: you live in Lyon now.</reply>"),
)


def system_message(tool_seconds: float) -> Message:
    return Message("system", SYSTEM_PROMPT.format(tool_seconds=f"{tool_seconds:g}"))


def few_shot_messages() -> list[Message]:
    return [Message(role, content) for role, content in FEW_SHOT]  # type: ignore[arg-type]


def question_message(question: str, filters: str | None) -> Message:
    """The user's question, with the privacy rules appended as a `<filter>` block (spec §3)."""
    if filters and filters.strip():
        question = f"{question.rstrip()}\n\n<filter>\n{filters.strip()}\n</filter>"
    return Message("user", question)
