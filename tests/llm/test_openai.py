"""The openai backend against two real servers on loopback: llama-cpp-python's server and `reasonlab serve`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from reasonlab.llm import Message, SamplingParams, load_llm

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["answer"],
    "additionalProperties": False,
}


def test_llamacpp_server_completion_chat_and_tokenize(llamacpp_server: str) -> None:
    llm = load_llm(f"openai:{llamacpp_server}#gemma")
    result = llm.complete("Q: What is the capital of France?\nA:", SamplingParams(max_tokens=10, temperature=0.0))
    assert "Paris" in result.text
    assert result.completion_tokens >= 1 and result.prompt_tokens >= 5
    ids = llm.tokenize("The capital of France is")
    assert len(ids) >= 5
    assert "capital of France" in llm.detokenize(ids)
    reply = llm.chat([Message("user", "Name a colour.")], SamplingParams(max_tokens=6, temperature=0.0))
    # the base model may end its chat turn at once; the server still read the whole conversation
    assert reply.prompt_tokens >= 5 and reply.finish_reason in ("stop", "length")
    assert llm.usage.calls == 2


def test_llamacpp_server_logprobs_and_stop(llamacpp_server: str) -> None:
    llm = load_llm(f"openai:{llamacpp_server}#gemma")
    params = SamplingParams(max_tokens=30, temperature=0.0, stop=[","], logprobs=True)
    result = llm.complete("One, two, three, four", params)
    assert "," not in result.text
    assert result.logprobs is not None and all(lp <= 0.0 for lp in result.logprobs)


def test_reasonlab_serve_roundtrip_matches_the_in_process_model(reasonlab_server: str, embedded_hf) -> None:
    llm = load_llm(f"openai:{reasonlab_server}#gemma")
    assert llm.context_length == embedded_hf.context_length
    params = SamplingParams(max_tokens=10, temperature=0.0)
    remote = llm.generate(["The capital of France is", "One, two, three,"], params)
    local = embedded_hf.generate(["The capital of France is", "One, two, three,"], params)
    assert [g[0].text for g in remote] == [g[0].text for g in local]
    assert [g[0].token_ids for g in remote] == [g[0].token_ids for g in local]
    assert llm.tokenize("hello world") == embedded_hf.tokenize("hello world")


def test_reasonlab_serve_forwards_json_schema_and_regex(reasonlab_server: str) -> None:
    llm = load_llm(f"openai:{reasonlab_server}#gemma")
    result = llm.complete("Q: What is 3 + 4? Answer as JSON.\nA:",
                          SamplingParams(max_tokens=20, temperature=0.0, json_schema=SCHEMA))
    assert isinstance(json.loads(result.text)["answer"], int)
    chat = llm.chat([Message("user", "What is 3 + 4? Answer as JSON.")],
                    SamplingParams(max_tokens=20, temperature=0.0, json_schema=SCHEMA))
    assert isinstance(json.loads(chat.text)["answer"], int)
    digits = llm.complete("Q: 9 - 2 =", SamplingParams(max_tokens=5, temperature=0.0, regex=r" ?[0-9]+"))
    assert digits.text.strip().isdigit()


def post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_reasonlab_serve_rejects_bad_requests_clearly(reasonlab_server: str) -> None:
    status, body = post(f"{reasonlab_server}/completions", b"{not json")
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = post(f"{reasonlab_server}/completions", json.dumps({"prompt": "x", "stream": True}).encode())
    assert status == 400 and "streaming" in body["error"]["message"]
