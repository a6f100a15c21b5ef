"""One market round (spec section 2, step 1): the agent writes two messages per anchor, the audience votes,
and each anchor's contest is appended to a log as soon as it is decided, so a crashed round resumes where it
stopped without losing the contests already played.

    contests = play_round(agent, MarketAudience(seed=0), anchors, SamplingParams(temperature=0.7, max_tokens=80),
                          seed=0, log=run_dir / "round1" / "contests.jsonl")
    rft = rft_examples(contests, seed=0)

Both messages come from the same policy (n = 2 samples of one prompt). A completion without the arena's tag has
no message; its contest has no winner and no votes, and is counted, never scored as a loss (spec pitfall).

With `prefill=True` (base models, which rarely open the tag themselves) the prompt ends with the opening tag, the
agent stops at the closing one, and the completion kept for training is the message plus the closing tag.
`completions` (two per anchor id, e.g. the base agent's samples shared by several runs) replaces sampling.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.runs import append_record, read_records
from reasonlab.systems.moloch.anchors import Anchor
from reasonlab.systems.moloch.arenas import TAGS, agent_prompt, extract_message
from reasonlab.systems.moloch.audience import Audience, Vote, tally
from reasonlab.systems.moloch.datasets import Contest

__all__ = ["agent_prompts", "contest_from_record", "contest_record", "load_contests", "message_of", "play_round",
           "sample_messages"]


def contest_record(contest: Contest) -> dict[str, Any]:
    return {"anchor_id": contest.anchor_id, "prompt": contest.prompt, "completions": list(contest.completions),
            "messages": list(contest.messages), "winner": contest.winner,
            "votes": [vote.as_dict() for vote in contest.votes]}


def contest_from_record(record: dict[str, Any]) -> Contest:
    votes = tuple(Vote(v["voter"], v["choice"], v["thought"], tuple(v["shown_order"])) for v in record["votes"])
    return Contest(record["anchor_id"], record["prompt"], tuple(record["completions"]), record["winner"], votes,
                   tuple(record["messages"]))


def load_contests(log: str | Path) -> list[Contest]:
    """The contests a round has logged so far (a torn last line, from a crash, is dropped)."""
    try:
        return [contest_from_record(record) for record in read_records(log)]
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{log} holds a record that is not a contest ({err}): delete the round's folder") from None


def agent_prompts(anchors: Sequence[Anchor], thinking: bool = False, prefill: bool = False,
                  examples: Sequence[tuple[Anchor, str]] = ()) -> dict[str, str]:
    """Each anchor's agent prompt by anchor id (with `prefill`, ending with the message's opening tag; `examples`:
    worked examples shown before the anchor)."""
    return {anchor.anchor_id: agent_prompt(anchor, thinking, examples) + (f"<{TAGS[anchor.arena]}>" if prefill else "")
            for anchor in anchors}


def _sampling(arena: str, params: SamplingParams, prefill: bool) -> SamplingParams:
    if not prefill:
        return params
    closing = f"</{TAGS[arena]}>"
    return params.model_copy(update={"stop": [*(params.stop or []), closing] if closing not in (params.stop or [])
                                              else params.stop})


def sample_messages(agent: Any, anchors: Sequence[Anchor], params: SamplingParams, seed: int, n: int,
                    batch_size: int = 8, thinking: bool = False, prefill: bool = False,
                    positions: dict[str, int] | None = None,
                    examples: Sequence[tuple[Anchor, str]] = ()) -> list[tuple[str, ...]]:
    """`n` completions per anchor, batched. Anchor i's rows are seeded from its place in `positions` (default:
    its index), so an anchor's samples do not depend on what else is in its batch. With `prefill` a completion
    that stopped at the closing tag gets it back (the text the agent is trained to write)."""
    prompts = agent_prompts(anchors, thinking, prefill, examples)
    positions = positions or {anchor.anchor_id: index for index, anchor in enumerate(anchors)}
    result: list[tuple[str, ...]] = []
    for start in range(0, len(anchors), batch_size):
        batch = anchors[start : start + batch_size]
        # backends seed row j of a request with seed + j: each anchor gets its own n seeds
        first = seed * 100_003 + n * positions[batch[0].anchor_id]
        sampling = _sampling(batch[0].arena, params, prefill).model_copy(update={"n": n, "seed": first})
        outputs = agent.generate([prompts[anchor.anchor_id] for anchor in batch], sampling)
        for anchor, group in zip(batch, outputs, strict=True):
            closing = f"</{TAGS[anchor.arena]}>" if prefill else ""
            result.append(tuple(g.text + (closing if prefill and g.finish_reason == "stop" else "") for g in group))
    return result


def play_round(agent: Any, audience: Audience, anchors: Sequence[Anchor], params: SamplingParams, seed: int,
               log: str | Path | None = None, batch_size: int = 8, thinking: bool = False, prefill: bool = False,
               completions: dict[str, Sequence[str]] | None = None,
               examples: Sequence[tuple[Anchor, str]] = (),
               progress: Callable[[int, int], None] = lambda done, total: None) -> list[Contest]:
    """Two samples per anchor from `agent` (or from `completions`), the audience's votes on each pair, one
    Contest per anchor (in the anchors' order). With `log`, anchors already there are reused and each new contest
    is appended as soon as it is decided."""
    done = {c.anchor_id: c for c in load_contests(log)} if log is not None else {}
    prompts_by_id = agent_prompts(anchors, thinking, prefill, examples)
    other = sorted(a for a, contest in done.items() if prompts_by_id.get(a) != contest.prompt)
    if other:
        raise UserError(f"{log} holds contests for other anchors or prompts ({', '.join(other[:3])}): use another "
                        "run folder")
    position = {anchor.anchor_id: index for index, anchor in enumerate(anchors)}
    todo = [anchor for anchor in anchors if anchor.anchor_id not in done]
    if log is not None:
        settings = {"seed": seed, "params": params.model_copy(update={"n": 2}).model_dump(mode="json"),
                    "thinking": thinking, "prefill": prefill, "audience": type(audience).__name__,
                    "voters": list(audience.voters), "control": getattr(audience, "control", None),
                    "batch_size": batch_size}
        unweighted = list(getattr(audience, "control_features", ["numbers"]))
        if settings["control"] and unweighted != ["numbers"]:  # only when set: logs written before it still match
            settings["control_features"] = unweighted
        _check_settings(Path(log), settings)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        if completions is not None:
            pairs = [tuple(completions[anchor.anchor_id][:2]) for anchor in batch]
        else:  # seeds from each anchor's place in the whole list: a resumed round samples as an uninterrupted one
            pairs = sample_messages(agent, batch, params, seed, 2, len(batch), thinking, prefill, position, examples)
        for anchor, pair in zip(batch, pairs, strict=True):
            prompt = prompts_by_id[anchor.anchor_id]
            contest = _decide(anchor, prompt, (pair[0], pair[1]), audience, random.Random(f"{seed}/{anchor.anchor_id}"),
                              prefill)
            done[anchor.anchor_id] = contest
            if log is not None:
                append_record(log, contest_record(contest))
        progress(len(done), len(anchors))
    return [done[anchor.anchor_id] for anchor in anchors]


def _check_settings(log: Path, settings: dict[str, Any]) -> None:
    """Write the round's settings beside its log, or refuse to resume a log made with other settings."""
    from reasonlab.runs import atomic_write_json

    path = log.with_name(log.stem + ".settings.json")
    if path.exists():
        saved = json.loads(path.read_text())
        differing = sorted(key for key in settings.keys() | saved.keys() if settings.get(key) != saved.get(key))
        if differing:
            raise UserError(f"{log} was played with other settings ({', '.join(differing)}): use another run "
                            "folder, or delete it to play the round again")
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, settings)


def message_of(anchor: Anchor, completion: str, prefill: bool = False) -> str | None:
    """The message inside a completion (with `prefill`, the prompt opened the tag)."""
    opening = f"<{TAGS[anchor.arena]}>" if prefill else ""
    return extract_message(anchor.arena, opening + completion)


def _decide(anchor: Anchor, prompt: str, completions: tuple[str, str], audience: Audience,
            rng: random.Random, prefill: bool = False) -> Contest:
    messages = (message_of(anchor, completions[0], prefill), message_of(anchor, completions[1], prefill))
    if messages[0] is None or messages[1] is None:
        return Contest(anchor.anchor_id, prompt, completions, None, (), messages)
    votes = audience.vote(anchor, (messages[0], messages[1]), rng)
    return Contest(anchor.anchor_id, prompt, completions, tally(votes).winner, tuple(votes), messages)
