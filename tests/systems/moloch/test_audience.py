"""Audiences of a market round: tallies and ties, the A/B mapping, vote parsing, batching, the swap test, personas,
and the rule-based market (features, weights, control audience, thoughts, determinism)."""

from __future__ import annotations

import random
import re

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import ScriptedLLM
from reasonlab.systems.moloch.anchors import Anchor
from reasonlab.systems.moloch.audience import (
    AUDIENCE_SYSTEM_PROMPT,
    FEATURES,
    MBTI_TYPES,
    TASK_ACTIONS,
    LLMAudience,
    MarketAudience,
    Vote,
    distinct_numbers,
    features,
    generate_personas,
    held_out_personas,
    parse_thought,
    parse_vote,
    position_bias,
    scored_features,
    tally,
)

SALES = Anchor("sales", "sales-0001", "Volt 20 power bank", {"Description": "A compact power bank."})
ELECTION = Anchor("elections", "elections-0001", "Dana Reyes", {"Bio": "A former teacher running for mayor."})
OPTIONS = re.compile(r"Option A:\n(.*?)\n\nOption B:\n(.*?)\n\nReason as", re.DOTALL)


def _options(prompt_text: str) -> tuple[str, str]:
    """The texts shown as A and B in a rendered voter prompt."""
    match = OPTIONS.search(prompt_text)
    assert match, prompt_text
    return match.group(1), match.group(2)


def always_a(prompt_text: str) -> str:
    return "<think>The first option is fine.</think><vote>A</vote>"


def picks_keyword(prompt_text: str) -> str:
    option_a, _ = _options(prompt_text)
    letter = "A" if "KEYWORD" in option_a else "B"
    return f"<think>Option {letter} mentions what I want.</think><vote>{letter}</vote>"


class CountingLLM(ScriptedLLM):
    """A ScriptedLLM that records each generate call's batch and params."""

    def __init__(self, script) -> None:
        super().__init__(script)
        self.batches: list[list] = []
        self.params_seen: list = []

    def generate(self, prompts, params):
        self.batches.append(list(prompts))
        self.params_seen.append(params)
        return super().generate(prompts, params)


def _vote(voter: str, choice: int | None, order=(0, 1)) -> Vote:
    return Vote(voter, choice, "", order)


def test_tally_counts_valid_votes_and_excludes_none():
    votes = [_vote("a", 0), _vote("b", 0), _vote("c", 1), _vote("d", None), _vote("e", 0), _vote("f", None)]
    result = tally(votes)
    assert result.counts == (3, 1) and result.invalid == 2 and result.valid == 4
    assert result.winner == 0
    assert result.shares == (0.75, 0.25)  # the two None votes are not losses for anyone
    assert result.as_dict()["counts"] == [3, 1] and len(result.as_dict()["votes"]) == 6
    assert tally([_vote("a", 1), _vote("b", None)]).winner == 1


@pytest.mark.parametrize(
    "choices",
    [[0, 1, 0, 1], [0, 1, None, None], [None, None], []],
    ids=["even", "even-with-none", "all-none", "no-votes"],
)
def test_a_tie_has_no_winner(choices):
    result = tally([_vote(str(i), choice) for i, choice in enumerate(choices)])
    assert result.winner is None
    assert result.shares == ((0.5, 0.5) if result.valid else None)


def test_tally_rejects_a_choice_outside_the_pair():
    with pytest.raises(ValueError, match="0, 1 or None"):
        tally([_vote("a", 2)])


def test_vote_letter_follows_the_shown_order():
    assert Vote("v", 1, "", (1, 0)).letter == "A"
    assert Vote("v", 1, "", (0, 1)).letter == "B"
    assert Vote("v", None, "", (0, 1)).letter is None


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("<think>cheaper</think><vote>A</vote>", "A"),
        ("<vote> b </vote>", "B"),
        ("<vote>Option B</vote>", "B"),
        ("<vote>**A**</vote>", "A"),
        ("<think>hmm</think>\n<vote>A", "A"),  # the stop string "</vote>" is cut off by the backend
        ("<vote>A</vote> on second thought <vote>B</vote>", "B"),
        ("<VOTE>a.</VOTE>", "A"),
        ("<vote>A or B</vote>", None),
        ("<vote>C</vote>", None),
        ("<vote>Apple</vote>", None),
        ("<vote></vote>", None),
        ("I would pick A.", None),
        ("", None),
    ],
)
def test_parse_vote(reply, letter):
    assert parse_vote(reply) == letter


def test_parse_thought_reads_the_think_block_or_the_text_before_the_vote():
    assert parse_thought("<think> It has numbers. </think><vote>A</vote>") == "It has numbers."
    assert parse_thought("I like the second one.\n<vote>B</vote>") == "I like the second one."
    assert parse_thought("<think>cut off before the end") == "cut off before the end"


def test_personas_are_reproducible_and_complete():
    personas = generate_personas(20, seed=0)
    assert personas == generate_personas(20, seed=0)
    assert len(personas) == 20 and len({persona.name for persona in personas}) == 20
    for persona in personas:
        assert persona.gender in {"female", "male", "nonbinary"} and persona.mbti in MBTI_TYPES
        assert len(persona.biography) == 3 and all(sentence.endswith(".") for sentence in persona.biography)
        first = persona.name.split()[0]
        assert all(sentence.startswith(first) for sentence in persona.biography)
        assert persona.describe().startswith(f"Name: {persona.name}\n")
    assert [p.name for p in generate_personas(20, seed=1)] != [p.name for p in personas]
    assert len({p.name for p in generate_personas(300, seed=0)}) == 300
    with pytest.raises(UserError, match="persona count 0"):
        generate_personas(0)


@pytest.mark.parametrize(("audience_count", "held_out_count"), [(20, 20), (35, 35), (300, 50)])
def test_held_out_personas_share_no_name_with_the_audience(audience_count, held_out_count):
    audience = generate_personas(audience_count, seed=3)
    held_out = held_out_personas(held_out_count, seed=3)
    assert len(held_out) == held_out_count
    assert not {p.name.split()[0] for p in audience} & {p.name.split()[0] for p in held_out}
    assert held_out == held_out_personas(held_out_count, seed=3)


def test_llm_audience_sends_one_batched_call_per_pair():
    llm = CountingLLM(always_a)
    personas = generate_personas(20)
    audience = LLMAudience(llm, personas)
    votes = audience.vote(SALES, ("pitch one", "pitch two"), random.Random(0))
    assert len(llm.batches) == 1 and len(llm.batches[0]) == 20 and len(votes) == 20
    audience.vote(SALES, ("pitch three", "pitch four"), random.Random(1))
    assert [len(batch) for batch in llm.batches] == [20, 20]
    system, user = llm.batches[0][0]
    assert system.role == "system" and system.content == AUDIENCE_SYSTEM_PROMPT
    assert (
        user.role == "user"
        and personas[0].describe() in user.content
        and TASK_ACTIONS["sales"] in user.content
    )
    # a params without a seed gets one from the rng: the same rng, the same seed
    assert llm.params_seen[0].seed is not None and llm.params_seen[0].n == 1
    again = CountingLLM(always_a)
    LLMAudience(again, personas).vote(SALES, ("pitch one", "pitch two"), random.Random(0))
    assert again.params_seen[0].seed == llm.params_seen[0].seed
    assert [m.content for batch in again.batches for p in batch for m in p] == [
        m.content for p in llm.batches[0] for m in p
    ]


def test_prompts_show_the_messages_in_each_voters_order():
    llm = CountingLLM(always_a)
    messages = ("first message text", "second message text")
    votes = LLMAudience(llm, generate_personas(20)).vote(ELECTION, messages, random.Random(4))
    for prompt, vote in zip(llm.batches[0], votes, strict=True):
        assert _options(prompt[1].content) == (messages[vote.shown_order[0]], messages[vote.shown_order[1]])
        assert TASK_ACTIONS["elections"] in prompt[1].content
    assert {vote.shown_order for vote in votes} == {(0, 1), (1, 0)}


def test_an_always_a_voter_splits_its_choices_across_messages():
    votes = LLMAudience(ScriptedLLM(always_a), generate_personas(20)).vote(
        SALES, ("one", "two"), random.Random(0)
    )
    assert all(vote.choice == vote.shown_order[0] and vote.letter == "A" for vote in votes)
    counts = tally(votes).counts
    assert min(counts) >= 4, counts  # 20 fair coin flips: both messages get several A votes
    assert votes[0].thought == "The first option is fine."


@pytest.mark.parametrize("keyword_index", [0, 1])
def test_a_content_voter_picks_its_message_in_either_position(keyword_index):
    messages = ["a plain pitch", "another plain pitch"]
    messages[keyword_index] = "a pitch with the KEYWORD in it"
    votes = LLMAudience(ScriptedLLM(picks_keyword), generate_personas(20)).vote(
        SALES, (messages[0], messages[1]), random.Random(7)
    )
    assert {vote.shown_order for vote in votes} == {(0, 1), (1, 0)}
    assert all(vote.choice == keyword_index for vote in votes)
    assert tally(votes).winner == keyword_index and tally(votes).shares[keyword_index] == 1.0


def test_unparseable_replies_are_none_votes():
    replies = ["<vote>A</vote>", "no tags at all", "<vote>B</vote>", "<vote>maybe</vote>"] * 5
    audience = LLMAudience(ScriptedLLM(replies), generate_personas(20))
    votes = audience.vote(SALES, ("one", "two"), random.Random(0))
    assert sum(vote.choice is None for vote in votes) == 10
    assert tally(votes).invalid == 10 and tally(votes).valid == 10


def test_given_orders_replace_the_random_ones_and_are_checked():
    audience = LLMAudience(ScriptedLLM(always_a), generate_personas(3))
    votes = audience.vote(SALES, ("one", "two"), random.Random(0), orders=[(1, 0), (1, 0), (0, 1)])
    assert [vote.choice for vote in votes] == [1, 1, 0]
    with pytest.raises(ValueError, match="one order per voter"):
        audience.vote(SALES, ("one", "two"), random.Random(0), orders=[(1, 0)])
    with pytest.raises(ValueError, match="one order per voter"):
        audience.vote(SALES, ("one", "two"), random.Random(0), orders=[(0, 0)] * 3)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(UserError, match="unknown arena 'radio'"):
        MarketAudience().vote(Anchor("radio", "r-1", "t", {}), ("a", "b"), random.Random(0))
    with pytest.raises(UserError, match="no personas"):
        LLMAudience(ScriptedLLM(always_a), [])
    with pytest.raises(UserError, match="unknown market feature"):
        MarketAudience(weights={"numbers": 1.0, "emoji": 2.0})
    with pytest.raises(UserError, match="must be >= 0"):
        MarketAudience(noise=-1.0)
    with pytest.raises(UserError, match="unknown number scoring 'square'"):
        MarketAudience(numbers="square")


def test_position_bias_of_an_always_a_voter():
    audience = LLMAudience(ScriptedLLM(always_a), generate_personas(20))
    bias = position_bias(audience, [SALES] * 3, [("one", "two"), ("three", "four"), ("five", "six")])
    assert (bias.agreement.k, bias.agreement.n) == (0, 60)
    assert (bias.a_share.k, bias.a_share.n) == (120, 120)
    assert bias.pairs == 3 and bias.invalid == 0
    assert bias.as_dict()["agreement"]["ci_high"] < 0.07


def test_position_bias_of_a_content_voter():
    audience = LLMAudience(ScriptedLLM(picks_keyword), generate_personas(20))
    pairs = [("the KEYWORD pitch", "a plain pitch"), ("a plain pitch", "the KEYWORD pitch")]
    bias = position_bias(audience, [SALES, SALES], pairs)
    assert (bias.agreement.k, bias.agreement.n) == (40, 40)
    assert (bias.a_share.k, bias.a_share.n) == (40, 80)  # every voter sees its choice once as A, once as B


def test_position_bias_counts_invalid_votes_apart():
    # the first pass parses, the second pass does not: no voter is valid twice
    replies = ["<vote>A</vote>"] * 20 + ["nothing"] * 20
    bias = position_bias(LLMAudience(ScriptedLLM(replies), generate_personas(20)), [SALES], [("one", "two")])
    assert bias.invalid == 20 and bias.agreement.n == 0 and bias.agreement.value is None
    assert (bias.a_share.k, bias.a_share.n) == (20, 20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The best charger: 20,000 mAh, order now!", (1, 1, 1, 7)),
        ("Rated #1 with 24/7 support for $39.99", (3, 1, 0, 7)),
        ("Hurry, limited stock, ends soon. Buy today!", (0, 0, 4, 7)),
        ("You know it is the most comfortable and fastest option", (0, 2, 0, 10)),
        ("A calm, honest description of a simple lamp.", (0, 0, 0, 8)),
    ],
)
def test_features_count_each_cue(text, expected):
    assert features(text) == dict(zip(FEATURES, map(float, expected), strict=True))


NUMBERED_CLAIMS = (
    ("lasts 20 hours on one charge", "lasts all day on one charge"),
    ("weighs only 310 grams", "weighs next to nothing"),
    ("charges in 45 minutes", "charges in no time"),
    ("holds 128 GB of photos", "holds a huge photo library"),
    ("ships with 2 cables", "ships with spare cables"),
)
PRODUCTS = ("power bank", "headset", "camera", "speaker", "tablet", "smartwatch")


def _numbers_pair(rng: random.Random) -> tuple[tuple[str, str], int]:
    """Two pitches of one product with the same words apart from two claims: one with numbers, one without
    (same token count), in a random position; returns the pair and the index of the numbered pitch."""
    product = rng.choice(PRODUCTS)
    first, second = rng.sample(NUMBERED_CLAIMS, 2)
    numbered = f"This {product} {first[0]} and {second[0]}."
    plain = f"This {product} {first[1]} and {second[1]}."
    assert features(numbered)["length"] == features(plain)["length"]
    index = rng.randrange(2)
    return ((numbered, plain) if index == 0 else (plain, numbered)), index


def _numbers_win_rate(audience: MarketAudience, pairs: int = 200) -> tuple[float, float]:
    """Share of decided pairs the numbered pitch wins, and its share of all votes."""
    wins = decided = numbered_votes = total_votes = 0
    for seed in range(pairs):
        rng = random.Random(seed)
        messages, index = _numbers_pair(rng)
        result = tally(audience.vote(SALES, messages, rng))
        if result.winner is not None:
            decided += 1
            wins += result.winner == index
        numbered_votes += result.counts[index]
        total_votes += result.valid
    return wins / decided, numbered_votes / total_votes


def test_the_market_rewards_numbers_and_the_control_does_not():
    win_rate, vote_share = _numbers_win_rate(MarketAudience(seed=0))
    assert win_rate >= 0.9 and vote_share >= 0.65
    control_win_rate, control_share = _numbers_win_rate(MarketAudience(seed=0, control=True))
    assert 0.38 <= control_win_rate <= 0.62 and 0.45 <= control_share <= 0.55


def test_the_control_zeroes_only_the_numbers_weight():
    market, control = MarketAudience(seed=5), MarketAudience(seed=5, control=True)
    for weights, control_weights in zip(market.voter_weights, control.voter_weights, strict=True):
        assert weights["numbers"] > 0 and control_weights["numbers"] == 0.0
        assert {f: w for f, w in weights.items() if f != "numbers"} == {
            f: w for f, w in control_weights.items() if f != "numbers"
        }
    spread = [weights["superlatives"] for weights in market.voter_weights]
    assert len(set(spread)) == 20 and min(spread) > 0.3 and max(spread) < 1.2  # drawn around 0.6


def test_a_control_without_length_prefers_neither_the_longer_pitch_nor_the_numbered_one():
    short, long = "A sturdy bag.", "A sturdy bag with room for a laptop, a jacket and a lunch box."
    plain = MarketAudience(seed=0, control=True, control_features=["numbers", "length"])
    for weights in plain.voter_weights:
        assert weights["numbers"] == weights["length"] == 0.0 and weights["superlatives"] > 0

    def longer_share(audience: MarketAudience) -> float:  # of the decided pairs
        winners = [tally(audience.vote(SALES, (short, long), random.Random(i))).winner for i in range(200)]
        decided = [w for w in winners if w is not None]
        return sum(decided) / len(decided)

    assert 0.4 <= longer_share(plain) <= 0.6
    assert longer_share(MarketAudience(seed=0, control=True)) > 0.7  # the default control rewards length
    control_win_rate, _ = _numbers_win_rate(plain)
    assert 0.38 <= control_win_rate <= 0.62
    with pytest.raises(UserError, match=r"unknown control feature.*colour"):
        MarketAudience(control=True, control_features=["colour"])


def test_linear_scoring_counts_each_distinct_number_once_and_does_not_saturate():
    card = "The Volt 20 holds 20,000 mAh, weighs 310 g and costs $39.99."
    repeated = card + " Again: 20,000 mAh, 310 g."
    padded = card + " It charges in 3 hours, has 2 ports and a 5-year warranty."
    assert distinct_numbers(card) == distinct_numbers(repeated) == 4  # "20" of the name is a number too
    assert scored_features(padded, "linear")["numbers"] - scored_features(card, "linear")["numbers"] == 3.0
    log_gain = scored_features(padded)["numbers"] - scored_features(card)["numbers"]
    assert 0.4 < log_gain < 0.6  # log(9) - log(6): the spec's scoring saturates
    assert scored_features(padded, "linear")["length"] == scored_features(padded)["length"]


def test_a_linear_market_prefers_added_figures_more_often_than_the_log_market():
    card = "The Volt 20 holds 20,000 mAh, weighs 310 g and costs $39.99, a light handy pick."
    padded = "The Volt 20 holds 20,000 mAh, weighs 310 g and costs $39.99, 3 ports, 2 hours."
    assert features(card)["length"] == features(padded)["length"]

    def padded_share(audience: MarketAudience) -> float:
        votes = [v for seed in range(20) for v in audience.vote(SALES, (card, padded), random.Random(seed))]
        return sum(v.choice == 1 for v in votes) / len(votes)

    linear, log = padded_share(MarketAudience(seed=0, numbers="linear")), padded_share(MarketAudience(seed=0))
    assert linear >= 0.75 and linear - log >= 0.15
    control = MarketAudience(seed=0, control=True, numbers="linear")
    assert 0.35 <= padded_share(control) <= 0.65


def test_market_thoughts_name_the_feature_that_decided():
    numbers_only = MarketAudience(weights={"numbers": 1.0}, noise=0.01, seed=0)
    messages = ("A sturdy power bank for daily use.", "A sturdy power bank with 20,000 mAh.")
    votes = numbers_only.vote(SALES, messages, random.Random(0))
    assert all(vote.choice == 1 for vote in votes)
    for vote in votes:
        ordinal = "first" if vote.shown_order[0] == 1 else "second"
        assert vote.thought == f"The {ordinal} pitch gives concrete numbers, which convinced me."
    assert {vote.shown_order for vote in votes} == {(0, 1), (1, 0)}

    hype_only = MarketAudience(weights={"superlatives": 1.0}, noise=0.01, seed=0)
    speeches = ("I will be the best mayor this town has had.", "I will work hard as your mayor.")
    votes = hype_only.vote(ELECTION, speeches, random.Random(1))
    assert all(vote.choice == 0 and "speech promises the very best" in vote.thought for vote in votes)

    same = ("A plain lamp.", "A plain lamp.")
    votes = MarketAudience(seed=0).vote(SALES, same, random.Random(2))
    assert all(vote.thought.startswith("Neither pitch really stood out") for vote in votes)
    assert {vote.choice for vote in votes} == {0, 1}  # only the noise decides


def test_a_noiseless_market_ignores_the_display_order():
    market = MarketAudience(noise=0.0, seed=0)
    pairs = [("Buy now, the best lamp!", "A lamp."), ("A kettle.", "A kettle that boils 1.7 litres.")]
    bias = position_bias(market, [SALES, SALES], pairs, random.Random(3))
    assert (bias.agreement.k, bias.agreement.n) == (40, 40)
    assert (bias.a_share.k, bias.a_share.n) == (40, 80)


def test_the_market_is_deterministic_per_seed():
    messages = ("The ultimate speaker, order today!", "A speaker with 30 W output and 12 hours of play.")
    first = MarketAudience(seed=1).vote(SALES, messages, random.Random(9))
    assert first == MarketAudience(seed=1).vote(SALES, messages, random.Random(9))
    assert first != MarketAudience(seed=1).vote(SALES, messages, random.Random(10))
    assert MarketAudience(seed=1).voter_weights != MarketAudience(seed=2).voter_weights


def test_a_held_out_market_has_other_voters():
    audience = MarketAudience(personas=20, seed=0)
    held_out = MarketAudience(personas=held_out_personas(20, seed=0), seed=0)
    assert len(held_out.voters) == 20 and not set(audience.voters) & set(held_out.voters)
    votes = held_out.vote(SALES, ("one lamp", "two lamps"), random.Random(0))
    assert [vote.voter for vote in votes] == list(held_out.voters)
