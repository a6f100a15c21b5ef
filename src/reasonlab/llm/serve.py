"""`reasonlab serve`: an OpenAI-compatible HTTP server over any reasonlab LLM (FastAPI + uvicorn).

Endpoints: GET /v1/models, GET /health, POST /v1/completions, POST /v1/chat/completions, POST /tokenize,
POST /detokenize. Requests follow the OpenAI API (pydantic models below) plus vLLM's vendor fields: a JSON
schema (`response_format`, `guided_json`, `json_schema`), a regex (`guided_regex`, `regex`) or a grammar
(`guided_grammar`, `grammar`) for constrained decoding; completions return the generated `token_ids`.

- `stream=true` answers with server-sent events in OpenAI's chunk format, ending with `data: [DONE]`. One
  completion streams for real: a worker thread holds the model lock and iterates the backend's `stream`, and each
  token's event leaves as it is decoded; a client that disconnects stops the decoding. Several completions
  (n > 1, several prompts) are decoded as one batch first, then sent as one event per token.
- Every refused request is a 4xx with an OpenAI-shaped body `{"error": {"message", "type", "param", "code"}}`
  whose message is one sentence naming the field and the fix. Constraints, token ids and chat roles are checked
  before they reach native code; a 500 means a bug in reasonlab and carries the same body.
- In-process models are not thread-safe: one lock serializes every call into the model.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM, BaseLLM, Generation, Message, SamplingParams, StreamDelta
from reasonlab.llm.constrained import check_constraint

__all__ = ["ChatRequest", "CompletionRequest", "Server", "create_app", "make_server", "sampling_from_request"]

MAX_BODY_BYTES = 8 * 2**20
MAX_COMPLETIONS = 256  # prompts x n in one request
MAX_STOP_STRINGS = 16
LOGPROB_FLOOR = -9999.0  # JSON has no -inf; vLLM reports impossible tokens the same way
DEFAULT_MAX_TOKENS = {"completion": 16, "chat": 256}


class RequestError(Exception):
    """A request the server refuses: HTTP status, one-line message, and the offending field."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.status, self.param, self.code = status, param, code


# request models (OpenAI's fields; vendor fields ride along as extras)


class StreamOptions(BaseModel):
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    name: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class _GenerationRequest(BaseModel):
    """Fields shared by completions and chat completions."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    n: int = Field(1, ge=1, le=128)
    stop: Any = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = Field(None, allow_inf_nan=False)
    frequency_penalty: float | None = Field(None, allow_inf_nan=False)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None
    guided_json: Any = None  # a schema object, or one as a JSON string (vLLM)
    json_schema: Any = None
    guided_regex: str | None = None
    regex: str | None = None
    guided_grammar: str | None = None
    grammar: str | None = None
    structured_outputs: dict[str, Any] | None = None
    return_token_ids: bool | None = None

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, stop: Any) -> str | list[str] | None:
        if stop is None or isinstance(stop, str):
            return stop
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ValueError("give a string or a list of strings")
        if len(stop) > MAX_STOP_STRINGS:
            raise ValueError(f"give at most {MAX_STOP_STRINGS} stop strings")
        return stop


class CompletionRequest(_GenerationRequest):
    """POST /v1/completions. `prompt`: text, token ids, or a list of either."""

    prompt: Any = None
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(_GenerationRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Any] | None = None
    functions: list[Any] | None = None


class TokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    add_special_tokens: bool = True


class DetokenizeRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    tokens: list[int]


# request -> SamplingParams


def sampling_from_request(request: _GenerationRequest, kind: Literal["completion", "chat"] = "completion",
                          top_logprobs: int = 0, logprobs: bool = False) -> SamplingParams:
    """Map an OpenAI-style request onto SamplingParams, refusing what the server cannot honour."""
    _refuse_unsupported(request)
    stop = request.stop if isinstance(request.stop, list) else [request.stop] if request.stop else []
    max_tokens = request.max_tokens or getattr(request, "max_completion_tokens", None) or DEFAULT_MAX_TOKENS[kind]
    try:
        params = SamplingParams(
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            max_tokens=max_tokens, stop=stop, seed=request.seed, n=request.n,
            logprobs=logprobs, top_logprobs=top_logprobs, **_constraint(request),
        )
    except ValidationError as err:
        raise RequestError(_validation_message(err)) from None
    check_constraint(params)
    return params


def _refuse_unsupported(request: _GenerationRequest) -> None:
    unsupported = {
        "presence_penalty": bool(request.presence_penalty), "frequency_penalty": bool(request.frequency_penalty),
        "logit_bias": bool(request.logit_bias), "echo": bool(getattr(request, "echo", False)),
        "suffix": bool(getattr(request, "suffix", None)), "tools": bool(getattr(request, "tools", None)),
        "functions": bool(getattr(request, "functions", None)),
        "best_of": getattr(request, "best_of", None) not in (None, request.n),
    }
    for name, given in unsupported.items():
        if given:
            raise RequestError(f"reasonlab serve does not support '{name}': leave it out of the request", param=name)


def _constraint(request: _GenerationRequest) -> dict[str, Any]:
    """The one constraint of a request, from any of the field names clients use; two different ones are refused."""
    structured = request.structured_outputs or {}
    if set(structured) - {"json", "regex", "grammar"}:
        raise RequestError("structured_outputs takes json, regex or grammar", param="structured_outputs")
    schemas = [_schema_value(v, name) for name, v in (("guided_json", request.guided_json),
               ("json_schema", request.json_schema), ("structured_outputs.json", structured.get("json")))]
    schemas.append(_response_format_schema(request.response_format))
    found = {
        "json_schema": _one_value([s for s in schemas if s is not None], "JSON schema"),
        "regex": _one_value([v for v in (request.guided_regex, request.regex, structured.get("regex")) if v is not None],
                            "regex"),
        "grammar": _one_value([v for v in (request.guided_grammar, request.grammar, structured.get("grammar"))
                               if v is not None], "grammar"),
    }
    given = {name: value for name, value in found.items() if value is not None}
    if len(given) > 1:
        raise RequestError(f"give at most one constraint (got {' and '.join(given)}): drop all but one")
    for name, value in given.items():
        if name != "json_schema" and not isinstance(value, str):
            raise RequestError(f"the {name} must be a string", param=name)
    return given


def _schema_value(value: Any, name: str) -> dict[str, Any] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RequestError(f"{name} is a string but not JSON: send the schema as an object", param=name) from None
    if value is not None and not isinstance(value, dict):
        raise RequestError(f"{name} must be a JSON object (a schema)", param=name)
    return value


def _response_format_schema(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {"type": "object"}
    if response_format.json_schema is None:
        raise RequestError("response_format of type json_schema needs json_schema.schema",
                           param="response_format.json_schema")
    return response_format.json_schema.schema_


def _one_value(values: list[Any], what: str) -> Any:
    distinct = {json.dumps(v, sort_keys=True) for v in values}
    if len(distinct) > 1:
        raise RequestError(f"the request carries {len(distinct)} different {what}s: send one")
    return values[0] if values else None


def completion_prompts(prompt: Any) -> list[str | list[int]]:
    """OpenAI's `prompt`: a string, token ids, or a non-empty list of either."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(_is_token_id(t) for t in prompt):
        return [list(prompt)]
    if isinstance(prompt, list) and prompt and all(
        isinstance(p, str) or (isinstance(p, list) and p and all(_is_token_id(t) for t in p)) for p in prompt
    ):
        return list(prompt)
    raise RequestError("prompt must be a string, a list of token ids, or a non-empty list of strings or of "
                       "non-empty token id lists", param="prompt")


def _is_token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def chat_messages(messages: list[ChatMessage]) -> list[Message]:
    """Chat messages as reasonlab Messages; `developer` is OpenAI's newer name for `system`."""
    return [Message(role="system" if m.role == "developer" else m.role, content=_text_content(m, i))
            for i, m in enumerate(messages)]


def _text_content(message: ChatMessage, index: int) -> str:
    if message.content is None or isinstance(message.content, str):
        return message.content or ""
    parts = []
    for part in message.content:
        if part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise RequestError(f"messages.{index}.content: only text parts ({{'type': 'text', 'text': ...}}) are "
                               "supported", param=f"messages.{index}.content")
        parts.append(part["text"])
    return "".join(parts)


# responses


def _finish(generation: Generation) -> str:
    return "length" if generation.finish_reason == "length" else "stop"


def _finite(logprob: float) -> float:
    return logprob if logprob == logprob and logprob > LOGPROB_FLOOR else LOGPROB_FLOOR


class _Renderer:
    """Turns generations into OpenAI response bodies and stream chunks for one request."""

    def __init__(self, llm: LLM, model_name: str, kind: Literal["completion", "chat"], top_logprobs: int) -> None:
        self.llm, self.model_name, self.kind, self.top_logprobs = llm, model_name, kind, top_logprobs
        self.id = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())

    def token_text(self, token: int) -> str:
        return self.decode([token])

    def decode(self, token_ids: list[int]) -> str:
        try:
            return self.llm.detokenize(token_ids)
        except UserError:  # an id from a padding row of a wider output layer: no text
            return ""

    def usage(self, groups: list[list[Generation]]) -> dict[str, int]:
        prompt_tokens = sum(group[0].prompt_tokens for group in groups if group)
        completion_tokens = sum(g.completion_tokens for group in groups for g in group)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def envelope(self, choices: list[dict[str, Any]], chunk: bool = False) -> dict[str, Any]:
        kind = {"completion": "text_completion", "chat": "chat.completion.chunk" if chunk else "chat.completion"}
        return {"id": self.id, "object": kind[self.kind], "created": self.created, "model": self.model_name,
                "choices": choices}

    def logprobs(self, generation: Generation) -> dict[str, Any] | None:
        """OpenAI logprobs of a whole generation."""
        if generation.logprobs is None:
            return None
        return self.format_logprobs(generation.token_ids, generation.logprobs, generation.top_logprobs)

    def format_logprobs(self, token_ids: list[int], logprobs: list[float],
                        top_logprobs: list[dict[int, float]] | None) -> dict[str, Any]:
        """OpenAI logprobs of some tokens: `content` entries for chat, token lists for completions."""
        tokens = [self.token_text(t) for t in token_ids]
        values = [_finite(v) for v in logprobs]
        tops = (top_logprobs or []) if self.top_logprobs else []
        top_named = [[(self.token_text(t), _finite(v)) for t, v in top.items()] for top in tops]
        if self.kind == "chat":
            return {"content": [
                {"token": text, "logprob": value, "bytes": list(text.encode()),
                 "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())}
                                  for t, v in (top_named[i] if i < len(top_named) else [])]}
                for i, (text, value) in enumerate(zip(tokens, values, strict=True))]}
        offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
        return {"tokens": tokens, "token_logprobs": values, "text_offset": offsets,
                "top_logprobs": [dict(named) for named in top_named] if self.top_logprobs else None}

    def body(self, groups: list[list[Generation]]) -> dict[str, Any]:
        choices = []
        for generation in (g for group in groups for g in group):
            choice: dict[str, Any] = {"index": len(choices), "logprobs": self.logprobs(generation),
                                      "finish_reason": _finish(generation), "token_ids": generation.token_ids}
            if self.kind == "chat":
                choice["message"] = {"role": "assistant", "content": generation.text}
            else:
                choice["text"] = generation.text
            choices.append(choice)
        return {**self.envelope(choices), "usage": self.usage(groups)}

    def stream(self, groups: list[list[Generation]], include_usage: bool) -> Iterator[str]:
        """Server-sent events of whole generations: per choice one chunk per token, then its finish_reason."""
        for index, generation in enumerate(g for group in groups for g in group):
            yield from self.opening(index)
            yield from self.delta_events(index, _whole_delta(generation))
        if include_usage:
            yield self.usage_event(self.usage(groups))
        yield "data: [DONE]\n\n"

    def opening(self, index: int) -> Iterator[str]:
        """The first chunk of a chat choice: the assistant role (completions have none)."""
        if self.kind == "chat":
            yield _event(self.envelope([{"index": index, "delta": {"role": "assistant", "content": ""},
                                         "logprobs": None, "finish_reason": None}], chunk=True))

    def delta_events(self, index: int, delta: StreamDelta) -> Iterator[str]:
        """One chunk per token of a delta (a multi-token delta is a whole completion, split at token
        boundaries), then a chunk with the finish_reason if the delta is the last."""
        single = [delta.text] if len(delta.token_ids) <= 1 else self._pieces(delta.text, delta.token_ids)
        for position, piece in enumerate(single):
            ids = delta.token_ids[position : position + 1] if len(delta.token_ids) > 1 else delta.token_ids
            values = (delta.logprobs or [])[position : position + len(ids)]
            logprobs = None
            if delta.logprobs is not None and len(values) == len(ids):
                logprobs = self.format_logprobs(ids, values, (delta.top_logprobs or [])[position : position + len(ids)])
            choice: dict[str, Any] = {"index": index, "logprobs": logprobs, "finish_reason": None}
            if self.kind == "chat":
                choice.update(delta={"content": piece}, token_ids=ids)
            else:
                choice.update(text=piece, token_ids=ids)
            yield _event(self.envelope([choice], chunk=True))
        if delta.finish_reason is not None:
            last: dict[str, Any] = {"index": index, "logprobs": None,
                                    "finish_reason": "length" if delta.finish_reason == "length" else "stop"}
            last.update({"delta": {}} if self.kind == "chat" else {"text": ""})
            yield _event(self.envelope([last], chunk=True))

    def usage_event(self, usage: dict[str, int]) -> str:
        return _event({**self.envelope([], chunk=True), "usage": usage})

    def _pieces(self, text: str, token_ids: list[int]) -> list[str]:
        """The text split at token boundaries, one piece per token; the pieces join to exactly `text`."""
        pieces: list[str] = []
        sent = 0
        for count in range(1, len(token_ids) + 1):
            prefix = self.decode(token_ids[:count]) if text else ""
            # a token that ends mid-character, or past a stop string, adds nothing yet
            reach = sent
            while reach < min(len(prefix), len(text)) and prefix[reach] == text[reach]:
                reach += 1
            if prefix.endswith("\ufffd"):
                reach = min(reach, len(prefix) - 1)
            pieces.append(text[sent:reach])
            sent = max(sent, reach)
        if pieces:
            pieces[-1] += text[sent:]
        return pieces


def _whole_delta(generation: Generation) -> StreamDelta:
    return StreamDelta(text=generation.text, token_ids=list(generation.token_ids), logprobs=generation.logprobs,
                       top_logprobs=generation.top_logprobs, finish_reason=generation.finish_reason,
                       prompt_tokens=generation.prompt_tokens)


def _event(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _is_type_tag(part: Any) -> bool:
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "list", "dict"})


def _validation_message(err: ValidationError) -> str:
    """The first problem of a pydantic error as one sentence: field, what is wrong (no URL, no dump)."""
    first = err.errors(include_url=False)[0]
    # a union's members show up in the location as type names ('str', 'list[str]'): not the user's field names
    location = ".".join(str(part) for part in first["loc"] if not _is_type_tag(part))
    message = first["msg"].replace("Value error, ", "")
    return f"invalid '{location}': {message}" if location else message


# the app


class _Service:
    """The model behind the app, its public name, and the lock that serializes calls into it."""

    def __init__(self, llm: LLM, model_name: str) -> None:
        self.llm, self.model_name = llm, model_name
        self.lock = threading.Lock()

    def check_model(self, model: str | None) -> None:
        if model is not None and model != self.model_name:
            raise RequestError(f"model '{model}' is not served here: use '{self.model_name}' (GET /v1/models)",
                               param="model", code="model_not_found")

    def check_size(self, prompts: list[Any], params: SamplingParams) -> None:
        if len(prompts) * params.n > MAX_COMPLETIONS:
            raise RequestError(f"{len(prompts)} prompts x n={params.n} asks for more than {MAX_COMPLETIONS} "
                               "completions: split the request", param="n")

    def respond(self, renderer: _Renderer, prompts: list[Any], params: SamplingParams,
                stream: bool, include_usage: bool) -> dict[str, Any] | list[str]:
        """Generate and render under the lock: the response body, or the list of stream events."""
        with self.lock:
            groups = self.llm.generate(prompts, params)
            return list(renderer.stream(groups, include_usage)) if stream else renderer.body(groups)

    def tokenize(self, request: TokenizeRequest) -> list[int]:
        with self.lock:
            if request.messages:
                if not isinstance(self.llm, BaseLLM):
                    raise RequestError("this backend cannot render chat messages: send 'prompt'", param="messages")
                text = self.llm.render_chat(chat_messages(request.messages))
            elif request.prompt is not None:
                text = request.prompt
            else:
                raise RequestError("tokenize needs 'prompt' (text) or 'messages'", param="prompt")
            if request.add_special_tokens:
                return self.llm.tokenize(text)
            return self.llm.tokenize(text, add_special_tokens=False)  # type: ignore[call-arg]

    def detokenize(self, tokens: list[int]) -> str:
        with self.lock:
            return self.llm.detokenize(tokens)


_END = object()


class _TokenStream:
    """One completion as it is decoded: a worker thread holds the model lock, iterates the backend's `stream` and
    hands each delta (or an exception) to the event loop; `stop()` ends decoding at the next token."""

    def __init__(self, service: _Service, prompt: Any, params: SamplingParams) -> None:
        self.service, self.prompt, self.params = service, prompt, params
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stopped = threading.Event()
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._produce, name="reasonlab-stream", daemon=True).start()

    def _produce(self) -> None:
        try:
            with self.service.lock:
                if self.stopped.is_set():
                    return
                deltas = _deltas(self.service.llm, self.prompt, self.params)
                try:
                    for delta in deltas:
                        self._put(delta)
                        if self.stopped.is_set():
                            break
                finally:
                    deltas.close()
        except Exception as err:  # handed to the request: a 4xx before the first token, an error event after it
            self._put(err)
        finally:
            self._put(_END)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            self.stopped.set()

    async def next(self) -> Any:
        """The next delta, an exception, or `_END`."""
        return await self.queue.get()

    def stop(self) -> None:
        self.stopped.set()


def _deltas(llm: LLM, prompt: Any, params: SamplingParams) -> Generator[StreamDelta, None, None]:
    """The backend's own stream where it has one; otherwise the whole completion as one delta."""
    if isinstance(llm, BaseLLM):
        yield from llm.stream(prompt, params)
    else:
        yield _whole_delta(llm.complete(prompt, params))


class _EventStream(StreamingResponse):
    """A streaming response that stops its token stream however the response ends (done, error, disconnect)."""

    def __init__(self, events: AsyncIterator[str], tokens: _TokenStream) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.tokens.stop()


async def _stream_tokens(service: _Service, renderer: _Renderer, prompt: Any, params: SamplingParams,
                         include_usage: bool) -> _EventStream:
    """Start decoding; wait for the first delta (so a refused prompt is still a 4xx), then stream the rest."""
    tokens = _TokenStream(service, prompt, params)
    try:
        first = await tokens.next()
    except BaseException:
        tokens.stop()
        raise
    if isinstance(first, Exception):
        raise first

    async def events() -> AsyncIterator[str]:
        delta, completion_tokens, prompt_tokens = first, 0, 0
        try:
            for event in renderer.opening(0):
                yield event
            while isinstance(delta, StreamDelta):
                completion_tokens, prompt_tokens = completion_tokens + len(delta.token_ids), delta.prompt_tokens
                for event in renderer.delta_events(0, delta):
                    yield event
                delta = await tokens.next()
            if isinstance(delta, Exception):
                yield _error_event(delta)
            elif include_usage:
                yield renderer.usage_event({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                            "total_tokens": prompt_tokens + completion_tokens})
            yield "data: [DONE]\n\n"
        finally:
            tokens.stop()

    return _EventStream(events(), tokens)


def _error_event(err: Exception) -> str:
    """An error after the stream began (the status is already 200): an OpenAI error body as the last event."""
    if isinstance(err, UserError | RequestError):
        return _event(_error_body(str(err), 400))
    traceback.print_exception(err, file=sys.stderr)
    return _event(_error_body(f"internal error ({type(err).__name__}): please report it with the request", 500))


async def _read_json(request: Request, model: type[BaseModel]) -> Any:
    """The request body as `model`: size-limited, a JSON object, valid Unicode, valid fields."""
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(f"request body is larger than {MAX_BODY_BYTES} bytes: send a smaller one",
                                   status=413)
    except ClientDisconnect:
        raise RequestError("the client went away before sending the whole body") from None
    if not body.strip():
        raise RequestError("request body is empty: send a JSON object")
    try:
        data = json.loads(bytes(body), parse_constant=_no_constant)
        json.dumps(data, ensure_ascii=False).encode("utf-8")  # unpaired surrogates cannot reach a tokenizer
    except (ValueError, RecursionError):
        raise RequestError("request body is not valid JSON (UTF-8, no NaN or Infinity): send a JSON object") from None
    if not isinstance(data, dict):
        raise RequestError(f"request body is a JSON {type(data).__name__}, not an object: send a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        location = [str(part) for part in err.errors()[0]["loc"] if not _is_type_tag(part)]
        raise RequestError(_validation_message(err), param=".".join(location) or None) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _WithoutTrailingSlash:
    """ASGI middleware: /v1/completions/ is /v1/completions (answered in place, not redirected)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and len(scope["path"]) > 1 and scope["path"].endswith("/"):
            scope = {**scope, "path": scope["path"].rstrip("/") or "/"}
        await self.app(scope, receive, send)


def _error_body(message: str, status: int, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "internal_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def create_app(llm: LLM, model_name: str | None = None) -> FastAPI:
    """The FastAPI app serving `llm` under the id `model_name` (default: the LLM's name)."""
    service = _Service(llm, model_name or llm.name)
    app = FastAPI(title="reasonlab serve", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.add_middleware(_WithoutTrailingSlash)

    def error(message: str, status: int, param: str | None = None, code: str | None = None) -> JSONResponse:
        return JSONResponse(_error_body(message, status, param, code), status_code=status)

    @app.exception_handler(RequestError)
    async def _refused(request: Request, err: RequestError) -> JSONResponse:
        return error(str(err), err.status, err.param, err.code)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, err: UserError) -> JSONResponse:
        return error(str(err), 400)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
        reason = "no route" if err.status_code == 404 else str(err.detail).lower()
        return error(f"{reason}: {request.method} {request.url.path}", err.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception) -> JSONResponse:
        traceback.print_exception(err, file=sys.stderr)
        return error(f"internal error ({type(err).__name__}): please report it with the request", 500)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        entry = {"id": service.model_name, "object": "model", "created": 0, "owned_by": "reasonlab",
                 "max_model_len": llm.context_length}
        return {"object": "list", "data": [entry]}

    async def respond(renderer: _Renderer, request: _GenerationRequest, prompts: list[Any],
                      params: SamplingParams) -> Any:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        service.check_size(prompts, params)
        if request.stream and len(prompts) == 1 and params.n == 1:
            return await _stream_tokens(service, renderer, prompts[0], params, include_usage)
        result = await run_in_threadpool(service.respond, renderer, prompts, params, request.stream, include_usage)
        if isinstance(result, dict):
            return JSONResponse(result)
        return StreamingResponse(iter(result), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/v1/completions")
    async def completions(raw: Request) -> Any:
        request = await _read_json(raw, CompletionRequest)
        service.check_model(request.model)
        prompts = completion_prompts(request.prompt)
        top = request.logprobs or 0
        params = sampling_from_request(request, "completion", top, logprobs=request.logprobs is not None)
        return await respond(_Renderer(llm, service.model_name, "completion", top), request, prompts, params)

    @app.post("/v1/chat/completions")
    async def chat(raw: Request) -> Any:
        request = await _read_json(raw, ChatRequest)
        service.check_model(request.model)
        if request.top_logprobs and not request.logprobs:
            raise RequestError("top_logprobs needs logprobs=true", param="top_logprobs")
        top = request.top_logprobs or 0
        params = sampling_from_request(request, "chat", top, logprobs=request.logprobs)
        messages = chat_messages(request.messages)
        return await respond(_Renderer(llm, service.model_name, "chat", top), request, [messages], params)

    @app.post("/tokenize")
    async def tokenize(raw: Request) -> dict[str, Any]:
        request = await _read_json(raw, TokenizeRequest)
        service.check_model(request.model)
        tokens = await run_in_threadpool(service.tokenize, request)
        return {"tokens": tokens, "count": len(tokens), "max_model_len": llm.context_length}

    @app.post("/detokenize")
    async def detokenize(raw: Request) -> dict[str, Any]:
        request = await _read_json(raw, DetokenizeRequest)
        service.check_model(request.model)
        return {"prompt": await run_in_threadpool(service.detokenize, request.tokens)}

    return app


class Server:
    """uvicorn serving one app on a socket bound at construction (so port 0 is resolved at once)."""

    def __init__(self, app: FastAPI, sock: socket.socket, model_name: str) -> None:
        import uvicorn

        self.model_name = model_name
        self.socket = sock
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=5)
        self._uvicorn = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}/v1"

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C) or `shutdown()`."""
        self._uvicorn.run(sockets=[self.socket])

    def start(self) -> Server:
        """Serve from a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        _wait_until(lambda: self._uvicorn.started or not self._thread.is_alive())  # type: ignore[union-attr]
        return self

    def shutdown(self) -> None:
        self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()


def _wait_until(ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.01)


def make_server(llm: LLM, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None) -> Server:
    """A server for `llm` (call `serve_forever()` or `start()`); port 0 picks a free port (`server_address`)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}): pick another --port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    name = model_name or llm.name
    return Server(create_app(llm, name), sock, name)
