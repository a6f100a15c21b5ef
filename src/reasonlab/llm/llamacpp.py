"""llama-cpp-python backend: fast CPU inference over a GGUF file (the `llamacpp` extra).

Decoding goes through `Llama.generate`, which yields token ids, so prompts may be token ids and completions
come back with their exact ids. Logprobs (at the sampling temperature, like the hf backend) are computed from
the last-position logits llama.cpp keeps anyway; they cost one log-softmax over the vocabulary per token, so
pass `SamplingParams(logprobs=False)` when speed matters. JSON schemas and GBNF grammars are enforced by
llama.cpp's grammar sampler; regular expressions are not supported here (use the hf backend).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reasonlab.errors import UserError
from reasonlab.llm.base import (
    BaseLLM,
    Generation,
    Message,
    Prompt,
    SamplingParams,
    truncate_at_stop,
)

__all__ = ["LlamaCppLLM"]


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / (temperature if temperature > 0 else 1.0)
    shifted = scaled - scaled.max()
    return shifted - np.log(np.exp(shifted).sum())


class LlamaCppLLM(BaseLLM):
    """A GGUF model served in process by llama.cpp. Prompts are decoded one after another."""

    def __init__(self, model_path: str | Path, n_ctx: int = 4096, n_threads: int | None = None, name: str | None = None):
        super().__init__()
        try:
            from llama_cpp import Llama
        except ImportError:
            raise UserError("llama-cpp-python is not installed: pip install 'reasonlab[llamacpp]'") from None
        model_path = Path(model_path)
        if not model_path.is_file():
            raise UserError(f"GGUF file {model_path} does not exist: pass the path of a .gguf model file")
        self.name = name or f"llamacpp:{model_path}"
        self.llama = Llama(
            model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads or os.cpu_count(), verbose=False
        )

    @property
    def context_length(self) -> int:
        return int(self.llama.n_ctx())

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self.llama.tokenize(text.encode(), add_bos=add_special_tokens, special=True))

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.llama.detokenize(list(token_ids)).decode("utf-8", errors="replace")

    def render_chat(self, messages: Sequence[Message]) -> str:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if template:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            turns = [{"role": m.role, "content": m.content} for m in messages]
            return env.from_string(template).render(messages=turns, add_generation_prompt=True, bos_token=self.bos_text)
        return super().render_chat(messages)

    @property
    def bos_text(self) -> str:  # type: ignore[override]
        return self.llama.detokenize([self.llama.token_bos()]).decode()

    def _grammar(self, params: SamplingParams) -> Any:
        from llama_cpp import LlamaGrammar

        if params.regex is not None:
            raise UserError("the llamacpp backend takes json_schema or grammar, not regex: use hf:... for regex")
        if params.json_schema is not None:
            return LlamaGrammar.from_json_schema(json.dumps(params.json_schema), verbose=False)
        if params.grammar is not None:
            return LlamaGrammar.from_string(params.grammar, verbose=False)
        return None

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        grouped = []
        for index, prompt in enumerate(prompts):
            ids = self.prompt_ids(prompt)
            self.check_fits(len(ids), params.max_tokens)
            seeds = [None if params.seed is None else params.seed + index * params.n + k for k in range(params.n)]
            grouped.append([self._decode_one(ids, params, seed) for seed in seeds])
        self._record(grouped, started)
        return grouped

    def _decode_one(self, prompt: list[int], params: SamplingParams, seed: int | None) -> Generation:
        started = time.perf_counter()
        import llama_cpp

        self.llama.set_seed(seed if seed is not None else int.from_bytes(os.urandom(4), "little"))
        # a full prefill every time: reusing a cached prefix changes the numerics, and with them the samples
        self.llama.reset()
        vocab_size = self.llama.n_vocab()
        tokens: list[int] = []
        logprobs: list[float] = []
        finish = "length"
        # temperature 0 is greedy in llama.cpp's sampler chain; top_k=0 and min_p=0 leave only top_p active
        stream = self.llama.generate(
            prompt, temp=params.temperature, top_p=params.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0,
            grammar=self._grammar(params), reset=True,
        )
        for token in stream:
            if params.logprobs:
                # the context still holds the logits this token was sampled from (one output row)
                logits = np.ctypeslib.as_array(self.llama._ctx.get_logits(), shape=(vocab_size,))
                logprobs.append(float(_log_softmax(logits, params.temperature)[token]))
            tokens.append(int(token))
            if llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token):
                finish = "eos"
                break
            if params.stop and truncate_at_stop(self.detokenize(tokens), params.stop)[1]:
                finish = "stop"
                break
            if len(tokens) >= params.max_tokens:
                break
        text_tokens = tokens[:-1] if finish == "eos" else tokens
        text, _ = truncate_at_stop(self.detokenize(text_tokens), params.stop)
        return Generation(
            text=text, token_ids=tokens, logprobs=logprobs if params.logprobs else None,
            finish_reason=finish,  # type: ignore[arg-type]
            prompt_tokens=len(prompt), completion_tokens=len(tokens), latency_s=time.perf_counter() - started,
        )
