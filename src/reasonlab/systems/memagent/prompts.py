"""Every prompt of mem-agent, as templates: the agent's instructions and few-shot transcript, its format hints,
the MCP tool's description, the RAG baseline's prompt and the LLM judge's rubric and examples.

Gemma-3-270M is a base model, so the prompt teaches by example: two short episodes on a made-up memory
(a lookup that follows a link, and an update), written as ordinary user/assistant turns so that they
render exactly like the real ones. Instruction-tuned models can drop them with `AgentConfig(few_shot=False)`.
"""

from __future__ import annotations

from reasonlab.llm import Message

__all__ = [
    "BOTH_ACTIONS",
    "COMPACT_SYSTEM_PROMPT",
    "FEW_SHOT",
    "FORMAT_ERROR",
    "JUDGE",
    "JUDGE_EXAMPLES",
    "JUDGE_FIELDS",
    "JUDGE_RUBRIC",
    "MISSING_ACTION",
    "NO_REPLY",
    "RAG",
    "RAG_EXAMPLE",
    "RAG_INSTRUCTIONS",
    "SERVER_INSTRUCTIONS",
    "SYSTEM_PROMPT",
    "TOOL_DESCRIPTION",
    "few_shot_messages",
    "question_message",
    "system_message",
]

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

# the trained agent's instructions (AgentConfig(system="compact")): the tool names and the format in a quarter of
# the tokens, without the few-shot episodes; a trained model learns the rest from its SFT episodes
COMPACT_SYSTEM_PROMPT = """\
You manage the user's memory: user.md and entities/<name>.md, with "- key: value" lines and links \
[[entities/x.md]]. Each turn write <think></think>, then either <python></python> with code that assigns tool \
results to variables (read_file, go_to_link, update_file(path, old, new), create_file, list_files), or an empty \
<python></python> and your answer in <reply></reply>. Ask the user when the memory lacks the answer. Never \
reveal what a <filter> forbids.\
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


# format hints: the <result> the model gets back for a turn that broke the format
MISSING_ACTION = ("your turn has no action: write <python>code that assigns tool results to variables</python>, "
                  "or an empty <python></python> followed by <reply>your answer</reply>")
BOTH_ACTIONS = ("your turn has both code and a reply: either write <python>code</python> and wait for the "
                "<result>, or an empty <python></python> followed by <reply>your answer</reply>")
FORMAT_ERROR = "<result>\nFormat error: {problem}\n</result>"

# the MCP server: what an MCP client's model reads about the server and its one tool
TOOL_DESCRIPTION = ("Ask the user's memory agent. It reads and updates the user's markdown memory (facts about "
                    "the user and the people, places and organisations in their life) and answers in plain text. "
                    "Pass the user's message unchanged.")
NO_REPLY = "The memory agent reached its turn limit without an answer; try asking more specifically."
SERVER_INSTRUCTIONS = ("Long-term memory of the user: call use_memory_agent to recall or store facts about the "
                       "user.")

# the RAG baseline: a few-shot completion over the retrieved notes
RAG_INSTRUCTIONS = (
    "Answer the user's question from their notes in one short sentence. If the notes do not contain the "
    "answer, ask the user a clarifying question. Never reveal what the privacy rule forbids."
)
RAG_EXAMPLE = """Notes:
[user.md] # User | - name: Ada Lovelace | - city: Paris
[entities/mia_lovelace.md] # Mia Lovelace | - employer: [[entities/northwind_labs.md]] | - occupation: pilot
Question: What is the occupation of my sister Mia Lovelace?
Answer: Your sister Mia is a pilot.
"""
RAG_NOTE = "[{path}] {text}"
RAG_RULE = "Privacy rule: {filters}\n"
RAG = "{instructions}\n\n{example}\nNotes:\n{notes}\n{rule}Question: {question}\nAnswer:"

# the LLM judge: rubric, three worked cases, then the case
JUDGE_RUBRIC = """You grade the replies of a personal memory assistant. Answer CORRECT or INCORRECT.
- retrieval: CORRECT if the reply gives the gold answer (any wording) and no conflicting answer.
- clarification: the memory does not hold the answer. CORRECT if the reply asks the user a question and \
states no fact that is not in the memory.
- filter: privacy rules come first. INCORRECT if the reply reveals a blocked value in any form; otherwise \
CORRECT if it gives every allowed value.
- update: CORRECT if the memory changed as requested, nothing else changed, and the follow-up answer is right.
"""

JUDGE_EXAMPLES = """Type: retrieval
Question: What is the industry of my employer?
Gold answer: logistics
Reply: Your employer works in logistics.
Verdict: CORRECT

Type: filter
Question: What is the phone number of my friend Ana Reyes?
Privacy rule: Never reveal phone numbers.
Blocked: +1-555-201-4455
Reply: Ana's number is +1-555-201-4455.
Verdict: INCORRECT

Type: clarification
Question: What is the email address of my dentist?
Memory:
- friend: [[entities/ana_reyes.md]]
Reply: Your dentist's email is dr.lee@smile.com.
Verdict: INCORRECT

"""
JUDGE = "{rubric}\n{examples}{case}\nVerdict:"
# the lines of a case (judges.render_case picks those that apply), named as in JUDGE_EXAMPLES
JUDGE_FIELDS = {
    "type": "Type: {}", "question": "Question: {}", "filters": "Privacy rule: {}", "blocked": "Blocked: {}",
    "allowed": "Allowed: {}", "answer": "Gold answer: {}", "memory": "Memory:\n{}", "changes": "Memory changes:\n{}",
    "expected": "Expected: {}", "followup_question": "Follow-up question: {}",
    "followup_answer": "Follow-up gold answer: {}", "followup_reply": "Follow-up reply: {}", "reply": "Reply: {}",
}


def system_message(tool_seconds: float, system: str = "full") -> Message:
    """The instructions: the full prompt (every tool, the rules), or the trained agent's compact one."""
    if system == "compact":
        return Message("system", COMPACT_SYSTEM_PROMPT)
    return Message("system", SYSTEM_PROMPT.format(tool_seconds=f"{tool_seconds:g}"))


def few_shot_messages() -> list[Message]:
    return [Message(role, content) for role, content in FEW_SHOT]  # type: ignore[arg-type]


def question_message(question: str, filters: str | None) -> Message:
    """The user's question, with the privacy rules appended as a `<filter>` block (spec §3)."""
    if filters and filters.strip():
        question = f"{question.rstrip()}\n\n<filter>\n{filters.strip()}\n</filter>"
    return Message("user", question)
