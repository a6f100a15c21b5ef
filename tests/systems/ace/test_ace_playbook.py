"""Playbook: ids, sections, rendering, parsing, JSON on disk."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.ace.playbook import Bullet, Playbook, parse_playbook, section_key, section_slug


def test_section_key_and_slug() -> None:
    assert section_key("COMMON MISTAKES TO AVOID") == "common_mistakes_to_avoid"
    assert section_key("Strategies & Insights") == "strategies_and_insights"
    assert section_slug("formulas_and_calculations") == "calc"
    assert section_slug("common_mistakes_to_avoid") == "err"
    assert section_slug("verification") == "veri"
    assert section_slug("apis_to_use_for_specific_information") == "atufs"


def test_ids_are_global_monotonic_and_never_reused() -> None:
    playbook = Playbook()
    first = playbook.add("formulas_and_calculations", "a = b + c")
    second = playbook.add("common_mistakes_to_avoid", "do not divide by zero")
    third = playbook.add("no such section", "goes to others")
    assert [first.id, second.id, third.id] == ["calc-00001", "err-00002", "misc-00003"]
    assert third.section == "others"
    playbook.bullets.remove(third)
    assert playbook.add("others", "new").id == "misc-00004"


def test_bullets_are_appended_at_the_end_of_their_section() -> None:
    playbook = Playbook()
    playbook.add("others", "o1")
    playbook.add("strategies_and_insights", "s1")
    playbook.add("others", "o2")
    playbook.add("strategies_and_insights", "s2")
    assert [b.content for b in playbook] == ["s1", "s2", "o1", "o2"]
    assert playbook.render().splitlines()[:3] == ["## strategies_and_insights",
                                                  "[strat-00002] helpful=0 harmful=0 :: s1",
                                                  "[strat-00004] helpful=0 harmful=0 :: s2"]


def test_render_parse_round_trip_with_and_without_counters() -> None:
    playbook = Playbook()
    playbook.add("formulas_and_calculations", "x = y / z").helpful = 3
    playbook.add("others", "check units").harmful = 2
    parsed = parse_playbook(playbook.render())
    assert [(b.id, b.section, b.content, b.helpful, b.harmful) for b in parsed] == \
           [(b.id, b.section, b.content, b.helpful, b.harmful) for b in playbook]
    assert parsed.next_id == 3
    bare = parse_playbook(playbook.render(counters=False))
    assert [(b.content, b.helpful) for b in bare] == [("x = y / z", 0), ("check units", 0)]


def test_json_round_trip_and_counter_resumes_after_reload(tmp_path) -> None:
    playbook = Playbook()
    for i in range(3):
        playbook.add("others", f"fact {i}")
    playbook.bullets.pop()  # the largest id is gone, but must never be reused
    path = tmp_path / "playbook.json"
    playbook.save(path)
    loaded = Playbook.load(path)
    assert loaded.to_dict() == playbook.to_dict()
    assert loaded.add("others", "next").id == "misc-00004"
    data = json.loads(path.read_text())
    data["next_id"] = 1  # a hand-edited counter is corrected to max + 1
    path.write_text(json.dumps(data))
    assert Playbook.load(path).next_id == 3
    assert [p.name for p in tmp_path.iterdir()] == ["playbook.json"]  # atomic write leaves no temp file


def test_load_errors_are_one_line_user_errors(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Playbook.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="not a valid playbook JSON"):
        Playbook.load(bad)


def test_stats_follow_the_repo_definitions() -> None:
    playbook = Playbook(bullets=[
        Bullet("calc-00001", "formulas_and_calculations", "a", helpful=6, harmful=1),
        Bullet("calc-00002", "formulas_and_calculations", "b", helpful=1, harmful=1),
        Bullet("misc-00003", "others", "c"),
    ], next_id=4)
    stats = playbook.stats()
    assert (stats["total_bullets"], stats["high_performing"], stats["problematic"], stats["unused"]) == (3, 1, 1, 1)
    assert stats["by_section"]["formulas_and_calculations"] == {"count": 2, "helpful": 7, "harmful": 2}
