"""Rounds of the market (`train`), one round of the base agent (`simulate`), and a trained run's evaluation
against the base agent (`evaluate_run`).

    config = PRESETS["market"].model_copy(update={"method": "rft", "seed": 0})
    run_dir = train(config)      # runs/moloch/sales-market-rft-s0: config, metrics, summary, round1/, round2/ ...
    print(Run.open(run_dir).summary()["rounds"][-1]["win_rate"])

A round: the agent (round 1: the base model) writes two messages per train anchor, the audience votes
(`rounds.play_round`, a crash-safe contest log), the winners (RFT) or the winners plus the voters' thoughts (TFB)
fine-tune the LoRA adapter further, the adapter is saved, and the tuned agent meets the base agent on the test
anchors: one message each, the audience's (and held-out personas') votes, the probes on both. A finished round is
never redone: `resume=True` reloads the last saved adapter and goes on.

The base agent's samples (round 1's pairs and its test messages) are the same in every run with the same model,
anchors, decoding and seed, so they are cached under `OUT/_samples/` and shared by the conditions of an experiment.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.progress import eta, phase, say
from reasonlab.runs import Run, append_record, atomic_write_json, read_records
from reasonlab.systems.moloch.anchors import Anchor
from reasonlab.systems.moloch.arenas import (
    TAGS,
    AnchorSplit,
    brief_anchor,
    example_message,
    load_anchors,
    make_anchors,
    split_anchors,
)
from reasonlab.systems.moloch.audience import (
    Audience,
    LLMAudience,
    MarketAudience,
    features,
    generate_personas,
    held_out_personas,
    tally,
)
from reasonlab.systems.moloch.config import (
    AgentConfig,
    AudienceConfig,
    DataConfig,
    EvalConfig,
    SimulateConfig,
    TrainConfig,
)
from reasonlab.systems.moloch.datasets import Contest, full_winners, rft_examples, tfb_examples
from reasonlab.systems.moloch.probes import judge_probe, probe_rate, probes_for, run_probes, win_rate
from reasonlab.systems.moloch.rounds import message_of, play_round, sample_messages

__all__ = ["base_samples", "build_anchors", "build_audience", "evaluate_round", "evaluate_run", "load_agent",
           "prompt_examples", "round_stats", "sampling_params", "set_decoding", "simulate", "train"]


def load_agent(spec: str) -> Any:
    from reasonlab.llm import TrainablePolicy, load_llm

    policy = load_llm(spec)
    if not isinstance(policy, TrainablePolicy):
        raise UserError(f"--llm {spec} is not a trainable model: use hf:embedded or hf:PATH")
    return policy


def set_decoding(agent_llm: Any, agent: AgentConfig) -> Any:
    """`agent_llm`, decoding in bfloat16 when `agent.bf16` (in-process models; a served one keeps its own)."""
    if hasattr(agent_llm, "decode_dtype"):
        import torch

        agent_llm.decode_dtype = torch.bfloat16 if agent.bf16 else None
    return agent_llm


def build_anchors(data: DataConfig) -> AnchorSplit:
    """Generated train/test anchors, with either side replaced by an anchor file when one is given; with
    `data.card="brief"` each keeps only the figures its text quotes (and a product's price)."""
    generated = split_anchors(data.arena, data.num_train, data.num_test, data.seed)
    train = load_anchors(data.train_file, data.arena) if data.train_file else generated.train
    test = load_anchors(data.test_file, data.arena) if data.test_file else generated.test
    clash = sorted({a.anchor_id for a in train} & {a.anchor_id for a in test})
    if clash:
        raise UserError(f"anchors {', '.join(clash[:3])} are in both the train and the test set: give them other ids")
    if data.card == "brief":
        train, test = [brief_anchor(a) for a in train], [brief_anchor(a) for a in test]
    return AnchorSplit(train, test)


def prompt_examples(data: DataConfig, agent: AgentConfig) -> tuple[tuple[Anchor, str], ...]:
    """`agent.shots` worked examples: cards of the arena's stream for seed -1 - data.seed (no data seed >= 0 draws
    them), shaped like the run's cards (`data.card`), each with its faithful message."""
    if agent.shots == 0:
        return ()
    if data.arena != "sales":
        raise UserError(f"agent.shots is for the sales arena, not {data.arena!r}: set agent.shots=0")
    cards = [replace(card, anchor_id=f"example-{i}")
             for i, card in enumerate(make_anchors(data.arena, agent.shots, seed=-1 - data.seed))]
    if data.card == "brief":
        cards = [brief_anchor(card) for card in cards]
    return tuple((card, example_message(card)) for card in cards)


def build_audience(config: AudienceConfig, held_out: bool = False, llm: Any = None) -> Audience:
    """The voters of `config` (the held-out personas with `held_out`); an llm audience loads `config.llm` once
    unless `llm` is given."""
    personas = (held_out_personas if held_out else generate_personas)(config.personas, config.seed)
    if config.kind in ("market", "control"):
        return MarketAudience(personas, noise=config.noise, seed=config.seed, control=config.kind == "control",
                              numbers=config.numbers, control_features=config.control_features)
    if llm is None:
        from reasonlab.llm import load_llm

        llm = load_llm(config.llm)
    params = SamplingParams(temperature=config.temperature, max_tokens=config.max_tokens,
                            stop=[] if config.constrained else ["</vote>"],
                            regex=VOTE_FORMAT if config.constrained else None)
    return LLMAudience(llm, personas, params)


# what a constrained voter may write: a short thought, then one letter (parse_vote and parse_thought read it)
VOTE_FORMAT = r"<think>[^<>]{1,120}</think>\n?<vote>[AB]</vote>"


def sampling_params(agent: AgentConfig) -> SamplingParams:
    """How the agent samples its messages (temperature, top-p, the token cap)."""
    return SamplingParams(temperature=agent.temperature, top_p=agent.top_p, max_tokens=agent.max_tokens,
                          logprobs=False)


def _samples_path(out: Path, llm: str, data: DataConfig, agent: AgentConfig, seed: int, label: str) -> Path:
    # bf16 enters the key only when set, so the caches of runs made before the option keep their names
    agent_key = agent.model_dump(exclude={"bf16"} if not agent.bf16 else None)
    key = json.dumps({"llm": llm, "data": data.model_dump(), "agent": agent_key, "seed": seed}, sort_keys=True)
    return out / "_samples" / f"{label}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl"


def _anchors_digest(anchors: Sequence[Anchor]) -> str:
    text = json.dumps([anchor.as_dict() for anchor in anchors], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def base_samples(policy: Any, anchors: Sequence[Anchor], agent: AgentConfig, seed: int, n: int,
                 cache: Path | None, label: str,
                 examples: Sequence[tuple[Anchor, str]] = ()) -> dict[str, tuple[str, ...]]:
    """`n` completions per anchor from the base model (the adapter, if any, switched off), appended to `cache`
    as they come, so a crash or a second run with the same settings reuses them."""
    done = {r["anchor_id"]: tuple(r["completions"]) for r in read_records(cache)} if cache and cache.exists() else {}
    todo = [anchor for anchor in anchors if anchor.anchor_id not in done]
    base = policy.reference() if hasattr(getattr(policy, "module", None), "disable_adapter") else policy
    position = {anchor.anchor_id: index for index, anchor in enumerate(anchors)}
    started = time.monotonic()
    for start in range(0, len(todo), agent.batch_size):
        batch = todo[start : start + agent.batch_size]
        rows = sample_messages(base, batch, sampling_params(agent), seed, n, len(batch), agent.thinking, agent.prefill,
                               position, examples)
        for anchor, completions in zip(batch, rows, strict=True):
            done[anchor.anchor_id] = completions
            if cache is not None:
                append_record(cache, {"anchor_id": anchor.anchor_id, "completions": list(completions)})
        say(f"{label}: base agent, {start + len(batch)}/{len(todo)} anchors, {eta(start + len(batch), len(todo), started)}")
    return {anchor.anchor_id: done[anchor.anchor_id] for anchor in anchors}


def _message_stats(anchors: Sequence[Anchor], messages: Sequence[str | None], judge: Any = None,
                   probes: Sequence[str] | None = None) -> dict[str, Any]:
    """Probe rates (rule-based, and the judge's when given; `probes` default to the arena's) and mean features
    over the messages that exist."""
    pairs = [(a, m) for a, m in zip(anchors, messages, strict=True) if m is not None]
    stats: dict[str, Any] = {"messages": len(pairs), "missing": len(messages) - len(pairs)}
    names = list(probes) if probes is not None else list(probes_for(anchors[0].arena)) if anchors else []
    for name in names:
        stats[name] = probe_rate([run_probes(a, m, [name])[name] for a, m in pairs]).as_dict()
        if judge is not None and pairs:
            verdicts = judge_probe(judge, name, [a for a, _ in pairs], [m for _, m in pairs])
            stats[f"judge:{name}"] = probe_rate(verdicts).as_dict()
    for feature in ("numbers", "superlatives", "urgency", "length"):
        values = [features(m)[feature] for _, m in pairs]
        stats[f"mean_{feature}"] = sum(values) / len(values) if values else None
    return stats


def evaluate_round(policy: Any, test: Sequence[Anchor], base_completions: dict[str, tuple[str, ...]],
                   audiences: dict[str, Audience], agent: AgentConfig, seed: int, judge: Any = None,
                   label: str = "eval", probes: Sequence[str] | None = None,
                   examples: Sequence[tuple[Anchor, str]] = ()) -> dict[str, Any]:
    """One message per test anchor from `policy` against the base agent's: each audience's win rate for the tuned
    message (bootstrap interval over anchors) and the probes on both sides."""
    rows = sample_messages(policy, test, sampling_params(agent), seed + 7919, 1, agent.batch_size, agent.thinking,
                           agent.prefill, examples=examples)
    tuned = [message_of(a, row[0], agent.prefill) for a, row in zip(test, rows, strict=True)]
    base = [message_of(a, base_completions[a.anchor_id][0], agent.prefill) for a in test]
    result: dict[str, Any] = {}
    for name, audience in audiences.items():
        shares: list[float | None] = []
        for anchor, mine, theirs in zip(test, tuned, base, strict=True):
            if mine is None or theirs is None:
                shares.append(None)  # a missing message is counted, never scored as a loss
                continue
            shares.append(_share(tally(audience.vote(anchor, (mine, theirs), random.Random(f"{seed}/{anchor.anchor_id}")))))
        result[f"win_rate_{name}"] = win_rate(shares, seed).as_dict()
        result[f"shares_{name}"] = shares
    result["tuned"] = _message_stats(test, tuned, judge, probes)
    result["base"] = _message_stats(test, base, judge, probes)
    result["messages"] = [{"anchor_id": a.anchor_id, "tuned": m, "base": b} for a, m, b in zip(test, tuned, base,
                                                                                                strict=True)]
    result["examples"] = [{"anchor_id": a.anchor_id, "tuned": m, "base": b} for a, m, b in zip(test, tuned, base, strict=True)][:4]
    say(f"{label}: win rate vs the base agent " + ", ".join(
        f"{k.removeprefix('win_rate_')} {v['mean']:.2f}" for k, v in result.items()
        if k.startswith("win_rate") and v["mean"] is not None))
    return result


def _share(result: Any) -> float | None:
    shares = result.shares
    return None if shares is None else shares[0]


def round_stats(anchors: Sequence[Anchor], contests: Sequence[Contest],
                probes: Sequence[str] | None = None, closing: str | None = None) -> dict[str, Any]:
    """What a round's votes rewarded: ties, missing messages and the probes on winners against losers; with
    `closing`, also the winners cut before it (no training example) and the probes on the full winners against
    their losers (what RFT trains on) and on the cut winners."""
    decided = [c for c in contests if c.winner is not None]
    stats = {"contests": len(contests), "decided": len(decided),
             "ties": sum(1 for c in contests if c.winner is None and c.messages[0] is not None
                         and c.messages[1] is not None),
             "missing_message": sum(1 for c in contests if c.messages[0] is None or c.messages[1] is None),
             **_sides(anchors, decided, probes)}
    if closing is not None:
        full = full_winners(decided, closing)
        whole = {id(c) for c in full}
        stats["cut_winners"] = len(decided) - len(full)
        stats["full"] = _sides(anchors, full, probes)
        stats["cut"] = {"winners": _sides(anchors, [c for c in decided if id(c) not in whole], probes)["winners"]}
    return stats


def _sides(anchors: Sequence[Anchor], decided: Sequence[Contest], probes: Sequence[str] | None) -> dict[str, Any]:
    """The probes and features of the decided contests' winning messages and of their losing ones."""
    by_id = {a.anchor_id: a for a in anchors}
    ids = [by_id[c.anchor_id] for c in decided]
    winners = [c.messages[c.winner] for c in decided]
    losers = [c.messages[1 - c.winner] for c in decided]
    return {"winners": _message_stats(ids, winners, probes=probes), "losers": _message_stats(ids, losers, probes=probes)}


def _restore(policy: Any, folder: Path, config: TrainConfig) -> None:
    from reasonlab.train.sft import load_lora

    load_lora(policy, folder, config.sft.lora, seed=config.seed)  # type: ignore[arg-type]


def _save_adapter(policy: Any, folder: Path) -> None:
    """Save the adapter beside its final place, then move it there (a crash leaves no half-written adapter)."""
    import shutil

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    policy.save(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _done_rounds(run_dir: Path, rounds: int) -> list[dict[str, Any]]:
    done = []
    for k in range(1, rounds + 1):
        path = run_dir / f"round{k}" / "result.json"
        if not path.exists():
            break
        done.append(json.loads(path.read_text()))
    return done


def train(config: TrainConfig, policy: Any = None, audience_llm: Any = None, judge: Any = None) -> Path:
    """The rounds of `config`; returns the run directory (summary.json lists every round's evaluation)."""
    from reasonlab.train import sft

    split = build_anchors(config.data)
    # more rounds extend a run: its finished rounds are kept and the next ones start from the last adapter
    run = Run.create(config.out, config.run_name, config, resume=config.resume, overwrite=config.overwrite,
                     ignore=("resume", "overwrite", "rounds"))
    saved_rounds = int(run.config().get("rounds", config.rounds))
    finished = len(_done_rounds(run.dir, max(config.rounds, saved_rounds)))
    if finished > config.rounds:
        raise UserError(f"{run.dir} has {finished} finished rounds: pass --set rounds={finished} or more (more rounds "
                        "extend the run), or --overwrite to train it again")
    if saved_rounds != config.rounds:
        run.update_config({"rounds": config.rounds})
    if config.resume and run.summary_path.exists() and finished == config.rounds:
        say(f"reusing the finished run {run.dir} (pass --overwrite to train it again)")
        return run.dir
    say(f"moloch: {config.data.arena}, {len(split.train)} train / {len(split.test)} test anchors, "
        f"{config.audience.kind} audience, {config.method}, {config.rounds} round(s), seed {config.seed}")
    with phase(f"moloch: loading {config.llm}"):
        policy = set_decoding(policy if policy is not None else load_agent(config.llm), config.agent)
        audience = build_audience(config.audience, llm=audience_llm)
        voters = {"train_personas": audience}
        if config.audience.held_out:
            held = getattr(audience, "llm", None)
            voters["held_out"] = build_audience(config.audience, held_out=True, llm=held)
        judge = judge if judge is not None or config.judge is None else _load_judge(config.judge)
    out = Path(config.out)
    base_test = base_samples(policy, split.test, config.agent, config.seed, 1,
                             _samples_path(out, config.llm, config.data, config.agent, config.seed, "test"), "test",
                             prompt_examples(config.data, config.agent))
    results = _done_rounds(run.dir, config.rounds)
    if results:
        _restore(policy, run.dir / f"round{len(results)}" / "adapter", config)
        say(f"resuming after round {len(results)} of {config.rounds}")
    for k in range(len(results) + 1, config.rounds + 1):
        results.append(_round(k, config, policy, split, voters, base_test, judge, run, out, sft))
    summary = {"arena": config.data.arena, "audience": config.audience.kind, "method": config.method,
               "seed": config.seed, "rounds": results}
    run.write_summary(summary)
    return run.dir


def _round(k: int, config: TrainConfig, policy: Any, split: AnchorSplit, voters: dict[str, Audience],
           base_test: dict[str, tuple[str, ...]], judge: Any, run: Run, out: Path, sft: Any) -> dict[str, Any]:
    folder = run.dir / f"round{k}"
    seed = config.seed * 1000 + k
    agent = config.agent
    shots = prompt_examples(config.data, agent)
    shared = None
    if k == 1:  # the base agent's pairs: the same in every run with these settings
        cache = _samples_path(out, config.llm, config.data, agent, config.seed, "round1")
        shared = base_samples(policy, split.train, agent, config.seed, 2, cache, "round 1 samples", shots)
    with phase(f"moloch round {k}/{config.rounds}: {len(split.train)} contests"):
        started = time.monotonic()
        contests = play_round(policy, voters["train_personas"], split.train, sampling_params(agent), seed,
                              log=folder / "contests.jsonl", batch_size=agent.batch_size, thinking=agent.thinking,
                              prefill=agent.prefill, completions=shared, examples=shots,
                              progress=lambda done, total: say(f"round {k}: {done}/{total} contests, "
                                                               f"{eta(done, total, started)}"))
    tag = f"</{TAGS[config.data.arena]}>"
    stats = round_stats(split.train, contests, closing=tag)  # cut winners counted even where trained on
    closing = None if config.train_cut_winners else tag
    examples = (rft_examples(contests, seed, closing=closing) if config.method == "rft"
                else tfb_examples(contests, {a.anchor_id: a.source_text() for a in split.train}, seed,
                                  closing=closing))
    if not examples:
        raise UserError(f"round {k} has no winner to train on ({stats['ties']} ties, {stats['missing_message']} "
                        f"contests without a message, {stats['cut_winners']} winners cut before their closing tag): "
                        "raise agent.max_tokens or check the agent's prompt")
    adapter = folder / "adapter"
    if adapter.exists():
        _restore(policy, adapter, config)
        losses = json.loads((folder / "train_losses.json").read_text())
    else:
        schedule = config.sft.model_copy(update={"seed": seed})
        with phase(f"moloch round {k}: fine-tuning on {len(examples)} {config.method} examples"):
            losses = sft.train(schedule, policy, examples, run=run).train_losses
        atomic_write_json(folder / "train_losses.json", losses)  # before the adapter: an adapter implies its losses
        _save_adapter(policy, adapter)
    with phase(f"moloch round {k}: tuned vs base on {len(split.test)} test anchors"):
        evaluation = evaluate_round(policy, split.test, base_test, voters, agent, config.seed, judge,
                                    f"round {k}", examples=shots)
    result = {"round": k, "train": stats, "train_examples": len(examples), "train_losses": losses, **evaluation}
    atomic_write_json(folder / "result.json", result)
    run.log({"kind": "round", "round": k, **{key: value for key, value in evaluation.items()
                                                if key not in ("examples", "messages") and not key.startswith("shares")}},
            step=k)
    return result


def _load_judge(spec: str) -> Any:
    from reasonlab.llm import load_llm

    return load_llm(spec)


def simulate(config: SimulateConfig, agent: Any = None, audience_llm: Any = None, judge: Any = None) -> dict[str, Any]:
    """One round of the base agent on the train anchors: what the audience rewards (probes on winners and
    losers), ties and missing messages, and the audience's agreement with itself under swapped orders."""
    from reasonlab.llm import load_llm
    from reasonlab.systems.moloch.audience import position_bias

    split = build_anchors(config.data)
    with phase(f"moloch: loading {config.llm}"):
        agent = set_decoding(agent if agent is not None else load_llm(config.llm), config.agent)
        audience = build_audience(config.audience, llm=audience_llm)
        judge = judge if judge is not None or config.judge is None else _load_judge(config.judge)
    log = Path(config.out) / "contests.jsonl" if config.out else None
    started = time.monotonic()
    contests = play_round(agent, audience, split.train, sampling_params(config.agent), config.seed, log=log,
                          batch_size=config.agent.batch_size, thinking=config.agent.thinking,
                          prefill=config.agent.prefill, examples=prompt_examples(config.data, config.agent),
                          progress=lambda done, total: say(f"simulate: {done}/{total} contests, "
                                                           f"{eta(done, total, started)}"))
    report = round_stats(split.train, contests, config.probes)
    pairs = [(a, c.messages) for a, c in zip(split.train, contests, strict=True) if None not in c.messages]
    if pairs:
        bias = position_bias(audience, [a for a, _ in pairs], [m for _, m in pairs], random.Random(config.seed))
        report["position_bias"] = bias.as_dict()
    if judge is not None:
        decided = [c for c in contests if c.winner is not None]
        by_id = {a.anchor_id: a for a in split.train}
        report["judge_winners"] = _message_stats([by_id[c.anchor_id] for c in decided],
                                                 [c.messages[c.winner] for c in decided], judge, config.probes)
    if config.out:
        atomic_write_json(Path(config.out) / "report.json", report)
    return report


def evaluate_run(config: EvalConfig, policy: Any = None, audience_llm: Any = None, judge: Any = None) -> dict[str, Any]:
    """Every saved round of a trained run against the base agent again, with the run's audience or another
    (e.g. an LLM audience for a run trained on the market), on the run's test anchors or those of
    `config.test_file`; written to RUN/eval-AUDIENCE.json (RUN/eval-AUDIENCE-FILESTEM.json with a test file)."""
    from reasonlab.config import resolve_config

    run = Run.open(config.run)
    trained = resolve_config(TrainConfig, run.config(), None, ())
    audience_config = config.audience or trained.audience
    data = trained.data if config.test_file is None else trained.data.model_copy(update={"test_file": config.test_file})
    split = build_anchors(data)
    rounds = sorted(int(p.parent.name.removeprefix("round")) for p in run.dir.glob("round*/adapter"))
    if not rounds:
        raise UserError(f"{run.dir} has no saved round (round*/adapter): train it first, or pass --resume to finish it")
    with phase(f"moloch: loading {trained.llm}"):
        policy = set_decoding(policy if policy is not None else load_agent(trained.llm), trained.agent)
        audience = build_audience(audience_config, llm=audience_llm)
        voters = {"train_personas": audience}
        if audience_config.held_out:
            voters["held_out"] = build_audience(audience_config, held_out=True, llm=getattr(audience, "llm", None))
        judge = judge if judge is not None or config.judge is None else _load_judge(config.judge)
    shots = prompt_examples(trained.data, trained.agent)
    # the base agent's samples of another test set are cached under its anchors' contents, not its path (a copied
    # or moved experiment keeps them)
    label = "test" if config.test_file is None else f"test-{_anchors_digest(split.test)}"
    key_data = data if config.test_file is None else data.model_copy(update={"test_file": None})
    base_test = base_samples(policy, split.test, trained.agent, trained.seed, 1,
                             _samples_path(Path(trained.out), trained.llm, key_data, trained.agent, trained.seed,
                                           label), "test", shots)
    suffix = "" if config.test_file is None else f"-{Path(config.test_file).stem}"
    written = run.dir / f"eval-{audience_config.kind}{suffix}.json"
    scored_with = _scoring(trained, audience_config, config.judge)
    earlier: dict[int, tuple[str, dict[str, Any]]] = {}
    if judge is None or config.judge is not None:  # a judge object passed in has no name to check a report against
        base_messages = [message_of(a, base_test[a.anchor_id][0], trained.agent.prefill) for a in split.test]
        names = list(config.probes) if config.probes is not None else list(probes_for(data.arena))
        probe_keys = set(names) | ({f"judge:{name}" for name in names} if judge is not None else set())
        earlier = _scored_rounds(written, split.test, base_messages, scored_with, probe_keys)
    results: list[dict[str, Any]] = []
    for k in rounds:
        adapter = run.dir / f"round{k}" / "adapter"
        digest = _adapter_digest(adapter)
        if k in earlier and earlier[k][0] == digest:
            say(f"moloch eval: round {k} reused from {written.name} (the same adapter, agent, anchors, base messages, "
                "audience and probes)")
            results.append(earlier[k][1])
            continue
        _restore(policy, adapter, trained)
        with phase(f"moloch eval: round {k} vs base on {len(split.test)} test anchors"):
            results.append({"round": k, "adapter_digest": digest,
                            **evaluate_round(policy, split.test, base_test, voters, trained.agent, trained.seed,
                                             judge, f"round {k}", config.probes, shots)})
        later = [earlier[j][1] for j in rounds if j > k and j in earlier]  # still reusable: kept, should this crash
        _write_eval_report(written, run.dir, scored_with, config, len(split.test), results + later)
    return _write_eval_report(written, run.dir, scored_with, config, len(split.test), results)


def _scoring(trained: TrainConfig, audience: AudienceConfig, judge: str | None) -> dict[str, Any]:
    """What a round's scores depend on besides its adapter and the anchors: the agent that writes (model, decoding,
    LoRA shape, seed), who votes and who judges."""
    return {"llm": trained.llm, "agent": trained.agent.model_dump(mode="json"),
            "lora": trained.sft.lora.model_dump(mode="json"), "seed": trained.seed,
            "audience": audience.model_dump(mode="json"), "judge": judge}


def _write_eval_report(path: Path, run_dir: Path, scored_with: dict[str, Any], config: EvalConfig, test_anchors: int,
                       results: list[dict[str, Any]]) -> dict[str, Any]:
    report = {"run": str(run_dir), "seed": scored_with["seed"], "audience": scored_with["audience"],
              "judge": config.judge, "scored_with": scored_with, "test_file": config.test_file,
              "test_anchors": test_anchors, "rounds": results}
    atomic_write_json(path, report)
    return report


def _adapter_digest(folder: Path) -> str | None:
    """A digest of a saved adapter's weights (None when the folder holds none)."""
    weights = folder / "adapter_model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else None


def _scored_with_of_run(report: dict[str, Any], folder: Path | None) -> dict[str, Any] | None:
    """For a report written before `scored_with` was recorded: that of the run it names (`folder`), with the
    report's audience and judge (None when the run folder is gone or unreadable)."""
    from reasonlab.config import resolve_config

    if folder is None or not (folder / "config.yaml").is_file():
        return None
    try:
        trained = resolve_config(TrainConfig, Run.open(folder).config(), None, ())
        return _scoring(trained, AudienceConfig.model_validate(report.get("audience")), report.get("judge"))
    except (UserError, ValueError, OSError):
        return None


def _scored_rounds(path: Path, test: Sequence[Anchor], base_messages: list[str | None], scored_with: dict[str, Any],
                   probe_keys: set[str]) -> dict[int, tuple[str, dict[str, Any]]]:
    """The rounds of an earlier report at `path` that can stand for a new evaluation: scored with the same agent,
    audience, judge and probes, on the same anchors against the same base messages; each with the digest of the
    adapter it scored. A report written before these were recorded (or copied from another run) is checked against
    the run folder it names. Unreadable or different reports give nothing."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(report, dict):
        return {}
    named_run = Path(str(report["run"])) if report.get("run") else None
    recorded = report.get("scored_with") or _scored_with_of_run(report, named_run)
    if recorded is None or json.loads(json.dumps(recorded)) != scored_with:
        return {}
    expected = [{"anchor_id": a.anchor_id, "base": m} for a, m in zip(test, base_messages, strict=True)]
    scored: dict[int, tuple[str, dict[str, Any]]] = {}
    for result in report.get("rounds", []):
        try:
            same_base = [{"anchor_id": m["anchor_id"], "base": m["base"]} for m in result["messages"]] == expected
            probes = {key for key in result["tuned"] if key not in {"messages", "missing"}
                      and not key.startswith("mean_")}
            k = int(result["round"])
        except (KeyError, TypeError, ValueError):
            continue
        if not same_base or probes != probe_keys:
            continue
        digest = result.get("adapter_digest") or (
            _adapter_digest(named_run / f"round{k}" / "adapter") if named_run is not None else None)
        if digest is not None:
            scored[k] = (digest, {**result, "adapter_digest": digest})
    return scored
