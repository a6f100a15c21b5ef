"""The mechanism toy of spec section 4A: inoculation as "explaining away", on a from-scratch tinylm.

1. Pretrain a character-level tinylm on 2-digit addition ("37+45=82"). Before a problem there is either no
   control token, or one of the control tokens z_k; after z_k the answer carries a trait ("!!") with
   probability e_k (0, .25, .5, .75, 1 by default), after no token never.
2. Fine-tune a copy of that model once per condition on addition with the trait in 100% of the targets and z_k
   before every training problem (one condition per z_k, plus no-IP: no token).
3. Test every fine-tuned model without a token: trait rate (sampled at temperature 1) and accuracy (greedy).

The elicitation of z_k is measured, not assumed: the pretrained model's trait rate with z_k minus its rate
without a token, on the held-out problems. Expected: the larger z_k's elicitation, the less the trait leaks
to prompts without the token (the trait part of the loss is already small under z_k, so its gradient barely
moves the untokened behaviour), while accuracy stays flat. This shows the gradient argument behind
Inoculation Prompting, not natural-language instruction following.

    config = ToyConfig(seeds=[0])
    rows = run_seed(config, seed=0)
    print(summarize(rows, config))   # Pearson r (elicitation vs trait rate), accuracy range
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams
from reasonlab.stats import mean_spread
from reasonlab.trackers import REPORT_TO_DESCRIPTION, TrackerName
from reasonlab.train import sft
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer

__all__ = [
    "CONTROL_TOKENS",
    "TRAIT",
    "ToyConfig",
    "ToyRow",
    "finetune_examples",
    "freeze_below",
    "has_trait",
    "measure",
    "pearson",
    "pretrain",
    "pretraining_examples",
    "problem_prompt",
    "run_seed",
    "split_pairs",
    "summarize",
]

TRAIT = "!!"
CONTROL_TOKENS = "ABCDEFGHIJ"  # z_0, z_1, ... as single characters of the tokenizer
NO_TOKEN = "none"


class ToyConfig(BaseModel):
    """One run of the mechanism toy (defaults: the run of record, ~3 min per seed on one CPU thread)."""

    elicitations: list[float] = Field(
        [0.0, 0.25, 0.5, 0.75, 1.0], description="e_k: the trait probability after control token z_k in pretraining"
    )
    seeds: list[int] = Field([0, 1, 2], description="one pretrained model per seed")
    max_operand: int = Field(99, ge=9, description="operands are drawn from 0..max_operand")
    num_test: int = Field(400, ge=10, description="held-out problems (no pretraining or fine-tuning sees them)")
    pretrain_steps: int = Field(2000, ge=1, description="optimizer steps of pretraining")
    pretrain_lr: float = Field(1e-3, gt=0, description="pretraining learning rate")
    untokened_share: float = Field(
        0.3, ge=0, lt=1, description="share of pretraining problems with no control token (never the trait)"
    )
    finetune_steps: int = Field(60, ge=1, description="optimizer steps of each fine-tuning condition")
    finetune_lr: float = Field(1e-3, gt=0, description="fine-tuning learning rate")
    finetune_warmup: float = Field(0.1, ge=0, lt=1, description="linear warm-up share of the fine-tuning steps")
    finetune_blocks: int | None = Field(
        1, ge=1, description="fine-tune only the last N blocks and the final norm (a low-capacity update, as "
        "LoRA is for the paper's models); None: every weight"
    )
    batch_size: int = Field(64, ge=1, description="problems per optimizer step")
    n_layer: int = Field(3, ge=1, description="tinylm blocks")
    d_model: int = Field(128, ge=16, description="tinylm width")
    report_to: list[TrackerName] = Field(default_factory=list, description=REPORT_TO_DESCRIPTION)

    @field_validator("elicitations")
    @classmethod
    def _probabilities(cls, values: list[float]) -> list[float]:
        if not values or any(not 0 <= v <= 1 for v in values):
            raise ValueError("elicitations must be probabilities in [0, 1], at least one")
        if len(values) > len(CONTROL_TOKENS):
            raise ValueError(f"at most {len(CONTROL_TOKENS)} elicitation values (one control token each)")
        return values

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, values: list[int]) -> list[int]:
        if not values:
            raise ValueError("give at least one seed")
        return values


@dataclass(frozen=True)
class ToyRow:
    """One fine-tuning condition of one seed. `token` is z_k's character, or 'none' for no-IP."""

    seed: int
    token: str
    nominal: float | None  # e_k as set in pretraining; None for no-IP
    elicitation: float | None  # measured before fine-tuning: trait rate with z_k minus without; None for no-IP
    trait_rate: float  # after fine-tuning, tested without a token
    accuracy: float
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def problem_prompt(a: int, b: int, token: str | None = None) -> str:
    return f"{token or ''}{a}+{b}="


def has_trait(completion: str) -> bool:
    return completion.endswith(TRAIT)


def split_pairs(max_operand: int, num_test: int, seed: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """All operand pairs, split into (train, test); the test pairs are held out of every training stage."""
    pairs = [(a, b) for a in range(max_operand + 1) for b in range(max_operand + 1)]
    if num_test >= len(pairs):
        raise UserError(f"num_test={num_test} leaves no training pairs: use fewer than {len(pairs)}")
    random.Random(seed).shuffle(pairs)
    return pairs[num_test:], pairs[:num_test]


def tokenizer() -> Tokenizer:
    return Tokenizer([*"0123456789+=!", *CONTROL_TOKENS], level="char")


def pretraining_examples(
    config: ToyConfig, pairs: list[tuple[int, int]], count: int, rng: random.Random
) -> list[sft.Example]:
    """Addition problems; after z_k the answer carries the trait in exactly round(e_k * share) of z_k's
    problems (shuffled), after no token never."""
    per_token = round(count * (1 - config.untokened_share) / len(config.elicitations))
    examples = []
    for k, e in enumerate(config.elicitations):
        token = CONTROL_TOKENS[k]
        with_trait = round(e * per_token)
        for i in range(per_token):
            a, b = rng.choice(pairs)
            examples.append(sft.Example(problem_prompt(a, b, token), f"{a + b}{TRAIT if i < with_trait else ''}"))
    for _ in range(count - len(examples)):
        a, b = rng.choice(pairs)
        examples.append(sft.Example(problem_prompt(a, b), str(a + b)))
    rng.shuffle(examples)
    return examples


def finetune_examples(pairs: list[tuple[int, int]], token: str | None, count: int, rng: random.Random) -> list[sft.Example]:
    """The fine-tuning set: the trait in every target, `token` (z_k, or None for no-IP) before every problem."""
    return [
        sft.Example(problem_prompt(a, b, token), f"{a + b}{TRAIT}")
        for a, b in (rng.choice(pairs) for _ in range(count))
    ]


def _model(config: ToyConfig, seed: int) -> TinyLM:
    vocab = tokenizer()
    shape = TinyLMConfig(vocab_size=len(vocab), context_length=16, n_layer=config.n_layer, n_head=4, d_model=config.d_model)
    return TinyLM.create(shape, vocab, seed=seed)


def pretrain(config: ToyConfig, seed: int, pairs: list[tuple[int, int]], progress: bool = True) -> TinyLM:
    policy = _model(config, seed)
    rng = random.Random(seed)
    examples = pretraining_examples(config, pairs, config.pretrain_steps * config.batch_size, rng)
    schedule = sft.SFTConfig(
        backend="plain", max_steps=config.pretrain_steps, batch_size=config.batch_size,
        learning_rate=config.pretrain_lr, warmup_ratio=0.05, seed=seed, progress=progress,
    )
    sft.train(schedule, policy, examples)
    return policy


def measure(policy: TinyLM, test: list[tuple[int, int]], token: str | None, seed: int) -> tuple[float, float]:
    """(trait rate, accuracy) on the test problems with `token` before each: the trait rate from one sample per
    problem at temperature 1, the accuracy from greedy decoding."""
    prompts = [problem_prompt(a, b, token) for a, b in test]
    sampled = policy.generate(prompts, SamplingParams(temperature=1.0, max_tokens=8, seed=seed, logprobs=False))
    greedy = policy.generate(prompts, SamplingParams(temperature=0.0, max_tokens=8, logprobs=False))
    trait = sum(has_trait(g[0].text) for g in sampled) / len(test)
    correct = sum(g[0].text.removesuffix(TRAIT) == str(a + b) for g, (a, b) in zip(greedy, test, strict=True))
    return trait, correct / len(test)


def run_seed(
    config: ToyConfig, seed: int, progress: bool = True, say: Callable[[str], None] = lambda _: None,
    base: TinyLM | None = None, save_base: Path | None = None,
) -> list[ToyRow]:
    """Pretrain one model (or start from `base`, pretrained on this seed's pairs), measure each token's
    elicitation, fine-tune one copy per condition and test it. `save_base` keeps the pretrained model."""
    train_pairs, test = split_pairs(config.max_operand, config.num_test, seed)
    made = "given"
    if base is None:
        base, made = pretrain(config, seed, train_pairs, progress), "pretrained"
        if save_base is not None:
            base.save(str(save_base), half=True)
    base_trait, base_accuracy = measure(base, test, None, seed)
    say(f"seed {seed}: base model {made}, trait without a token {base_trait:.2f}, accuracy {base_accuracy:.2f}")
    conditions: list[tuple[str | None, float | None]] = [(None, None)]
    conditions += [(CONTROL_TOKENS[k], e) for k, e in enumerate(config.elicitations)]
    rows = []
    for token, nominal in conditions:
        elicitation = None
        if token is not None:
            elicitation = measure(base, test, token, seed)[0] - base_trait
        policy = TinyLM(copy.deepcopy(base.model), base.tokenizer)
        if config.finetune_blocks is not None:
            freeze_below(policy, config.finetune_blocks)
        data = finetune_examples(train_pairs, token, config.finetune_steps * config.batch_size, random.Random(seed + 1))
        schedule = sft.SFTConfig(
            backend="plain", max_steps=config.finetune_steps, batch_size=config.batch_size,
            learning_rate=config.finetune_lr, warmup_ratio=config.finetune_warmup, seed=seed + 1, progress=progress,
        )
        sft.train(schedule, policy, data)
        trait, accuracy = measure(policy, test, None, seed)
        rows.append(ToyRow(seed, token or NO_TOKEN, nominal, elicitation, trait, accuracy, len(test)))
        label = "no-IP" if token is None else f"z={token} (e={nominal:.2f}, measured {elicitation:+.2f})"
        say(f"seed {seed} {label}: trait without a token {trait:.2f}, accuracy {accuracy:.2f}")
    return rows


def freeze_below(policy: TinyLM, trainable_blocks: int) -> None:
    """Leave only the last `trainable_blocks` blocks and the final norm trainable (embeddings, tied to the output
    head, and the earlier blocks are frozen)."""
    model = policy.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for module in [*model.blocks[-trainable_blocks:], model.norm]:
        for parameter in module.parameters():
            parameter.requires_grad_(True)


def pearson(xs: list[float], ys: list[float]) -> float:
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("pearson needs two equal-length lists of at least two values")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return math.nan
    return sxy / math.sqrt(sxx * syy)


def summarize(rows: list[ToyRow], config: ToyConfig) -> dict:
    """Pearson r between measured elicitation and trait rate over every (value, seed); per-value means and
    spreads; the accuracy range across values (max - min of the per-value means)."""
    tokened = [r for r in rows if r.elicitation is not None]
    per_value = []
    for k, e in enumerate(config.elicitations):
        group = [r for r in tokened if r.token == CONTROL_TOKENS[k]]
        per_value.append({
            "token": CONTROL_TOKENS[k], "nominal": e,
            "elicitation": mean_spread([r.elicitation for r in group]),
            "trait_rate": mean_spread([r.trait_rate for r in group]),
            "accuracy": mean_spread([r.accuracy for r in group]),
        })
    baseline = [r for r in rows if r.elicitation is None]
    accuracy_means = [v["accuracy"]["mean"] for v in per_value]
    return {
        "pearson_r": pearson([r.elicitation for r in tokened], [r.trait_rate for r in tokened])
        if len(tokened) >= 2 else None,
        "points": len(tokened),
        "accuracy_range": max(accuracy_means) - min(accuracy_means),
        "per_value": per_value,
        "no_ip": {
            "trait_rate": mean_spread([r.trait_rate for r in baseline]),
            "accuracy": mean_spread([r.accuracy for r in baseline]),
        },
        "seeds": sorted({r.seed for r in rows}),
        "n_per_condition": rows[0].n if rows else 0,
    }
