"""Constrained decoding for in-process backends: JSON schema, regex or EBNF grammar -> allowed-token masks.

Built on xgrammar (the structured-generation engine vLLM and SGLang use), which compiles a grammar against
the tokenizer once and then yields a bitmask of allowed next tokens per step. Compiled grammars are cached
per (kind, source), so a role prompt that reuses its schema pays the compile cost once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import torch

from reasonlab.llm.base import SamplingParams

__all__ = ["ConstraintFactory", "GrammarConstraint"]


class GrammarConstraint:
    """The state of one constrained completion: which tokens may come next, and whether it is complete."""

    def __init__(self, compiled: Any, vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self.vocab_size = vocab_size

    def mask_logits(self, logits: torch.Tensor) -> None:
        """Set the logits of forbidden tokens to -inf, in place. logits: (V_model,) float."""
        self._matcher.fill_next_token_bitmask(self._bitmask, 0)
        # the model's output layer may be wider than the tokenizer's vocabulary (padding rows)
        view = logits[: self.vocab_size].unsqueeze(0)
        self._xgr.apply_token_bitmask_inplace(view, self._bitmask)
        if logits.shape[0] > self.vocab_size:
            logits[self.vocab_size :] = float("-inf")

    def accept(self, token_id: int) -> bool:
        return bool(self._matcher.accept_token(token_id))

    @property
    def finished(self) -> bool:
        return bool(self._matcher.is_terminated())


class ConstraintFactory:
    """Compiles the constraint of a `SamplingParams` for one tokenizer and hands out fresh matchers."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.stop_token_ids = stop_token_ids
        self._compile = lru_cache(maxsize=64)(self._compile_uncached)
        self._compiler: Any = None

    def _compiler_for_tokenizer(self) -> Any:
        if self._compiler is None:
            try:
                import xgrammar as xgr
            except ImportError as err:  # pragma: no cover - xgrammar is a core dependency
                raise RuntimeError("constrained decoding needs xgrammar: pip install xgrammar") from err
            info = xgr.TokenizerInfo.from_huggingface(
                self.tokenizer, vocab_size=self.vocab_size, stop_token_ids=self.stop_token_ids
            )
            self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        return self._compiler

    def _compile_uncached(self, kind: str, source: str) -> Any:
        compiler = self._compiler_for_tokenizer()
        if kind == "json_schema":
            return compiler.compile_json_schema(source, any_whitespace=False)
        if kind == "regex":
            return compiler.compile_regex(source)
        if kind == "grammar":
            return compiler.compile_grammar(source)
        raise ValueError(f"unknown constraint kind {kind!r}")

    def new(self, params: SamplingParams) -> GrammarConstraint | None:
        """A fresh constraint for one completion, or None when `params` has no constraint."""
        if params.json_schema is not None:
            compiled = self._compile("json_schema", json.dumps(params.json_schema, sort_keys=True))
        elif params.regex is not None:
            compiled = self._compile("regex", params.regex)
        elif params.grammar is not None:
            compiled = self._compile("grammar", params.grammar)
        else:
            return None
        return GrammarConstraint(compiled, self.vocab_size)
