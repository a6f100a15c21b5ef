"""Any OpenAI-compatible server: vLLM, llama.cpp's server, Ollama, OpenAI itself, or `reasonlab serve`.

Spec: `openai:URL#MODEL`, e.g. `openai:http://localhost:8000/v1#Qwen/Qwen3-8B`. The API key comes from
`OPENAI_API_KEY` (servers that need none get a placeholder). Text and token-id prompts use the completions
endpoint, chat messages the chat endpoint. Requests retry with exponential backoff on 429, 5xx and connection
errors (the openai client's own retry loop), and a batch is sent with bounded concurrency.

Constrained decoding is forwarded in the dialects servers understand: `response_format` (chat),
`guided_json` / `guided_regex` / `guided_grammar` (vLLM), `json_schema` and `grammar` (llama.cpp servers).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import BaseLLM, Generation, Message, Prompt, SamplingParams, prompt_kind

__all__ = ["OpenAILLM"]


def _constraint_fields(params: SamplingParams) -> dict[str, Any]:
    if params.json_schema is not None:
        return {"guided_json": params.json_schema, "json_schema": params.json_schema}
    if params.regex is not None:
        return {"guided_regex": params.regex, "regex": params.regex}
    if params.grammar is not None:
        return {"guided_grammar": params.grammar, "grammar": params.grammar}
    return {}


class OpenAILLM(BaseLLM):
    """A model behind an OpenAI-compatible HTTP API."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0, max_retries: int = 4,
        concurrency: int = 8, context_length: int | None = None, check: bool = True,
    ) -> None:
        super().__init__()
        import openai

        self.name = f"openai:{base_url}#{model}"
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = concurrency
        self._openai = openai
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self._timeout = timeout
        self._context_length = context_length
        if check:
            self._check_server()

    def _check_server(self) -> None:
        """Fail early with one clear line when the server is unreachable or does not serve the model."""
        try:
            models = self.client.with_options(max_retries=1, timeout=10).models.list().data
        except self._openai.APIConnectionError:
            raise UserError(f"cannot reach the server at {self.base_url}: start it or fix the URL") from None
        except self._openai.APIStatusError as err:
            raise UserError(f"the server at {self.base_url} answered {err.status_code}: check the URL and API key") from None
        for entry in models:
            if entry.id == self.model and self._context_length is None:
                extra = entry.model_extra or {}
                self._context_length = extra.get("max_model_len") or extra.get("context_length")

    @property
    def context_length(self) -> int:
        return int(self._context_length or 8192)

    def _server_root(self) -> str:
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST to the server root (outside /v1); None when the server has no such route."""
        request = urllib.request.Request(
            self._server_root() + path, data=json.dumps(body).encode(), headers=self._headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError:
            return None
        except urllib.error.URLError:
            raise UserError(f"cannot reach the server at {self.base_url}: start it or fix the URL") from None

    def tokenize(self, text: str) -> list[int]:
        """Through the server's tokenizer: vLLM-style /tokenize, else llama-cpp-python's /extras/tokenize."""
        for path, body in [("/tokenize", {"model": self.model, "prompt": text}), ("/extras/tokenize", {"input": text})]:
            data = self._post_json(path, body)
            if data is not None:
                return list(data["tokens"])
        raise NotImplementedError(f"{self.base_url} exposes no tokenize endpoint (/tokenize or /extras/tokenize)")

    def detokenize(self, token_ids: Sequence[int]) -> str:
        tokens = list(token_ids)
        for path, body in [("/detokenize", {"model": self.model, "tokens": tokens}),
                           ("/extras/detokenize", {"tokens": tokens})]:
            data = self._post_json(path, body)
            if data is not None:
                return str(data.get("prompt", data.get("text", "")))
        raise NotImplementedError(f"{self.base_url} exposes no detokenize endpoint")

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        jobs = [(prompt, k) for prompt in prompts for k in range(params.n)]
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(jobs)))) as pool:
            flat = list(pool.map(lambda job: self._request(job[0], params, job[1]), jobs))
        grouped = [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]
        self._record(grouped, started)
        return grouped

    def _request(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        try:
            if prompt_kind(prompt) == "chat":
                return self._chat(prompt, params, index)  # type: ignore[arg-type]
            return self._completion(prompt, params, index)
        except self._openai.APIConnectionError:
            raise UserError(f"cannot reach the server at {self.base_url}: start it or fix the URL") from None
        except self._openai.NotFoundError:
            raise UserError(f"the server at {self.base_url} does not serve model '{self.model}': fix #MODEL") from None

    def _common(self, params: SamplingParams, index: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stop": params.stop or None,
            "seed": None if params.seed is None else params.seed + index,
        }

    def _completion(self, prompt: Prompt, params: SamplingParams, index: int) -> Generation:
        started = time.perf_counter()
        body = prompt if isinstance(prompt, str) else [int(t) for t in prompt]  # type: ignore[union-attr]
        response = self.client.completions.create(
            prompt=body, logprobs=1 if params.logprobs else None, extra_body=_constraint_fields(params) or None,
            **self._common(params, index),
        )
        choice = response.choices[0]
        logprobs = None
        if params.logprobs and choice.logprobs is not None and choice.logprobs.token_logprobs is not None:
            logprobs = [float(x) for x in choice.logprobs.token_logprobs if x is not None]
        generation = self._generation(choice.text, choice.finish_reason, response.usage, logprobs, started)
        # servers that return token ids (reasonlab serve, vLLM with return_token_ids) fill them in
        generation.token_ids = list((choice.model_extra or {}).get("token_ids") or [])
        return generation

    def _chat(self, messages: Sequence[Message], params: SamplingParams, index: int) -> Generation:
        started = time.perf_counter()
        # OpenAI itself rejects unknown fields, so a JSON schema travels only as response_format here
        extra = _constraint_fields(params) if params.json_schema is None else {}
        response_format = None
        if params.json_schema is not None:
            response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": params.json_schema}}
        response = self.client.chat.completions.create(
            messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
            response_format=response_format, extra_body=extra or None,  # type: ignore[arg-type]
            **self._common(params, index),
        )
        choice = response.choices[0]
        return self._generation(choice.message.content or "", choice.finish_reason, response.usage, None, started)

    def _generation(
        self, text: str, finish_reason: str | None, usage: Any, logprobs: list[float] | None, started: float
    ) -> Generation:
        completion_tokens = getattr(usage, "completion_tokens", None) or (len(logprobs) if logprobs else 0)
        return Generation(
            text=text,
            token_ids=[],  # OpenAI-style APIs return text; call tokenize() when ids are needed
            logprobs=logprobs,
            finish_reason="length" if finish_reason == "length" else "stop",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=completion_tokens,
            latency_s=time.perf_counter() - started,
        )
