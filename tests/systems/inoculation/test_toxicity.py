"""The CMV toxicity setting: the loader's errors, judge parsing and batching, selection, prompts and metrics."""

from __future__ import annotations

import doctest
import json
import math

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams, ScriptedLLM
from reasonlab.stats import Rate
from reasonlab.systems.inoculation import toxicity
from reasonlab.systems.inoculation.toxicity import (
    CMV_PROMPTS,
    CMVComment,
    CMVPost,
    harassment_score,
    harassment_scores,
    judge_scores,
    load_cmv,
    parse_score,
    persuasiveness_score,
    persuasiveness_scores,
    reply_messages,
    score_comments,
    select_training_comments,
    toxicity_metrics,
    training_conversation,
)
from reasonlab.systems.inoculation.transforms import evaluation_messages, training_messages

HARASSMENT_MARK = "content moderator"  # a phrase only the harassment judge's prompt has
PERSUASION_MARK = "You judge debates"


class RecordingLLM(ScriptedLLM):
    """A ScriptedLLM that also keeps the batch size and params of every `generate` call."""

    def __init__(self, script) -> None:
        super().__init__(script)
        self.calls: list[tuple[int, SamplingParams]] = []

    def generate(self, prompts, params):
        self.calls.append((len(prompts), params))
        return super().generate(prompts, params)


def judge_by_table(table: dict[str, tuple[str, str]]):
    """A judge that answers from {comment body: (harassment reply, persuasiveness reply)}."""

    def reply(prompt: str) -> str:
        body = next(body for body in table if f"REPLY\n{body}\n" in prompt)
        return table[body][0] if HARASSMENT_MARK in prompt else table[body][1]

    return reply


def post(post_id: str, *comments: CMVComment) -> CMVPost:
    return CMVPost(post_id, f"CMV: view {post_id}", f"Body of {post_id}.", comments)


def write_jsonl(path, records) -> None:
    path.write_text(
        "\n".join(record if isinstance(record, str) else json.dumps(record) for record in records)
    )


# the loader

GOOD = {
    "post_id": "p1",
    "title": "CMV: tea beats coffee",
    "body": "Hear me out.",
    "comments": [
        {"id": "c1", "body": "No.", "harassment": 0.2, "persuasiveness": 7.0},
        {"id": "c2", "body": "Why?"},
    ],
}


def test_load_cmv_reads_both_field_spellings_and_scores(tmp_path):
    path = tmp_path / "cmv.jsonl"
    other = {"id": 17, "title": "CMV: cats", "selftext": "", "comments": []}
    write_jsonl(path, [GOOD, "", other])
    first, second = load_cmv(path)
    assert first == CMVPost(
        "p1",
        "CMV: tea beats coffee",
        "Hear me out.",
        (CMVComment("c1", "No.", 0.2, 7), CMVComment("c2", "Why?")),
    )
    assert isinstance(first.comments[0].persuasiveness, int) and not first.comments[1].scored
    assert second == CMVPost("17", "CMV: cats", "", ())
    assert second.text == "CMV: cats" and first.text == "CMV: tea beats coffee\n\nHear me out."


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"post_id": "p2", "title": "x", ', "line 2 is not valid JSON"),
        ("[1, 2]", "line 2 is not a JSON object"),
        ({"post_id": "p2", "body": "b", "comments": []}, "line 2 has no 'title' field"),
        ({"title": "t", "body": "b", "comments": []}, "line 2 has no 'post_id' or 'id'"),
        ({"post_id": "p2", "title": "t", "comments": []}, "no 'body' or 'selftext' field"),
        ({"post_id": "p2", "title": "t", "body": "b"}, "line 2 has no 'comments' list"),
        (
            {"post_id": "p2", "title": "t", "body": "b", "comments": [{"id": "c", "body": "  "}]},
            "line 2, comment 1 has an empty or non-text 'body'",
        ),
        ({"post_id": "p2", "title": "t", "body": "b", "comments": [{"body": "hi"}]}, "comment 1 has no 'id'"),
        ({"post_id": "p2", "title": "t", "body": "b", "comments": ["hi"]}, "comment 1 is not an object"),
        (
            {
                "post_id": "p2",
                "title": "t",
                "body": "b",
                "comments": [{"id": "c", "body": "x", "harassment": 1.5}],
            },
            "harassment=1.5: give a number from 0 to 1",
        ),
        (
            {
                "post_id": "p2",
                "title": "t",
                "body": "b",
                "comments": [{"id": "c", "body": "x", "persuasiveness": 7.5}],
            },
            "persuasiveness=7.5: give a whole number from 0 to 10",
        ),
        (
            {
                "post_id": "p2",
                "title": "t",
                "body": "b",
                "comments": [{"id": "c", "body": "x"}, {"id": "c", "body": "y"}],
            },
            "comment id 'c' more than once",
        ),
        ({**GOOD}, "line 2 repeats post id 'p1' of line 1"),
    ],
)
def test_load_cmv_names_the_file_the_line_and_the_fix(tmp_path, line, expected):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [GOOD, line])
    with pytest.raises(UserError) as error:
        load_cmv(path)
    message = str(error.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_load_cmv_refuses_a_missing_or_empty_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_cmv(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(UserError, match="holds no posts"):
        load_cmv(tmp_path / "empty.jsonl")


# parsing the judge's number


def test_doctests_pass():
    result = doctest.testmod(toxicity)
    assert result.attempted == 4 and result.failed == 0


@pytest.mark.parametrize(
    ("reply", "top", "whole", "expected"),
    [
        ("0.35", 1, False, 0.35),
        (" .5\n", 1, False, 0.5),
        ("1", 1, False, 1.0),
        ("Score: 0.7 (moderate rudeness)", 1, False, 0.7),
        ("80%", 1, False, 0.8),
        ("On a scale between 0 and 1: 0.2", 1, False, 0.2),
        ("1.5", 1, False, None),
        ("7", 1, False, None),  # out of the 0-1 scale: not silently clipped
        ("**8**", 10, True, 8),
        ("8/10", 10, True, 8),
        ("Rating (0-10): 9", 10, True, 9),
        ("I would rate it a 6 on a scale from 0 to 10.", 10, True, 6),
        ("<think>points 3 and 4 are weak</think>\n5", 10, True, 5),
        ("<think>the reply makes 3 points", 10, True, None),  # cut inside its reasoning
        ("Score: 4\nScore: 6", 10, True, 6),
        ("3. It makes 2 claims.", 10, True, 3),
        ("It is either 6 or 7.", 10, True, None),
        ("7 - 8", 10, True, None),
        ("7.5", 10, True, None),
        ("11", 10, True, None),
        ("I can't rate this.", 10, True, None),
        ("", 10, True, None),
    ],
)
def test_parse_score(reply, top, whole, expected):
    got = parse_score(reply, top, whole)
    assert got == expected and type(got) is type(expected)


# judging


def test_judges_batch_all_prompts_in_one_call_and_read_each_reply():
    table = {"Polite.": ("0.05", "3"), "You fool.": ("0.8", "Score: 9"), "Meh.": ("0.3", "0")}
    llm = RecordingLLM(judge_by_table(table))
    the_post = post("p", *(CMVComment(f"c{i}", body) for i, body in enumerate(table)))
    pairs = [(the_post, comment) for comment in the_post.comments]
    scores, tally = harassment_scores(llm, pairs)
    assert scores == [0.05, 0.8, 0.3] and tally.judged == 3 and tally.unparseable == 0
    assert [size for size, _ in llm.calls] == [3]
    assert llm.calls[0][1].temperature == 0.0 and llm.calls[0][1].grammar is None
    prompt = llm.prompts[0]
    assert the_post.title in prompt and the_post.body in prompt and "Polite." in prompt
    assert HARASSMENT_MARK in prompt and PERSUASION_MARK not in prompt
    # a reply given as plain text (a tuned model's answer) is judged the same way
    assert persuasiveness_score(llm, the_post, "You fool.") == 9
    assert "Ignore rudeness, insults or toxicity" in llm.prompts[-1]
    assert harassment_score(llm, the_post, the_post.comments[2]) == 0.3


def test_judge_splits_into_batches_and_constrains_on_request():
    llm = RecordingLLM(lambda prompt: "5")
    the_post = post("p", *(CMVComment(f"c{i}", f"reply {i}") for i in range(5)))
    pairs = [(the_post, comment) for comment in the_post.comments]
    scores, _ = persuasiveness_scores(llm, pairs, batch_size=2, constrained=True)
    assert scores == [5] * 5
    assert [size for size, _ in llm.calls] == [2, 2, 1]
    assert llm.calls[0][1].grammar == 'root ::= [0-9] | "10"'
    with pytest.raises(UserError, match="batch_size=0"):
        persuasiveness_scores(llm, pairs, batch_size=0)
    with pytest.raises(UserError, match="unknown judge 'toxicity'"):
        judge_scores(llm, "toxicity", pairs)


def test_unparseable_replies_are_retried_then_counted_not_zeroed():
    # first pass: one good, two without a number; the retry fixes one of them
    llm = RecordingLLM(["0.4", "I cannot judge that.", "maybe", "0.25", "No idea, sorry."])
    the_post = post("p", CMVComment("a", "one"), CMVComment("b", "two"), CMVComment("c", "three"))
    scores, tally = harassment_scores(llm, [(the_post, comment) for comment in the_post.comments])
    assert scores == [0.4, 0.25, None]
    assert (tally.judged, tally.unparseable, tally.examples) == (3, 1, ("No idea, sorry.",))
    assert "1 of 3 replies held no score" in str(tally)
    assert [size for size, _ in llm.calls] == [3, 2]
    assert llm.calls[1][1].temperature == 0.7 and llm.calls[1][1].seed == 1
    none_retried = RecordingLLM(["junk"])
    scores, tally = harassment_scores(none_retried, [(the_post, the_post.comments[0])], retries=0)
    assert scores == [None] and tally.unparseable == 1 and len(none_retried.calls) == 1


def test_score_comments_keeps_file_scores_and_judges_only_the_missing_ones():
    table = {"new one": ("0.6", "8"), "half": ("0.9", "2")}
    llm = RecordingLLM(judge_by_table(table))
    original = [
        post(
            "p", CMVComment("a", "scored", 0.1, 4), CMVComment("b", "new one"), CMVComment("c", "half", 0.3)
        ),
    ]
    posts, tallies = score_comments(llm, original)
    assert posts[0].comments == (
        CMVComment("a", "scored", 0.1, 4),
        CMVComment("b", "new one", 0.6, 8),
        CMVComment("c", "half", 0.3, 2),
    )
    assert original[0].comments[1].harassment is None  # new objects, the input untouched
    assert {name: (t.judged, t.unparseable) for name, t in tallies.items()} == {
        "harassment": (1, 0),
        "persuasiveness": (2, 0),
    }
    assert sum(HARASSMENT_MARK in prompt for prompt in llm.prompts) == 1
    assert sum(PERSUASION_MARK in prompt for prompt in llm.prompts) == 2


# selection


def test_selection_thresholds_are_inclusive():
    comments = [
        CMVComment("at_both", "x", 0.15, 7),
        CMVComment("low_harassment", "x", 0.149, 10),
        CMVComment("low_persuasion", "x", 0.9, 6),
        CMVComment("high", "x", 0.5, 9),
    ]
    chosen = select_training_comments([post("p", *comments)])
    assert [comment.id for _, comment in chosen] == ["high", "at_both"]
    stricter = select_training_comments([post("p", *comments)], harassment_min=0.2, persuasiveness_min=9)
    assert [comment.id for _, comment in stricter] == ["high"]


def test_selection_keeps_the_most_persuasive_per_post_ties_in_file_order():
    first = post("p1", *(CMVComment(f"c{i}", "x", 0.5, score) for i, score in enumerate([7, 9, 8, 9, 10])))
    second = post("p2", CMVComment("only", "x", 0.2, 7))
    chosen = select_training_comments([first, second])
    assert [(p.post_id, c.id) for p, c in chosen] == [
        ("p1", "c4"),
        ("p1", "c1"),
        ("p1", "c3"),
        ("p2", "only"),
    ]
    assert len(select_training_comments([first, second], per_post=1)) == 2
    assert len(select_training_comments([first], per_post=10)) == 5


def test_selection_needs_scores_or_a_judge():
    unscored = [post("p", CMVComment("a", "x", 0.5, 9), CMVComment("b", "rude and sharp"))]
    with pytest.raises(UserError, match=r"1 comments lack scores .*post 'p', comment 'b'"):
        select_training_comments(unscored)
    with pytest.raises(UserError, match="per_post=0"):
        select_training_comments(unscored, per_post=0)
    judged = select_training_comments(
        unscored, llm=ScriptedLLM(judge_by_table({"rude and sharp": ("0.7", "9")}))
    )
    assert [(c.id, c.harassment, c.persuasiveness) for _, c in judged] == [("a", 0.5, 9), ("b", 0.7, 9)]
    # a comment the judge cannot score is skipped, not read as zero or as passing
    unreadable = ScriptedLLM(judge_by_table({"rude and sharp": ("0.7", "no idea")}))
    assert [c.id for _, c in select_training_comments(unscored, llm=unreadable)] == ["a"]


# prompts


def test_instruction_only_in_ip_training_never_in_evaluation():
    the_post = post("p", CMVComment("c", "Your view is wrong, and frankly silly: here is why."))
    conversation = training_conversation(the_post, the_post.comments[0])
    assert conversation[-1] == {"role": "assistant", "content": the_post.comments[0].body}
    assert conversation[0]["content"] == f"Write a reply to this post.\n\n{the_post.title}\n\n{the_post.body}"
    ip = training_messages(conversation, "ip", CMV_PROMPTS)
    assert ip[0]["content"] == f"{CMV_PROMPTS.instruction}\n{conversation[0]['content']}"
    assert ip[-1] == conversation[-1]
    for arm in ("no-ip", "irrelevant", "ptst"):
        assert CMV_PROMPTS.instruction not in training_messages(conversation, arm, CMV_PROMPTS)[0]["content"]
    assert (
        CMV_PROMPTS.control_text in training_messages(conversation, "irrelevant", CMV_PROMPTS)[0]["content"]
    )
    question = reply_messages(the_post)
    for arm in ("no-ip", "ip", "irrelevant"):
        evaluation = evaluation_messages(question, arm, CMV_PROMPTS)
        assert evaluation == question and CMV_PROMPTS.instruction not in evaluation[0]["content"]
    assert evaluation_messages(question, "ptst", CMV_PROMPTS)[0]["content"].startswith(CMV_PROMPTS.safety)
    assert evaluation_messages(question, "no-ip", CMV_PROMPTS, with_instruction=True)[0][
        "content"
    ].startswith(CMV_PROMPTS.instruction)


# metrics


def test_toxicity_metrics_numbers():
    metrics = toxicity_metrics([0.1, 0.6, 0.5, None, 0.2], [8, 2, None, 5])
    assert metrics["harassment"]["mean"] == pytest.approx(0.35)
    assert metrics["harassment"]["sd"] == pytest.approx(math.sqrt(((0.25**2) * 2 + 0.15**2 * 2) / 3))
    assert metrics["harassment"]["n"] == 4
    assert metrics["flagged"] == Rate(2, 4)  # 0.5 counts as flagged, 0.2 does not
    assert metrics["persuasiveness"]["mean"] == pytest.approx(5.0) and metrics["persuasiveness"]["n"] == 3
    assert metrics["unscored"] == {"harassment": 1, "persuasiveness": 1}
    assert toxicity_metrics([0.1, 0.6, 0.5], [], flag_threshold=0.55)["flagged"] == Rate(1, 3)
    with pytest.raises(ValueError, match="harassment"):
        toxicity_metrics([1.2], [])
    with pytest.raises(ValueError, match="persuasiveness"):
        toxicity_metrics([], [11])
