"""tinylm: generation vs recomputed logprobs, batching, seeds, stop strings, attention paths, save/load."""

from __future__ import annotations

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams, TrainablePolicy
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, TinyTransformer, Tokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def policy() -> TinyLM:
    tokenizer = Tokenizer.from_texts(["0123456789+=;ab"])
    return TinyLM.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=2, d_model=32, n_head=4), tokenizer, seed=0
    )


def test_tokenizer_round_trip_and_specials():
    chars = Tokenizer.from_texts(["12+7=19"])
    assert chars.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert chars.decode(chars.encode("7+12=19")) == "7+12=19"
    assert chars.encode("?") == [chars.unk_id]
    words = Tokenizer.from_texts(["x1 = 5 ; ans = 7"], level="word")
    assert words.decode(words.encode("ans = 5")) == "ans = 5"
    assert len(words) == 4 + 6
    assert Tokenizer.from_dict(words.to_dict()).tokens == words.tokens
    with pytest.raises(UserError, match="level"):
        Tokenizer(["a"], level="byte")  # type: ignore[arg-type]


def test_is_a_trainable_policy(policy):
    assert isinstance(policy, TrainablePolicy)
    assert policy.eos_token_id == 2 and policy.pad_token_id == 0
    assert policy.context_length == 128


def test_generation_logprobs_equal_recomputed_logprobs(policy):
    prompts = ["12+7=", "3+4=", "1", "99+99+99="]  # different lengths: left padding, per-row positions
    for temperature in (1.0, 0.7, 0.0):
        params = SamplingParams(temperature=temperature, max_tokens=9, n=3, seed=5)
        generations = policy.generate(prompts, params)
        rows = [(policy.tokenize(p), g) for p, group in zip(prompts, generations, strict=True) for g in group]
        recomputed = policy.logprobs([p for p, _ in rows], [g.token_ids for _, g in rows], temperature)
        for (_, g), values in zip(rows, recomputed, strict=True):
            assert len(g.token_ids) == len(g.logprobs) == g.completion_tokens
            assert torch.allclose(values, torch.tensor(g.logprobs), atol=1e-5)
    # rows finish at different steps (EOS or length), so the batch really shrinks on the way
    reasons = {
        g.finish_reason
        for group in policy.generate(prompts, SamplingParams(max_tokens=9, n=8, seed=1))
        for g in group
    }
    assert reasons == {"eos", "length"}


def test_logprobs_are_differentiable(policy):
    rows = policy.logprobs([[4, 5, 6], [7]], [[8, 9], [10, 11, 12]])
    assert [r.shape[0] for r in rows] == [2, 3]
    (rows[0].sum() + rows[1].sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.module.parameters())
    policy.module.zero_grad(set_to_none=True)


def test_seeded_generation_is_deterministic_and_batching_keeps_greedy_outputs(policy):
    params = SamplingParams(temperature=1.0, max_tokens=8, n=4, seed=123)
    first = [[g.token_ids for g in group] for group in policy.generate(["1+2=", "5="], params)]
    again = [[g.token_ids for g in group] for group in policy.generate(["1+2=", "5="], params)]
    assert first == again
    other = [
        [g.token_ids for g in group]
        for group in policy.generate(["1+2=", "5="], params.model_copy(update={"seed": 124}))
    ]
    assert other != first
    greedy = SamplingParams(temperature=0.0, max_tokens=8)
    batched = [group[0].token_ids for group in policy.generate(["1+2=", "5=", "33+44="], greedy)]
    alone = [policy.complete(p, greedy).token_ids for p in ["1+2=", "5=", "33+44="]]
    assert batched == alone


def test_stop_strings_and_eos(policy):
    calls, completion_tokens = policy.usage.calls, policy.usage.completion_tokens
    # find a greedy continuation, then stop on a piece of it
    greedy = policy.complete("1+2=", SamplingParams(temperature=0.0, max_tokens=6))
    text = greedy.text
    assert len(text) >= 2, "the fixture model should produce at least two characters"
    stop = text[1]
    generation = policy.complete("1+2=", SamplingParams(temperature=0.0, max_tokens=6, stop=[stop]))
    assert generation.finish_reason == "stop"
    assert generation.text == text[: text.index(stop)]
    # token ids keep the tokens up to the stop string (they were sampled and are trained on)
    assert policy.detokenize(generation.token_ids).endswith(stop)
    # usage counts both calls and every sampled token
    assert policy.usage.calls == calls + 2
    assert policy.usage.completion_tokens == completion_tokens + len(greedy.token_ids) + len(generation.token_ids)


def test_top_p_keeps_the_top_token_only_at_tiny_p(policy):
    greedy = policy.complete("7+", SamplingParams(temperature=0.0, max_tokens=5)).token_ids
    nucleus = policy.complete(
        "7+", SamplingParams(temperature=1.0, top_p=1e-6, max_tokens=5, seed=3)
    ).token_ids
    assert nucleus == greedy


def test_sdpa_matches_plain_attention():
    torch.manual_seed(42)
    config = TinyLMConfig(vocab_size=23, n_layer=2, d_model=48, n_head=3)
    model = TinyTransformer(config)
    idx = torch.randint(4, 23, (3, 63))
    lengths = torch.tensor([63, 17, 40])
    fast = model.forward_padded(idx, lengths)
    for block in model.blocks:
        block.attn.use_sdpa = False
    plain = model.forward_padded(idx, lengths)
    for row, n in enumerate(lengths.tolist()):
        assert torch.allclose(fast[row, :n], plain[row, :n], atol=1e-5)


def test_nope_has_no_position_signal_and_keeps_cached_generation_exact(tmp_path):
    """position_encoding="none": logits ignore position ids; the KV-cache path still equals recomputation."""
    tokenizer = Tokenizer.from_texts(["0123456789+=;ab"])
    config = TinyLMConfig(vocab_size=len(tokenizer), n_layer=2, d_model=32, n_head=4, position_encoding="none")
    nope = TinyLM.create(config, tokenizer, seed=0)
    idx = torch.randint(4, len(tokenizer), (1, 12))
    mask = torch.ones(12, 12, dtype=torch.bool).tril()[None, None]
    at_zero = nope.module(idx, torch.arange(12)[None], mask)
    shifted = nope.module(idx, torch.arange(12)[None] + 50, mask)
    assert torch.equal(at_zero, shifted)
    rope = TinyTransformer(config.model_copy(update={"position_encoding": "rope"}))
    rope.load_state_dict(nope.module.state_dict())
    assert not torch.allclose(rope(idx, torch.arange(12)[None], mask), at_zero)
    params = SamplingParams(temperature=1.0, max_tokens=7, n=2, seed=3)
    prompts = ["12+7=", "3+4=;ab"]
    rows = [(nope.tokenize(p), g) for p, group in zip(prompts, nope.generate(prompts, params), strict=True)
            for g in group]
    recomputed = nope.logprobs([p for p, _ in rows], [g.token_ids for _, g in rows], 1.0)
    for (_, g), values in zip(rows, recomputed, strict=True):
        assert torch.allclose(values, torch.tensor(g.logprobs), atol=1e-5)
    nope.save(str(tmp_path / "nope"))
    assert TinyLM.load(tmp_path / "nope").module.config.position_encoding == "none"


def test_save_load_round_trip(policy, tmp_path):
    policy.save(str(tmp_path / "tiny"))
    loaded = TinyLM.load(tmp_path / "tiny")
    params = SamplingParams(temperature=0.0, max_tokens=6)
    assert loaded.complete("12+", params).token_ids == policy.complete("12+", params).token_ids
    assert loaded.tokenizer.tokens == policy.tokenizer.tokens
    with pytest.raises(UserError, match="not a tinylm checkpoint"):
        TinyLM.load(tmp_path / "missing")


def test_reference_is_a_frozen_copy(policy):
    reference = policy.reference()
    assert all(not p.requires_grad for p in reference.module.parameters())
    assert reference.module is not policy.module
    a = reference.logprobs([[4, 5]], [[6, 7]])[0]
    b = policy.logprobs([[4, 5]], [[6, 7]])[0]
    assert torch.allclose(a, b.detach())


def test_user_errors(policy):
    with pytest.raises(UserError, match="constrained"):
        policy.generate(["1"], SamplingParams(regex="[0-9]+"))
    with pytest.raises(UserError, match="vocab_size"):
        TinyLM.create(TinyLMConfig(vocab_size=4), Tokenizer.from_texts(["abc"]))
    with pytest.raises(UserError, match="d_model"):
        TinyTransformer(TinyLMConfig(vocab_size=8, d_model=30, n_head=4))
