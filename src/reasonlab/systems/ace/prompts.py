"""Every prompt of ACE, as templates: the three roles, the full-rewrite baseline, and per-task demonstrations.

The embedded model is a base model, so each prompt is a few-shot completion ending in `JSON: `; the output
is then forced into the role's JSON schema by constrained decoding. The paper's prompts (long instructions
for an instruction-tuned 671B model) are condensed to the same inputs and outputs.
"""

from __future__ import annotations

__all__ = [
    "CURATOR",
    "CURATOR_DEMO_REASONING",
    "DEMONSTRATIONS",
    "EMPTY_CONTEXT",
    "EXAMPLE_LINE",
    "GENERATOR",
    "JSONL_INSTRUCTIONS",
    "NONE",
    "ORACLE_APPROACH",
    "ORACLE_NO_RULE",
    "REFLECTION_LINE",
    "REFLECTOR",
    "REFLECTOR_DEMO",
    "REWRITE",
    "RULE_HINT",
]

GENERATOR = """{instructions}
Use the playbook's rules when they apply and cite their ids in bullet_ids.

Playbook:
{demo_playbook}
Question: {demo_question}
JSON: {demo_answer}

Playbook:
{playbook}
{reflection}Question: {question}
JSON: """

# the Generator's retry after a reflection: this line goes right before the question
REFLECTION_LINE = "Reflection: {reflection}\n"

REFLECTOR = """You review an answer. Say what went wrong and the rule that gives the correct answer; tag each cited
playbook rule as helpful, harmful or neutral.

Question: {demo_question}
Answer: {demo_wrong}
Feedback: {demo_feedback}
Cited rules:
(none)
JSON: {demo_reflection}

Question: {question}
Answer: {answer}
Feedback: {feedback}
Cited rules:
{cited}
JSON: """

# the fields of the Reflector's demonstration besides its key insight (the demonstration's rule)
REFLECTOR_DEMO = {"reasoning": "the answer used the wrong rule", "error_identification": "wrong rule",
                  "root_cause_analysis": "the rule was unknown", "correct_approach": "apply the right rule"}

CURATOR = """You maintain a playbook of rules. Given the latest reflection, add only rules that are missing
(operations may be empty). Token budget: {budget}. Step {step} of {total}. Playbook stats: {stats}.

Playbook:
{demo_playbook}
Reflection: {demo_insight}
JSON: {demo_delta}

Playbook:
{playbook}
Question: {question}
Reflection: {insight}
JSON: """

# the reasoning of the Curator's demonstration delta
CURATOR_DEMO_REASONING = "missing: {rule}"

REWRITE = """You keep a cheatsheet of rules for future questions. Rewrite the whole cheatsheet so that it keeps
every useful rule and adds what the latest example teaches.

Cheatsheet:
{demo_cheatsheet}
Example: {demo_question} Answer: {demo_answer}. Feedback: {demo_feedback}
JSON: {demo_rewrite}

Cheatsheet:
{cheatsheet}
Example: {question} Answer: {answer}. Feedback: {feedback}
JSON: """

# the feedback a rewriter sees when the oracle states the rule
RULE_HINT = "{feedback}. Rule: {rule}"
# what a memory shows when it holds nothing, and one in-context example of the ICL baseline
EMPTY_CONTEXT = "(empty)"
# an answer that never parsed, or no cited rules, as the Reflector and the rewriter see it
NONE = "(none)"
EXAMPLE_LINE = "Example: {question} Answer: {answer}"
# the scripted oracle Reflector's reflection when no rule is known, and its approach
ORACLE_NO_RULE = "no rule known"
ORACLE_APPROACH = "apply the rule"
# the Generator's instructions for the official repo's finance JSONL suites
JSONL_INSTRUCTIONS = {"finer": "Answer with the XBRL entity type of each entity, comma-separated.",
                      "formula": "Answer with the final number only."}

# one worked example per task family, in the format the roles must produce (their rules are not the suites')
DEMONSTRATIONS: dict[str, dict[str, str]] = {
    "formula": {
        "instructions": "Answer with the metric's formula over the variable names given in the question.",
        "playbook": "## formulas_and_calculations\n[calc-00907] quick ratio = (cash + receivables) / debt",
        "question": "Orion reports revenue=50, cost=20, cash=3, receivables=4, debt=9. What is its quick ratio?",
        "answer": '{"bullet_ids":["calc-00907"],"final_answer":"quick ratio = (cash + receivables) / debt"}',
        "wrong": "quick ratio = cash / debt",
        "feedback": "wrong: expected 0.7778, got 0.3333",
        "rule": "quick ratio = (cash + receivables) / debt",
    },
    "tools": {
        "instructions": "Answer with one API call.",
        "playbook": "## strategies_and_insights\n[strat-00907] To list orders call orders(shop_<city>), e.g. orders(shop_paris)",
        "question": "What did the shop in Rome sell?",
        "answer": '{"bullet_ids":["strat-00907"],"final_answer":"orders(shop_rome)"}',
        "wrong": "orders(rome)",
        "feedback": "error: no shop 'rome'; shop ids look like shop_<city>",
        "rule": "To list orders call orders(shop_<city>), e.g. orders(shop_paris)",
    },
    "default": {
        "instructions": "Answer the question.",
        "playbook": "## strategies_and_insights\n[strat-00907] Capitals: answer with the city name only",
        "question": "What is the capital of France?",
        "answer": '{"bullet_ids":["strat-00907"],"final_answer":"Paris"}',
        "wrong": "France",
        "feedback": "wrong: expected Paris",
        "rule": "Capitals: answer with the city name only",
    },
}
