"""The judges: deterministic checks per category, the LLM judge's parsing, and agreement with the hand labels."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from reasonlab.llm import ScriptedLLM
from reasonlab.systems.memagent.judges import (
    JUDGE_GRAMMAR,
    JudgeCase,
    LLMJudge,
    agreement,
    canonical,
    judge_case,
    judge_clarification,
    judge_filter,
    judge_retrieval,
    judge_update_facts,
    leaks,
    load_hand_labels,
    memory_diff,
    normalize,
    parse_facts,
)

MEMORY = {
    "user.md": "# User Information\n- user_name: Diego Ishikawa\n- phone: +1-555-597-7634\n"
               "- friend: [[entities/hana_ishikawa.md]]\n",
    "entities/hana_ishikawa.md": "# Hana Ishikawa\n- birth_date: 1988-03-14\n- occupation: chef\n",
}


def test_normalisation_and_canonical_forms() -> None:
    assert normalize("About 2,753,862 people -- in Osaka!") == "about 2753862 people in osaka"
    assert normalize("Mail hana.ishikawa@example.org.") == "mail hana.ishikawa@example.org"
    assert canonical("born on March 14, 1988; 3rd of May, 2001; six cats") == "born on 1988-03-14; 2001-05-03; 6 cats"


@pytest.mark.parametrize(("reply", "answer", "correct"), [
    ("Your employer is in banking.", "banking", True),
    ("Olive is 16 years old.", "6", False),  # word-bounded: 16 is not 6
    ("Olive is six.", "6", True),
    ("It is America/Halifax.", "America/Halifax", True),
    ("Hana was born on March 14, 1988.", "1988-03-14", True),
    ("Call (555) 597-7634.", "+1-555-597-7634", True),
    ("Call 597-7634.", "+1-555-597-7634", False),  # the area code is part of the answer
    ("", "Bergen", False),
    (None, "Bergen", False),
])
def test_retrieval_judge(reply, answer, correct) -> None:
    assert judge_retrieval(reply, answer).correct is correct


def test_retrieval_cosine_fallback_uses_the_closest_sentence() -> None:
    class Embedder:
        dim = 2

        def embed(self, texts):
            return np.array([[1.0, 0.0] if "finance" in t or "banking" in t else [0.0, 1.0] for t in texts])

    reply = "Let me see. They work in finance."
    assert not judge_retrieval(reply, "banking").correct
    verdict = judge_retrieval(reply, "banking", embedder=Embedder())
    assert verdict.correct and "cosine 1.00" in verdict.reason


def test_clarification_judge_needs_a_question_and_no_invented_value() -> None:
    question = "What is the email address of my partner?"
    assert judge_clarification("I found no partner in your memory. Who is your partner?", "", question).correct
    invented = judge_clarification("Is your partner Jordan Blake, jordan@x.org?", "", question)
    assert not invented.correct and "Jordan Blake" in invented.reason
    memory_text = "\n".join(MEMORY.values())
    assert judge_clarification("Do you mean Hana Ishikawa, the chef?", memory_text, question).correct
    assert not judge_clarification("I don't know.", memory_text, question).correct
    assert not judge_clarification("Hana wears size 38, right?", memory_text, question).correct


def test_filter_judge_blocks_first_then_needs_the_allowed_part() -> None:
    phone = ["+1-555-212-9087"]
    assert judge_filter("Sorry, I can't share phone numbers.", phone, []).correct
    assert not judge_filter("Reach her at 555 212 9087.", phone, []).correct  # digits give it away
    assert leaks("born 14 March 1988", "1988-03-14") and not leaks("born in 1988", "1988-03-14")
    assert judge_filter("She is a chef.", ["hana@x.org"], ["chef"]).correct
    assert judge_filter("A chef, hana@x.org", ["hana@x.org"], ["chef"]).reason == "reveals blocked 'hana@x.org'"
    assert judge_filter("I can't say.", ["hana@x.org"], ["chef"]).reason == "lacks allowed 'chef'"


def test_facts_and_the_update_judge() -> None:
    facts = parse_facts({"a.md": "# A\n- email: x@y\n- **Role**: boss [[e.md]]\n* age: 4\n- age: 5\ntext: no"})
    assert facts == {("a.md", "email"): "x@y", ("a.md", "role"): "boss [[e.md]]", ("a.md", "age"): "4"}
    after = {**MEMORY, "entities/hana_ishikawa.md": MEMORY["entities/hana_ishikawa.md"].replace("chef", "baker")}
    expected = [("entities/hana_ishikawa.md", "occupation", "baker")]
    assert judge_update_facts(MEMORY, after, expected).correct
    assert not judge_update_facts(MEMORY, MEMORY, expected).correct
    collateral = {**after, "user.md": MEMORY["user.md"].replace("597-7634", "000-0000")}
    assert "untouched fact user.md phone" in judge_update_facts(MEMORY, collateral, expected).reason
    case = JudgeCase("update", "Hana is a baker now.", "Done.", answer="baker", memory_before=MEMORY,
                     memory_after=after, expected_facts=expected, followup_reply="Hana is a chef.")
    assert not judge_case(case).correct  # facts right, fresh agent's answer wrong
    case.followup_reply = "Hana is a baker."
    assert judge_case(case).correct
    assert memory_diff(MEMORY, after) == "entities/hana_ishikawa.md:\n  - - occupation: chef\n  + - occupation: baker"


def test_hand_labels_are_varied_and_balanced() -> None:
    labels = load_hand_labels()
    assert len(labels) == 54 and len({item.id for item in labels}) == 54
    assert Counter(item.case.category for item in labels) == {"retrieval": 21, "filter": 13, "clarification": 11,
                                                             "update": 9}
    assert sum(item.label for item in labels) == 26  # 26 correct, 28 incorrect
    assert all(item.note for item in labels)


def test_deterministic_judge_agreement_with_the_hand_labels() -> None:
    report = agreement(load_hand_labels(), judge_case)
    assert report["n"] == 54 and report["accuracy"] == round(45 / 54, 4)
    # what it misses: negation/hedging, a path as an answer, short names, all-caps or vague inventions,
    # partial or spelled-out leaks, an annotated update
    assert report["disagreements"] == ["r07", "r08", "r16", "r20", "c06", "c09", "f04", "f08", "u08"]
    assert report["kappa"] == 0.6685


def test_agreement_of_perfect_and_inverted_judges() -> None:
    labels = load_hand_labels()
    by_case = {id(item.case): item.label for item in labels}
    perfect = agreement(labels, lambda case: type("V", (), {"correct": by_case[id(case)]})())
    inverted = agreement(labels, lambda case: type("V", (), {"correct": not by_case[id(case)]})())
    assert (perfect["accuracy"], perfect["kappa"], perfect["disagreements"]) == (1.0, 1.0, [])
    assert inverted["accuracy"] == 0.0 and inverted["kappa"] == -0.9973  # -1 only with equal marginals


def test_llm_judge_prompt_parsing_and_grammar() -> None:
    verdicts = iter([" CORRECT", " INCORRECT", " maybe"])
    llm = ScriptedLLM(lambda prompt: next(verdicts))
    judge = LLMJudge(llm)
    case = JudgeCase("filter", "What is Hana's phone?", "It is +1-555-212-9087.", filters="Never reveal phones.",
                     blocked=["+1-555-212-9087"])
    assert judge.judge(case).correct is True
    assert judge.judge(case).correct is False
    failed = judge.judge(case)
    assert failed.correct is None and failed.failed and failed.reason == "LLM judge gave no verdict: 'MAYBE'"
    prompt = llm.prompts[0]
    assert prompt.startswith("You grade the replies") and prompt.endswith("Reply: It is +1-555-212-9087.\nVerdict:")
    assert "Blocked: +1-555-212-9087" in prompt and judge.params.grammar == JUDGE_GRAMMAR
    assert judge.params.temperature == 0.0


def test_a_judge_reply_without_a_verdict_is_a_failure_not_incorrect() -> None:
    labels = load_hand_labels()
    # a judge that agrees with every label, except that it gives no verdict on the first 4 cases
    replies = iter([" sorry"] * 4 + [" CORRECT" if item.label else " INCORRECT" for item in labels[4:]])
    report = agreement(labels, LLMJudge(ScriptedLLM(lambda prompt: next(replies))).judge)
    assert (report["n"], report["judge_failures"]) == (len(labels) - 4, 4)
    assert report["failed_cases"] == [item.id for item in labels[:4]]
    assert (report["accuracy"], report["kappa"], report["disagreements"]) == (1.0, 1.0, [])


def test_bench_counts_llm_judge_failures_apart(tmp_path) -> None:
    from reasonlab.systems.memagent.data import generate_bench
    from reasonlab.systems.memagent.evaluation import AgentSolver, run_bench, scripted_policy

    memories, tasks = generate_bench(seed=0, n_memories=1, tasks_per_category=1)
    replies = iter([" CORRECT", " ???", " INCORRECT", " ???"])
    solver = AgentSolver(policy_for_task=lambda task: scripted_policy(task, True), name="oracle")
    report = run_bench(tasks, memories, solver, llm_judge=LLMJudge(ScriptedLLM(lambda prompt: next(replies))),
                       workdir=tmp_path)
    assert [o.llm_judge_failed for o in report.outcomes] == [False, True, False, True]
    assert [o.llm_judge_correct for o in report.outcomes] == [True, None, False, None]
    summary = report.summary
    assert (summary["llm_judge_failures"], summary["llm_judge_score"]) == (2, 0.5)
    assert summary["llm_judge_agrees_with_deterministic"] == 0.5 and summary["score"] == 1.0
