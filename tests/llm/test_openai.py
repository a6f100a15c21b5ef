"""The openai backend: scripted fake servers in a thread for every server dialect and failure (fast), then two
real servers on loopback, llama-cpp-python's server and `reasonlab serve` (slow)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import Message, SamplingParams, load_llm
from reasonlab.llm.openai import OpenAILLM, ServerError

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 99}},
    "required": ["answer"],
    "additionalProperties": False,
}



# -- a scripted server -----------------------------------------------------------------------------------------

DROP = object()  # close the connection without an answer
Answer = tuple[int, Any]
Route = Answer | list[Answer] | Callable[[dict[str, Any]], Answer]


class FakeServer(ThreadingHTTPServer):
    """Answers `METHOD /path` from `routes` (a fixed answer, a list consumed in order, or a function of the
    JSON body); unknown routes get 404. Records every request as (method, path, body)."""

    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _FakeHandler)
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def count(self, path: str) -> int:
        return sum(1 for _, p, _ in self.requests if p == path)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for _, p, body in self.requests if p == path]

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Any:
        self.requests.append((method, path, body))
        route = self.routes.get(f"{method} {path}")
        if route is None:
            return 404, {"error": {"message": f"no route {method} {path}", "code": 404}}
        if callable(route):
            return route(body)
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route


class _FakeHandler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        answer = self.server.answer(method, self.path, body)
        if answer is DROP:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        status, payload = answer
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def serve() -> Iterator[Callable[[dict[str, Route]], FakeServer]]:
    """Start scripted servers in threads; all are shut down after the test."""
    started: list[FakeServer] = []

    def start(routes: dict[str, Route]) -> FakeServer:
        server = FakeServer(routes)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def models(**entry: Any) -> Answer:
    return 200, {"object": "list", "data": [{"id": "m", "object": "model", **entry}]}


VLLM = models(owned_by="vllm", max_model_len=4096)
LLAMA_SERVER = models(owned_by="llamacpp", meta={"n_ctx_train": 131072, "n_vocab": 256})
LLAMA_CPP_PYTHON = models(owned_by="me", permissions=[])


def completion(text: str, finish_reason: str = "stop", **choice: Any) -> Answer:
    return 200, {"choices": [{"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None, **choice}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def connect(fake: FakeServer, **options: Any) -> OpenAILLM:
    return load_llm(f"openai:{fake.url}#m", retry_backoff=0.01, **options)  # type: ignore[return-value]


# -- errors are errors, and only transient ones are retried -----------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 500])
def test_tokenize_error_statuses_are_errors_not_a_missing_endpoint(serve, status: int) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /tokenize": (status, {"error": {"message": "key rejected"}})})
    llm = connect(server, max_retries=1)
    with pytest.raises(ServerError, match=rf"{server.url} answered {status} to POST /tokenize: key rejected") as info:
        llm.tokenize("hello")
    assert info.value.status == status and "\n" not in str(info.value)
    assert server.count("/extras/tokenize") == 0  # no fallback behind an auth or server error


@pytest.mark.parametrize("status", [404, 405])
def test_only_404_and_405_mean_no_endpoint(serve, status: int) -> None:
    server = serve({"GET /v1/models": models(owned_by="someone"), "POST /tokenize": (status, {}),
                    "POST /extras/tokenize": (200, {"tokens": [1, 2, 3]}), "POST /detokenize": (status, {})})
    llm = connect(server)
    assert llm.tokenize("abc") == [1, 2, 3]  # fell through to llama-cpp-python's route
    with pytest.raises(UserError, match="has no detokenize endpoint"):
        llm.detokenize([1, 2])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 501])
def test_deterministic_errors_are_sent_once(serve, status: int) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /v1/completions": (status, {"message": "nope"})})
    llm = connect(server, max_retries=3)
    with pytest.raises(UserError, match=rf"answered {status} to POST /v1/completions: nope"):
        llm.complete("hi", SamplingParams(max_tokens=3))
    assert server.count("/v1/completions") == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_errors_are_retried_a_bounded_number_of_times(serve, status: int) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /v1/completions": (status, {"error": {"message": "busy"}})})
    llm = connect(server, max_retries=2)
    with pytest.raises(ServerError, match=f"answered {status}"):
        llm.complete("hi", SamplingParams(max_tokens=3))
    assert server.count("/v1/completions") == 3


def test_a_transient_error_then_success_returns_the_answer(serve) -> None:
    server = serve({"GET /v1/models": VLLM,
                    "POST /v1/completions": [(503, {}), DROP, completion(" Paris", token_ids=[7, 8])]})
    result = connect(server, max_retries=3).complete("The capital of France is", SamplingParams(max_tokens=3))
    assert result.text == " Paris" and server.count("/v1/completions") == 3


def test_an_unreachable_server_is_one_line_with_the_reason() -> None:
    with pytest.raises(UserError, match=r"cannot reach the server at http://127.0.0.1:9/v1 \(.*refused.*\)"):
        OpenAILLM("http://127.0.0.1:9/v1", "m", retry_backoff=0.01)


def test_the_default_backoff_is_short() -> None:
    llm = OpenAILLM("http://127.0.0.1:9/v1", "m", check=False)
    waits = [min(llm.retry_backoff * 2**attempt, 2.0) for attempt in range(llm.max_retries)]
    assert sum(waits) < 2.0


# -- context length: from the server or from the user, never a guess -------------------------------------------


def test_context_length_from_vllm_max_model_len(serve) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /tokenize": (200, {"tokens": [2, 5], "count": 2})})
    llm = connect(server)
    assert llm.context_length == 4096
    assert llm.tokenize("hi", add_special_tokens=False) == [2, 5]
    assert server.bodies("/tokenize")[0] == {"model": "m", "prompt": "hi", "add_special_tokens": False}


def test_context_length_from_llama_server_props(serve) -> None:
    server = serve({"GET /v1/models": LLAMA_SERVER,
                    "GET /props": (200, {"default_generation_settings": {"n_ctx": 2048}, "total_slots": 1})})
    llm = connect(server)
    assert llm.server == "llama.cpp" and llm.context_length == 2048  # the slot's n_ctx, not n_ctx_train


def test_unknown_context_length_says_how_to_give_it(serve) -> None:
    server = serve({"GET /v1/models": LLAMA_CPP_PYTHON})
    llm = connect(server)
    with pytest.raises(UserError, match=r"does not report its context length.*\?context_length=N"):
        _ = llm.context_length
    assert load_llm(f"openai:{server.url}?context_length=1536#m").context_length == 1536
    assert connect(server, context_length=512).context_length == 512


def test_the_user_context_length_wins_over_the_server(serve) -> None:
    server = serve({"GET /v1/models": VLLM})
    assert load_llm(f"openai:{server.url}?context_length=1024#m").context_length == 1024


# -- token ids ---------------------------------------------------------------------------------------------------


def test_vllm_is_asked_for_token_ids_and_they_are_filled_in(serve) -> None:
    server = serve({"GET /v1/models": VLLM,
                    "POST /v1/completions": completion(" Paris", token_ids=[11, 12], stop_reason=None),
                    "POST /v1/chat/completions": (200, {"choices": [{"message": {"content": "Hi"}, "token_ids": [5],
                                                                      "finish_reason": "stop", "stop_reason": "\n"}]})})
    llm = connect(server)
    result = llm.complete("The capital of France is", SamplingParams(max_tokens=3))
    assert result.token_ids == [11, 12] and result.finish_reason == "eos"
    assert server.bodies("/v1/completions")[0]["return_token_ids"] is True
    reply = llm.chat([Message("user", "Hello")], SamplingParams(max_tokens=3))
    assert reply.token_ids == [5] and reply.finish_reason == "stop"
    assert server.bodies("/v1/chat/completions")[0]["return_token_ids"] is True


def test_llama_server_completions_go_native_for_token_ids(serve) -> None:
    native = (200, {"content": " Paris", "tokens": [3, 4], "stop_type": "eos", "tokens_evaluated": 6,
                    "tokens_predicted": 2, "completion_probabilities": [{"id": 3, "logprob": -0.1},
                                                                        {"id": 4, "logprob": -0.2}]})
    server = serve({"GET /v1/models": LLAMA_SERVER, "GET /props": (404, {}), "POST /completion": native,
                    "POST /tokenize": (200, {"tokens": [1, 9]}), "POST /detokenize": (200, {"content": "ab"})})
    llm = connect(server)
    result = llm.complete([1, 2, 3], SamplingParams(max_tokens=2, seed=4, logprobs=True))
    assert (result.token_ids, result.logprobs, result.finish_reason) == ([3, 4], [-0.1, -0.2], "eos")
    assert (result.prompt_tokens, result.completion_tokens) == (6, 2)
    body = server.bodies("/completion")[0]
    assert body["return_tokens"] is True and body["prompt"] == [1, 2, 3] and body["n_predict"] == 2
    assert llm.tokenize("ab") == [1, 9] and server.bodies("/tokenize")[0] == {"content": "ab", "add_special": True}
    assert llm.detokenize([1, 9]) == "ab"


def test_servers_without_token_ids_leave_them_empty(serve) -> None:
    server = serve({"GET /v1/models": LLAMA_CPP_PYTHON, "POST /v1/completions": completion(" Paris")})
    result = connect(server).complete("The capital of France is", SamplingParams(max_tokens=3))
    assert result.text == " Paris" and result.token_ids == [] and result.completion_tokens == 3


# -- constraints are honoured or refused, never silently dropped ------------------------------------------------


def test_vllm_gets_structured_outputs_and_the_answer_is_checked(serve) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /v1/completions": completion('{"answer": 7}')})
    result = connect(server).complete("Q: 3 + 4?\nA:", SamplingParams(max_tokens=20, json_schema=SCHEMA))
    assert json.loads(result.text) == {"answer": 7}
    body = server.bodies("/v1/completions")[0]
    assert body["structured_outputs"] == {"json": SCHEMA} and body["guided_json"] == SCHEMA


def test_a_server_that_ignores_the_schema_is_an_error(serve) -> None:
    pytest.importorskip("llama_cpp", reason="the schema -> GBNF translation comes from the llamacpp extra")
    server = serve({"GET /v1/models": LLAMA_CPP_PYTHON, "POST /v1/completions": completion(" Paris is the capital")})
    with pytest.raises(UserError, match=r"llama-cpp-python server at .* did not honour the json_schema") as info:
        connect(server).complete("Q: 3 + 4?\nA:", SamplingParams(max_tokens=20, json_schema=SCHEMA))
    assert "\n" not in str(info.value)
    assert "root ::=" in server.bodies("/v1/completions")[0]["grammar"]  # it was sent as llama.cpp GBNF


@pytest.mark.parametrize(("text", "finish_reason", "ok"), [
    (" 42", "stop", True),
    (" 4", "length", True),  # cut by max_tokens while still inside the pattern
    ("", "length", True),
    (" 42 apples", "stop", False),
    ("apples", "length", False),
])
def test_regex_outputs_are_checked_and_unfinished_ones_pass_only_when_cut(serve, text, finish_reason, ok) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /v1/completions": completion(text, finish_reason)})
    params = SamplingParams(max_tokens=2, regex=r" ?[0-9]{2}")
    if ok:
        assert connect(server).complete("Q: 9 * 5 - 3 =", params).text == text
    else:
        with pytest.raises(UserError, match=r"vllm server .* did not honour the regex"):
            connect(server).complete("Q: 9 * 5 - 3 =", params)


def test_an_unfinished_output_that_claims_to_be_done_is_an_error(serve) -> None:
    server = serve({"GET /v1/models": VLLM, "POST /v1/completions": completion('{"answer": 7', "stop")})
    with pytest.raises(UserError, match="did not honour the json_schema"):
        connect(server).complete("Q:", SamplingParams(max_tokens=20, json_schema=SCHEMA))


def test_llama_server_gets_json_schema_and_grammar_natively_and_refuses_regex(serve) -> None:
    native = (200, {"content": "yes", "tokens": [1], "stop_type": "eos", "tokens_evaluated": 2})
    server = serve({"GET /v1/models": LLAMA_SERVER, "POST /completion": native})
    llm = connect(server)
    assert llm.complete("Q:", SamplingParams(max_tokens=2, grammar='root ::= "yes" | "no"')).text == "yes"
    assert server.bodies("/completion")[0]["grammar"] == 'root ::= "yes" | "no"'
    with pytest.raises(UserError, match="did not honour the json_schema"):
        llm.complete("Q:", SamplingParams(max_tokens=2, json_schema=SCHEMA))
    assert server.bodies("/completion")[1]["json_schema"] == SCHEMA
    with pytest.raises(UserError, match="does not enforce regular expressions"):
        llm.complete("Q:", SamplingParams(max_tokens=2, regex="[0-9]+"))
    assert server.count("/completion") == 2  # the regex never left


def test_unknown_servers_get_vllm_names_and_openai_response_format_unless_forced(serve) -> None:
    server = serve({"GET /v1/models": models(owned_by="organization-owner"),
                    "POST /v1/completions": completion("yes"),
                    "POST /v1/chat/completions": (200, {"choices": [{"message": {"content": '{"answer": 1}'}}]})})
    llm = connect(server)
    assert llm.server == "other"
    llm.complete("Q:", SamplingParams(max_tokens=2, grammar='root ::= "yes" | "no"'))
    assert server.bodies("/v1/completions")[0]["guided_grammar"] == 'root ::= "yes" | "no"'
    llm.chat([Message("user", "1?")], SamplingParams(max_tokens=9, json_schema=SCHEMA))
    assert server.bodies("/v1/chat/completions")[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    forced = connect(server, server="vllm")
    forced.complete("Q:", SamplingParams(max_tokens=2, grammar='root ::= "yes" | "no"'))
    assert server.bodies("/v1/completions")[1]["structured_outputs"] == {"grammar": 'root ::= "yes" | "no"'}


def test_llama_cpp_python_chat_schema_travels_as_its_response_format(serve) -> None:
    reply = (200, {"choices": [{"message": {"content": '{"answer": 3}'}, "finish_reason": "stop"}]})
    server = serve({"GET /v1/models": LLAMA_CPP_PYTHON, "POST /v1/chat/completions": reply})
    result = connect(server).chat([Message("user", "3?")], SamplingParams(max_tokens=9, json_schema=SCHEMA))
    assert result.text == '{"answer": 3}'
    body = server.bodies("/v1/chat/completions")[0]
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}


def test_a_rejected_key_at_load_time_is_one_line_naming_the_fix(serve) -> None:
    server = serve({"GET /v1/models": (401, {"error": {"message": "Invalid API key"}})})
    with pytest.raises(UserError, match=r"answered 401 to GET /v1/models: Invalid API key: set OPENAI_API_KEY"):
        connect(server)


def test_unknown_server_kind_is_refused() -> None:
    with pytest.raises(UserError, match="unknown server kind 'tgi'"):
        OpenAILLM("http://127.0.0.1:9/v1", "m", server="tgi", check=False)


@pytest.mark.slow
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


@pytest.mark.slow
def test_llamacpp_server_logprobs_and_stop(llamacpp_server: str) -> None:
    llm = load_llm(f"openai:{llamacpp_server}#gemma")
    params = SamplingParams(max_tokens=30, temperature=0.0, stop=[","], logprobs=True)
    result = llm.complete("One, two, three, four", params)
    assert "," not in result.text
    assert result.logprobs is not None and all(lp <= 0.0 for lp in result.logprobs)


@pytest.mark.slow
def test_llamacpp_server_enforces_schemas_as_grammars_and_refuses_regex(llamacpp_server: str) -> None:
    llm = load_llm(f"openai:{llamacpp_server}?context_length=2048#gemma")
    assert llm.server == "llama-cpp-python" and llm.context_length == 2048
    bounded = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}
    params = SamplingParams(max_tokens=20, temperature=0.0, json_schema=bounded)
    result = llm.complete("Q: Is 3 + 4 equal to 7? Answer as JSON.\nA:", params)
    assert isinstance(json.loads(result.text)["answer"], bool) and result.token_ids == []
    chat = llm.chat([Message("user", "Is 3 + 4 equal to 7? Answer as JSON.")], params)
    assert isinstance(json.loads(chat.text)["answer"], bool)
    with pytest.raises(UserError, match="does not enforce regular expressions"):
        llm.complete("Q: 9 - 2 =", SamplingParams(max_tokens=5, regex="[0-9]+"))


@pytest.mark.slow
def test_a_schema_the_server_does_not_honour_is_an_error_never_unchecked_text(llamacpp_server: str) -> None:
    """llama-cpp-python's schema-to-grammar converter drops `minimum`/`maximum`: our check on the returned text
    turns a violation into a clear error instead of handing it on."""
    llm = load_llm(f"openai:{llamacpp_server}?context_length=2048#gemma")
    params = SamplingParams(max_tokens=20, temperature=0.0, json_schema=SCHEMA)
    try:
        result = llm.complete("Q: What is 3 + 4? Answer as JSON.\nA:", params)
    except UserError as error:
        assert "did not honour the json_schema" in str(error) and "use a server that enforces it" in str(error)
    else:
        assert 0 <= json.loads(result.text)["answer"] <= 99


@pytest.mark.slow
def test_reasonlab_serve_roundtrip_matches_the_in_process_model(reasonlab_server: str, embedded_hf) -> None:
    llm = load_llm(f"openai:{reasonlab_server}#gemma")
    assert llm.context_length == embedded_hf.context_length
    params = SamplingParams(max_tokens=10, temperature=0.0)
    remote = llm.generate(["The capital of France is", "One, two, three,"], params)
    local = embedded_hf.generate(["The capital of France is", "One, two, three,"], params)
    assert [g[0].text for g in remote] == [g[0].text for g in local]
    assert [g[0].token_ids for g in remote] == [g[0].token_ids for g in local]
    assert llm.tokenize("hello world") == embedded_hf.tokenize("hello world")


@pytest.mark.slow
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


@pytest.mark.parametrize("reply", [{"object": "text_completion"}, {"choices": []}, {"choices": ["text"]}, ["x"]])
def test_a_200_reply_of_another_shape_is_one_line_not_a_traceback(serve, reply: Any) -> None:
    fake = serve({"GET /v1/models": VLLM, "POST /v1/completions": (200, reply), "POST /tokenize": (200, reply)})
    llm = connect(fake)
    with pytest.raises(UserError, match=r"answered /completions without choices .*OpenAI-compatible server"):
        llm.complete("hi", SamplingParams(max_tokens=2))
    with pytest.raises(UserError, match=r"answered tokenize without a list of token ids"):
        llm.tokenize("hi")
