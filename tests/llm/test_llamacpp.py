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
    # one thread: on a busy 2-core machine two llama.cpp threads spin-wait each other, up to ~10x slower
    return load_llm("llamacpp:embedded", n_ctx=2048, n_threads=1)


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


def test_regex_grammar_and_schema_bounds_are_enforced_by_xgrammar(llama) -> None:
    digits = llama.complete("Q: What is 7 times 6?\nA:", SamplingParams(max_tokens=5, temperature=1.0, seed=0,
                                                                        regex=r" ?[0-9]{1,3}"))
    assert digits.text.strip().isdigit() and len(digits.text.strip()) <= 3
    answer = llama.complete("Is the sky blue?", SamplingParams(max_tokens=4, temperature=1.0, seed=1,
                                                                grammar='root ::= "yes" | "no"'))
    assert answer.text in ("yes", "no")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 7}},
              "required": ["n"], "additionalProperties": False}
    # a hot temperature: the mask, not the model, keeps the number in range and the layout exact
    result = llama.complete("A number as JSON:", SamplingParams(max_tokens=10, temperature=1.5, seed=0,
                                                                 json_schema=schema))
    assert 3 <= json.loads(result.text)["n"] <= 7 and result.text == json.dumps(json.loads(result.text))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (SamplingParams(grammar='root ::= "a" | '), "invalid grammar"),  # llama.cpp's own parser: signal 11
        (SamplingParams(grammar="root ::= [z-a]"), "invalid grammar"),
        (SamplingParams(json_schema={"type": "foo"}), "invalid json_schema"),
        (SamplingParams(regex="(("), "invalid regex"),
    ],
)
def test_malformed_constraints_are_user_errors_not_crashes(llama, params: SamplingParams, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        llama.complete("x", params.model_copy(update={"max_tokens": 2}))


def test_token_ids_outside_the_vocabulary_are_user_errors(llama) -> None:
    # llama.cpp aborts the process (std::out_of_range) on these
    with pytest.raises(UserError, match="detokenize token id 262144 is outside the vocabulary"):
        llama.detokenize([2, 262144])
    with pytest.raises(UserError, match="prompt token id -1 is outside the vocabulary"):
        llama.complete([2, -1], SamplingParams(max_tokens=1))
    assert llama.complete([2, 818], SamplingParams(max_tokens=1, temperature=0)).completion_tokens == 1


def test_top_logprobs_are_sorted_and_include_the_greedy_token(llama) -> None:
    result = llama.complete("One, two, three,", SamplingParams(max_tokens=2, temperature=0.0, top_logprobs=3))
    for token, value, top in zip(result.token_ids, result.logprobs, result.top_logprobs, strict=True):
        assert list(top.values()) == sorted(top.values(), reverse=True) and len(top) == 3
        assert next(iter(top)) == token and top[token] == pytest.approx(value)


def test_prompt_longer_than_context_is_a_user_error(llama) -> None:
    with pytest.raises(UserError, match="exceeds the context length 2048"):
        llama.complete("word " * 2100, SamplingParams(max_tokens=4))


def test_stream_joins_to_exactly_the_completion(llama, stream_matches, split_stop) -> None:
    prompt = "Monday, Tuesday, Wednesday"
    stop = split_stop(llama, prompt, max_tokens=10)
    stopped = stream_matches(llama, prompt, SamplingParams(max_tokens=10, temperature=0.0, stop=[stop], logprobs=False))
    assert stopped[-1].finish_reason == "stop" and len(stopped) > 2
    stream_matches(llama, "Once upon a time", SamplingParams(max_tokens=6, temperature=1.0, seed=3, top_logprobs=2))
    schema = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["answer"]}
    deltas = stream_matches(llama, "Q: What is 3 + 4? Answer as JSON.\nA:",
                            SamplingParams(max_tokens=12, temperature=0.0, json_schema=schema, logprobs=False))
    assert isinstance(json.loads("".join(d.text for d in deltas))["answer"], int)


def test_serve_streams_llamacpp_tokens_as_the_sdk_reads_them(llama) -> None:
    import openai

    from reasonlab.llm.serve import make_server

    server = make_server(llama, port=0, model_name="gemma").start()
    try:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=120)
        request = {"model": "gemma", "max_tokens": 10, "temperature": 0}
        whole = client.completions.create(prompt="The capital of France is", **request)
        chunks = list(client.completions.create(prompt="The capital of France is", stream=True, **request))
        assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text
        ids = [t for c in chunks for t in c.choices[0].model_extra.get("token_ids") or []]
        assert ids == whole.choices[0].model_extra["token_ids"]
        messages = [{"role": "user", "content": "Name a color."}]
        answer = client.chat.completions.create(messages=messages, **request)
        parts = list(client.chat.completions.create(messages=messages, stream=True, **request))
        assert "".join(c.choices[0].delta.content or "" for c in parts) == answer.choices[0].message.content
    finally:
        server.shutdown()
