"""llama-cpp-python backend: fast CPU inference over a GGUF file (the `llamacpp` extra).

Decoding goes through `Llama.generate`, which yields token ids, so prompts may be token ids and completions
come back with their exact ids; `stream` yields one delta per token from the same loop. Logprobs (at the sampling temperature, like the hf backend) are computed from
the last-position logits llama.cpp keeps anyway; they cost one log-softmax over the vocabulary per token, so
pass `SamplingParams(logprobs=False)` when speed matters.

JSON schemas, regular expressions and grammars go through xgrammar (`reasonlab.llm.constrained`), exactly as on
the hf backend: a custom first stage of llama.cpp's sampler chain masks the forbidden tokens. llama.cpp's own
grammar parser never sees user input (a malformed GBNF grammar crashes it, taking the process along), and
token ids are checked against the vocabulary before they reach llama.cpp (which aborts on an unknown one).
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    StreamDelta,
    TextStream,
    truncate_at_stop,
)
from reasonlab.llm.constrained import ConstraintFactory, GrammarConstraint

__all__ = ["LlamaCppLLM"]


def _log_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    # shift before scaling: a tiny temperature then sharpens instead of overflowing to nan
    shifted = logits.astype(np.float64)
    shifted = (shifted - shifted.max()) / (temperature if temperature > 0 else 1.0)
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
        from reasonlab.threads import current_threads

        verbose = _verbose()
        if not verbose:
            _silence_llama_cpp_log()
        threads = n_threads or current_threads()
        with _without_amx_buffers():  # prompt processing gets the same threads (its default is every core)
            self.llama = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                               verbose=verbose)
        self._constraints = ConstraintFactory.from_pieces(self._vocabulary)

    @property
    def context_length(self) -> int:
        return int(self.llama.n_ctx())

    @property
    def vocab_size(self) -> int:  # type: ignore[override]
        return int(self.llama.n_vocab())

    def tokenize(self, text: str, add_special_tokens: bool = True) -> list[int]:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise UserError("the prompt holds an unpaired UTF-16 surrogate: send valid Unicode text") from None
        return list(self.llama.tokenize(data, add_bos=add_special_tokens, special=True))

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self._decode(self.check_token_ids(token_ids, "detokenize"))

    def _decode(self, token_ids: list[int]) -> str:
        return self.llama.detokenize(token_ids).decode("utf-8", errors="replace")

    def render_chat(self, messages: Sequence[Message]) -> str:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if template:
            from jinja2 import TemplateError
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
            env.globals["raise_exception"] = _raise_template_error
            turns = [{"role": m.role, "content": m.content} for m in messages]
            try:
                return env.from_string(template).render(
                    messages=turns, add_generation_prompt=True, bos_token=self.bos_text)
            except TemplateError as err:
                raise UserError(f"the chat template of {self.name} refuses these messages ({err}): "
                                "send the roles it takes, e.g. alternating user and assistant turns") from None
        return super().render_chat(messages)

    @property
    def bos_text(self) -> str:  # type: ignore[override]
        return self.llama.detokenize([self.llama.token_bos()]).decode()

    def _vocabulary(self) -> tuple[list[bytes], list[int]]:
        """The bytes each token id decodes to (b"" for control tokens), and the end-of-generation ids."""
        import llama_cpp

        vocab, buffer = self.llama._model.vocab, ctypes.create_string_buffer(256)
        pieces, ends = [], []
        for token in range(self.vocab_size):
            length = llama_cpp.llama_token_to_piece(vocab, token, buffer, 256, 0, False)
            pieces.append(buffer.raw[:length] if length > 0 else b"")
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                ends.append(token)
        return pieces, ends

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Generation]]:
        started = time.perf_counter()
        rows = [self.prompt_ids(prompt) for prompt in prompts]
        if not all(rows):
            raise UserError(f"a prompt is empty after tokenization by {self.name}: give it at least one token")
        for ids in rows:
            self.check_fits(len(ids), params.max_tokens)
        self._constraints.new(params)  # a malformed constraint fails here, before any decoding
        grouped = []
        for index, ids in enumerate(rows):
            seeds = [None if params.seed is None else params.seed + index * params.n + k for k in range(params.n)]
            grouped.append([self._decode_one(ids, params, seed) for seed in seeds])
        self._record(grouped, started)
        return grouped

    def stream(self, prompt: Prompt, params: SamplingParams | None = None) -> Iterator[StreamDelta]:
        """One completion, one delta per token, decoded by the same loop as `generate` (so the deltas join to
        exactly its text and token ids); closing the iterator stops the decoding."""
        started = time.perf_counter()
        params, ids = self.stream_setup(prompt, params)
        state = _DecodeState()
        text = TextStream(self._decode, params.stop)
        try:
            for _ in self._decode_steps(ids, params, params.seed, state):
                delta = StreamDelta(
                    text="", token_ids=state.tokens[-1:], prompt_tokens=len(ids),
                    logprobs=state.logprobs[-1:] if params.logprobs else None,
                    top_logprobs=state.top[-1:] if params.top_logprobs else None,
                )
                if state.finish is None:
                    delta.text = text.push(state.tokens)
                else:
                    delta.text = text.finish(self._final_text(state, params))
                    delta.finish_reason = state.finish  # type: ignore[assignment]
                yield delta
        finally:
            self.usage.add(len(ids), len(state.tokens), time.perf_counter() - started)

    def _decode_one(self, prompt: list[int], params: SamplingParams, seed: int | None) -> Generation:
        started = time.perf_counter()
        state = _DecodeState()
        for _ in self._decode_steps(prompt, params, seed, state):
            pass
        return Generation(
            text=self._final_text(state, params), token_ids=state.tokens,
            logprobs=state.logprobs if params.logprobs else None,
            finish_reason=state.finish,  # type: ignore[arg-type]
            prompt_tokens=len(prompt), completion_tokens=len(state.tokens), latency_s=time.perf_counter() - started,
            top_logprobs=state.top if params.top_logprobs else None,
        )

    def _final_text(self, state: _DecodeState, params: SamplingParams) -> str:
        """The completion's text: without an end-of-generation token, cut before a stop string."""
        text_tokens = state.tokens[:-1] if state.finish == "eos" else state.tokens
        return truncate_at_stop(self._decode(text_tokens), params.stop)[0]

    def _decode_steps(self, prompt: list[int], params: SamplingParams, seed: int | None,
                      state: _DecodeState) -> Iterator[None]:
        """Drive `Llama.generate`: each step appends one token to `state` and yields; the last one sets
        `state.finish`. Closing this iterator stops llama.cpp before the next token."""
        import llama_cpp

        # llama.cpp seeds are 32-bit: wrap, so any integer seed works and small ones keep their meaning
        self.llama.set_seed(seed % 2**32 if seed is not None else int.from_bytes(os.urandom(4), "little"))
        # a full prefill every time: reusing a cached prefix changes the numerics, and with them the samples
        self.llama.reset()
        vocab_size = self.llama.n_vocab()
        constraint = self._constraints.new(params)
        masks = _MaskStage(constraint) if constraint is not None else None
        # temperature 0 is greedy in llama.cpp's sampler chain; top_k=0 and min_p=0 leave only top_p active
        tokens = self.llama.generate(
            prompt, temp=params.temperature, top_p=params.top_p, top_k=0, min_p=0.0, repeat_penalty=1.0,
            logits_processor=[masks] if masks is not None else None, reset=True,
        )
        for token in tokens:
            if masks is not None:
                masks.raise_if_failed()
            if params.logprobs or params.top_logprobs:
                # the context still holds the raw logits this token was sampled from (one output row)
                logits = np.ctypeslib.as_array(self.llama._ctx.get_logits(), shape=(vocab_size,))
                log_dist = _log_softmax(logits, params.temperature)
                state.logprobs.append(float(log_dist[token]))
                if params.top_logprobs:
                    best = np.argpartition(-log_dist, params.top_logprobs)[: params.top_logprobs]
                    state.top.append({int(t): float(log_dist[t]) for t in best[np.argsort(-log_dist[best])]})
            state.tokens.append(int(token))
            if llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token):
                state.finish = "eos"
            elif self._stops(state.tokens, constraint, params):
                state.finish = "stop"
            elif len(state.tokens) >= params.max_tokens:
                state.finish = "length"
            yield
            if state.finish is not None:
                return
        state.finish = state.finish or "length"

    def _stops(self, tokens: list[int], constraint: GrammarConstraint | None, params: SamplingParams) -> bool:
        """Whether the last token completed the constraint (or broke it) or a stop string."""
        if constraint is not None and (not constraint.accept(tokens[-1]) or constraint.finished):
            return True
        return bool(params.stop) and truncate_at_stop(self._decode(tokens), params.stop)[1]


@dataclass
class _DecodeState:
    """What the decode loop has produced so far: token ids, their logprobs, top-k, and the finish reason."""

    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[dict[int, float]] = field(default_factory=list)
    finish: str | None = None


class _MaskStage:
    """The first stage of llama.cpp's sampler chain: forbidden tokens to -inf. It runs inside a C callback,
    where an exception would be printed and dropped, so a failure is kept and raised after the token."""

    def __init__(self, constraint: GrammarConstraint) -> None:
        self.constraint = constraint
        self.error: Exception | None = None

    def __call__(self, input_ids: Any, scores: np.ndarray) -> np.ndarray:
        # the candidates arrive in token-id order, all of the vocabulary
        try:
            return self.constraint.masked_scores(scores)
        except Exception as err:
            self.error = err
            return np.full_like(scores, -np.inf)

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"the constraint mask failed inside llama.cpp's sampler: {self.error}")


def _verbose() -> bool:
    """Only `reasonlab --verbose` (REASONLAB_QUIET=0) shows llama.cpp's loader and cache lines: its `verbose`
    prints 'Llama.generate: prefix-match hit' per call, and its C log prints loader lines such as
    'llama_kv_cache_iswa: using full-size SWA cache' whatever `verbose` says."""
    return os.environ.get("REASONLAB_QUIET") == "0"


_SILENT_LOG: Any = None  # the ctypes callback must outlive every call into llama.cpp


def _silence_llama_cpp_log() -> None:
    """Route llama.cpp's C log to a callback that drops it (llama-cpp-python's own prints levels it cannot map)."""
    global _SILENT_LOG
    import llama_cpp

    if _SILENT_LOG is None:
        _SILENT_LOG = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(_SILENT_LOG, ctypes.c_void_p(0))


@contextmanager
def _without_amx_buffers() -> Iterator[None]:
    """On CPUs with AMX, load weights without llama.cpp's extra (AMX) buffers: its AMX matmul segfaults on
    Q4_K models (ggml-org/llama.cpp#20824). Llama() has no option for it, so its default params are wrapped."""
    import llama_cpp

    if "amx_int8" not in _cpu_flags():
        yield
        return
    default = llama_cpp.llama_cpp.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    llama_cpp.llama_cpp.llama_model_default_params = without_extra_buffers
    try:
        yield
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def _raise_template_error(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)
