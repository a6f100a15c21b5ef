"""Fuzz `reasonlab serve` as a real process: a few hundred random and malformed requests, on the hf backend (a tiny
random Llama) and the llamacpp backend (the embedded Gemma GGUF). Every answer must be a well-formed HTTP response
below 500 (errors with an OpenAI-shaped body), the process must live through all of them, and a normal request
must still work afterwards.

Reproduce (the counts go to stdout; REASONLAB_FUZZ_REPORT=FILE appends them to FILE):
    OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/llm/test_serve_fuzz.py -s -m "slow or not slow"
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

VALID_SCHEMA = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 9}},
                "required": ["a"]}
VALID_CONSTRAINTS: list[dict[str, Any]] = [
    {"guided_json": VALID_SCHEMA}, {"guided_regex": "[0-9]{1,2}"}, {"guided_grammar": 'root ::= "yes" | "no"'},
    {"response_format": {"type": "json_object"}},
]
ODD_NUMBERS = [0, -1, -(2**63), 2**63, 2**70, 10**9, 1e308, -1e308, 5e-324, 0.5, "3", True, None, [], {}]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "", "image/png",
                 "multipart/form-data; boundary=x", "application/json; charset=latin-1"]
GRAMMAR_PIECES = ["root", " ::= ", '"a"', "|", "(", ")", "*", "+", "?", "[a-z]", "[^", "{2,3}", "{9999999}", "x",
                  "\n", "\\", '"', "::=", "root ::= root", "#"]
REGEX_PIECES = ["(", ")", "[", "]", "{", "}", "*", "+", "?", "|", "^", "$", "\\", ".", "a-z", "0", "{1,99999}",
                "(?=", "(?<", "\\p{L}", "\\1", ","]


@dataclass
class FuzzRequest:
    method: str
    path: str
    body: bytes
    content_type: str = "application/json"


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value: odd numbers, unicode and escapes, nested lists and objects."""
    kind = rng.choice(["null", "bool", "number", "string", "list", "object"] if depth < 4 else ["number", "string"])
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "number":
        return rng.choice([*[n for n in ODD_NUMBERS if isinstance(n, (int, float))], rng.randint(-5, 400)])
    if kind == "string":
        return "".join(rng.choice(["a", "é", "\u2603", "\x00", '"', "\\", " ", "\n", "𝄞", "role", "{"])
                       for _ in range(rng.randint(0, 12)))
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["prompt", "messages", "model", "n", "max_tokens", "stream", "type", "properties", "x", "tokens"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def valid_completion(rng: random.Random, vocab_size: int) -> dict[str, Any]:
    prompt: Any = rng.choice(["The capital", "One, two", "", "é\u2603𝄞",
                              [rng.randrange(vocab_size) for _ in range(rng.randint(1, 5))]])
    body: dict[str, Any] = {"model": "fuzz", "prompt": prompt, "max_tokens": rng.randint(1, 3),
                            "temperature": rng.choice([0, 0.7, 1.0, 1e-30, 1e30]), "seed": rng.randint(0, 99),
                            "stream": rng.random() < 0.3, "n": rng.choice([1, 1, 2])}
    if rng.random() < 0.3:
        body.update(rng.choice(VALID_CONSTRAINTS))
    if rng.random() < 0.3:
        body["logprobs"] = rng.randint(0, 3)
    if rng.random() < 0.2:
        body["stop"] = rng.choice(["\n", ["a", ""], [","]])
    return body


def valid_chat(rng: random.Random) -> dict[str, Any]:
    roles = ["system", "user", "assistant", "developer", "tool", "user"]
    messages = [{"role": rng.choice(roles), "content": rng.choice(["hi", "", "Name a colour.", None,
                                                                    [{"type": "text", "text": "hi"}]])}
                for _ in range(rng.randint(1, 3))]
    body: dict[str, Any] = {"model": "fuzz", "messages": messages, "max_tokens": rng.randint(1, 3),
                            "temperature": rng.choice([0, 1.0]), "seed": rng.randint(0, 99),
                            "stream": rng.random() < 0.3}
    if rng.random() < 0.3:
        body["logprobs"] = True
        body["top_logprobs"] = rng.randint(0, 3)
    if rng.random() < 0.3:
        body.update(rng.choice(VALID_CONSTRAINTS))
    return body


def mutated(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    """One to three fields set to a value of the wrong kind, a huge or negative number, or random JSON."""
    body = dict(body)
    fields = ["prompt", "messages", "model", "n", "max_tokens", "temperature", "top_p", "seed", "stream", "stop",
              "logprobs", "top_logprobs", "guided_json", "guided_regex", "guided_grammar", "response_format",
              "stream_options", "logit_bias", "best_of"]
    for _ in range(rng.randint(1, 3)):
        body[rng.choice(fields)] = rng.choice(ODD_NUMBERS) if rng.random() < 0.5 else random_json(rng)
    # a large valid n or max_tokens would only make a slow request, not a malformed one
    if isinstance(body.get("n"), int) and 2 < body["n"] <= 128:
        body["n"] = 129
    if (isinstance(body.get("max_tokens"), int) and 3 < body["max_tokens"] < 10**6) or body.get("max_tokens") is None:
        body["max_tokens"] = 10**9
    return body


def bad_constraint(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["grammar", "regex", "schema", "schema"])
    if kind == "grammar":
        return {"guided_grammar": "".join(rng.choice(GRAMMAR_PIECES) for _ in range(rng.randint(0, 10)))}
    if kind == "regex":
        return {"guided_regex": "".join(rng.choice(REGEX_PIECES) for _ in range(rng.randint(0, 8)))}
    schema = json.loads(json.dumps(VALID_SCHEMA))
    target = rng.choice([schema, schema["properties"]["a"]])
    target[rng.choice(["type", "minimum", "maximum", "properties", "required", "items", "enum", "$ref", "pattern",
                       "anyOf", "uniqueItems", "not", "format", "minLength"])] = random_json(rng)
    return {"guided_json": schema if rng.random() < 0.8 else random_json(rng)}


KINDS = ["completion", "chat", "mutated", "mutated", "constraint", "token_ids", "random_json", "bytes", "tokenize",
         "route"]
# a real model pays for every request that decodes: fewer well-formed ones, the same malformed ones
KINDS_FOR_A_REAL_MODEL = ["completion", "mutated", "constraint", "constraint", "token_ids", "token_ids",
                          "random_json", "bytes", "tokenize", "route"]


def random_requests(rng: random.Random, count: int, vocab_size: int, kinds: list[str] = KINDS) -> Iterator[FuzzRequest]:
    """`count` requests across every kind of input the issue names (deterministic for one rng seed)."""
    for _ in range(count):
        kind = rng.choice(kinds)
        path = "/v1/chat/completions" if rng.random() < 0.5 else "/v1/completions"
        if kind == "completion":
            yield FuzzRequest("POST", "/v1/completions", json.dumps(valid_completion(rng, vocab_size)).encode())
        elif kind == "chat":
            yield FuzzRequest("POST", "/v1/chat/completions", json.dumps(valid_chat(rng)).encode())
        elif kind == "mutated":
            base = valid_chat(rng) if path.endswith("chat/completions") else valid_completion(rng, vocab_size)
            yield FuzzRequest("POST", path, json.dumps(mutated(rng, base)).encode())
        elif kind == "constraint":
            base = valid_chat(rng) if path.endswith("chat/completions") else valid_completion(rng, vocab_size)
            for key in ("guided_json", "guided_regex", "guided_grammar", "response_format"):
                base.pop(key, None)
            yield FuzzRequest("POST", path, json.dumps({**base, **bad_constraint(rng)}).encode())
        elif kind == "token_ids":
            ids = [rng.choice([-1, vocab_size, vocab_size + 5, 2**31, 2**63, -(2**63), rng.randrange(vocab_size)])
                   for _ in range(rng.randint(0, 4))]
            target = rng.choice(["/detokenize", "/v1/completions"])
            body = {"tokens": ids} if target == "/detokenize" else {"prompt": ids, "max_tokens": 2, "model": "fuzz"}
            yield FuzzRequest("POST", target, json.dumps(body).encode())
        elif kind == "random_json":
            yield FuzzRequest("POST", rng.choice([path, "/tokenize", "/detokenize"]),
                              json.dumps(random_json(rng)).encode(), rng.choice(CONTENT_TYPES))
        elif kind == "bytes":
            valid = json.dumps(valid_completion(rng, vocab_size)).encode()
            body = rng.choice([b"", rng.randbytes(rng.randint(1, 64)), valid[: rng.randint(0, len(valid))],
                               b"[" * 5000, b'{"prompt": "x", "max_tokens": Infinity}', b"\xef\xbb\xbf{}",
                               b"{\"prompt\": \"\\ud83d\"}"])
            yield FuzzRequest("POST", path, body, rng.choice(CONTENT_TYPES))
        elif kind == "tokenize":
            body = {"prompt": random_json(rng)} if rng.random() < 0.5 else {"messages": random_json(rng)}
            yield FuzzRequest("POST", "/tokenize", json.dumps(body).encode())
        else:
            method = rng.choice(["GET", "PUT", "DELETE", "POST"])
            yield FuzzRequest(method, rng.choice(["/", "/v1", "/v1/models", "/health", path, "/../../etc/passwd",
                                                  "/v1/completions/", "/%ff"]), b"{}")


def send(port: int, request: FuzzRequest) -> tuple[int | str, bytes, str]:
    """Status (or 'dropped'), body and content type of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": request.content_type} if request.content_type else {}
    try:
        connection.request(request.method, request.path, body=request.body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    except (ConnectionError, http.client.HTTPException, OSError):
        return "dropped", b"", ""
    finally:
        connection.close()


def problem_with(status: int | str, body: bytes, content_type: str) -> str | None:
    """Why a response is not acceptable, or None."""
    if status == "dropped":
        return "the connection dropped without an answer"
    assert isinstance(status, int)
    if status >= 500:
        return f"status {status}: {body[:300]!r}"
    if content_type.startswith("text/event-stream"):
        events = body.decode().split("\n\n")
        ok = events[-2:] == ["data: [DONE]", ""] and all(json.loads(e.removeprefix("data: ")) for e in events[:-2])
        return None if ok else f"bad event stream {body[-200:]!r}"
    try:
        data = json.loads(body)
    except ValueError:
        return f"status {status} with a body that is not JSON: {body[:200]!r}"
    if status >= 400 and not (isinstance(data.get("error"), dict)
                              and set(data["error"]) == {"message", "type", "param", "code"}
                              and "\n" not in data["error"]["message"]):
        return f"status {status} without an OpenAI error body: {data}"
    return None


def raw_garbage(port: int) -> list[bytes]:
    """Bytes that are not HTTP at all: the server must answer 4xx (or just close) and keep running."""
    answers = []
    for payload in (b"GARBAGE\r\n\r\n", b"\x00\xff" * 50 + b"\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\n"
                    b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(payload)
            try:
                answers.append(sock.recv(64))
            except OSError:
                answers.append(b"")
    return answers


def fuzz(process: Any, port: int, count: int, vocab_size: int, seed: int = 0, kinds: list[str] = KINDS) -> Counter:
    """Send `count` requests; return the outcome histogram; fail on any unacceptable answer or a dead server."""
    outcomes: Counter = Counter()
    problems = []
    for request in random_requests(random.Random(seed), count, vocab_size, kinds):
        status, body, content_type = send(port, request)
        outcomes[status] += 1
        problem = problem_with(status, body, content_type)
        if problem:
            problems.append(f"{request.method} {request.path} {request.body[:300]!r}: {problem}")
        assert process.poll() is None, f"the server died on {request}"
    for answer in raw_garbage(port):
        outcomes["raw " + (answer[:12].decode(errors="replace") or "closed")] += 1
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer
    assert process.poll() is None, "the server died on raw garbage"
    assert not problems, "\n".join(problems[:20])
    return outcomes


def normal_request_works(port: int) -> None:
    body = {"model": "fuzz", "prompt": "The capital", "max_tokens": 2, "temperature": 0}
    status, answer, _ = send(port, FuzzRequest("POST", "/v1/completions", json.dumps(body).encode()))
    assert status == 200 and json.loads(answer)["choices"][0]["token_ids"]


def report(backend: str, count: int, outcomes: Counter, seconds: float) -> None:
    histogram = ", ".join(f"{key}: {value}" for key, value in sorted(outcomes.items(), key=lambda kv: str(kv[0])))
    dropped = outcomes.get("dropped", 0)
    line = (f"{backend}: {count} requests + 4 raw non-HTTP payloads in {seconds:.1f} s, {dropped} dropped "
            f"connections, 0 responses >= 500, server alive and answering; statuses: {histogram}")
    print(line)
    if os.environ.get("REASONLAB_FUZZ_REPORT"):
        with open(os.environ["REASONLAB_FUZZ_REPORT"], "a") as sink:
            sink.write(f"- {line}\n")


# llama.cpp on one thread: on a busy 2-core machine two threads spin-wait each other ~10x slower
LLAMACPP_SERVER = """
import sys
from reasonlab.llm.embedded import embedded_gemma_gguf
from reasonlab.llm.llamacpp import LlamaCppLLM
from reasonlab.llm.serve import make_server
llm = LlamaCppLLM(embedded_gemma_gguf(), n_ctx=512, n_threads=1, name="llamacpp:embedded")
make_server(llm, port=int(sys.argv[1]), model_name="fuzz").serve_forever()
"""


@pytest.fixture(scope="module")
def hf_serve(serve_process, tiny_hf_folder: Path) -> tuple[Any, int]:
    return serve_process([sys.executable, "-m", "reasonlab.cli", "serve", "--llm", f"hf:{tiny_hf_folder}",
                          "--model-name", "fuzz", "--port"])


@pytest.fixture(scope="module")
def llamacpp_serve(serve_process) -> tuple[Any, int]:
    pytest.importorskip("llama_cpp", reason="the llamacpp extra is not installed")
    return serve_process([sys.executable, "-c", LLAMACPP_SERVER])


def test_hf_serve_survives_random_and_malformed_requests(hf_serve: tuple[Any, int]) -> None:
    process, port = hf_serve
    count = int(os.environ.get("REASONLAB_FUZZ_REQUESTS", 500))
    started = time.perf_counter()
    outcomes = fuzz(process, port, count, vocab_size=300)
    normal_request_works(port)
    report("hf (tiny random Llama)", count, outcomes, time.perf_counter() - started)
    assert outcomes[200] >= count // 10 and outcomes[400] >= count // 3


@pytest.mark.slow
def test_llamacpp_serve_survives_random_and_malformed_requests(llamacpp_serve: tuple[Any, int]) -> None:
    process, port = llamacpp_serve
    count = int(os.environ.get("REASONLAB_FUZZ_REQUESTS", 200))
    started = time.perf_counter()
    outcomes = fuzz(process, port, count, vocab_size=262144, seed=1, kinds=KINDS_FOR_A_REAL_MODEL)
    normal_request_works(port)
    report("llamacpp (embedded Gemma-3-270M GGUF)", count, outcomes, time.perf_counter() - started)
    assert outcomes[200] >= count // 20 and outcomes[400] >= count // 2
