"""`reasonlab serve`: an OpenAI-compatible HTTP server over any reasonlab LLM, so other tools can use its models.

Endpoints: GET /v1/models, GET /health, POST /v1/completions, POST /v1/chat/completions, POST /tokenize,
POST /detokenize. Requests may carry a JSON schema (`response_format`, `guided_json`, `json_schema`), a
regex (`guided_regex`, `regex`) or a grammar (`guided_grammar`, `grammar`) for constrained decoding, and
completions return the generated `token_ids` beside the text. Requests are served one at a time (in-process
models are not thread-safe); streaming is not supported.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM, Generation, Message, SamplingParams

__all__ = ["make_server", "sampling_from_request"]


def sampling_from_request(body: dict[str, Any]) -> SamplingParams:
    """Map an OpenAI-style request body onto SamplingParams."""
    stop = body.get("stop") or []
    schema = body.get("guided_json") or body.get("json_schema")
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema", {}).get("schema")
    elif response_format.get("type") == "json_object":
        schema = {"type": "object"}
    return SamplingParams(
        temperature=body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0,
        top_p=body.get("top_p") or 1.0,
        max_tokens=body.get("max_tokens") or body.get("max_completion_tokens") or 16,
        stop=[stop] if isinstance(stop, str) else list(stop),
        seed=body.get("seed"),
        n=body.get("n") or 1,
        json_schema=schema,
        regex=body.get("guided_regex") or body.get("regex"),
        grammar=body.get("guided_grammar") or body.get("grammar"),
        logprobs=bool(body.get("logprobs")),
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            llm = self.server.llm
            model = {"id": self.server.model_name, "object": "model", "owned_by": "reasonlab",
                     "max_model_len": llm.context_length}
            self._send(200, {"object": "list", "data": [model]})
        elif self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
        except (ValueError, json.JSONDecodeError):
            self._error(400, "request body is not valid JSON")
            return
        routes = {
            "/v1/completions": self._completions,
            "/v1/chat/completions": self._chat,
            "/tokenize": self._tokenize,
            "/detokenize": self._detokenize,
        }
        route = routes.get(self.path.rstrip("/"))
        if route is None:
            self._error(404, f"no route POST {self.path}")
            return
        if body.get("stream"):
            self._error(400, "streaming is not supported by reasonlab serve: send stream=false")
            return
        try:
            with self.server.lock:
                self._send(200, route(body))
        except (ValidationError, UserError, ValueError, TypeError, KeyError) as err:
            self._error(400, " ".join(str(err).split())[:500])

    def _tokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        tokens = self.server.llm.tokenize(body.get("prompt", body.get("input", "")))
        return {"tokens": tokens, "count": len(tokens), "max_model_len": self.server.llm.context_length}

    def _detokenize(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": self.server.llm.detokenize(body["tokens"])}

    def _completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt", "")
        prompts = prompt if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int) else [prompt]
        params = sampling_from_request(body)
        groups = self.server.llm.generate(prompts, params)
        choices = []
        for generation in (g for group in groups for g in group):
            choice: dict[str, Any] = {"index": len(choices), "text": generation.text, "token_ids": generation.token_ids,
                                      "finish_reason": _finish(generation)}
            if params.logprobs and generation.logprobs is not None:
                tokens = [self.server.llm.detokenize([t]) for t in generation.token_ids]
                choice["logprobs"] = {"tokens": tokens, "token_logprobs": generation.logprobs}
            else:
                choice["logprobs"] = None
            choices.append(choice)
        return self._response("text_completion", choices, groups)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = [Message(role=m["role"], content=m.get("content") or "") for m in body.get("messages", [])]
        params = sampling_from_request(body).model_copy(update={"logprobs": False})
        groups = self.server.llm.generate([messages], params)
        choices = [
            {"index": i, "message": {"role": "assistant", "content": g.text}, "finish_reason": _finish(g)}
            for i, g in enumerate(groups[0])
        ]
        return self._response("chat.completion", choices, groups)

    def _response(self, kind: str, choices: list[dict[str, Any]], groups: list[list[Generation]]) -> dict[str, Any]:
        prompt_tokens = sum(group[0].prompt_tokens for group in groups if group)
        completion_tokens = sum(g.completion_tokens for group in groups for g in group)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": kind, "created": int(time.time()),
            "model": self.server.model_name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


def _finish(generation: Generation) -> str:
    return "length" if generation.finish_reason == "length" else "stop"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], llm: LLM, model_name: str) -> None:
        super().__init__(address, _Handler)
        self.llm = llm
        self.model_name = model_name
        self.lock = threading.Lock()


def make_server(llm: LLM, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None) -> _Server:
    """An HTTP server (call `serve_forever()`); port 0 picks a free port (see `server.server_address`)."""
    try:
        return _Server((host, port), llm, model_name or llm.name)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}): pick another --port") from None
