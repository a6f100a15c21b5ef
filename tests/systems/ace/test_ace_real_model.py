"""The roles on the real embedded Gemma-3-270M (greedy, so the outputs are pinned): every role's output parses
on its first try under constrained decoding, and the Curator's delta changes the playbook by exactly one
valid ADD; in process, and through `reasonlab serve`."""

from __future__ import annotations

import pytest

from reasonlab.systems.ace.delta import apply_delta
from reasonlab.systems.ace.playbook import Playbook
from reasonlab.systems.ace.roles import Curator, Generator, Reflector, RoleSettings
from reasonlab.systems.ace.tasks import FormulaSuite

SETTINGS = RoleSettings(max_tokens=96, content_chars=80, field_chars=40, max_operations=1, max_citations=2)
# short bounds keep a Curator call to a few dozen tokens
CURATOR_SETTINGS = SETTINGS.model_copy(update={"field_chars": 8, "content_chars": 40, "retries": 1})
INSIGHT = "nova cover = cash / cost"


def learned_playbook(task: FormulaSuite) -> Playbook:
    playbook = Playbook()
    for family in task.metrics:
        playbook.add("formulas_and_calculations", task.rule(family))
    return playbook


def check_curator_delta(llm) -> None:
    """The Curator, given a missing rule, adds exactly that rule; the merge applies it as one new bullet."""
    playbook = Playbook()
    outcome = Curator(llm, CURATOR_SETTINGS, demo="formula")(playbook, "What is its nova cover?", INSIGHT)
    assert outcome.ok and len(outcome.raw) == 1, outcome.raw
    updated, report = apply_delta(playbook, outcome.value.operations, lambda t: len(llm.tokenize(t)), 500)
    assert report.rejected is None and report.skipped == [] and len(report.added) == 1
    assert [(b.id, b.section, b.content) for b in updated] == [("calc-00001", "formulas_and_calculations", INSIGHT)]
    assert len(playbook) == 0  # the merge works on a copy


@pytest.mark.slow
def test_every_role_parses_on_hf_and_the_generator_copies_the_rule(embedded_hf) -> None:
    task = FormulaSuite(families=2)
    playbook = learned_playbook(task)
    sample = task.test[0]
    answer = Generator(embedded_hf, SETTINGS, task.demo)(playbook.render(), sample.question, playbook.ids,
                                                         task.answer_schema(sample))
    assert answer.ok and len(answer.raw) == 1, answer.raw
    # greedy: the 270M model cites both rules and copies the one asked for, which scores as correct
    assert answer.value.bullet_ids == ["calc-00001", "calc-00002"]
    assert answer.value.final_answer == "zeta margin = (revenue - cost) / revenue"
    assert task.check(sample, answer.value.final_answer)

    reflection = Reflector(embedded_hf, SETTINGS, task.demo)(
        question=sample.question, answer="zeta margin = cost / revenue", feedback="wrong: expected 0.75",
        playbook=playbook, cited_ids=["calc-00001"])
    assert reflection.ok and len(reflection.raw) == 1, reflection.raw
    assert reflection.value.key_insight.strip() and len(reflection.value.key_insight) <= SETTINGS.field_chars
    assert [tag.id for tag in reflection.value.bullet_tags] in ([], ["calc-00001"])

    check_curator_delta(embedded_hf)


@pytest.mark.slow
def test_curator_through_reasonlab_serve_emits_the_same_valid_delta(reasonlab_server) -> None:
    from reasonlab.llm import load_llm

    check_curator_delta(load_llm(f"openai:{reasonlab_server}#gemma"))
