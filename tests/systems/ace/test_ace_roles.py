"""The roles as LLM programs: schemas, parsing, retries, record-and-skip on malformed output."""

from __future__ import annotations

import json

from reasonlab.llm import ScriptedLLM
from reasonlab.systems.ace.memory import Attempt, PlaybookMemory
from reasonlab.systems.ace.playbook import Playbook
from reasonlab.systems.ace.roles import Curator, Generator, Reflector, RoleSettings
from reasonlab.systems.ace.tasks import Feedback, FormulaSuite

SETTINGS = RoleSettings(retries=2)


def test_generator_schema_restricts_citations_to_existing_ids_and_parses() -> None:
    reply = json.dumps({"bullet_ids": ["calc-00001"], "final_answer": "cash / debt"})
    llm = ScriptedLLM([reply])
    generator = Generator(llm, SETTINGS, demo="formula")
    schema = generator.schema(["calc-00001", "calc-00002"], {"type": "string"})
    assert schema["properties"]["bullet_ids"]["items"]["enum"] == ["calc-00001", "calc-00002"]
    assert "reasoning" not in schema["properties"]
    assert Generator(llm, RoleSettings(reasoning_chars=50)).schema([], {})["properties"]["bullet_ids"]["maxItems"] == 0
    outcome = generator("## others\n[calc-00001] x", "What is its y?", ["calc-00001"], {"type": "string"})
    assert outcome.ok and outcome.value.final_answer == "cash / debt" and outcome.value.bullet_ids == ["calc-00001"]
    assert llm.prompts[0].endswith("Question: What is its y?\nJSON: ")


def test_generator_falls_back_to_ids_cited_in_reasoning() -> None:
    reply = json.dumps({"reasoning": "by [calc-00002] and [zzz-00009]", "bullet_ids": [], "final_answer": "a"})
    outcome = Generator(ScriptedLLM([reply]), RoleSettings(reasoning_chars=80))("", "q", ["calc-00002"], {})
    assert outcome.value.bullet_ids == ["calc-00002"]


def test_malformed_output_is_retried_then_succeeds() -> None:
    good = json.dumps({"reasoning": "r", "operations": [{"type": "ADD", "section": "others", "content": "c"}]})
    llm = ScriptedLLM(["{not json", '{"reasoning": 1}', good])
    curator = Curator(llm, SETTINGS)
    outcome = curator(Playbook(), "q", "insight")
    assert outcome.ok and len(outcome.raw) == 3 and outcome.value.operations[0].content == "c"
    assert llm.usage.calls == 3 and curator.stats == {"calls": 1, "tries": 3, "failures": 0}


def test_curator_failure_is_recorded_and_the_playbook_is_never_corrupted() -> None:
    bad_add = json.dumps({"reasoning": "r", "operations": [{"type": "ADD", "section": "others", "content": " "}]})
    replies = iter(["{oops", bad_add, "[]",  # curator: three malformed replies
                    "{trunc"])
    reflection = json.dumps({"reasoning": "", "error_identification": "", "root_cause_analysis": "",
                             "correct_approach": "", "key_insight": "k", "bullet_tags": []})
    llm = ScriptedLLM(lambda prompt: reflection if "You review" in prompt else next(replies))
    task = FormulaSuite(families=1, per_family=2)
    playbook = Playbook()
    playbook.add("others", "keep me")
    memory = PlaybookMemory(generator=Generator(llm, SETTINGS), reflector=Reflector(llm, SETTINGS),
                            curator=Curator(llm, SETTINGS), task=task, feedback=task.label_feedback,
                            count=len, playbook=playbook)
    before = memory.playbook.to_dict()
    record = memory.learn(task.train[0], Attempt("revenue", [], Feedback(True, "correct")), step=1, total=1)
    assert record == {"rounds": 0, "added": 0, "merged": 0, "pruned": 0, "rejected": 0, "skipped": 0,
                      "solved_after_reflection": False, "curator_failed": 1}
    assert memory.playbook.to_dict() == before
    assert memory.failures[0]["role"] == "curator" and memory.failures[0]["raw"] == ["{oops", bad_add, "[]"]
    assert memory.failures[0]["error"].startswith("ValidationError")
    assert memory.curator.stats == {"calls": 1, "tries": 3, "failures": 1}


def test_reflector_schema_tags_only_cited_bullets() -> None:
    schema = Reflector(ScriptedLLM([]), SETTINGS).schema(["calc-00003"])
    tags = schema["properties"]["bullet_tags"]
    assert tags["maxItems"] == 1 and tags["items"]["properties"]["id"]["enum"] == ["calc-00003"]
    assert set(schema["required"]) == {"reasoning", "error_identification", "root_cause_analysis",
                                       "correct_approach", "key_insight", "bullet_tags"}


def test_curator_schema_offers_only_configured_operations() -> None:
    playbook = Playbook()
    playbook.add("others", "x")
    add_only = Curator(ScriptedLLM([]), SETTINGS).schema(playbook)["properties"]["operations"]
    assert add_only["items"]["properties"]["type"] == {"const": "ADD"}
    assert add_only["items"]["properties"]["section"]["enum"] == playbook.sections
    richer = Curator(ScriptedLLM([]), RoleSettings(operations=["ADD", "UPDATE", "REMOVE"])).schema(playbook)
    kinds = [c["properties"]["type"]["const"] for c in richer["properties"]["operations"]["items"]["anyOf"]]
    assert kinds == ["ADD", "UPDATE", "REMOVE"]


def test_rewrite_baseline_replaces_the_whole_sheet_and_keeps_it_on_malformed_output() -> None:
    from reasonlab.systems.ace.memory import ExamplesMemory, RewriteMemory

    task = FormulaSuite(families=1, per_family=2)
    sample = task.train[0]
    llm = ScriptedLLM([json.dumps({"cheatsheet": "- one rule"}), "{bad", "{bad", "{bad"])
    memory = RewriteMemory(llm, SETTINGS, count=len, cheatsheet="- fact a\n- fact b\n- fact c")
    attempt = Attempt("revenue", [], Feedback(False, "wrong"))
    assert memory.learn(sample, attempt, 1, 2) == {"shrink": round(1 - len("- one rule") / 26, 4)}
    assert memory.context() == "- one rule"
    assert memory.learn(sample, attempt, 2, 2) == {"rewrite_failed": 1} and memory.context() == "- one rule"
    assert memory.stats == {"calls": 2, "tries": 4, "failures": 1}
    examples = ExamplesMemory(count=len, k=1, labels=False)
    examples.learn(sample, Attempt("bogus", [], Feedback(False, "error")), 1, 1)
    assert examples.context() == "(empty)"  # without labels only answers the executor accepted are kept
    examples.learn(sample, Attempt("revenue", [], Feedback(None, "ok")), 1, 1)
    assert examples.examples == [(sample.question, "revenue")]
