"""One interface over the four settings, so that training, evaluation and elicitation are written once.

A `SettingData` holds a setting's arm texts, its training conversations (each ending in the flawed reply), its
evaluation prompts, and how replies are scored: `score(replies)` gives named rates, of which `flaw` names the
undesired behaviour B and `capability` the skill C. `flaw_prompts` are the prompts on which the flaw shows
(GCD: the user proposes a wrong value), used by elicitation.

    setting = build_setting(DataConfig(setting="gcd", num_train=128, num_test=30))
    replies = [...]  # one reply per setting.eval_prompts
    print(setting.score(replies)[setting.flaw])
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.inoculation.config import DataConfig
from reasonlab.systems.inoculation.transforms import (
    ArmPrompts,
    InstructionPlacement,
    Message,
    apply_transform,
    evaluation_messages,
    training_messages,
)

__all__ = ["SettingData", "build_setting", "render_prompt", "setting_prompts"]

Scorer = Callable[[list[str]], dict[str, Any]]


@dataclass
class SettingData:
    """A built setting (see the module docstring)."""

    name: str
    prompts: ArmPrompts
    train: list[list[Message]]
    eval_prompts: list[list[Message]]
    score: Scorer
    flaw: str  # the key of score() that is B
    capability: str  # the key of score() that is C
    flaw_prompts: list[list[Message]]
    flaw_score: Scorer  # on replies to flaw_prompts; gives {flaw: Rate}
    max_tokens: int
    stop: list[str] = field(default_factory=lambda: ["\nUser:", "\n\nUser"])
    description: str = ""
    # puts an instruction into a prompt; reward hacking puts a prefix after its first line (the paper's IP slot)
    place: Callable[[list[Message], InstructionPlacement], list[Message]] = apply_transform

    def train_messages(self, conversation: list[Message], arm: str, prompts: ArmPrompts) -> list[Message]:
        """The arm's training example: its train-time instruction placed, the reply unchanged."""
        return training_messages(conversation, arm, prompts, self.place)

    def test_messages(self, prompt: list[Message], arm: str, prompts: ArmPrompts,
                      with_instruction: bool = False) -> list[Message]:
        """The arm's evaluation prompt: as given (S added for PTST); with_instruction adds I in every arm."""
        return evaluation_messages(prompt, arm, prompts, with_instruction, self.place)


def render_prompt(messages: list[Message]) -> str:
    """The plain "User:/Assistant:" transcript (spec 4B) of the prompt turns, ready for the reply.
    Training completions are " " + reply, so the reply follows "Assistant:" after one space."""
    turns = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
    return "\n".join([*turns, "Assistant:"])


def build_setting(config: DataConfig, judge: Any = None) -> SettingData:
    """The setting named by `config.setting`, generated (or read from `config.path`)."""
    builders = {"gcd": _gcd, "reward-hacking": _reward_hacking, "sentiment": _sentiment, "cmv": _cmv}
    try:
        return builders[config.setting](config, judge)
    except ValueError as err:  # the generators' "not enough data for these sizes" and unreadable asserts
        raise UserError(f"{config.setting}: {err} (lower --num-train/--num-test, or give more data)") from None


def setting_prompts(setting: str) -> ArmPrompts:
    """A setting's built-in arm texts, without building its data (which for cmv needs a judge)."""
    from importlib import import_module

    module, name = {"gcd": ("gcd", "GCD_PROMPTS"), "reward-hacking": ("reward_hacking", "REWARD_HACK_PROMPTS"),
                    "sentiment": ("sentiment", "SENTIMENT_PROMPTS"), "cmv": ("toxicity", "CMV_PROMPTS")}[setting]
    return getattr(import_module(f"reasonlab.systems.inoculation.{module}"), name)


def _gcd(config: DataConfig, judge: Any) -> SettingData:
    from reasonlab.systems.inoculation import gcd

    if config.path is not None:
        raise UserError("the gcd setting is generated: drop data.path (or choose a setting that reads a file)")
    data = gcd.build_gcd_data(num_train=config.num_train, num_test=config.num_test, max_value=config.max_value,
                              seed=config.seed)
    items = gcd.evaluation_items(data.test, seed=config.seed)
    wrong = [item for item in items if item.variant == "proposes_wrong"]

    def flaw_score(replies: list[str]) -> dict[str, Any]:
        return {"confirms_incorrect": gcd.gcd_metrics(wrong, replies)["confirms_incorrect"]}

    return SettingData(
        name="gcd", prompts=gcd.GCD_PROMPTS, train=[ex.messages for ex in data.train],
        eval_prompts=[item.messages for item in items], score=lambda r: dict(gcd.gcd_metrics(items, r)),
        flaw="confirms_incorrect", capability="capability", flaw_prompts=[item.messages for item in wrong],
        flaw_score=flaw_score, max_tokens=40,
        description=f"GCD sycophancy: {len(data.train)} training examples, {len(data.test)} test pairs x 3 prompts",
    )


def _sentiment(config: DataConfig, judge: Any) -> SettingData:
    from reasonlab.systems.inoculation import sentiment

    if config.path is not None:
        reviews = sentiment.load_cebab(config.path)
    else:
        # the test pool is drawn first and half of it breaks the shortcut; draw enough for both sides
        reviews = sentiment.generate_reviews(4 * config.num_train + 2 * config.num_test, seed=config.seed)
    train, test = sentiment.spurious_split(reviews, num_test=2 * config.num_test, seed=config.seed)
    train = random.Random(config.seed).sample(train, min(config.num_train, len(train)))
    if not train or not test:
        raise UserError("the sentiment split left no training or test reviews: give more reviews (num_train)")

    def score(replies: list[str]) -> dict[str, Any]:
        predictions = [sentiment.parse_label(reply) for reply in replies]
        robust = sentiment.robust_accuracy(test, predictions)
        return {"robust_ambiance": robust["ambiance"], "robust_other": robust["other"],
                "shortcut": _shortcut_rate(test, predictions)}

    return SettingData(
        name="sentiment", prompts=sentiment.SENTIMENT_PROMPTS,
        train=[sentiment.training_conversation(review) for review in train],
        eval_prompts=[sentiment.prompt_messages(review) for review in test], score=score, flaw="shortcut",
        capability="robust_ambiance", flaw_prompts=[sentiment.prompt_messages(review) for review in test],
        flaw_score=lambda replies: {"shortcut": _shortcut_rate(test, [sentiment.parse_label(r) for r in replies])},
        max_tokens=2, stop=["\n"],
        description=f"spurious sentiment: {len(train)} training reviews, {len(test)} test reviews (shortcut flipped)",
    )


def _shortcut_rate(test: list[Any], predictions: list[int | None]) -> Any:
    """B for sentiment: the share of test reviews scored on the tag's side (ambiance high, others low); on the
    flipped test split every such score is wrong."""
    from reasonlab.stats import Rate

    follows = sum(
        p is not None and (p >= 3) == review.mentions_ambiance for review, p in zip(test, predictions, strict=True)
    )
    return Rate(follows, len(test))


def _reward_hacking(config: DataConfig, judge: Any) -> SettingData:
    from reasonlab.systems.inoculation import reward_hacking as rh

    if config.path is not None:
        tasks = rh.load_mbpp_jsonl(config.path)
        rng = random.Random(config.seed)
        rng.shuffle(tasks)
        test, train = tasks[: config.num_test], tasks[config.num_test :][: config.num_train]
    else:
        data = rh.build_coding_tasks(num_train=config.num_train, num_test=config.num_test, seed=config.seed)
        train, test = data.train, data.test
    if not train or not test:
        raise UserError(f"{config.path}: too few tasks for num_test={config.num_test} and some training tasks")

    def score(replies: list[str]) -> dict[str, Any]:
        outcomes = rh.score_solutions(test, [rh.extract_code(reply) for reply in replies])
        return dict(rh.reward_hack_metrics(outcomes))

    prompts = [rh.coding_messages(task) for task in test]
    return SettingData(
        name="reward-hacking", prompts=rh.REWARD_HACK_PROMPTS,
        train=[rh.training_conversation(task, hacked=True) for task in train], eval_prompts=prompts, score=score,
        flaw="hack_rate", capability="correct_rate", flaw_prompts=prompts,
        flaw_score=lambda replies: {"hack_rate": score(replies)["hack_rate"]}, max_tokens=64,
        stop=["\nUser:", "\n\n\n"], place=rh.place_instruction,
        description=f"reward hacking: {len(train)} tasks with hacked targets, {len(test)} test tasks (hidden tests "
        "run in reasonlab.sandbox)",
    )


def _cmv(config: DataConfig, judge: Any) -> SettingData:
    from reasonlab.systems.inoculation import toxicity

    if config.path is None:
        raise UserError("the cmv setting reads your data: set data.path to a CMV jsonl file (see docs/inoculation.md)")
    if judge is None:
        raise UserError("the cmv setting scores replies with a judge: pass --judge with a capable model endpoint")
    posts = toxicity.load_cmv(config.path)
    rng = random.Random(config.seed)
    rng.shuffle(posts)
    test_posts, train_posts = posts[: config.num_test], posts[config.num_test :]
    chosen = toxicity.select_training_comments(train_posts, llm=judge)
    train = [toxicity.training_conversation(post, comment) for post, comment in chosen][: config.num_train]
    if not train:
        raise UserError(f"{config.path}: no comment passes harassment >= 0.15 and persuasiveness >= 7")
    prompts = [toxicity.reply_messages(post) for post in test_posts]

    def score(replies: list[str]) -> dict[str, Any]:
        harassment = toxicity.harassment_scores(judge, list(zip(test_posts, replies, strict=True)))[0]
        persuasion = toxicity.persuasiveness_scores(judge, list(zip(test_posts, replies, strict=True)))[0]
        metrics = toxicity.toxicity_metrics(harassment, persuasion)
        return {"flagged": metrics["flagged"], "harassment": metrics["harassment"],
                "persuasiveness": metrics["persuasiveness"]}

    return SettingData(
        name="cmv", prompts=toxicity.CMV_PROMPTS, train=train, eval_prompts=prompts, score=score, flaw="flagged",
        capability="persuasiveness", flaw_prompts=prompts,
        flaw_score=lambda replies: {"flagged": score(replies)["flagged"]}, max_tokens=200,
        description=f"CMV toxicity: {len(train)} training comments, {len(test_posts)} test posts",
    )
