"""The roles on the real embedded Gemma-3-270M: constrained outputs parse, in process and through a server."""

from __future__ import annotations

import pytest

from reasonlab.systems.ace.playbook import Playbook
from reasonlab.systems.ace.roles import Curator, Generator, RoleSettings
from reasonlab.systems.ace.tasks import FormulaSuite

SETTINGS = RoleSettings(max_tokens=96, content_chars=80, field_chars=40, max_operations=1, max_citations=2)


def learned_playbook(task: FormulaSuite) -> Playbook:
    playbook = Playbook()
    for family in task.metrics:
        playbook.add("formulas_and_calculations", task.rule(family))
    return playbook


@pytest.mark.slow
def test_generator_on_hf_parses_cites_and_copies_a_rule(embedded_hf) -> None:
    task = FormulaSuite(families=2)
    playbook = learned_playbook(task)
    generator = Generator(embedded_hf, SETTINGS, task.demo)
    sample = task.test[0]
    outcome = generator(playbook.render(), sample.question, playbook.ids, task.answer_schema(sample))
    assert outcome.ok, outcome.raw
    assert set(outcome.value.bullet_ids) <= set(playbook.ids)
    # what the 270M model does with the rule in context, recorded rather than assumed
    print(f"answer {outcome.value.final_answer!r} correct={task.check(sample, outcome.value.final_answer)}")


@pytest.mark.slow
def test_curator_through_reasonlab_serve_emits_a_valid_delta(reasonlab_server) -> None:
    from reasonlab.llm import load_llm
    from reasonlab.systems.ace.delta import apply_delta

    llm = load_llm(f"openai:{reasonlab_server}#gemma")
    playbook = Playbook()
    insight = "nova cover = cash / cost"
    # short bounds keep this one HTTP round trip to a few dozen tokens
    settings = SETTINGS.model_copy(update={"field_chars": 8, "content_chars": 40, "retries": 1})
    outcome = Curator(llm, settings, demo="formula")(playbook, "What is its nova cover?", insight)
    assert outcome.ok, outcome.raw
    updated, report = apply_delta(playbook, outcome.value.operations, lambda t: len(llm.tokenize(t)), 500)
    assert report.rejected is None and len(updated) == len(report.added) <= 1
    assert all(op.type == "ADD" and op.section in playbook.sections for op in outcome.value.operations)
