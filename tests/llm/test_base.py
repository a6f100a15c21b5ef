"""The LLM interface itself: params validation, prompt kinds, the scripted fake, usage accounting, specs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import reasonlab.llm as llm_api
from reasonlab.errors import UserError
from reasonlab.llm import LLM, Message, SamplingParams, ScriptedLLM, load_llm, prompt_kind
from reasonlab.llm.base import truncate_at_stop


def test_public_api_is_pinned() -> None:
    assert sorted(llm_api.__all__) == sorted([
        "LLM", "SPEC_HELP", "BaseLLM", "Generation", "HashingEmbedder", "Message", "Prompt", "SamplingParams", "ScriptedLLM",
        "StreamDelta", "TrainablePolicy", "Usage", "load_llm", "prompt_kind",
    ])


def test_prompt_kinds() -> None:
    assert prompt_kind("hello") == "text"
    assert prompt_kind([2, 651, 6037]) == "tokens"
    assert prompt_kind([Message("user", "hi")]) == "chat"
    with pytest.raises(ValueError, match="empty prompt"):
        prompt_kind([])


def test_sampling_params_reject_two_constraints_and_bad_values() -> None:
    with pytest.raises(ValidationError, match="at most one of json_schema, grammar, regex"):
        SamplingParams(json_schema={"type": "object"}, regex="[0-9]+")
    with pytest.raises(ValidationError):
        SamplingParams(temperature=-0.1)
    assert SamplingParams(regex="a+").constrained and not SamplingParams().constrained


def test_truncate_at_stop_cuts_at_the_earliest_stop() -> None:
    assert truncate_at_stop("12 apples\nQ: next", ["\nQ:", "apples"]) == ("12 ", True)
    assert truncate_at_stop("no stop here", ["###"]) == ("no stop here", False)


def test_scripted_llm_follows_the_protocol_and_counts_usage() -> None:
    fake = ScriptedLLM(["first answer", "second answer###tail"])
    assert isinstance(fake, LLM)
    groups = fake.generate(["q1", "q2"], SamplingParams(stop=["###"]))
    assert [g[0].text for g in groups] == ["first answer", "second answer"]
    assert groups[1][0].finish_reason == "stop"
    assert fake.usage.calls == 2
    assert fake.usage.completion_tokens == len("first answer") + len("second answer")
    assert fake.usage.prompt_tokens == 4
    with pytest.raises(RuntimeError, match="ran out"):
        fake.complete("q3")


def test_scripted_llm_with_a_function_sees_chat_rendered_as_a_transcript() -> None:
    fake = ScriptedLLM(lambda text: text.upper())
    reply = fake.chat([Message("user", "ping")])
    assert reply.text == "USER: PING\n\nASSISTANT:"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("gpt4", "unknown LLM spec 'gpt4'"),
        ("foo:bar", "unknown LLM spec 'foo:bar'"),
        ("openai:localhost:8000", "bad openai spec"),
        ("hf:/no/such/model", "does not exist"),
        ("llamacpp:/no/such/file.gguf", "does not exist"),
    ],
)
def test_bad_specs_raise_one_line_user_errors(spec: str, fragment: str) -> None:
    if spec.startswith("llamacpp"):
        pytest.importorskip("llama_cpp")
    with pytest.raises(UserError, match=fragment) as info:
        load_llm(spec)
    assert "\n" not in str(info.value)


def test_unreachable_server_is_a_user_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the port is free again once the socket closes: nothing listens there
    with pytest.raises(UserError, match="cannot reach the server"):
        load_llm(f"openai:http://127.0.0.1:{port}/v1#model")


def test_token_ids_outside_the_vocabulary_are_one_line_user_errors() -> None:
    fake = ScriptedLLM(["ok"])
    assert fake.detokenize([104, 105]) == "hi"
    with pytest.raises(UserError, match=r"detokenize token id 1114112 is outside the vocabulary of scripted "
                                        r"\(0\.\.1114111\): pass ids that tokenize\(\) returned"):
        fake.detokenize([104, 0x110000])
    with pytest.raises(UserError, match="prompt token id -3 is outside"):
        fake.complete([104, -3])


def test_top_logprobs_are_bounded_like_openais() -> None:
    assert SamplingParams(top_logprobs=20).top_logprobs == 20
    with pytest.raises(ValidationError):
        SamplingParams(top_logprobs=21)
