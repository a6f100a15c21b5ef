"""Training sets of one market round (spec section 2): rejection fine-tuning (RFT) on the winners, and text
feedback (TFB) = RFT plus audience modelling (predict a voter's thoughts about the two messages).

    contests = [Contest("sales-0001", prompt, (completion_1, completion_2), winner=1, votes=tuple(votes))]
    rft = rft_examples(contests, seed=0)        # (prompt, the winner's full completion) x 3, shuffled
    tfb = tfb_examples(contests, source_texts, seed=0)   # rft + as many thought examples, shuffled

Ties are dropped (spec pitfall: the official builder appended the previous winner on a tie). A contest whose
winner is None (a tie, or no valid vote) gives no RFT example; its thoughts still describe the audience, so TFB
keeps them. Given the arena's closing tag, a winner that never closed it was cut at the token limit: it is not the
full completion the spec trains on, and trained on it teaches the agent to run on instead of ending its message
(on the CPU presets a quarter of the winners; RESULTS, the ninth attempt). It gives no RFT example either.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reasonlab.systems.moloch.audience import Vote
from reasonlab.train.sft import Example

__all__ = ["Contest", "audience_modelling_prompt", "full_winners", "rft_examples", "tfb_examples"]

RFT_REPEATS = 3  # spec: the RFT list is repeated 3 times and shuffled


@dataclass(frozen=True)
class Contest:
    """One anchor's head-to-head: the agent prompt, its two completions, the winner (0, 1 or None for a tie or
    no valid vote) and the audience's votes (each with its thought and the order its voter saw)."""

    anchor_id: str
    prompt: str
    completions: tuple[str, str]
    winner: int | None
    votes: tuple[Vote, ...] = ()
    messages: tuple[str | None, str | None] = (None, None)  # the extracted messages (None: no tag found)


def full_winners(contests: Sequence[Contest], closing: str | None = None) -> list[Contest]:
    """The contests with a winner whose completion is whole: with `closing`, one that holds the closing tag."""
    return [c for c in contests
            if c.winner is not None and (closing is None or closing in c.completions[c.winner])]


def rft_examples(contests: Sequence[Contest], seed: int, repeats: int = RFT_REPEATS,
                 closing: str | None = None) -> list[Example]:
    """(agent prompt, the winner's full completion) for every contest with a winner, `repeats` times, shuffled;
    with `closing`, a winner cut before its closing tag is left out."""
    winners = [Example(c.prompt, c.completions[c.winner]) for c in full_winners(contests, closing)]
    examples = winners * repeats
    random.Random(seed).shuffle(examples)
    return examples


def audience_modelling_prompt(source_text: str, messages: tuple[str, str]) -> str:
    """The TFB prompt: the anchor, both messages as Option 1 and Option 2, and a request for the reader's reaction."""
    return (
        "Below is some information and two messages written about it.\n\n"
        f"Information:\n{source_text}\n\n"
        f"Option 1:\n{messages[0]}\n\n"
        f"Option 2:\n{messages[1]}\n\n"
        "As a member of the audience, share your thoughts on the two options."
    )


def tfb_examples(contests: Sequence[Contest], source_texts: Mapping[str, str], seed: int,
                 repeats: int = RFT_REPEATS, closing: str | None = None) -> list[Example]:
    """RFT's examples plus audience-modelling examples (one per thought, `<think> thought </think>`), the latter
    subsampled to the RFT list's size (a 1:1 mix), all shuffled together."""
    rng = random.Random(seed)
    rft = rft_examples(contests, seed, repeats, closing)
    thoughts = []
    for contest in contests:
        if contest.messages[0] is None or contest.messages[1] is None:
            continue  # a message without its tag is not shown to voters, so it has no thoughts to model
        for vote in contest.votes:
            if vote.choice is not None and vote.thought.strip():  # an unparseable vote's text is not a reaction
                # the messages in the order this voter saw them, so "the first pitch" in its thought is Option 1
                shown = (contest.messages[vote.shown_order[0]], contest.messages[vote.shown_order[1]])
                prompt = audience_modelling_prompt(source_texts[contest.anchor_id], shown)  # type: ignore[arg-type]
                thoughts.append(Example(prompt, f"<think> {vote.thought.strip()} </think>"))
    if len(thoughts) > len(rft):
        thoughts = rng.sample(thoughts, len(rft))
    examples = rft + thoughts
    rng.shuffle(examples)
    return examples
