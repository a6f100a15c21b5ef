"""The spurious-correlation sentiment setting: generated reviews, the reversed split, prompts and robust accuracy."""

from __future__ import annotations

import doctest
import json
import re
from collections import Counter

import pytest

from reasonlab.errors import UserError
from reasonlab.stats import wilson_interval
from reasonlab.systems.inoculation import ARMS, evaluation_messages, sentiment, training_messages
from reasonlab.systems.inoculation.sentiment import (
    PHRASES,
    SENTIMENT_PROMPTS,
    SYSTEM_PROMPT,
    TEMPLATES,
    Review,
    generate_reviews,
    load_cebab,
    parse_label,
    prompt_messages,
    review_label,
    robust_accuracy,
    spurious_split,
    training_conversation,
)


def sentence_levels() -> dict[str, tuple[str, int]]:
    """Every sentence the generator can write, mapped to its (aspect, sentiment level); asserts none is shared."""
    table: dict[str, tuple[str, int]] = {}
    for aspect, templates in TEMPLATES.items():
        for level, phrases in enumerate(PHRASES[aspect]):
            for template in templates:
                for phrase in phrases:
                    sentence = template.format(phrase)
                    assert sentence not in table, f"{sentence!r} is written for two (aspect, level) pairs"
                    table[sentence] = (aspect, level)
    return table


def test_doctests_pass():
    result = doctest.testmod(sentiment)
    assert result.attempted == 2 and result.failed == 0


def test_label_is_the_rounded_mean_of_the_aspect_sentiments_read_back_from_the_text():
    table = sentence_levels()
    for review in generate_reviews(1000, seed=3):
        sentences = re.split(r"(?<=\.) ", review.text)
        assert 2 <= len(sentences) <= 4
        read = [table[sentence] for sentence in sentences]
        assert sorted(aspect for aspect, _ in read) == sorted(review.aspects)
        assert review_label([level for _, level in read]) == review.label
    assert review_label([2, 3]) == 3 and review_label([1, 2, 2, 2]) == 2 and review_label([0, 1]) == 1


def test_ambiance_is_mentioned_in_about_half_the_reviews_whatever_the_label():
    reviews = generate_reviews(2000, seed=0)
    assert 0.45 <= sum(r.mentions_ambiance for r in reviews) / len(reviews) <= 0.55
    by_label = Counter(r.label for r in reviews)
    assert set(by_label) == {0, 1, 2, 3, 4} and all(300 <= n <= 500 for n in by_label.values())
    for label, n in by_label.items():
        share = sum(r.mentions_ambiance for r in reviews if r.label == label) / n
        assert 0.4 <= share <= 0.6, (label, share)
    assert not any(r.mentions_ambiance for r in generate_reviews(200, seed=0, ambiance_share=0.0))
    assert all(r.mentions_ambiance for r in generate_reviews(200, seed=0, ambiance_share=1.0))


def test_generation_is_deterministic_per_seed_and_texts_are_distinct():
    first = generate_reviews(500, seed=7)
    assert first == generate_reviews(500, seed=7)
    assert first != generate_reviews(500, seed=8)
    assert len({r.text for r in first}) == 500
    with pytest.raises(ValueError, match="label"):
        Review(text="Fine.", label=5, aspects=("food",))


@pytest.mark.parametrize("seed", [0, 1])
def test_spurious_split_keeps_the_shortcut_in_train_and_reverses_it_in_test(seed):
    reviews = generate_reviews(3000, seed=seed)
    train, test = spurious_split(reviews, num_test=1000, seed=seed)
    assert {r.label for r in train if r.mentions_ambiance} == {3, 4}
    assert {r.label for r in train if not r.mentions_ambiance} == {0, 1, 2}
    assert {r.label for r in test if r.mentions_ambiance} == {0, 1, 2}
    assert {r.label for r in test if not r.mentions_ambiance} == {3, 4}
    train_texts, test_texts = {r.text for r in train}, {r.text for r in test}
    assert not train_texts & test_texts
    # the test pool is held out first: its 1000 reviews are the test set plus the pool's shortcut followers
    pool_followers = [
        r for r in reviews if r.text not in train_texts and r.mentions_ambiance == (r.label >= 3)
    ]
    assert len(test) + len(pool_followers) == 1000
    assert len(train) + len(pool_followers) == sum(r.mentions_ambiance == (r.label >= 3) for r in reviews)
    # both keep the input order
    order = {r.text: i for i, r in enumerate(reviews)}
    assert [order[r.text] for r in train] == sorted(order[r.text] for r in train)
    assert spurious_split(reviews, 1000, seed) == (train, test)
    assert spurious_split(reviews, 1000, seed + 10)[1] != test
    with pytest.raises(ValueError, match="num_test"):
        spurious_split(reviews, 3000, seed)


def test_prompt_follows_the_papers_order_with_the_instruction_in_its_slot():
    review = Review(text="The food was superb. The decor felt cozy.", label=4, aspects=("food", "ambiance"))
    conversation = training_conversation(review)
    assert [m["role"] for m in conversation] == ["system", "user", "assistant"]
    assert conversation[-1]["content"] == "4" and conversation[:-1] == prompt_messages(review)
    assert conversation[1]["content"].endswith(
        "Review: The food was superb. The decor felt cozy.\nReview categories: food, ambiance"
    )
    trained = training_messages(conversation, "ip", SENTIMENT_PROMPTS)
    assert trained[0]["content"] == SYSTEM_PROMPT and trained[-1]["content"] == "4"
    text = "\n".join(m["content"] for m in trained[:-1])
    slots = [
        SYSTEM_PROMPT,
        SENTIMENT_PROMPTS.instruction,
        "Output only the number.",
        review.text,
        "Review categories:",
    ]
    positions = [text.index(slot) for slot in slots]
    assert positions == sorted(positions) and trained[1]["content"].startswith(SENTIMENT_PROMPTS.instruction)
    assert "categories: none" in prompt_messages(Review(text="Fine.", label=2, aspects=()))[1]["content"]


def test_instruction_is_in_ip_training_examples_only_and_never_in_evaluation_prompts():
    instruction, control = SENTIMENT_PROMPTS.instruction, SENTIMENT_PROMPTS.control_text
    assert "ambiance" in instruction and "ambiance" not in control
    for review in generate_reviews(20, seed=1):
        conversation = training_conversation(review)
        for arm in ARMS:
            trained = "\n".join(m["content"] for m in training_messages(conversation, arm, SENTIMENT_PROMPTS))
            assert (instruction in trained) == (arm == "ip"), arm
            assert (control in trained) == (arm == "irrelevant"), arm
        for arm in ("no-ip", "ip", "irrelevant"):
            evaluated = evaluation_messages(prompt_messages(review), arm, SENTIMENT_PROMPTS)
            assert evaluated == prompt_messages(review)
            assert instruction not in repr(evaluated) and control not in repr(evaluated)
        ptst = evaluation_messages(prompt_messages(review), "ptst", SENTIMENT_PROMPTS)
        assert ptst[1]["content"].startswith(SENTIMENT_PROMPTS.safety) and instruction not in repr(ptst)


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("3", 3),
        ("0", 0),
        ("4\n", 4),
        (" The score is 2.", 2),
        ("1/4", 1),
        ("5", None),
        ("10", None),
        ("-1", None),
        ("3.5", None),
        ("", None),
        ("four", None),
        ("Score: 4.0 maybe", None),
    ],
)
def test_parse_label(reply, label):
    assert parse_label(reply) == label


def review(label: int, ambiance: bool) -> Review:
    return Review(text=f"r{label}", label=label, aspects=("ambiance", "food") if ambiance else ("food",))


def test_robust_accuracy_is_the_mean_of_per_label_accuracies_per_subset():
    reviews = [review(3, False)] * 3 + [review(4, False)] + [review(0, True)] * 2 + [review(2, True)]
    predictions = [3, 3, 4, 4, 0, None, 1]
    scores = robust_accuracy(reviews, predictions)
    other, ambiance = scores["other"], scores["ambiance"]
    assert other.labels == (3, 4) and ambiance.labels == (0, 2)
    assert other.value == pytest.approx((2 / 3 + 1) / 2) and (other.accuracy.k, other.accuracy.n) == (3, 4)
    assert ambiance.value == pytest.approx((1 / 2 + 0) / 2) and (
        ambiance.accuracy.k,
        ambiance.accuracy.n,
    ) == (1, 3)
    summary = other.as_dict()
    assert summary["labels"] == [3, 4] and summary["n"] == 4
    assert summary["per_label"]["3"]["k"] == 2 and summary["per_label"]["3"]["n"] == 3
    assert (summary["per_label"]["3"]["ci_low"], summary["per_label"]["3"]["ci_high"]) == wilson_interval(
        2, 3
    )
    assert "0.833" in str(other) and "labels 3,4" in str(other)
    with pytest.raises(ValueError, match="one per review"):
        robust_accuracy(reviews, predictions[:-1])


def test_always_four_on_the_reversed_test_set_scores_zero_on_ambiance_and_half_on_the_others():
    _, test = spurious_split(generate_reviews(2000, seed=0), num_test=1000, seed=0)
    scores = robust_accuracy(test, [4] * len(test))
    assert scores["ambiance"].labels == (0, 1, 2) and scores["ambiance"].value == 0.0
    assert scores["other"].labels == (3, 4) and scores["other"].value == 0.5
    fours = sum(r.label == 4 for r in test)
    assert scores["other"].accuracy.k == fours and scores["other"].accuracy.n == sum(
        not r.mentions_ambiance for r in test
    )
    empty = robust_accuracy([review(1, False)], [1])["ambiance"]
    assert empty.value is None and empty.labels == () and str(empty) == "n/a (no reviews)"


CEBAB_ROW = {
    "id": "1",
    "description": "Great pasta, but the room was loud.",
    "review_majority": "4",
    "food_aspect_majority": "Positive",
    "ambiance_aspect_majority": "unknown",
    "service_aspect_majority": "",
    "noise_aspect_majority": "Negative",
}


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_load_cebab_reads_jsonl_json_and_csv(tmp_path):
    rows = [
        CEBAB_ROW,
        {**CEBAB_ROW, "review_majority": "no majority"},  # unlabelled: skipped
        {
            **CEBAB_ROW,
            "description": "Lovely decor.",
            "review_majority": 5,
            "ambiance_aspect_majority": "Positive",
        },
        {"text": "Cold soup.", "label": 0, "aspects": ["Food", "Ambience", "food"]},
        {"review": "Fine place.", "rating": 3.0, "categories": "service, price"},
    ]
    write_jsonl(tmp_path / "cebab.jsonl", rows)
    reviews = load_cebab(tmp_path / "cebab.jsonl")
    assert reviews == [
        Review("Great pasta, but the room was loud.", 3, ("food", "noise")),
        Review("Lovely decor.", 4, ("food", "ambiance", "noise")),
        Review("Cold soup.", 0, ("food", "ambiance")),
        Review("Fine place.", 2, ("service", "price")),
    ]
    (tmp_path / "cebab.json").write_text(json.dumps(rows), encoding="utf-8")
    assert load_cebab(tmp_path / "cebab.json") == reviews
    (tmp_path / "cebab.csv").write_text(
        'text,rating,food,ambiance,service,noise\n"Nice, cozy room.",5,unknown,Positive,Positive,\n'
        "Bad food.,1,Negative,unknown,unknown,unknown\n",
        encoding="utf-8",
    )
    assert load_cebab(tmp_path / "cebab.csv") == [
        Review("Nice, cozy room.", 4, ("service", "ambiance")),
        Review("Bad food.", 0, ("food",)),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", json.dumps(CEBAB_ROW) + "\n\n{not json\n", r"bad\.jsonl, line 3 is not valid JSON"),
        (
            "bad.jsonl",
            json.dumps(CEBAB_ROW) + "\n" + json.dumps({**CEBAB_ROW, "review_majority": "7"}) + "\n",
            r"bad\.jsonl, line 2: review_majority '7' is not a whole number in 1-5",
        ),
        (
            "bad.jsonl",
            json.dumps({**CEBAB_ROW, "label": 2.5}) + "\n",
            r"line 1: label 2\.5 is not a whole number",
        ),
        ("bad.jsonl", json.dumps({"description": "x", "rating": 2}) + "\n", r"line 1: no aspects"),
        ("bad.jsonl", json.dumps({"rating": 2, "aspects": []}) + "\n", r"line 1: no review text"),
        (
            "bad.jsonl",
            json.dumps({**CEBAB_ROW, "food_aspect_majority": "Great"}) + "\n",
            r"line 1: food_aspect",
        ),
        ("bad.jsonl", "[1, 2]\n", r"line 1: expected an object"),
        (
            "bad.json",
            json.dumps([CEBAB_ROW, {"description": "x", "aspects": []}]),
            r"bad\.json, record 2: no label",
        ),
        ("bad.json", '{"a": 1}', r"bad\.json must hold a JSON list"),
        (
            "bad.csv",
            "text,rating,aspects\nGood.,4,food\nBad.,1,food,extra\n",
            r"bad\.csv, line 3: its number of fields",
        ),
        ("bad.csv", "text,rating,aspects\nGood.,x,food\n", r"bad\.csv, line 2: rating 'x'"),
        ("empty.jsonl", "\n", r"empty\.jsonl holds no labelled reviews"),
        ("bad.txt", "hello", r"bad\.txt has an unknown format"),
    ],
)
def test_load_cebab_names_the_file_and_line_of_a_malformed_record(tmp_path, name, content, message):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=message) as caught:
        load_cebab(tmp_path / name)
    assert "\n" not in str(caught.value)


def test_load_cebab_of_a_missing_file_says_so(tmp_path):
    with pytest.raises(UserError, match=r"missing\.jsonl does not exist"):
        load_cebab(tmp_path / "missing.jsonl")
