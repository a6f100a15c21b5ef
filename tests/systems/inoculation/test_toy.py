"""The spec 4A mechanism toy: its data (the trait after z_k in exactly round(e_k * share) problems, never without
a token), the held-out split, Pearson r, the summary of hand-built rows, config errors, and one small seeded
end-to-end run where a train-time token that already elicits the trait stops it leaking to untokened prompts."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from pydantic import ValidationError

from reasonlab.errors import UserError
from reasonlab.systems.inoculation.toy import (
    CONTROL_TOKENS,
    TRAIT,
    ToyConfig,
    ToyRow,
    finetune_examples,
    has_trait,
    pearson,
    problem_prompt,
    run_seed,
    split_pairs,
    summarize,
)


def parse(prompt: str) -> tuple[str | None, int, int]:
    """(token or None, a, b) of a toy prompt such as 'B12+7='."""
    token = prompt[0] if prompt[0] in CONTROL_TOKENS else None
    a, b = prompt.removeprefix(token or "").removesuffix("=").split("+")
    return token, int(a), int(b)


def test_problem_prompt_and_has_trait():
    assert problem_prompt(12, 7) == "12+7="
    assert problem_prompt(12, 7, "C") == "C12+7="
    assert has_trait(f"19{TRAIT}") and has_trait(TRAIT)
    assert not has_trait("19") and not has_trait(f"{TRAIT}19") and not has_trait("19!")


def test_pretraining_examples_put_the_trait_after_tokens_only_at_its_rate():
    from reasonlab.systems.inoculation.toy import pretraining_examples

    config = ToyConfig(elicitations=[0.0, 0.25, 1.0], untokened_share=0.3)
    pairs = [(a, b) for a in range(5) for b in range(5)]
    examples = pretraining_examples(config, pairs, 200, random.Random(0))
    per_token = round(200 * 0.7 / 3)  # 47
    assert len(examples) == 200
    with_trait: dict[str | None, int] = {}
    seen: dict[str | None, int] = {}
    for example in examples:
        token, a, b = parse(example.prompt)
        assert (a, b) in pairs
        assert example.completion.removesuffix(TRAIT) == str(a + b)
        seen[token] = seen.get(token, 0) + 1
        with_trait[token] = with_trait.get(token, 0) + has_trait(example.completion)
    assert seen == {"A": per_token, "B": per_token, "C": per_token, None: 200 - 3 * per_token}
    assert with_trait == {"A": 0, "B": round(0.25 * per_token), "C": per_token, None: 0}
    # shuffled: the tokens are interleaved, not in blocks
    assert {parse(ex.prompt)[0] for ex in examples[:40]} == {"A", "B", "C", None}


def test_finetune_examples_always_carry_the_trait_and_the_given_token():
    pairs = [(3, 4), (10, 2)]
    for token in ("B", None):
        examples = finetune_examples(pairs, token, 30, random.Random(1))
        assert len(examples) == 30
        for example in examples:
            parsed_token, a, b = parse(example.prompt)
            assert parsed_token == token and (a, b) in pairs
            assert example.completion == f"{a + b}{TRAIT}"


def test_split_pairs_holds_the_test_pairs_out_of_training():
    train, test = split_pairs(max_operand=9, num_test=30, seed=4)
    assert len(test) == 30 and len(train) == 70
    assert not set(train) & set(test)
    assert set(train) | set(test) == {(a, b) for a in range(10) for b in range(10)}
    assert split_pairs(9, 30, 4) == (train, test)  # seeded
    assert split_pairs(9, 30, 5)[1] != test
    with pytest.raises(UserError, match="num_test=100 leaves no training pairs"):
        split_pairs(9, 100, 0)


def test_pearson_known_values():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3])) and math.isnan(pearson([1, 2], [5, 5]))
    with pytest.raises(ValueError, match="equal-length"):
        pearson([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="at least two"):
        pearson([1], [1])


def test_summarize_hand_built_rows():
    config = ToyConfig(elicitations=[0.0, 1.0], seeds=[0, 1])
    rows = [
        ToyRow(0, "none", None, None, trait_rate=0.9, accuracy=0.8, n=50),
        ToyRow(0, "A", 0.0, 0.0, trait_rate=0.8, accuracy=0.7, n=50),
        ToyRow(0, "B", 1.0, 0.9, trait_rate=0.1, accuracy=0.9, n=50),
        ToyRow(1, "none", None, None, trait_rate=1.0, accuracy=0.6, n=50),
        ToyRow(1, "A", 0.0, 0.1, trait_rate=0.6, accuracy=0.5, n=50),
        ToyRow(1, "B", 1.0, 0.7, trait_rate=0.3, accuracy=0.7, n=50),
    ]
    summary = summarize(rows, config)
    assert summary["pearson_r"] == pytest.approx(
        statistics.correlation([0.0, 0.9, 0.1, 0.7], [0.8, 0.1, 0.6, 0.3])
    )
    assert summary["pearson_r"] < -0.9
    assert summary["points"] == 4 and summary["seeds"] == [0, 1] and summary["n_per_condition"] == 50
    a, b = summary["per_value"]
    assert (a["token"], a["nominal"], b["token"], b["nominal"]) == ("A", 0.0, "B", 1.0)
    assert a["elicitation"]["mean"] == pytest.approx(0.05)
    assert a["elicitation"]["sd"] == pytest.approx(statistics.stdev([0.0, 0.1]))
    assert a["trait_rate"]["mean"] == pytest.approx(0.7) and b["trait_rate"]["mean"] == pytest.approx(0.2)
    assert b["trait_rate"]["sd"] == pytest.approx(statistics.stdev([0.1, 0.3]))
    assert (b["trait_rate"]["min"], b["trait_rate"]["max"], b["trait_rate"]["n"]) == (0.1, 0.3, 2)
    assert a["accuracy"]["mean"] == pytest.approx(0.6) and b["accuracy"]["mean"] == pytest.approx(0.8)
    assert summary["accuracy_range"] == pytest.approx(0.2)
    assert summary["no_ip"]["trait_rate"]["mean"] == pytest.approx(0.95)
    assert summary["no_ip"]["accuracy"]["mean"] == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"elicitations": [0.5, 1.5]}, "probabilities in \\[0, 1\\]"),
        ({"elicitations": [-0.1]}, "probabilities in \\[0, 1\\]"),
        ({"elicitations": []}, "at least one"),
        (
            {"elicitations": [0.5] * (len(CONTROL_TOKENS) + 1)},
            f"at most {len(CONTROL_TOKENS)} elicitation values",
        ),
        ({"seeds": []}, "at least one seed"),
        ({"untokened_share": 1.0}, "untokened_share"),
    ],
    ids=["above-one", "negative", "empty", "too-many", "no-seeds", "share-one"],
)
def test_config_errors(fields, message):
    with pytest.raises(ValidationError, match=message):
        ToyConfig(**fields)


def test_a_token_that_already_elicits_the_trait_keeps_it_from_leaking(one_torch_thread):
    """The mechanism at a small scale (about 15 s on one thread): three control tokens with e = 0, .5, 1, a
    short pretraining, 100 fine-tuning steps on 100% trait data per condition. Fine-tuned with the e = 1 token,
    the model shows the trait without a token far less than fine-tuned with the e = 0 token or with none.
    Over seeds 0-6 the e = 0 minus e = 1 gap was 0.69-1.00 (0.95 for seed 0)."""
    config = ToyConfig(
        elicitations=[0.0, 0.5, 1.0],
        seeds=[0],
        max_operand=19,
        num_test=60,
        pretrain_steps=600,
        pretrain_lr=3e-3,
        finetune_steps=100,
        finetune_lr=1e-3,
        d_model=64,
        n_layer=2,
        batch_size=32,
    )
    rows = {row.token: row for row in run_seed(config, seed=0, progress=False)}
    assert list(rows) == ["none", "A", "B", "C"] and all(row.n == 60 for row in rows.values())
    # the pretrained model learned the tokens: z_C elicits the trait, z_A does not
    assert rows["A"].elicitation <= 0.1 and rows["C"].elicitation >= 0.8
    assert rows["none"].trait_rate >= 0.9  # no-IP: the trait is learned for every prompt
    assert rows["A"].trait_rate - rows["C"].trait_rate >= 0.5
    assert rows["C"].trait_rate <= 0.15
    summary = summarize(list(rows.values()), config)
    assert summary["pearson_r"] < -0.5
