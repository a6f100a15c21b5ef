"""Any OpenAI-compatible server: vLLM, llama.cpp's llama-server, llama-cpp-python's server, Ollama, OpenAI itself,
or `reasonlab serve`.

Spec: `openai:URL#MODEL`, e.g. `openai:http://localhost:8000/v1#Qwen/Qwen3-8B`; `?context_length=N` on the URL
gives the context length when the server does not report it. The API key comes from `OPENAI_API_KEY` (servers
that need none get a placeholder).

Servers differ in what they honour, so the kind of server is read once from `GET /v1/models` (or forced with
`server=`) and each request speaks its dialect:

| server           | context length           | token ids                    | constraints                        |
|------------------|--------------------------|------------------------------|------------------------------------|
| vllm             | /v1/models max_model_len | `return_token_ids`           | `structured_outputs`, `guided_*`   |
| reasonlab        | /v1/models max_model_len | always returned              | `guided_*`                         |
| llama.cpp        | `n_ctx` of GET /props    | native /completion (no chat) | `json_schema`, `grammar`; no regex |
| llama-cpp-python | from the user            | none                         | `grammar`; chat `response_format`  |
| other            | from the user            | none                         | `guided_*` and plain fields        |

Every constrained output is checked on our side (xgrammar, over characters): a server that ignored the
constraint raises a UserError naming the server and the constraint instead of handing back free text.
Requests retry only what may pass on a second try (connection errors, 408, 429, 500, 502, 503, 504), with a
short exponential backoff; every other answer is an error at once, with the server's own message.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any, Literal, get_args

from reasonlab.errors import UserError
from reasonlab.llm.base import BaseLLM, Generation, Message, Prompt, SamplingParams, prompt_kind
from reasonlab.llm.constrained import constraint_source

__all__ = ["RETRY_STATUSES", "SERVER_KINDS", "OpenAILLM", "ServerError", "conformance", "server_kind"]

ServerKind = Literal["vllm", "reasonlab", "llama.cpp", "llama-cpp-python", "other"]
SERVER_KINDS: tuple[str, ...] = get_args(ServerKind)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 2.0


class ServerError(UserError):
    """The server answered with an HTTP error; `status` is its code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


_HINTS = {
    401: "set OPENAI_API_KEY to a key this server accepts",
    403: "set OPENAI_API_KEY to a key this server accepts",
    503: "the server is busy or still loading its model: wait and try again",
}


class _Unreachable(Exception):
    """A connection that failed before any HTTP answer (refused, reset, DNS)."""


def server_kind(entry: dict[str, Any]) -> ServerKind:
    """Which server wrote this `/v1/models` entry (by its `owned_by` and the fields only it writes)."""
    owner = str(entry.get("owned_by", ""))
    if owner == "vllm":
        return "vllm"
    if owner == "reasonlab":
        return "reasonlab"
    if owner == "llamacpp" or "meta" in entry:
        return "llama.cpp"
    if owner == "me" and "permissions" in entry:
        return "llama-cpp-python"
    return "other"


def _server_message(body: bytes) -> str:
    """The human part of an error body: OpenAI-, FastAPI- and llama.cpp-shaped errors, else the raw text."""
    text = body.decode(errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:300]
    return text[:300]


@lru_cache(maxsize=64)
def _compiled(kind: str, source: str) -> Any:
    """The constraint as an xgrammar grammar over characters (no tokenizer), compiled once per source."""
    import xgrammar as xgr

    if kind == "json_schema":
        # JSON Schema semantics (extra properties allowed unless the schema forbids them), any whitespace
        grammar = xgr.Grammar.from_json_schema(source, any_whitespace=True, strict_mode=False)
    elif kind == "regex":
        grammar = xgr.Grammar.from_regex(source)
    else:
        grammar = xgr.Grammar.from_ebnf(source)
    return xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False).compile_grammar(grammar)


_compile_lock = threading.Lock()


def conformance(text: str, params: SamplingParams) -> Literal["complete", "prefix", "violated"]:
    """Whether `text` satisfies the constraint of `params`, is an unfinished prefix of it, or breaks it."""
    import xgrammar as xgr

    kind, source = _constraint(params)
    if kind == "json_schema":
        text = text.strip()  # JSON allows whitespace around the value, whatever the grammar says
    try:
        with _compile_lock:
            compiled = _compiled(kind, source)
    except (RuntimeError, ValueError) as err:
        why = str(err)[-200:]
        raise UserError(f"reasonlab cannot check the {kind} on its side ({why}): fix or simplify it") from None
    matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
    if not matcher.accept_string(text):
        return "violated"
    return "complete" if matcher.is_terminated() else "prefix"


def _constraint(params: SamplingParams) -> tuple[str, str]:
    found = constraint_source(params)
    assert found is not None, "only called for constrained requests"
    return found


class OpenAILLM(BaseLLM):
    """A model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0, max_retries: int = 3,
        concurrency: int = 8, context_length: int | None = None, check: bool = True, server: str | None = None,
        retry_backoff: float = 0.25,
    ) -> None:
        super().__init__()
        from reasonlab.llm.registry import parse_openai_spec

        parse_openai_spec(f"openai:{base_url}#{model}")  # one-line errors for a malformed URL, as from load_llm
        if server is not None and server not in SERVER_KINDS:
            raise UserError(f"unknown server kind '{server}': use one of {', '.join(SERVER_KINDS)}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{self.base_url}#{model}"
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._context_length = context_length
        self.server: ServerKind = server or "other"  # type: ignore[assignment]
        if check:
            self._describe_server(forced=server is not None)

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _server_root(self) -> str:
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _send_once(self, method: str, url: str, body: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        try:
            request = urllib.request.Request(url, data=data, headers=self._headers, method=method)
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as err:
            path = url[len(self._server_root()):] or "/"
            message = _server_message(err.read())
            raise ServerError(f"the server at {self.base_url} answered {err.code} to {method} {path}: {message}",
                              err.code) from None
        except TimeoutError:
            raise UserError(f"the server at {self.base_url} did not answer within {self.timeout:.0f} s: "
                            "raise timeout= or lower max_tokens") from None
        except (ValueError, http.client.InvalidURL) as err:  # a URL urllib cannot even parse (bad port, bad host)
            raise UserError(f"bad server URL {self.base_url} ({err}): write http://HOST:PORT/v1") from None
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as err:
            raise _Unreachable(str(getattr(err, "reason", None) or err or type(err).__name__)) from None
        try:
            return json.loads(payload or b"{}")
        except ValueError:
            raise UserError(f"the server at {self.base_url} answered {method} {url} with something that is not "
                            "JSON: check the URL (it should end in /v1)") from None

    def _send(self, method: str, url: str, body: dict[str, Any] | None = None, retries: int | None = None) -> Any:
        """One JSON request; retries connection errors and RETRY_STATUSES only, with a short bounded backoff."""
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            try:
                return self._send_once(method, url, body)
            except ServerError as err:
                if err.status not in RETRY_STATUSES or attempt == retries:
                    raise
            except _Unreachable as err:
                if attempt == retries:
                    raise UserError(
                        f"cannot reach the server at {self.base_url} ({err}): start it or fix the URL"
                    ) from None
            time.sleep(min(self.retry_backoff * 2**attempt, MAX_BACKOFF_S))
        raise AssertionError("unreachable")

    # -- what the server is ----------------------------------------------------------------------------------

    def _describe_server(self, forced: bool) -> None:
        """Fail early when the server is unreachable or refuses us; read its kind and context length."""
        try:
            listing = self._send("GET", self.base_url + "/models", retries=0)
        except ServerError as err:
            raise UserError(f"{err}: {_HINTS.get(err.status, 'check the URL (it should end in /v1)')}") from None
        entries = [e for e in listing.get("data", []) if isinstance(e, dict)] if isinstance(listing, dict) else []
        entry = next((e for e in entries if e.get("id") == self.model), None)
        if entry is None and len(entries) == 1:
            entry = entries[0]  # a single-model server (llama.cpp answers under any model name)
        if entry is None:
            # the name may be an alias the list does not show (Ollama's llama3.2 for llama3.2:latest)
            entry = {"owned_by": entries[0].get("owned_by")} if entries else {}
        if not forced:
            self.server = server_kind(entry)
        if self._context_length is None:
            self._context_length = self._reported_context_length(entry)

    def _reported_context_length(self, entry: dict[str, Any]) -> int | None:
        for key in ("max_model_len", "context_length", "context_window"):
            if isinstance(entry.get(key), int) and entry[key] > 0:
                return int(entry[key])
        if self.server == "llama.cpp":
            try:
                props = self._send("GET", self._server_root() + "/props", retries=0)
            except ServerError:
                return None
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
            return int(n_ctx) if isinstance(n_ctx, int) and n_ctx > 0 else None
        return None

    @property
    def context_length(self) -> int:
        if self._context_length is None:
            raise UserError(
                f"the server at {self.base_url} does not report its context length: give it in the spec "
                f"(openai:{self.base_url}?context_length=N#{self.model}) or as load_llm(..., context_length=N)"
            )
        return int(self._context_length)

    @property
    def _who(self) -> str:
        """'vllm server at URL', or just 'server at URL' when the kind is unknown."""
        return f"{'' if self.server == 'other' else self.server + ' '}server at {self.base_url}"

    # -- tokenizer -------------------------------------------------------------------------------------------

    def _first_route(self, routes: list[tuple[str, dict[str, Any]]], what: str) -> Any:
        """POST to the first route the server has; only 404/405 mean 'no such route', anything else is an error."""
        for path, body in routes:
            try:
                return self._send("POST", self._server_root() + path, body)
            except ServerError as err:
                if err.status not in (404, 405):
                    raise
        tried = ", ".join(path for path, _ in routes)
        raise UserError(f"the server at {self.base_url} has no {what} endpoint ({tried}): use vLLM, llama.cpp's "
                        "llama-server, llama-cpp-python's server or reasonlab serve")

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Through the server's own tokenizer (vLLM/reasonlab /tokenize, llama.cpp /tokenize, /extras/tokenize)."""
        routes = {
            "llama.cpp": [("/tokenize", {"content": text, "add_special": add_special_tokens})],
            "llama-cpp-python": [("/extras/tokenize", {"input": text, "model": self.model})],
        }.get(self.server, [
            ("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": add_special_tokens}),
            ("/extras/tokenize", {"input": text, "model": self.model}),
        ])
        data = self._first_route(routes, "tokenize")
        try:
            return [int(t["id"]) if isinstance(t, dict) else int(t) for t in data["tokens"]]
        except (KeyError, TypeError, ValueError):
            raise UserError(f"the server at {self.base_url} answered tokenize without a list of token ids "
                            f"({str(data)[:120]!r}): is it an OpenAI-compatible server?") from None

    def _first_choice(self, response: Any, route: str) -> dict[str, Any]:
        """The first choice of a completion reply, or a one-line error when the reply has another shape."""
        choices = response.get("choices") if isinstance(response, dict) else None
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            raise UserError(f"the server at {self.base_url} answered {route} without choices "
                            f"({str(response)[:120]!r}): is it an OpenAI-compatible server?")
        return choices[0]

    def detokenize(self, token_ids: Sequence[int]) -> str:
        tokens = [int(t) for t in token_ids]
        routes = {
            "llama-cpp-python": [("/extras/detokenize", {"tokens": tokens, "model": self.model})],
        }.get(self.server, [
            ("/detokenize", {"model": self.model, "tokens": tokens}),
            ("/extras/detokenize", {"tokens": tokens, "model": self.model}),
        ])
        data = self._first_route(routes, "detokenize")
        for key in ("prompt", "content", "text"):
            if key in data:
                return str(data[key])
        raise UserError(f"the server at {self.base_url} answered /detokenize without the text: {str(data)[:200]}")

    # -- generation ------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        for prompt in prompts:
            self._check_supported(prompt_kind(prompt), params)
        jobs = [(prompt, k) for prompt in prompts for k in range(params.n)]
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(jobs)))) as pool:
            flat = list(pool.map(lambda job: self._request(job[0], params, job[1]), jobs))
        grouped = [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
        self._record(grouped, started)
        return grouped

    def _check_supported(self, kind: str, params: SamplingParams) -> None:
        """Refuse, before sending anything, what this kind of server is known to ignore or reject."""
        if params.regex is not None and self.server in ("llama.cpp", "llama-cpp-python"):
            raise UserError(f"the {self._who} does not enforce regular expressions: write the constraint as a "
                            "GBNF grammar (SamplingParams(grammar=...)) or use vLLM")
        if self.server == "llama-cpp-python" and kind == "tokens":
            raise UserError(f"the {self._who} takes no token-id prompts: send text, or use llama-server")

    def _request(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        started = time.perf_counter()
        kind = prompt_kind(prompt)
        if kind == "chat":
            generation = self._chat(prompt, params, index)  # type: ignore[arg-type]
        elif self.server == "llama.cpp":
            generation = self._native_completion(prompt, params, index)
        else:
            generation = self._completion(prompt, params, index)
        generation.latency_s = time.perf_counter() - started
        if params.constrained:
            self._verify(generation, params)
        return generation

    def _verify(self, generation: Generation, params: SamplingParams) -> None:
        """Raise when the text breaks the constraint; an unfinished prefix passes only when generation was cut."""
        verdict = conformance(generation.text, params)
        cut = generation.finish_reason == "length" or (bool(params.stop) and generation.finish_reason == "stop")
        if verdict == "complete" or (verdict == "prefix" and cut):
            return
        kind, source = _constraint(params)
        raise UserError(
            f"the {self._who} did not honour the {kind} {source[:80]!r} "
            f"(it returned {generation.text[:60]!r}): use a server that enforces it (vLLM, llama.cpp) or drop it"
        )

    def _common(self, params: SamplingParams, index: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "temperature": params.temperature, "top_p": params.top_p,
                                "max_tokens": params.max_tokens}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed + index
        return body

    def _constraint_fields(self, params: SamplingParams, chat: bool) -> dict[str, Any]:
        """The constraint in this server's dialect (chat JSON schemas travel as response_format)."""
        if not params.constrained:
            return {}
        schema, regex, grammar = params.json_schema, params.regex, params.grammar
        if chat and schema is not None:
            if self.server == "llama-cpp-python":
                return {"response_format": {"type": "json_object", "schema": schema}}
            return {"response_format": {"type": "json_schema",
                                        "json_schema": {"name": "output", "schema": schema, "strict": True}}}
        if self.server in ("llama.cpp", "llama-cpp-python"):
            if schema is not None and self.server == "llama-cpp-python":
                return {"grammar": _schema_as_gbnf(schema, self.base_url)}
            return {"json_schema": schema} if schema is not None else {"grammar": grammar}
        name, value = ("json", schema) if schema is not None else ("regex", regex) if regex is not None else (
            "grammar", grammar)
        guided = {f"guided_{name}": value}
        if self.server == "vllm":
            # newer vLLM reads structured_outputs, older versions guided_*
            return {**guided, "structured_outputs": {name: value}}
        # reasonlab serve and unknown servers: vLLM's names plus the plain ones (llama.cpp, SGLang)
        return {**guided, ("json_schema" if name == "json" else name): value}

    def _completion(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        body = self._common(params, index)
        body["prompt"] = prompt if isinstance(prompt, str) else [int(t) for t in prompt]  # type: ignore[union-attr]
        if params.logprobs:
            body["logprobs"] = 1
        if self.server in ("vllm", "reasonlab"):
            body["return_token_ids"] = True
        body.update(self._constraint_fields(params, chat=False))
        response = self._generation_request(self.base_url + "/completions", body)
        choice = self._first_choice(response, "/completions")
        logprobs = None
        if params.logprobs and choice.get("logprobs"):
            logprobs = [float(x) for x in choice["logprobs"].get("token_logprobs") or [] if x is not None]
        return self._generation(choice.get("text") or "", choice, response.get("usage"), logprobs)

    def _chat(self, messages: Sequence[Message], params: SamplingParams, index: int) -> Generation:
        body = self._common(params, index)
        body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        if self.server == "vllm":
            body["return_token_ids"] = True
        body.update(self._constraint_fields(params, chat=True))
        response = self._generation_request(self.base_url + "/chat/completions", body)
        choice = self._first_choice(response, "/chat/completions")
        text = (choice.get("message") or {}).get("content") or ""
        return self._generation(text, choice, response.get("usage"), None)

    def _native_completion(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        """llama.cpp's own /completion: the only route of llama-server that returns the sampled token ids."""
        body: dict[str, Any] = {
            "prompt": prompt if isinstance(prompt, str) else [int(t) for t in prompt],  # type: ignore[union-attr]
            "n_predict": params.max_tokens, "temperature": params.temperature, "top_p": params.top_p,
            # only the samplers SamplingParams names: no top-k, min-p or repetition penalty
            "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0, "stop": list(params.stop), "return_tokens": True,
            "n_probs": 1 if params.logprobs else 0, "cache_prompt": True,
        }
        if params.seed is not None:
            body["seed"] = params.seed + index
        body.update(self._constraint_fields(params, chat=False))
        data = self._generation_request(self._server_root() + "/completion", body)
        steps = data.get("completion_probabilities") or []
        logprobs = None
        # servers before late 2024 sent probabilities without their logarithm: no logprobs then
        if params.logprobs and steps and all("logprob" in step for step in steps):
            logprobs = [float(step["logprob"]) for step in steps]
        finish = {"eos": "eos", "limit": "length"}.get(str(data.get("stop_type")), "stop")
        token_ids = [int(t) for t in data.get("tokens") or []]
        return Generation(
            text=str(data.get("content", "")), token_ids=token_ids, logprobs=logprobs,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=int(data.get("tokens_evaluated") or 0),
            completion_tokens=int(data.get("tokens_predicted") or len(token_ids)), latency_s=0.0,
        )

    def _generation_request(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._send("POST", url, body)
        except ServerError as err:
            hint = f"check that the server serves model '{self.model}' (#MODEL)" if err.status == 404 else (
                _HINTS.get(err.status))
            if hint is None:
                raise
            raise ServerError(f"{err}: {hint}", err.status) from None

    def _generation(self, text: str, choice: dict[str, Any], usage: dict[str, Any] | None,
                    logprobs: list[float] | None) -> Generation:
        """A Generation from an OpenAI-shaped choice; `token_ids` stays empty when the server sends none."""
        usage = usage or {}
        token_ids = [int(t) for t in choice.get("token_ids") or []]
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        if self.server == "vllm" and finish == "stop" and choice.get("stop_reason") is None:
            finish = "eos"  # vLLM names the stop string or stop token that ended a completion; none means EOS
        return Generation(
            text=text, token_ids=token_ids, logprobs=logprobs,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or len(token_ids) or len(logprobs or [])),
            latency_s=0.0,
        )


def _schema_as_gbnf(schema: dict[str, Any], base_url: str) -> str:
    """llama-cpp-python's server takes no JSON schema on /v1/completions: send its own GBNF translation."""
    try:
        from llama_cpp.llama_grammar import json_schema_to_gbnf
    except ImportError:
        raise UserError(f"the llama-cpp-python server at {base_url} enforces JSON schemas on completions only as "
                        "grammars, and reasonlab needs the llamacpp extra to translate one: "
                        "pip install 'reasonlab[llamacpp]', or send a chat prompt") from None
    return json_schema_to_gbnf(json.dumps(schema))
