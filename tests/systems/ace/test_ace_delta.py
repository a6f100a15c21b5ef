"""The deterministic merge: operations, counters, and the enforced token budget."""

from __future__ import annotations

from reasonlab.systems.ace.delta import DeltaOperation, apply_delta, apply_tags, fit_to_budget, prune_order
from reasonlab.systems.ace.playbook import Bullet, Playbook


def words(text: str) -> int:
    return len(text.split())


def make_playbook() -> Playbook:
    playbook = Playbook()
    for content in ("alpha rule", "beta rule", "gamma rule"):
        playbook.add("strategies_and_insights", content)
    return playbook


def test_add_update_remove_in_order_and_original_untouched() -> None:
    playbook = make_playbook()
    ops = [DeltaOperation(type="ADD", section="others", content="  new   fact "),
           DeltaOperation(type="UPDATE", bullet_id="strat-00002", content="beta rule, revised"),
           DeltaOperation(type="REMOVE", bullet_id="strat-00001"),
           DeltaOperation(type="REMOVE", bullet_id="strat-00099"),
           DeltaOperation(type="ADD", section="others", content="new fact")]
    updated, report = apply_delta(playbook, ops)
    assert report.added == ["misc-00004"] and report.updated == ["strat-00002"] and report.removed == ["strat-00001"]
    assert len(report.skipped) == 2  # unknown id, duplicate content
    assert [b.content for b in updated] == ["beta rule, revised", "gamma rule", "new fact"]
    assert [b.content for b in playbook] == ["alpha rule", "beta rule", "gamma rule"]


def test_merge_keeps_first_id_and_sums_counters() -> None:
    playbook = make_playbook()
    playbook.bullets[0].helpful, playbook.bullets[1].helpful, playbook.bullets[1].harmful = 2, 3, 1
    updated, report = apply_delta(playbook, [DeltaOperation(type="MERGE", source_ids=["strat-00001", "strat-00002"],
                                                            content="alpha and beta")])
    kept = updated.get("strat-00001")
    assert kept is not None and (kept.helpful, kept.harmful, kept.content) == (5, 1, "alpha and beta")
    assert updated.get("strat-00002") is None and report.removed == ["strat-00002"]
    _, bad = apply_delta(playbook, [DeltaOperation(type="MERGE", source_ids=["strat-00001", "nope-00009"])])
    assert bad.skipped and not bad.removed


def test_tags_bump_counters_per_tag_and_ignore_neutral_and_unknown() -> None:
    playbook = make_playbook()
    tags = [("strat-00001", "helpful"), ("strat-00001", "helpful"), ("strat-00002", "harmful"),
            ("strat-00003", "neutral"), ("strat-00042", "helpful")]
    updated, ignored = apply_tags(playbook, tags)
    assert [(b.helpful, b.harmful) for b in updated] == [(2, 0), (0, 1), (0, 0)]
    assert ignored == ["strat-00003:neutral", "strat-00042:helpful"]
    updated, _ = apply_delta(updated, [DeltaOperation(type="TAG", bullet_id="strat-00003", helpful=4, harmful=1)])
    assert (updated.bullets[2].helpful, updated.bullets[2].harmful) == (4, 1)


def test_budget_rejects_a_delta_without_consuming_ids() -> None:
    playbook = make_playbook()
    budget = playbook.tokens(words)
    long_fact = DeltaOperation(type="ADD", section="others", content="a very long fact " * 20)
    updated, report = apply_delta(playbook, [long_fact], count=words, budget=budget, prune=False)
    assert report.rejected and updated is playbook and updated.next_id == 4
    # pruning cannot help either when the new bullet alone exceeds the budget
    updated, report = apply_delta(playbook, [long_fact], count=words, budget=budget, prune=True)
    assert report.rejected and updated.next_id == 4 and len(updated) == 3
    updated, report = apply_delta(playbook, [DeltaOperation(type="ADD", section="others", content="ok")],
                                  count=words, budget=budget + 20)
    assert report.added == ["misc-00004"] and (budget, updated.tokens(words)) == (20, 27)  # fits in 40


def test_pruning_drops_harmful_then_unused_then_oldest_and_spares_new_bullets() -> None:
    playbook = Playbook(bullets=[
        Bullet("strat-00001", "strategies_and_insights", "old useful", helpful=3),
        Bullet("strat-00002", "strategies_and_insights", "unused"),
        Bullet("strat-00003", "strategies_and_insights", "harmful one", harmful=2),
        Bullet("strat-00004", "strategies_and_insights", "useful too", helpful=1),
    ], next_id=5)
    assert [b.id for b in prune_order(playbook.bullets, set())] == \
           ["strat-00003", "strat-00002", "strat-00004", "strat-00001"]
    before = playbook.tokens(words)
    new = DeltaOperation(type="ADD", section="strategies_and_insights", content="brand new")
    updated, report = apply_delta(playbook, [new], count=words, budget=before)
    assert report.pruned == ["strat-00003"] and report.added == ["strat-00005"] and report.rejected is None
    assert (before, updated.tokens(words)) == (25, 25)  # "harmful one" out, "brand new" in
    dropped = fit_to_budget(updated, 0, words, protected={"strat-00005"})
    assert "strat-00005" not in dropped and updated.ids == ["strat-00005"]
