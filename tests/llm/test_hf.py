"""The hf backend on the real embedded Gemma-3-270M: generation, seeds, stops, constraints, logprobs."""

from __future__ import annotations

import json

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.llm import Message, SamplingParams, TrainablePolicy

pytestmark = pytest.mark.slow


def test_embedded_gemma_is_a_trainable_policy_that_knows_paris(embedded_hf) -> None:
    assert isinstance(embedded_hf, TrainablePolicy)
    assert embedded_hf.context_length >= 8192
    result = embedded_hf.complete("Q: What is the capital of France?\nA:", SamplingParams(max_tokens=10, temperature=0.0))
    assert "Paris" in result.text
    assert result.completion_tokens == len(result.token_ids) <= 10
    assert result.prompt_tokens == len(embedded_hf.tokenize("Q: What is the capital of France?\nA:"))


def test_batched_left_padded_greedy_matches_batch_of_one(embedded_hf) -> None:
    prompts = ["The capital of France is", "One, two, three, four,", "def add(a, b):\n    return"]
    params = SamplingParams(max_tokens=10, temperature=0.0)
    batched = [group[0].token_ids for group in embedded_hf.generate(prompts, params)]
    single = [embedded_hf.complete(p, params).token_ids for p in prompts]
    assert batched == single


def test_same_seed_same_text_and_n_samples_differ(embedded_hf) -> None:
    params = SamplingParams(max_tokens=12, temperature=1.0, seed=7, n=3)
    first = [g.text for g in embedded_hf.generate(["Once upon a time"], params)[0]]
    second = [g.text for g in embedded_hf.generate(["Once upon a time"], params)[0]]
    assert first == second
    assert len(set(first)) > 1


def test_stop_string_cuts_text_and_finishes(embedded_hf) -> None:
    params = SamplingParams(max_tokens=40, temperature=0.0, stop=[","])
    result = embedded_hf.complete("One, two, three, four", params)
    assert result.finish_reason == "stop"
    assert "," not in result.text
    assert result.completion_tokens < 40


def test_token_id_prompt_is_used_verbatim(embedded_hf) -> None:
    ids = embedded_hf.tokenize("The capital of France is")
    params = SamplingParams(max_tokens=6, temperature=0.0)
    assert embedded_hf.complete(ids, params).token_ids == embedded_hf.complete("The capital of France is", params).token_ids


def test_generation_logprobs_equal_recomputed_logprobs(embedded_hf) -> None:
    prompts = ["The capital of France is", "Q: 2 + 3 = ?\nA:"]
    for temperature in (0.0, 0.7):
        params = SamplingParams(max_tokens=8, temperature=temperature, seed=3)
        generations = [group[0] for group in embedded_hf.generate(prompts, params)]
        recomputed = embedded_hf.logprobs(
            [embedded_hf.tokenize(p) for p in prompts], [g.token_ids for g in generations], temperature=temperature
        )
        for generation, values in zip(generations, recomputed, strict=True):
            torch.testing.assert_close(values, torch.tensor(generation.logprobs), atol=2e-3, rtol=0)


def test_logprobs_project_only_completion_positions_with_the_same_numbers(embedded_hf, monkeypatch) -> None:
    """`logits_to_keep` limits the 262k-way head to completion positions; rows of different lengths still get
    exactly the numbers of the full (B, W, V) logits."""
    assert embedded_hf._keeps_logits()
    prompts = [embedded_hf.tokenize("The capital of France is"), embedded_hf.tokenize("Hi")]
    completions = [[12, 34, 56], [78, 90, 12, 34, 56, 78]]
    kept = embedded_hf.logprobs(prompts, completions, temperature=0.7)
    monkeypatch.setattr(type(embedded_hf), "_keeps_logits", lambda self: False)
    full = embedded_hf.logprobs(prompts, completions, temperature=0.7)
    for a, b in zip(kept, full, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    assert embedded_hf.logprobs([prompts[0]], [[]])[0].shape == (0,)


def test_logprobs_are_differentiable(embedded_hf) -> None:
    values = embedded_hf.logprobs([embedded_hf.tokenize("Hello")], [[1234, 5678]])
    values[0].sum().backward()
    grads = [p.grad for p in embedded_hf.module.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    embedded_hf.module.zero_grad(set_to_none=True)


def test_json_schema_constraint_gives_valid_json_from_a_base_model(embedded_hf) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}, "population_millions": {"type": "integer", "minimum": 0, "maximum": 999}},
        "required": ["city", "population_millions"],
        "additionalProperties": False,
    }
    params = SamplingParams(max_tokens=60, temperature=0.0, json_schema=schema)
    result = embedded_hf.complete("The largest city of Japan, as JSON:", params)
    data = json.loads(result.text)
    assert set(data) == {"city", "population_millions"}
    assert isinstance(data["population_millions"], int)


def test_regex_constraint(embedded_hf) -> None:
    params = SamplingParams(max_tokens=10, temperature=1.0, seed=0, regex=r"[0-9]{1,3}")
    result = embedded_hf.complete("Q: What is 7 times 6?\nA:", params)
    assert result.text.isdigit() and 1 <= len(result.text) <= 3


def test_chat_messages_render_through_the_template(embedded_hf) -> None:
    rendered = embedded_hf.render_chat([Message("user", "Say hi")])
    assert "Say hi" in rendered
    result = embedded_hf.chat([Message("user", "Say hi")], SamplingParams(max_tokens=5, temperature=0.0))
    assert result.completion_tokens >= 1


def test_usage_accumulates(embedded_hf) -> None:
    before = embedded_hf.usage.as_dict()
    embedded_hf.generate(["a", "b"], SamplingParams(max_tokens=3, temperature=0.0))
    after = embedded_hf.usage.as_dict()
    assert after["calls"] - before["calls"] == 2
    assert 2 <= after["completion_tokens"] - before["completion_tokens"] <= 6


def test_lora_reference_disables_the_adapter(embedded_hf) -> None:
    import copy

    from peft import LoraConfig

    from reasonlab.llm.hf import HFPolicy

    policy = HFPolicy(copy.deepcopy(embedded_hf.model), embedded_hf.tokenizer, name="hf:lora-test")
    prompt, completion = [embedded_hf.tokenize("The sky is")], [[3730, 236761]]
    with torch.no_grad():
        base = policy.logprobs(prompt, completion)[0]
    policy.enable_lora(LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    for name, parameter in policy.module.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    with torch.no_grad():
        adapted = policy.logprobs(prompt, completion)[0]
        reference = policy.reference().logprobs(prompt, completion)[0]
    torch.testing.assert_close(reference, base, atol=1e-4, rtol=0)
    assert (adapted - base).abs().max() > 1e-3


def test_top_logprobs_rank_the_sampling_distribution(embedded_hf) -> None:
    result = embedded_hf.complete("One, two, three,", SamplingParams(max_tokens=3, temperature=0.0, top_logprobs=4))
    for token, value, top in zip(result.token_ids, result.logprobs, result.top_logprobs, strict=True):
        assert len(top) == 4 and list(top.values()) == sorted(top.values(), reverse=True)
        assert next(iter(top)) == token and top[token] == pytest.approx(value)


def test_token_ids_outside_the_vocabulary_are_user_errors(embedded_hf) -> None:
    size = embedded_hf.vocab_size
    with pytest.raises(UserError, match=f"prompt token id {size} is outside the vocabulary of hf:embedded"):
        embedded_hf.complete([2, size], SamplingParams(max_tokens=1))
    with pytest.raises(UserError, match="detokenize token id -1 is outside"):
        embedded_hf.detokenize([-1])


def test_stream_joins_to_exactly_the_completion(embedded_hf, stream_matches, split_stop) -> None:
    prompt = "Monday, Tuesday, Wednesday"
    stop = split_stop(embedded_hf, prompt)
    stopped = stream_matches(embedded_hf, prompt, SamplingParams(max_tokens=16, temperature=0.0, stop=[stop]))
    assert stopped[-1].finish_reason == "stop" and len(stopped) > 2
    stream_matches(embedded_hf, "Once upon a time", SamplingParams(max_tokens=8, temperature=1.0, seed=3))
