"""The turn format (spec §3): `<think>…</think>`, then `<python>…</python>`, then `<reply>…</reply>` when the
python block is empty. Parsing never raises: a malformed turn comes back with a `problem` hint.

    turn = parse_turn("<think>check the user</think>\\n<python>user = read_file('user.md')</python>")
    turn.python, turn.reply, turn.problem        # ("user = read_file('user.md')", None, None)

`TURN_GRAMMAR` is GBNF in the subset that both llama.cpp and xgrammar (hf backend) accept; with it a small
base model cannot leave the format. Neither block may contain its own closing tag (`</…`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasonlab.llm import SamplingParams
from reasonlab.systems.memagent import prompts

__all__ = ["RESULT_TAG", "TURN_GRAMMAR", "AgentTurn", "cut_action", "drop_think", "parse_turn", "turn_sampling"]

RESULT_TAG = "<result>"

TURN_GRAMMAR = r"""root ::= "<think>" text "</think>\n" action
action ::= "<python>" code "</python>" | "<python></python>\n<reply>" text "</reply>"
code ::= char char*
text ::= char*
char ::= [^<] | "<" [^/]
"""

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_+-]*[ \t]*\n?(.*?)\n?```\s*$", re.S)
_THINK = re.compile(r"<think>.*?(?:</think>\s*|$)", re.S)


@dataclass
class AgentTurn:
    """One parsed assistant turn. `problem` is a format hint for the model (then nothing is run)."""

    think: str
    python: str
    reply: str | None
    problem: str | None = None


def _block(text: str, tag: str) -> str | None:
    """The text between the first `<tag>` and the first `</tag>` after it (to the end when unclosed)."""
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return text[start:] if end < 0 else text[start:end]


def clean_code(code: str) -> str:
    """Strip markdown code fences and reformat with black when it is installed (raw code otherwise)."""
    fenced = _FENCE.match(code)
    code = (fenced.group(1) if fenced else code).strip("\n")
    try:
        import black
    except ImportError:
        return code.strip()
    try:
        return black.format_str(code, mode=black.Mode()).strip()
    except Exception:  # black refuses code it cannot parse: the sandbox reports the syntax error instead
        return code.strip()


def parse_turn(text: str) -> AgentTurn:
    """Split a completion into think / python / reply and say what is wrong with its format, if anything."""
    think = (_block(text, "think") or "").strip()
    raw_python = _block(text, "python")
    python = clean_code(raw_python) if raw_python else ""
    reply = _block(text, "reply")
    reply = reply.strip() if reply is not None else None
    problem = None
    if python and reply is not None:
        problem = prompts.BOTH_ACTIONS
    elif not python and reply is None:
        problem = prompts.MISSING_ACTION
    return AgentTurn(think=think, python=python, reply=reply, problem=problem)


def cut_action(text: str) -> str:
    """Cut a completion after its last `</python>` or `</reply>` (a model may go on to invent a result)."""
    text = text.split(RESULT_TAG, 1)[0]
    end = max(text.rfind("</python>") + len("</python>") if "</python>" in text else -1,
              text.rfind("</reply>") + len("</reply>") if "</reply>" in text else -1)
    return text[:end] if end > 0 else text


def drop_think(text: str) -> str:
    """A completion without its `<think>` block, as earlier turns appear in the history (spec §3)."""
    return _THINK.sub("", text, count=1).lstrip()


def turn_sampling(max_tokens: int, temperature: float = 0.0, seed: int | None = 0,
                  constrained: bool = True) -> SamplingParams:
    """Sampling for one turn: the turn grammar (unless `constrained=False`) and a stop at `<result>`."""
    return SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=[RESULT_TAG],
                          grammar=TURN_GRAMMAR if constrained else None)
