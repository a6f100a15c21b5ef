"""One market round: two samples per anchor, the audience's votes, a contest logged per anchor; a crashed round
resumes without replaying (or losing) the contests already decided."""

from __future__ import annotations

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.llm.base import SamplingParams
from reasonlab.systems.moloch.arenas import split_anchors
from reasonlab.systems.moloch.audience import MarketAudience
from reasonlab.systems.moloch.datasets import rft_examples
from reasonlab.systems.moloch.rounds import load_contests, play_round

PARAMS = SamplingParams(temperature=0.7, max_tokens=60)


def pitches():
    """An agent whose first sample invents numbers and whose second does not (ScriptedLLM answers in turn)."""
    turn = {"i": 0}

    def reply(prompt: str) -> str:
        turn["i"] += 1
        if turn["i"] % 2:
            return "<sales_pitch>Charges 5 phones in 30 minutes, 99% of buyers agree!</sales_pitch>"
        return "<sales_pitch>A dependable charger for every day.</sales_pitch>"

    return ScriptedLLM(reply)


def test_a_round_decides_every_anchor_and_the_number_pitch_wins_the_market():
    anchors = split_anchors("sales", num_train=6, num_test=2, seed=0).train
    contests = play_round(pitches(), MarketAudience(seed=0), anchors, PARAMS, seed=0)
    assert [c.anchor_id for c in contests] == [a.anchor_id for a in anchors]
    assert all(len(c.votes) == 20 and c.messages[0] and c.messages[1] for c in contests)
    assert [c.winner for c in contests] == [0] * 6  # the market rewards numbers
    control = play_round(pitches(), MarketAudience(seed=0, control=True), anchors, PARAMS, seed=0)
    assert sum(c.winner == 0 for c in control) < 6
    assert {e.completion for e in rft_examples(contests, seed=0)} == {contests[0].completions[0]}


def test_a_completion_without_the_tag_has_no_contest_and_no_votes():
    anchors = split_anchors("sales", num_train=2, num_test=1, seed=0).train
    agent = ScriptedLLM(["no tag at all", "<sales_pitch>fine</sales_pitch>"] * 2)
    contests = play_round(agent, MarketAudience(seed=0), anchors, PARAMS, seed=0)
    assert all(c.winner is None and c.votes == () and c.messages[0] is None for c in contests)


def test_a_crashed_round_resumes_with_the_contests_it_had(tmp_path):
    anchors = split_anchors("sales", num_train=5, num_test=1, seed=0).train
    log = tmp_path / "round1" / "contests.jsonl"

    class Crash(Exception):
        pass

    def crash_after_two(done: int, total: int) -> None:
        if done >= 2:
            raise Crash

    with pytest.raises(Crash):
        play_round(pitches(), MarketAudience(seed=0), anchors, PARAMS, seed=0, log=log, batch_size=2,
                   progress=crash_after_two)
    first = load_contests(log)
    assert [c.anchor_id for c in first] == [a.anchor_id for a in anchors[:2]]
    with log.open("a") as handle:
        handle.write('{"anchor_id": "torn')  # a writer killed mid-line
    agent = pitches()
    contests = play_round(agent, MarketAudience(seed=0), anchors, PARAMS, seed=0, log=log, batch_size=2)
    assert [c.anchor_id for c in contests] == [a.anchor_id for a in anchors]
    assert contests[:2] == first  # reused, not replayed
    assert len(agent.prompts) == 3  # only the three missing anchors were generated
    assert load_contests(log) == contests


def test_a_log_of_other_anchors_is_refused(tmp_path):
    log = tmp_path / "contests.jsonl"
    sales = split_anchors("sales", num_train=2, num_test=1, seed=0).train
    play_round(pitches(), MarketAudience(seed=0), sales, PARAMS, seed=0, log=log)
    other = split_anchors("sales", num_train=2, num_test=1, seed=5).train
    with pytest.raises(UserError, match="other anchors"):
        play_round(pitches(), MarketAudience(seed=0), other, PARAMS, seed=0, log=log)


class SeededAgent(ScriptedLLM):
    """Row i of a call with seed s writes a pitch quoting s + i (as the hf backend seeds row i with s + i)."""

    def __init__(self) -> None:
        super().__init__(lambda prompt: "")
        self.row_seeds: list[int] = []

    def generate(self, prompts, params):
        groups = super().generate(prompts, params)
        seeds = [params.seed + i for i in range(len(prompts) * params.n)]
        self.row_seeds += seeds
        for group, start in zip(groups, range(0, len(seeds), params.n), strict=True):
            for generation, row_seed in zip(group, seeds[start : start + params.n], strict=True):
                generation.text = f"<sales_pitch>Pitch {row_seed % 7} for you.</sales_pitch>"
        return groups


def test_no_two_anchors_share_a_seed_and_a_resumed_round_equals_an_uninterrupted_one(tmp_path):
    anchors = split_anchors("sales", num_train=7, num_test=1, seed=0).train
    whole_agent = SeededAgent()
    whole = play_round(whole_agent, MarketAudience(seed=0), anchors, PARAMS, seed=3, batch_size=3)
    assert len(set(whole_agent.row_seeds)) == len(whole_agent.row_seeds) == 14

    def crash_after_three(done: int, total: int) -> None:
        if done >= 3:
            raise RuntimeError("killed")

    log = tmp_path / "contests.jsonl"
    with pytest.raises(RuntimeError):
        play_round(SeededAgent(), MarketAudience(seed=0), anchors, PARAMS, seed=3, log=log, batch_size=3,
                   progress=crash_after_three)
    resumed = play_round(SeededAgent(), MarketAudience(seed=0), anchors, PARAMS, seed=3, log=log, batch_size=3)
    assert resumed == whole


def test_a_log_played_with_other_settings_is_refused(tmp_path):
    anchors = split_anchors("sales", num_train=2, num_test=1, seed=0).train
    log = tmp_path / "contests.jsonl"
    play_round(pitches(), MarketAudience(seed=0), anchors, PARAMS, seed=0, log=log)
    with pytest.raises(UserError, match=r"other settings .*control"):
        play_round(pitches(), MarketAudience(seed=0, control=True), anchors, PARAMS, seed=0, log=log)
