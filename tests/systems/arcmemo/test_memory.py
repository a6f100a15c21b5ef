"""ArcMemo memory: the PS merge rules, typedef harvest, rendering, the OE views, and the JSON files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.arcmemo import memory as memory_module
from reasonlab.systems.arcmemo.memory import (
    Concept,
    ConceptMemory,
    Lesson,
    LessonMemory,
    Parameter,
    load_memory,
    save_memory,
    text_for_embedding,
)


def routine(name: str, subtype: str = "grid manipulation", **fields: object) -> dict[str, object]:
    return {"concept": name, "kind": "routine", "routine_subtype": subtype, **fields}


def structure(name: str, **fields: object) -> dict[str, object]:
    return {"concept": name, "kind": "structure", **fields}


def test_new_concept_takes_every_field() -> None:
    memory = ConceptMemory()
    name = memory.write_concept("p1", routine(
        " mirror grid ", description="reflect the grid", output_typing="grid",
        parameters=[{"name": "axis", "typing": "str", "description": "mirror line"}],
        cues=["rows reversed"], implementation=["np.fliplr"]))
    assert name == "mirror grid"
    assert memory.concepts["mirror grid"] == Concept(
        name="mirror grid", kind="routine", routine_subtype="grid manipulation", output_typing="grid",
        parameters=[Parameter(name="axis", typing="str", description="mirror line")],
        description="reflect the grid", cues=["rows reversed"], implementation=["np.fliplr"], used_in=["p1"])


def test_name_falls_back_to_the_name_key() -> None:
    memory = ConceptMemory()
    assert memory.write_concept("p1", {"name": "objects", "kind": "structure"}) == "objects"
    assert memory.write_concept("p1", {"concept": "  ", "name": "cells", "kind": "structure"}) == "cells"
    assert memory.names() == ["objects", "cells"]


@pytest.mark.parametrize("annotation", [
    {"kind": "structure", "description": "no name"},
    {"concept": "   ", "kind": "structure"},
    {"concept": 7, "kind": "structure"},
    {"concept": "x", "kind": "helper"},
    {"concept": "x"},
    {"concept": "x", "kind": ["routine"]},
    "concept: x",
    ["concept", "x"],
    None,
], ids=["no-name", "blank-name", "number-name", "bad-kind", "no-kind", "list-kind", "string", "list", "none"])
def test_unusable_annotations_are_skipped(annotation: object) -> None:
    memory = ConceptMemory()
    assert memory.write_concept("p1", annotation) is None  # type: ignore[arg-type]
    assert memory.concepts == {}


def test_kind_is_case_and_space_insensitive() -> None:
    memory = ConceptMemory()
    assert memory.write_concept("p1", {"concept": "a", "kind": " Routine "}) == "a"
    assert memory.concepts["a"].kind == "routine"


def test_reuse_marker_adds_the_puzzle_once() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", structure("objects", description="connected components"))
    assert memory.write_concept("p2", {"concept": "objects"}) == "objects"
    assert memory.write_concept("p2", {"concept": "objects"}) == "objects"
    concept = memory.concepts["objects"]
    assert concept.used_in == ["p1", "p2"]
    assert concept.description == "connected components"


def test_scalar_fields_keep_the_first_non_null_value() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", routine("crop", subtype=None, description="", output_typing=None))
    memory.write_concept("p2", routine("crop", subtype="selection", description="cut the box",
                                       output_typing="grid"))
    memory.write_concept("p3", routine("crop", subtype="other", description="something else",
                                       output_typing="list[grid]"))
    concept = memory.concepts["crop"]
    assert concept.routine_subtype == "selection"
    assert (concept.description, concept.output_typing) == ("cut the box", "grid")


def test_kind_of_an_existing_concept_is_kept() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", structure("objects"))
    memory.write_concept("p2", {"concept": "objects", "kind": "routine"})
    assert memory.concepts["objects"].kind == "structure"
    assert memory.index == {"structure": ["objects"], "routine": []}


def test_parameters_merge_by_name_newer_wins_in_place() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", routine("recolor", parameters=[
        {"name": "source", "typing": "color", "description": "old"},
        {"name": "target", "typing": "color"}]))
    memory.write_concept("p2", routine("recolor", parameters=[
        {"name": "extra", "typing": "int"},
        {"name": "source", "typing": "list[color]", "description": "new"}]))
    parameters = memory.concepts["recolor"].parameters
    assert [p.name for p in parameters] == ["source", "target", "extra"]
    assert parameters[0] == Parameter(name="source", typing="list[color]", description="new")
    assert parameters[1].typing == "color"


def test_parameter_shapes_the_model_writes() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", routine("a", parameters={"axis": "str", "size": {"typing": "int"}}))
    memory.write_concept("p1", routine("b", parameters=[{"axis": "str"}, "count", 5, {"typing": "no name"}]))
    memory.write_concept("p1", routine("c", parameters="not a list"))
    assert memory.concepts["a"].parameters == [Parameter(name="axis", typing="str"),
                                               Parameter(name="size", typing="int")]
    assert memory.concepts["b"].parameters == [Parameter(name="axis", typing="str"), Parameter(name="count")]
    assert memory.concepts["c"].parameters == []


def test_lines_union_is_ordered_stripped_and_deduplicated() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", structure("objects", cues=[" b ", "a", ""], implementation=["x"]))
    memory.write_concept("p2", structure("objects", cues=["c", "a ", "b", "   "], implementation=["y", " x"]))
    concept = memory.concepts["objects"]
    assert concept.cues == ["b", "a", "c"]
    assert concept.implementation == ["x", "y"]


def test_line_items_are_coerced() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", structure("objects", cues=[{"shape": "square"}, 3, None, {"a": 1, "b": 2}],
                                         implementation="a single note"))
    concept = memory.concepts["objects"]
    assert concept.cues == ["shape: square", "3", "{'a': 1, 'b': 2}"]
    assert concept.implementation == ["a single note"]
    memory.write_concept("p2", structure("objects", cues=["shape: square", {"shape": "square"}]))
    assert concept.cues == ["shape: square", "3", "{'a': 1, 'b': 2}"]


def test_junk_field_values_do_not_raise() -> None:
    memory = ConceptMemory()
    name = memory.write_concept("p1", structure(
        "objects", description=["two", "lines"], output_typing={"x": 1}, routine_subtype=3, cues=None,
        implementation={"k": "v"}))
    concept = memory.concepts[name]  # type: ignore[index]
    assert (concept.description, concept.output_typing, concept.routine_subtype) == ("two lines", None, "3")
    assert concept.cues == []
    assert concept.implementation == ["k: v"]


def test_typedefs_are_harvested_from_output_and_parameter_typings() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", structure("objects", output_typing="ObjectList := list[object]", parameters=[
        {"name": "rule", "typing": " Criterion := Callable[[object], bool] "},
        {"name": "n", "typing": "int"}]))
    concept = memory.concepts["objects"]
    assert memory.custom_types == {"ObjectList": "list[object]", "Criterion": "Callable[[object], bool]"}
    assert concept.output_typing == "ObjectList"
    assert [p.typing for p in concept.parameters] == ["Criterion", "int"]


def test_first_typedef_is_kept_and_the_typing_still_shortened() -> None:
    memory = ConceptMemory()
    rule = {"name": "rule", "typing": "Rule := Callable[[cell], bool]"}
    memory.write_concept("p1", routine("a", parameters=[rule]))
    memory.write_concept("p2", routine("b", output_typing="Rule := something else"))
    assert memory.custom_types == {"Rule": "Callable[[cell], bool]"}
    assert memory.concepts["b"].output_typing == "Rule"


def test_half_typedef_is_left_as_written() -> None:
    memory = ConceptMemory()
    memory.write_concept("p1", routine("a", output_typing=" := list[int]"))
    assert memory.custom_types == {}
    assert memory.concepts["a"].output_typing == ":= list[int]"


def test_write_batch_merges_in_order() -> None:
    memory = ConceptMemory()
    written = memory.write_batch([
        ("p1", [structure("objects", description="first"), routine("flip"), {"kind": "routine"}]),
        ("p2", [structure("objects", description="second"), {"concept": "flip"}]),
        ("p3", "not a list"),
        ("p4", routine("crop")),
    ])
    assert written == ["objects", "flip", "crop"]
    assert memory.concepts["objects"].description == "first"
    assert memory.concepts["objects"].used_in == ["p1", "p2"]
    assert memory.concepts["flip"].used_in == ["p1", "p2"]
    assert memory.concepts["crop"].used_in == ["p4"]


def seeded_memory() -> ConceptMemory:
    """Two uses for most concepts; `rare` and `selector-rare` are used once."""
    memory = ConceptMemory()
    for pid in ("p1", "p2"):
        memory.write_batch([(pid, [
            routine("flip", description="mirror the grid", cues=["rows reversed"],
                    implementation=["np.fliplr"],
                    parameters=[{"name": "axis", "typing": "str", "description": "the mirror line"}]),
            structure("objects", description="connected components", output_typing="Objs := list[object]"),
            routine("by size", subtype="selection criteria", output_typing="bool"),
            routine("grow", subtype="intermediate"),
            routine("anything", subtype=None),
        ])])
    memory.write_concept("p3", structure("rare"))
    memory.write_concept("p3", routine("selector-rare", subtype="selection criteria"))
    return memory


def test_render_sections_order_and_entries() -> None:
    text = seeded_memory().render()
    assert text == """## structure concepts
- concept: objects
  description: connected components
  output typing: Objs
lower usage concepts: [rare]

## types
- Objs := list[object]

## grid manipulation routines
- concept: flip
  description: mirror the grid
  parameters:
    - axis (type: str)
  implementation:
    - np.fliplr

## other routines
### intermediate
- concept: grow
### selection criteria
- concept: by size
  output typing: bool
### uncategorized
- concept: anything
lower usage concepts: [selector-rare]"""


def test_render_optional_fields() -> None:
    text = seeded_memory().render(show_cues=True, show_parameter_descriptions=True)
    assert "    - axis (type: str): the mirror line\n  cues:\n    - rows reversed\n  implementation:" in text


def test_threshold_collapses_to_one_line_per_section() -> None:
    memory = seeded_memory()
    everything = memory.render(usage_threshold=0)
    assert "lower usage" not in everything
    assert "- concept: rare" in everything and "- concept: selector-rare" in everything
    collapsed = memory.render(usage_threshold=3)
    assert "- concept:" not in collapsed and "###" not in collapsed
    assert re.findall(r"lower usage concepts: \[.*\]", collapsed) == [
        "lower usage concepts: [objects, rare]", "lower usage concepts: [flip]",
        "lower usage concepts: [by size, grow, anything, selector-rare]"]


def test_empty_sections_are_omitted() -> None:
    memory = ConceptMemory()
    assert memory.render() == ""
    memory.write_concept("p1", routine("grow", subtype="intermediate"))
    memory.write_concept("p2", {"concept": "grow"})
    assert memory.render() == "## other routines\n### intermediate\n- concept: grow"


def test_selected_concepts_in_full_others_by_name() -> None:
    text = seeded_memory().render(selected=["rare", "flip", "not in memory"])
    assert text == """## structure concepts
- concept: rare
other concepts: [objects]

## types
- Objs := list[object]

## grid manipulation routines
- concept: flip
  description: mirror the grid
  parameters:
    - axis (type: str): the mirror line
  implementation:
    - np.fliplr

## other routines
other concepts: [by size, grow, anything, selector-rare]"""


def test_render_is_deterministic_in_insertion_order() -> None:
    memory = seeded_memory()
    assert memory.render() == seeded_memory().render()
    reordered = ConceptMemory()
    reordered.write_concept("p1", structure("b"))
    reordered.write_concept("p1", structure("a"))
    assert reordered.render() == "## structure concepts\nlower usage concepts: [b, a]"


def test_index_names_and_stats() -> None:
    memory = seeded_memory()
    memory.write_solution("p1", "def transform(g): return g", summary="identity", pseudocode="1. copy")
    assert memory.index == {"structure": ["objects", "rare"],
                            "routine": ["flip", "by size", "grow", "anything", "selector-rare"]}
    assert memory.names() == ["flip", "objects", "by size", "grow", "anything", "rare", "selector-rare"]
    assert memory.stats() == {"concepts": 7, "by_kind": {"structure": 2, "routine": 5}, "solutions": 1,
                              "custom_types": 1, "mean_used_in": pytest.approx(12 / 7)}


def test_text_for_embedding() -> None:
    concept = seeded_memory().concepts["flip"]
    assert text_for_embedding(concept) == "flip: mirror the grid\ncues: rows reversed\nparameters: axis"
    assert text_for_embedding(Concept(name="bare", kind="structure")) == "bare"


def lessons() -> LessonMemory:
    memory = LessonMemory()
    memory.add([Lesson(situation="shapes are mirrored", suggestion="flip the grid", source="p1"),
                Lesson(situation="one color replaced", suggestion="map colors", source="p1")])
    memory.add([Lesson(situation="shapes are mirrored", suggestion="flip the grid", source="p2")])
    return memory


def test_oe_add_keeps_duplicates() -> None:
    memory = lessons()
    assert [lesson.source for lesson in memory.lessons] == ["p1", "p1", "p2"]


def test_oe_numbered_parses_back_to_the_lessons() -> None:
    memory = lessons()
    text = memory.render_numbered()
    items = re.findall(r"lesson (\d+)\.\n  situation: (.*)\n  suggestion: (.*)", text)
    assert [(int(n), s, g) for n, s, g in items] == [
        (i, lesson.situation, lesson.suggestion) for i, lesson in enumerate(memory.lessons, start=1)]
    assert len(text.splitlines()) == 3 * len(memory.lessons)


def test_oe_hint_uses_one_based_indices() -> None:
    memory = lessons()
    assert memory.render_hint([2, 1, 2, 0, 4, -1]) == (
        "- situation: one color replaced\n  suggestion: map colors\n"
        "- situation: shapes are mirrored\n  suggestion: flip the grid")
    assert memory.render_hint([]) == ""


def test_oe_multiline_values_stay_indented() -> None:
    memory = LessonMemory(lessons=[Lesson(situation="two\nlines", suggestion="s")])
    assert memory.render_hint([1]) == "- situation: two\n    lines\n  suggestion: s"


def test_ps_round_trip_keeps_order_and_rebuilds_the_index(tmp_path: Path) -> None:
    memory = seeded_memory()
    memory.write_solution("p1", "def transform(g): return g", summary="identity")
    path = tmp_path / "memory.json"
    save_memory(memory, path)
    assert json.loads(path.read_text())["format"] == "arcmemo-ps"
    assert "index" not in json.loads(path.read_text())
    loaded = load_memory(path, expect="ps")
    assert isinstance(loaded, ConceptMemory)
    assert loaded == memory
    assert loaded.names() == memory.names()
    assert loaded.index == {"structure": ["objects", "rare"],
                            "routine": ["flip", "by size", "grow", "anything", "selector-rare"]}
    assert loaded.render() == memory.render()


def test_oe_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "lessons.json"
    save_memory(lessons(), path)
    loaded = load_memory(path)
    assert isinstance(loaded, LessonMemory)
    assert loaded == lessons()
    assert json.loads(path.read_text())["version"] == 1


def write_json(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(UserError, match=r"absent\.json: no such memory file; check the path"):
        load_memory(path)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"format": "arcmemo-ps", ')
    with pytest.raises(UserError, match=r"bad\.json is not valid JSON .*rebuild it") as info:
        load_memory(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("payload", [[{"situation": "a", "suggestion": "b"}], {"concepts": {}},
                                     {"format": "ace-playbook", "version": 1}],
                         ids=["bare-list", "untagged", "other-tag"])
def test_not_an_arcmemo_memory(tmp_path: Path, payload: object) -> None:
    path = write_json(tmp_path / "other.json", payload)
    with pytest.raises(UserError, match=r"other\.json is not an arcmemo memory"):
        load_memory(path)


def test_format_mismatch_names_the_fix(tmp_path: Path) -> None:
    oe_path, ps_path = tmp_path / "oe.json", tmp_path / "ps.json"
    save_memory(lessons(), oe_path)
    save_memory(seeded_memory(), ps_path)
    with pytest.raises(UserError) as info:
        load_memory(oe_path, expect="ps")
    assert str(info.value) == (f"{oe_path} is an open-ended (oe) memory; pass --format oe or build a ps"
                               " memory with `reasonlab arcmemo build-memory --format ps`")
    with pytest.raises(UserError) as info:
        load_memory(ps_path, expect="oe")
    assert str(info.value) == (f"{ps_path} is a program-synthesis (ps) memory; pass --format ps or build an"
                               " oe memory with `reasonlab arcmemo build-memory --format oe`")
    with pytest.raises(UserError, match="unknown memory format 'cheatsheet'; use 'oe' or 'ps'"):
        load_memory(ps_path, expect="cheatsheet")


def test_unknown_version(tmp_path: Path) -> None:
    path = write_json(tmp_path / "v2.json", {"format": "arcmemo-oe", "version": 2, "lessons": []})
    with pytest.raises(UserError, match=r"v2\.json has arcmemo memory version 2 .* reads version 1"):
        load_memory(path)


@pytest.mark.parametrize("body", [
    {"concepts": {"x": {"name": "x", "kind": "helper"}}},
    {"concepts": {"x": {"name": "y", "kind": "routine"}}},
    {"concepts": []},
], ids=["bad-kind", "key-not-name", "wrong-type"])
def test_malformed_ps_body(tmp_path: Path, body: dict[str, object]) -> None:
    path = write_json(tmp_path / "m.json", {"format": "arcmemo-ps", "version": 1, **body})
    with pytest.raises(UserError, match=r"m\.json is a malformed arcmemo-ps memory \(.*\); rebuild it"):
        load_memory(path)


def test_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "memory.json"
    save_memory(seeded_memory(), path)
    before = path.read_bytes()
    broken = seeded_memory()
    broken.concepts["flip"].cues.append(object())  # type: ignore[arg-type]
    with pytest.raises(Exception, match="serializ"):
        save_memory(broken, path)
    assert path.read_bytes() == before

    def crash(*args: object) -> None:
        raise OSError("disk died mid-write")

    bigger = seeded_memory()
    bigger.write_concept("p9", structure("new one"))
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="mid-write"):
        save_memory(bigger, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memory.json"]
    assert load_memory(path) == seeded_memory()


def test_module_exports() -> None:
    assert set(memory_module.__all__) == {
        "FORMAT_VERSION", "Concept", "ConceptMemory", "Lesson", "LessonMemory", "Parameter", "Solution",
        "load_memory", "save_memory", "text_for_embedding"}
