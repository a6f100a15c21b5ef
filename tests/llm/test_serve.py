"""`reasonlab serve` on a real uvicorn socket: the OpenAI SDK (streaming too), OpenAI-shaped errors for every bad
request, and one generation at a time. The model is a tiny random Llama with a byte-level BPE tokenizer."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams, ScriptedLLM
from reasonlab.llm.base import TextStream
from reasonlab.llm.serve import Server, make_server

MODEL = "tiny"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 9}},
          "required": ["answer"]}
@pytest.fixture(scope="module")
def server(tiny_hf) -> Iterator[Server]:
    running = make_server(tiny_hf, port=0, model_name=MODEL).start()
    yield running
    running.shutdown()


@pytest.fixture
def client(server: Server):
    import openai

    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=60)


def post(url: str, data: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    """POST raw bytes; the status and the JSON body (errors included)."""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def assert_openai_error(status: int, body: Any, expected: int, fragment: str) -> None:
    assert status == expected, body
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    message = body["error"]["message"]
    assert fragment in message, message
    assert "\n" not in message and "errors.pydantic.dev" not in message and len(message) < 400


def test_models_health_and_unknown_routes(server: Server, tiny_hf) -> None:
    with urllib.request.urlopen(f"{server.url}/models") as response:
        models = json.loads(response.read())
    assert models["data"][0]["id"] == MODEL and models["data"][0]["max_model_len"] == tiny_hf.context_length
    with urllib.request.urlopen(server.url.removesuffix("/v1") + "/health") as response:
        assert json.loads(response.read()) == {"status": "ok"}
    assert_openai_error(*post(f"{server.url}/nothing", b"{}"), 404, "no route: POST /v1/nothing")
    try:
        urllib.request.urlopen(f"{server.url}/completions")
    except urllib.error.HTTPError as err:
        assert_openai_error(err.code, json.loads(err.read()), 405, "method not allowed")


def test_completion_matches_the_in_process_model_with_token_ids_and_logprobs(client, tiny_hf) -> None:
    response = client.completions.create(model=MODEL, prompt="The capital", max_tokens=8, temperature=0, logprobs=2)
    local = tiny_hf.complete("The capital", SamplingParams(max_tokens=8, temperature=0))
    choice = response.choices[0]
    assert choice.text == local.text and choice.model_extra["token_ids"] == local.token_ids
    assert response.usage.completion_tokens == len(local.token_ids) == len(choice.logprobs.token_logprobs)
    # the legacy format keys the alternatives by text: two partial-UTF-8 tokens may share one key
    assert all(1 <= len(top) <= 2 for top in choice.logprobs.top_logprobs)
    assert all(lp <= 0 for lp in choice.logprobs.token_logprobs)
    by_ids = client.completions.create(model=MODEL, prompt=tiny_hf.tokenize("The capital"), max_tokens=8, temperature=0)
    assert by_ids.choices[0].text == local.text


def test_completion_stream_joins_to_the_non_streamed_text(client) -> None:
    request: dict[str, Any] = {"model": MODEL, "prompt": ["The capital", "One, two"], "max_tokens": 12, "n": 2,
                               "temperature": 1.0, "seed": 3}
    whole = client.completions.create(**request)
    chunks = list(client.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    texts = {i: "".join(c.choices[0].text for c in chunks if c.choices and c.choices[0].index == i) for i in range(4)}
    assert texts == {c.index: c.text for c in whole.choices}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [c.finish_reason for c in whole.choices]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_stream_is_server_sent_events_ending_with_done(server: Server) -> None:
    request = urllib.request.Request(f"{server.url}/completions", method="POST", data=json.dumps(
        {"model": MODEL, "prompt": "x", "max_tokens": 3, "stream": True, "temperature": 0}).encode())
    with urllib.request.urlopen(request) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = response.read().decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: {") for event in events[:-2])


def test_chat_logprobs_and_top_logprobs_in_the_openai_format(client) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "The capital"}]
    response = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6, temperature=0,
                                              logprobs=True, top_logprobs=3)
    content = response.choices[0].logprobs.content
    assert len(content) == response.usage.completion_tokens
    for entry in content:
        assert len(entry.top_logprobs) == 3
        assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
        assert entry.logprob <= entry.top_logprobs[0].logprob + 1e-6
        assert entry.bytes == list(entry.token.encode())
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6, temperature=0,
                                                 stream=True, logprobs=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == response.choices[0].message.content
    streamed = [e.logprob for c in chunks if c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert streamed == pytest.approx([e.logprob for e in content])
    assert chunks[-1].choices[0].finish_reason == response.choices[0].finish_reason


def test_constraints_through_the_sdk(client) -> None:
    for seed in range(3):
        chat = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "answer"}], max_tokens=30, seed=seed,
            response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}})
        assert 0 <= json.loads(chat.choices[0].message.content)["answer"] <= 9
    digits = client.completions.create(model=MODEL, prompt="n:", max_tokens=6, seed=1,
                                       extra_body={"guided_regex": "[0-9]{2}"})
    assert len(digits.choices[0].text) == 2 and digits.choices[0].text.isdigit()
    # the reasonlab openai client sends both vendor names for one schema: the same value twice is one constraint
    both = client.completions.create(model=MODEL, prompt="n:", max_tokens=30, seed=2,
                                     extra_body={"guided_json": SCHEMA, "json_schema": SCHEMA})
    assert set(json.loads(both.choices[0].text)) == {"answer"}
    answer = client.completions.create(model=MODEL, prompt="n:", max_tokens=4, seed=2,
                                       extra_body={"guided_grammar": 'root ::= "yes" | "no"'})
    assert answer.choices[0].text in ("yes", "no")


def test_the_sdk_raises_bad_request_with_the_servers_sentence(client) -> None:
    import openai

    with pytest.raises(openai.BadRequestError, match="invalid grammar: EBNF parser error"):
        client.completions.create(model=MODEL, prompt="x", max_tokens=3, extra_body={"guided_grammar": "root ::="})
    with pytest.raises(openai.BadRequestError, match="model 'gpt-4o' is not served here: use 'tiny'"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])


def completion(**fields: Any) -> bytes:
    return json.dumps({"model": MODEL, "max_tokens": 3, **fields}).encode()


def chat(**fields: Any) -> bytes:
    return json.dumps({"model": MODEL, "max_tokens": 3, **fields}).encode()


USER = [{"role": "user", "content": "hi"}]
BAD_REQUESTS = {
    "json array body": ("/v1/completions", b"[1, 2]", 400, "request body is a JSON list, not an object"),
    "empty body": ("/v1/completions", b"", 400, "request body is empty"),
    "garbage bytes": ("/v1/chat/completions", b"\xff\xfe\x00garbage", 400, "not valid JSON"),
    "NaN": ("/v1/completions", b'{"prompt": "x", "temperature": NaN}', 400, "no NaN or Infinity"),
    "deep nesting": ("/v1/completions", b"[" * 100_000, 400, "not valid JSON"),
    "lone surrogate": ("/v1/completions", b'{"prompt": "\\ud800"}', 400, "not valid JSON"),
    "unknown model": ("/v1/completions", completion(prompt="x", model="gpt-4o"), 400, "model 'gpt-4o' is not served"),
    "unknown role": ("/v1/chat/completions", chat(messages=[{"role": "wizard", "content": "x"}]), 400,
                     "invalid 'messages.0.role': Input should be 'system', 'developer', 'user', 'assistant' or 'tool'"),
    "no messages": ("/v1/chat/completions", chat(messages=[]), 400, "invalid 'messages'"),
    "image part": ("/v1/chat/completions", chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), 400,
                   "only text parts"),
    "role the template refuses": ("/v1/chat/completions", chat(messages=[{"role": "tool", "content": "x"}]), 400,
                                  "the chat template of hf:"),
    "no prompt": ("/v1/completions", completion(), 400, "prompt must be a string"),
    "prompt of wrong type": ("/v1/completions", completion(prompt={"a": 1}), 400, "prompt must be a string"),
    "prompt id out of range": ("/v1/completions", completion(prompt=[5, 300]), 400,
                               "prompt token id 300 is outside the vocabulary"),
    "negative prompt id": ("/v1/completions", completion(prompt=[[5], [-1]]), 400, "prompt token id -1 is outside"),
    "huge prompt id": ("/v1/completions", completion(prompt=[2**70]), 400, "is outside the vocabulary"),
    "n as text": ("/v1/completions", completion(prompt="x", n="many"), 400, "invalid 'n'"),
    "n too large": ("/v1/completions", completion(prompt="x", n=10_000), 400, "invalid 'n'"),
    "too many completions": ("/v1/completions", completion(prompt=["x"] * 10, n=100), 400, "more than 256"),
    "negative temperature": ("/v1/completions", completion(prompt="x", temperature=-1), 400, "invalid 'temperature'"),
    "huge max_tokens": ("/v1/completions", completion(prompt="x", max_tokens=10**9), 400, "exceeds the context length"),
    "zero max_tokens": ("/v1/completions", completion(prompt="x", max_tokens=0), 400, "invalid 'max_tokens'"),
    "huge seed": ("/v1/completions", completion(prompt="x", seed=2**80), 400, "invalid 'seed'"),
    "stream as text": ("/v1/completions", completion(prompt="x", stream="sometimes"), 400, "invalid 'stream'"),
    "bad grammar": ("/v1/completions", completion(prompt="x", guided_grammar='root ::= "a" |'), 400,
                    "invalid grammar"),
    "bad regex": ("/v1/completions", completion(prompt="x", guided_regex="(("), 400, "invalid regex"),
    "bad schema": ("/v1/completions", completion(prompt="x", guided_json={"type": "foo"}), 400, "invalid json_schema"),
    "schema as a list": ("/v1/completions", completion(prompt="x", guided_json=[1]), 400,
                         "guided_json must be a JSON object"),
    "stop of wrong type": ("/v1/completions", completion(prompt="x", stop=[1]), 400,
                           "invalid 'stop': give a string or a list of strings"),
    "schema string not JSON": ("/v1/completions", completion(prompt="x", guided_json="{nope"), 400, "is a string but"),
    "unenforced keyword": ("/v1/chat/completions", chat(messages=USER, response_format={"type": "json_schema",
                           "json_schema": {"name": "x", "schema": {"type": "array", "uniqueItems": True}}}), 400,
                           "'uniqueItems' at # is not enforced"),
    "json_schema without schema": ("/v1/chat/completions", chat(messages=USER, response_format={
                                   "type": "json_schema", "json_schema": {"name": "x"}}), 400, "invalid 'response_format"),
    "two constraints": ("/v1/completions", completion(prompt="x", guided_regex="a", guided_grammar='root ::= "a"'),
                        400, "give at most one constraint"),
    "two different schemas": ("/v1/completions", completion(prompt="x", guided_json={"type": "integer"},
                              json_schema={"type": "string"}), 400, "2 different JSON schemas"),
    "top_logprobs without logprobs": ("/v1/chat/completions", chat(messages=USER, top_logprobs=2), 400,
                                      "top_logprobs needs logprobs=true"),
    "too many top_logprobs": ("/v1/chat/completions", chat(messages=USER, logprobs=True, top_logprobs=50), 400,
                              "invalid 'top_logprobs'"),
    "tools": ("/v1/chat/completions", chat(messages=USER, tools=[{"type": "function"}]), 400, "does not support 'tools'"),
    "logit_bias": ("/v1/completions", completion(prompt="x", logit_bias={"5": 10}), 400, "'logit_bias'"),
    "echo": ("/v1/completions", completion(prompt="x", echo=True), 400, "'echo'"),
    "detokenize out of range": ("/detokenize", json.dumps({"tokens": [5, 10**12]}).encode(), 400,
                                "detokenize token id 1000000000000 is outside the vocabulary"),
    "detokenize text": ("/detokenize", json.dumps({"tokens": "abc"}).encode(), 400, "invalid 'tokens'"),
    "tokenize nothing": ("/tokenize", b"{}", 400, "tokenize needs 'prompt'"),
    "streamed prompt too long": ("/v1/completions", completion(prompt="x", max_tokens=10**6, stream=True), 400,
                                 "exceeds the context length"),
    "streamed chat bad role": ("/v1/chat/completions", chat(messages=[{"role": "tool", "content": "x"}], stream=True),
                               400, "the chat template of hf:"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_one_openai_shaped_sentence(server: Server, case: str) -> None:
    path, body, status, fragment = BAD_REQUESTS[case]
    assert_openai_error(*post(server.url.removesuffix("/v1") + path, body), status, fragment)


def test_tokenize_and_detokenize_round_trip(server: Server, tiny_hf) -> None:
    base = server.url.removesuffix("/v1")
    status, body = post(f"{base}/tokenize", json.dumps({"model": MODEL, "prompt": "The capital"}).encode())
    assert status == 200 and body["tokens"] == tiny_hf.tokenize("The capital") and body["count"] == len(body["tokens"])
    status, body = post(f"{base}/detokenize", json.dumps({"tokens": body["tokens"]}).encode())
    assert status == 200 and body["prompt"] == "The capital"
    status, body = post(f"{base}/tokenize", json.dumps({"messages": USER, "add_special_tokens": False}).encode())
    assert status == 200 and tiny_hf.detokenize(body["tokens"]) == "<user>hi\n<assistant>"


def test_a_body_in_any_content_type_is_read_as_json(server: Server) -> None:
    status, body = post(f"{server.url}/completions", completion(prompt="x"), content_type="text/plain")
    assert status == 200 and body["object"] == "text_completion"


class _OverlapProbe(ScriptedLLM):
    """Replies after a short sleep and records how many generations ran at the same time."""

    def __init__(self) -> None:
        super().__init__(lambda text: "ok, done")
        self.active = self.most_active = 0

    def generate(self, prompts, params):  # type: ignore[no-untyped-def]
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        time.sleep(0.05)
        try:
            return super().generate(prompts, params)
        finally:
            self.active -= 1


def test_generations_never_overlap_even_while_streaming() -> None:
    probe = _OverlapProbe()
    running = make_server(probe, port=0, model_name="probe").start()
    results: list[int] = []

    def call(index: int) -> None:
        body = {"model": "probe", "prompt": "x", "max_tokens": 8, "stream": index % 2 == 0}
        request = urllib.request.Request(f"{running.url}/completions", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            results.append(response.status)

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        running.shutdown()
    assert results == [200] * 8
    assert probe.most_active == 1 and probe.usage.calls == 8


def test_a_body_over_the_limit_is_413(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    import reasonlab.llm.serve as serve

    monkeypatch.setattr(serve, "MAX_BODY_BYTES", 1000)
    status, body = post(f"{server.url}/completions", completion(prompt="x" * 2000))
    assert_openai_error(status, body, 413, "request body is larger than 1000 bytes")


def test_a_busy_port_is_a_one_line_user_error(server: Server) -> None:
    with pytest.raises(UserError, match=r"cannot listen on 127\.0\.0\.1:\d+ .*: pick another --port"):
        make_server(ScriptedLLM(["x"]), port=server.server_address[1])


# real streaming: tokens leave as they are decoded

# on the tiny model, greedy "One, two" decodes as the tokens "", "n", "sw", "n", "sw", ...: "wn" spans two tokens
SPLIT_STOP = "wn"
STREAM_PARAMS = [
    SamplingParams(max_tokens=20, temperature=0, top_logprobs=2),
    SamplingParams(max_tokens=20, temperature=0, stop=[SPLIT_STOP]),
    SamplingParams(max_tokens=20, temperature=1.0, seed=7, stop=["q", "zz"]),
    SamplingParams(max_tokens=30, temperature=1.0, seed=1, json_schema=SCHEMA),
]


@pytest.mark.parametrize("params", STREAM_PARAMS, ids=["greedy", "split-stop", "seeded", "schema"])
@pytest.mark.parametrize("prompt", ["One, two", "The capital"])
def test_hf_stream_joins_to_exactly_the_completion(tiny_hf, prompt: str, params: SamplingParams) -> None:
    whole = tiny_hf.complete(prompt, params)
    deltas = list(tiny_hf.stream(prompt, params))
    assert "".join(d.text for d in deltas) == whole.text
    assert [t for d in deltas for t in d.token_ids] == whole.token_ids
    assert [v for d in deltas for v in d.logprobs] == whole.logprobs
    assert [d.finish_reason for d in deltas] == [None] * (len(deltas) - 1) + [whole.finish_reason]
    if params.top_logprobs:
        assert [v for d in deltas for v in d.top_logprobs] == whole.top_logprobs


def test_a_stop_string_split_across_tokens_is_never_sent(tiny_hf) -> None:
    params = SamplingParams(max_tokens=20, temperature=0, stop=[SPLIT_STOP])
    deltas = list(tiny_hf.stream("One, two", params))
    assert [d.text for d in deltas[:4]] == ["", "n", "s", ""]  # "w" waited: it began the stop string
    assert "".join(d.text for d in deltas) == "ns" and deltas[-1].finish_reason == "stop"


def test_text_stream_holds_back_what_a_stop_string_or_a_split_character_may_change() -> None:
    text = TextStream(lambda ids: bytes(ids).decode(errors="replace"), ["END", "xy"])
    sent = [text.push(list(prefix)) for prefix in (b"ab", b"abE", b"abEN", b"abENd", b"abENd\xc3", b"abENd\xc3\xa9x")]
    assert sent == ["ab", "", "", "ENd", "", "\u00e9"]
    assert text.push(list(b"abENd\xc3\xa9xy")) == "" and text.finish("abENd\u00e9") == ""


def test_the_sdk_streams_both_endpoints_exactly_as_the_whole_answer(client) -> None:
    request: dict[str, Any] = {"model": MODEL, "max_tokens": 20, "temperature": 0, "stop": [SPLIT_STOP]}
    whole = client.completions.create(prompt="One, two", **request)
    chunks = list(client.completions.create(prompt="One, two", stream=True, stream_options={"include_usage": True},
                                            **request))
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    chunks = chunks[:-1]
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text == "ns"
    streamed_ids = [t for c in chunks for t in c.choices[0].model_extra.get("token_ids") or []]
    assert streamed_ids == whole.choices[0].model_extra["token_ids"]
    messages = [{"role": "user", "content": "One, two"}]
    answer = client.chat.completions.create(messages=messages, **request)
    parts = list(client.chat.completions.create(messages=messages, stream=True, **request))
    assert "".join(c.choices[0].delta.content or "" for c in parts) == answer.choices[0].message.content
    assert [c.choices[0].finish_reason for c in parts][-1] == answer.choices[0].finish_reason


@pytest.fixture
def slow_forward(tiny_hf, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every forward pass of the tiny model takes 40 ms longer; returns the list of their start times."""
    forward, starts = tiny_hf._forward_cached, []

    def slowed(*args: Any, **kwargs: Any) -> Any:
        starts.append(time.monotonic())
        time.sleep(0.04)
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_hf, "_forward_cached", slowed)
    return starts


def open_stream(server: Server, path: str, body: dict[str, Any]) -> tuple[http.client.HTTPConnection, Any]:
    host, port = server.server_address
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("POST", path, json.dumps({"model": MODEL, "stream": True, **body}),
                       {"Content-Type": "application/json"})
    return connection, connection.getresponse()


def timed_events(response: Any) -> Iterator[tuple[float, str]]:
    """(arrival time, data) of each server-sent event, as it arrives."""
    for line in iter(response.readline, b""):
        if line.startswith(b"data: "):
            yield time.monotonic(), line[6:].decode().strip()


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/completions", {"prompt": "One, two"}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "One, two"}]}),
])
def test_the_first_token_arrives_long_before_the_last(server: Server, slow_forward: list[float], path: str,
                                                      body: dict[str, Any]) -> None:
    connection, response = open_stream(server, path, {**body, "max_tokens": 12, "temperature": 0})
    events = [(at, json.loads(data)) for at, data in timed_events(response) if data != "[DONE]"]
    connection.close()
    tokens = [at for at, event in events if event["choices"] and event["choices"][0].get("token_ids")]
    assert len(tokens) == 12
    # 12 tokens at >= 40 ms each: the first leaves right after its own forward pass, not after all of them
    assert tokens[0] < slow_forward[2] < slow_forward[-1] < tokens[-1]
    assert tokens[-1] - tokens[0] > 0.3


def test_a_client_that_leaves_mid_stream_stops_decoding_and_frees_the_model(
        server: Server, client, slow_forward: list[float]) -> None:
    connection, response = open_stream(server, "/v1/completions", {"prompt": "One, two", "max_tokens": 200})
    next(timed_events(response))
    connection.close()  # 200 tokens would take 8 s more
    started = time.monotonic()
    assert client.completions.create(model=MODEL, prompt="x", max_tokens=2).choices[0].text is not None
    assert time.monotonic() - started < 2.0
    time.sleep(0.2)
    assert len(slow_forward) < 40


def test_a_backend_without_token_streaming_sends_the_whole_answer_one_token_per_event() -> None:
    import openai

    running = make_server(ScriptedLLM(lambda text: "hello, world"), port=0, model_name="scripted").start()
    try:
        client = openai.OpenAI(base_url=running.url, api_key="none", max_retries=0, timeout=30)
        chunks = list(client.completions.create(model="scripted", prompt="x", max_tokens=5, stream=True))
    finally:
        running.shutdown()
    assert [c.choices[0].text for c in chunks] == ["h", "e", "l", "l", "o", ""]
    assert chunks[-1].choices[0].finish_reason == "length"
