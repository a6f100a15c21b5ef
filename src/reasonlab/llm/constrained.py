"""Constrained decoding for in-process backends: JSON schema, regex or EBNF grammar -> allowed-token masks.

Built on xgrammar (the structured-generation engine vLLM and SGLang use), which compiles a grammar against
the tokenizer once and then yields a bitmask of allowed next tokens per step. Both in-process backends use it:
hf masks torch logits, llamacpp masks llama.cpp's candidates, so no user-written grammar ever reaches
llama.cpp's own parser (which crashes the process on a malformed one).

Every constraint is first checked by `check_constraint`: compiled without a tokenizer (a step that raises
instead of crashing) and searched for the JSON-schema keywords and regex features xgrammar would silently
ignore. A bad or unenforceable constraint is a one-line `UserError`, never a constraint that quietly vanishes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import torch

from reasonlab.errors import UserError
from reasonlab.llm.base import SamplingParams

__all__ = [
    "UNENFORCED_SCHEMA_KEYWORDS",
    "ConstraintFactory",
    "GrammarConstraint",
    "check_constraint",
    "constraint_source",
    "grammar_of",
]

ConstraintKind = Literal["json_schema", "regex", "grammar"]

# longest schema/regex/grammar text accepted, and deepest schema nesting: bounds on compile time and recursion
MAX_CONSTRAINT_CHARS = 200_000
MAX_SCHEMA_DEPTH = 48

# keywords xgrammar 0.2 accepts but does not enforce (each checked against its matcher in tests/llm)
UNENFORCED_SCHEMA_KEYWORDS = frozenset({
    "not", "if", "then", "else", "allOf", "uniqueItems", "contains", "minContains", "maxContains",
    "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedItems",
})
# keywords whose value is one schema, a list of schemas, or a name -> schema map
_SCHEMA_VALUED = frozenset({"items", "additionalProperties", "propertyNames", "additionalItems",
                            "unevaluatedProperties", "contains", "not", "if", "then", "else"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems", "items"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_LOOKAROUND = re.compile(r"(?<!\\)\(\?<?[=!]")
_XGRAMMAR_PREFIX = re.compile(r"^\s*\[[^\]]*\]\s*\S+:\d+:\s*")


def constraint_source(params: SamplingParams) -> tuple[ConstraintKind, str] | None:
    """The constraint of `params` as (kind, source text), or None when it has none."""
    if params.json_schema is not None:
        return "json_schema", json.dumps(params.json_schema, sort_keys=True)
    if params.regex is not None:
        return "regex", params.regex
    if params.grammar is not None:
        return "grammar", params.grammar
    return None


def check_constraint(params: SamplingParams) -> None:
    """Raise a one-line UserError when the constraint of `params` is malformed or would not be enforced."""
    found = constraint_source(params)
    if found is None:
        return
    kind, source = found
    if len(source) > MAX_CONSTRAINT_CHARS:
        raise UserError(f"the {kind} has {len(source)} characters, more than {MAX_CONSTRAINT_CHARS}: shorten it")
    if kind == "json_schema":
        _check_schema(params.json_schema)
    elif kind == "regex":
        _check_pattern(source, "regex")
    _grammar(kind, source)


def grammar_of(params: SamplingParams) -> Any:
    """The checked xgrammar `Grammar` that decoding under `params` enforces (None without a constraint)."""
    found = constraint_source(params)
    if found is None:
        return None
    check_constraint(params)
    return _grammar(*found)


def _check_schema(schema: Any, path: str = "#", depth: int = 0) -> None:
    """Walk the schema positions of a JSON schema and refuse what xgrammar would not enforce."""
    if depth > MAX_SCHEMA_DEPTH:
        raise UserError(f"json_schema nests deeper than {MAX_SCHEMA_DEPTH} levels at {path}: flatten it")
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise UserError(f"json_schema at {path} is a {type(schema).__name__}, not an object: fix the schema")
    for keyword in sorted(UNENFORCED_SCHEMA_KEYWORDS & set(schema)):
        if keyword == "uniqueItems" and schema[keyword] is False:
            continue
        raise UserError(f"json_schema keyword '{keyword}' at {path} is not enforced by constrained decoding: "
                        "drop it and check that property after parsing")
    _check_schema_combinations(schema, path)
    for name, child in _subschemas(schema, path):
        _check_schema(child, name, depth + 1)


def _check_schema_combinations(schema: dict[str, Any], path: str) -> None:
    if "multipleOf" in schema and schema.get("type") != "integer":
        raise UserError(f"json_schema 'multipleOf' at {path} is not enforced on non-integer numbers: "
                        "drop it or use type integer")
    if "format" in schema and ({"minLength", "maxLength", "pattern"} & set(schema)):
        raise UserError(f"json_schema 'format' with a length or pattern at {path} is not enforced: keep one of them")
    if "pattern" in schema and ({"minLength", "maxLength"} & set(schema)):
        raise UserError(f"json_schema 'pattern' with minLength/maxLength at {path} is not enforced: "
                        "put the length into the pattern")
    if isinstance(schema.get("pattern"), str):
        _check_pattern(schema["pattern"], f"json_schema pattern at {path}")
    if isinstance(schema.get("patternProperties"), dict):
        for key in schema["patternProperties"]:
            _check_pattern(str(key), f"json_schema patternProperties at {path}")


def _subschemas(schema: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    for keyword, value in schema.items():
        if keyword in _SCHEMA_MAPS and isinstance(value, dict):
            yield from ((f"{path}/{keyword}/{name}", child) for name, child in value.items())
        elif keyword in _SCHEMA_LISTS and isinstance(value, list):
            yield from ((f"{path}/{keyword}/{i}", child) for i, child in enumerate(value))
        elif keyword in _SCHEMA_VALUED and isinstance(value, (dict, bool)):
            yield f"{path}/{keyword}", value


def _check_pattern(pattern: str, what: str) -> None:
    if _LOOKAROUND.search(pattern):
        raise UserError(f"{what} uses a lookaround assertion, which is not enforced by constrained decoding: "
                        "rewrite it without (?=, (?!, (?<= or (?<!")


def _json_safe_lengths(schema: Any) -> None:
    """In place: a string bounded only by minLength/maxLength becomes the same bound as a pattern over characters
    that need no escape. xgrammar's rule for length-bounded strings lets raw control characters through (invalid
    JSON); its pattern rule does not. Quotes and backslashes are then never generated inside such strings."""
    if not isinstance(schema, dict):
        return
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    bounded = "minLength" in schema or "maxLength" in schema
    if (bounded and schema.get("type") == "string" and "pattern" not in schema and "format" not in schema
            and _is_count(low) and (high is None or _is_count(high))):
        schema.pop("minLength", None)
        schema.pop("maxLength", None)
        schema["pattern"] = rf'^[^"\\\u0000-\u001f]{{{low},{"" if high is None else high}}}$'
    for _, child in _subschemas(schema, "#"):
        _json_safe_lengths(child)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000


def _xgrammar_reason(err: Exception) -> str:
    """The human part of an xgrammar error (it starts with a timestamp and a C++ file:line)."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return _XGRAMMAR_PREFIX.sub("", first)[:300].rstrip(". ")


@lru_cache(maxsize=256)
def _grammar(kind: ConstraintKind, source: str) -> Any:
    """The constraint compiled without a tokenizer: the checked step that raises on a malformed input."""
    import xgrammar as xgr

    try:
        if kind == "json_schema":
            schema = json.loads(source)
            _json_safe_lengths(schema)
            return xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
        if kind == "regex":
            return xgr.Grammar.from_regex(source)
        return xgr.Grammar.from_ebnf(source)
    except (RuntimeError, ValueError, TypeError) as err:
        fix = {"json_schema": "fix the schema", "regex": "fix the regular expression",
               "grammar": "fix the grammar (EBNF/GBNF with a root rule)"}[kind]
        raise UserError(f"invalid {kind}: {_xgrammar_reason(err)}: {fix}") from None


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

    def masked_scores(self, scores: np.ndarray) -> np.ndarray:
        """A copy of token-id-ordered scores (V,) with forbidden tokens at -inf."""
        logits = torch.from_numpy(np.array(scores, dtype=np.float32))
        self.mask_logits(logits)
        return logits.numpy()

    def accept(self, token_id: int) -> bool:
        return bool(self._matcher.accept_token(token_id))

    @property
    def finished(self) -> bool:
        return bool(self._matcher.is_terminated())


class ConstraintFactory:
    """Compiles the constraint of a `SamplingParams` for one tokenizer and hands out fresh matchers."""

    def __init__(self, tokenizer_info: Callable[[], Any], vocab_size: int) -> None:
        self._tokenizer_info = tokenizer_info
        self.vocab_size = vocab_size
        self._compile = lru_cache(maxsize=64)(self._compile_uncached)
        self._compiler: Any = None

    @classmethod
    def from_huggingface(cls, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> ConstraintFactory:
        """For a transformers tokenizer. xgrammar is imported on first use, so a model that never decodes under a
        constraint runs without it."""

        def info() -> Any:
            import xgrammar as xgr

            return xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)

        return cls(info, vocab_size)

    @classmethod
    def from_pieces(cls, vocabulary: Callable[[], tuple[list[bytes], list[int]]]) -> ConstraintFactory:
        """For a vocabulary read on first use: the bytes each token id decodes to (b"" for control tokens)
        and the stop ids. Until then `vocab_size` is unknown (-1)."""
        import xgrammar as xgr

        def info() -> Any:
            pieces, stop_token_ids = vocabulary()
            return xgr.TokenizerInfo(pieces, xgr.VocabType.RAW, vocab_size=len(pieces), stop_token_ids=stop_token_ids)

        return cls(info, -1)

    def _compiler_for_tokenizer(self) -> Any:
        if self._compiler is None:
            import xgrammar as xgr

            info = self._tokenizer_info()
            self.vocab_size = info.vocab_size
            self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        return self._compiler

    def _compile_uncached(self, kind: ConstraintKind, source: str) -> Any:
        compiler = self._compiler_for_tokenizer()
        try:
            return compiler.compile_grammar(_grammar(kind, source))
        except RuntimeError as err:
            raise UserError(f"invalid {kind}: {_xgrammar_reason(err)}: fix the constraint") from None

    def new(self, params: SamplingParams) -> GrammarConstraint | None:
        """A fresh constraint for one completion, or None when `params` has no constraint."""
        found = constraint_source(params)
        if found is None:
            return None
        check_constraint(params)
        compiled = self._compile(*found)
        return GrammarConstraint(compiled, self.vocab_size)
