"""The llamacpp backend over the embedded Gemma GGUF: ids, seeds, stops, grammars, logprobs."""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams, load_llm

pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama():
    return load_llm("llamacpp:embedded", n_ctx=2048)


def test_greedy_answer_and_token_id_prompt(llama) -> None:
    params = SamplingParams(max_tokens=10, temperature=0.0)
    result = llama.complete("Q: What is the capital of France?\nA:", params)
    assert "Paris" in result.text
    assert len(result.token_ids) == result.completion_tokens == len(result.logprobs) <= 10
    assert all(lp <= 0.0 for lp in result.logprobs)
    from_ids = llama.complete(llama.tokenize("Q: What is the capital of France?\nA:"), params)
    assert from_ids.token_ids == result.token_ids


def test_seeded_sampling_is_repeatable_even_after_other_prompts(llama) -> None:
    params = SamplingParams(max_tokens=8, temperature=1.0, seed=5, n=2)
    first = [g.token_ids for g in llama.generate(["Once upon a time"], params)[0]]
    llama.complete("Something else entirely", SamplingParams(max_tokens=4, temperature=0.0))
    second = [g.token_ids for g in llama.generate(["Once upon a time"], params)[0]]
    assert first == second and first[0] != first[1]


def test_greedy_logprob_is_the_most_likely_token(llama) -> None:
    result = llama.complete("One, two, three,", SamplingParams(max_tokens=3, temperature=0.0))
    # greedy picks the argmax, whose probability is at least 1/vocab and in practice far higher
    assert result.logprobs[0] > -3.0


def test_stop_and_json_schema(llama) -> None:
    stopped = llama.complete("Monday, Tuesday, Wednesday", SamplingParams(max_tokens=30, temperature=0.0, stop=[","]))
    assert stopped.finish_reason == "stop" and "," not in stopped.text
    schema = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["answer"], "additionalProperties": False}
    result = llama.complete("Q: What is 3 + 4? Answer as JSON.\nA:",
                            SamplingParams(max_tokens=20, temperature=0.0, json_schema=schema))
    assert isinstance(json.loads(result.text)["answer"], int)


def test_regex_is_refused_with_the_fix(llama) -> None:
    with pytest.raises(UserError, match=r"use hf:\.\.\. for regex"):
        llama.complete("x", SamplingParams(regex="[0-9]+"))


def test_prompt_longer_than_context_is_a_user_error(llama) -> None:
    with pytest.raises(UserError, match="exceeds the context length 2048"):
        llama.complete("word " * 2100, SamplingParams(max_tokens=4))
