"""Scripted LLMs for ACE logic tests: a rule-following Generator, a copying Curator, a forgetful rewriter."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from reasonlab.llm import ScriptedLLM

BULLET = re.compile(r"^\[([a-z]+-\d{5})\](?: helpful=\d+ harmful=\d+ ::)? (.*)$", re.M)


def last_block(prompt: str, start: str, end: str) -> str:
    return prompt.rsplit(start, 1)[1].split(end, 1)[0]


def rule_follower(prompt: str, rewrite_keep_chars: int = 60) -> str:
    """Answers as a perfect rule-follower: uses a playbook rule `<metric> = <formula>` if one matches."""
    if "You keep a cheatsheet" in prompt:
        old = last_block(prompt, "Cheatsheet:\n", "\nExample:").strip()
        rule = last_block(prompt, "Rule: ", "\nJSON").strip()
        kept = "" if old == "(empty)" else old
        # a monolithic rewrite with a small output: keeps only the newest rule and the tail of the old sheet
        sheet = (f"- {rule}\n" + kept)[:rewrite_keep_chars]
        return json.dumps({"cheatsheet": sheet})
    if "You maintain a playbook" in prompt:
        insight = last_block(prompt, "Reflection: ", "\nJSON").strip()
        return json.dumps({"reasoning": "missing", "operations": [
            {"type": "ADD", "section": "formulas_and_calculations", "content": insight}]})
    if "You review an answer" in prompt:
        return json.dumps({"reasoning": "r", "error_identification": "e", "root_cause_analysis": "c",
                           "correct_approach": "a", "key_insight": "revenue rule", "bullet_tags": []})
    playbook = last_block(prompt, "Playbook:\n", "\nQuestion:")
    question = prompt.rsplit("Question: ", 1)[1]
    metric = question.rsplit("What is its ", 1)[-1].split("?")[0]
    for bullet_id, content in BULLET.findall(playbook):
        if content.startswith(f"{metric} = "):
            return json.dumps({"bullet_ids": [bullet_id], "final_answer": content.split(" = ", 1)[1]})
    return json.dumps({"bullet_ids": [], "final_answer": "revenue"})


@pytest.fixture
def rule_llm() -> Callable[..., ScriptedLLM]:
    def make(**options) -> ScriptedLLM:
        return ScriptedLLM(lambda prompt: rule_follower(prompt, **options))

    return make
