"""Constraints are checked before native code sees them, and each JSON-schema keyword we claim is enforced is.

The keyword tables are checked against xgrammar's own matcher over characters (no model): a keyword is in
ENFORCED only if the matcher rejects a violating instance, and every keyword we refuse really is ignored.
"""

from __future__ import annotations

import json

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams
from reasonlab.llm.constrained import UNENFORCED_SCHEMA_KEYWORDS, check_constraint, grammar_of

# keyword -> (schema, an instance that breaks only that keyword, one that keeps it), in xgrammar's layout
ENFORCED = {
    "type": ({"type": "integer"}, '"7"', "7"),
    "minimum": ({"type": "integer", "minimum": 3}, "2", "3"),
    "maximum": ({"type": "integer", "maximum": 99}, "100", "99"),
    "exclusiveMinimum": ({"type": "integer", "exclusiveMinimum": 3}, "3", "4"),
    "exclusiveMaximum": ({"type": "number", "exclusiveMaximum": 2.5}, "2.5", "2.25"),
    "number range": ({"type": "number", "minimum": 1.5, "maximum": 2.5}, "2.6", "2.25"),
    "multipleOf (integer)": ({"type": "integer", "multipleOf": 3}, "4", "6"),
    "minLength": ({"type": "string", "minLength": 3}, '"ab"', '"abc"'),
    "maxLength": ({"type": "string", "maxLength": 2}, '"abc"', '"ab"'),
    "maxLength keeps JSON valid": ({"type": "string", "maxLength": 3}, '"a\x07"', '"a b"'),
    "minLength keeps JSON valid": ({"type": "string", "minLength": 1}, '"\t"', '"\u2603"'),
    "pattern": ({"type": "string", "pattern": "^[a-z]+$"}, '"A"', '"a"'),
    "format": ({"type": "string", "format": "date"}, '"soon"', '"2024-01-02"'),
    "enum": ({"enum": ["a", 1, None]}, '"b"', "null"),
    "const": ({"const": {"a": [1, 2]}}, '{"a":[1]}', '{"a":[1,2]}'),
    "required": ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, "{}", '{"a": 1}'),
    "properties": ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{"a": "x"}', '{"a": 1}'),
    "no extra properties": ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{"b": 1}', '{"a": 1}'),
    "additionalProperties": ({"type": "object", "additionalProperties": {"type": "integer"}}, '{"a": "x"}', '{"a": 1}'),
    "minProperties": ({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
                      '{"a": 1}', '{"a": 1, "b": 2}'),
    "maxProperties": ({"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 1},
                      '{"a": 1, "b": 2}', '{"a": 1}'),
    "patternProperties": ({"type": "object", "patternProperties": {"^x": {"type": "integer"}}}, '{"x": "s"}', '{"x": 1}'),
    "propertyNames": ({"type": "object", "propertyNames": {"pattern": "^x"}}, '{"a": 1}', '{"x": 1}'),
    "items": ({"type": "array", "items": {"type": "integer"}}, '["a"]', "[1]"),
    "prefixItems": ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, "[1, 2]", "[1]"),
    "minItems": ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, "[1]", "[1, 2]"),
    "maxItems": ({"type": "array", "items": {"type": "integer"}, "maxItems": 1}, "[1, 2]", "[1]"),
    "anyOf": ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, '"a"', "null"),
    "$ref": ({"$defs": {"x": {"type": "integer", "maximum": 3}}, "$ref": "#/$defs/x"}, "4", "2"),
    "no free whitespace": ({"type": "object", "properties": {"a": {"type": "integer"}}}, '{ "a": 1}', '{"a": 1}'),
}

# keyword we refuse -> a schema with it and an instance that breaks it, which xgrammar would accept anyway
REFUSED = {
    "not": ({"type": "integer", "not": {"const": 3}}, "3"),
    "if": ({"type": "integer", "if": {"minimum": 3}, "then": {"maximum": 5}}, "7"),
    "allOf": ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, "2"),
    "uniqueItems": ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "[1, 1]"),
    "contains": ({"type": "array", "items": {"type": "integer"}, "contains": {"const": 3}}, "[1]"),
    "dependentRequired": ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                           "dependentRequired": {"a": ["b"]}}, '{"a": 1}'),
    "multipleOf": ({"type": "number", "multipleOf": 3}, "4"),
    "format": ({"type": "string", "format": "email", "maxLength": 5}, '"abcdef@g.com"'),
    "pattern": ({"type": "string", "pattern": "^[a-z]+$", "maxLength": 2}, '"abcd"'),
    "lookaround": ({"type": "string", "pattern": "^(?!x)[a-z]+$"}, '"xa"'),
}


def matches(schema: dict, text: str, as_decoded: bool = True) -> bool:
    """Whether a matcher over characters (no model) accepts `text` as a complete instance: of the grammar our
    decoding enforces, or (as_decoded=False) of xgrammar's own conversion of the schema."""
    import xgrammar as xgr

    if as_decoded:
        grammar = grammar_of(SamplingParams(json_schema=schema))
    else:
        grammar = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False)
    compiled = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False).compile_grammar(grammar)
    matcher = xgr.GrammarMatcher(compiled, terminate_without_stop_token=True)
    return matcher.accept_string(text) and matcher.is_terminated()


@pytest.mark.parametrize("keyword", sorted(ENFORCED))
def test_claimed_keywords_are_enforced(keyword: str) -> None:
    schema, violating, valid = ENFORCED[keyword]
    check_constraint(SamplingParams(json_schema=schema))
    assert matches(schema, valid)
    assert not matches(schema, violating)


@pytest.mark.parametrize("keyword", sorted(REFUSED))
def test_ignored_keywords_are_refused_not_dropped(keyword: str) -> None:
    schema, violating = REFUSED[keyword]
    assert matches(schema, violating, as_decoded=False), "xgrammar now enforces this keyword: move it to ENFORCED"
    with pytest.raises(UserError, match="not enforced") as info:
        check_constraint(SamplingParams(json_schema=schema))
    assert "\n" not in str(info.value)


def test_every_refused_keyword_is_found_deep_inside_a_schema() -> None:
    for keyword in sorted(UNENFORCED_SCHEMA_KEYWORDS):
        inner = {"type": "array", keyword: {"type": "integer"}}
        schema = {"type": "object", "properties": {"a": {"anyOf": [{"type": "null"}, inner]}}}
        with pytest.raises(UserError, match=f"'{keyword}' at #/properties/a/anyOf/1 is not enforced"):
            check_constraint(SamplingParams(json_schema=schema))
    # a property that happens to be called "not" is no keyword
    check_constraint(SamplingParams(json_schema={"type": "object", "properties": {"not": {"type": "integer"}}}))


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        (SamplingParams(grammar='root ::= "a" | '), "invalid grammar: EBNF parser error at line 1, column 16"),
        (SamplingParams(grammar='root ::= [z-a]'), "lower bound is larger than upper bound"),
        (SamplingParams(grammar='start ::= "a"'), 'root rule with name "root" is not found'),
        (SamplingParams(grammar='root ::= foo'), 'Rule "foo" is not defined'),
        (SamplingParams(regex="(("), "invalid regex: Regex parsing error at position 3"),
        (SamplingParams(regex="a{5,2}"), "Lower bound is larger than upper bound"),
        (SamplingParams(regex="(?<=a)b"), "lookaround assertion"),
        (SamplingParams(json_schema={"type": "foo"}), 'invalid json_schema: Unsupported type "foo"'),
        (SamplingParams(json_schema={"type": 5}), "Type should be a string"),
        (SamplingParams(json_schema={"$ref": "#/nope"}), "nope"),
        (SamplingParams(json_schema={"type": "integer", "minimum": 5, "maximum": 1}), "minimum greater than maximum"),
        (SamplingParams(json_schema={"type": "object", "properties": {"a": 3}}), "#/properties/a is a int"),
        (SamplingParams(regex="a" * 300_000), "more than 200000"),
    ],
)
def test_malformed_constraints_are_one_line_user_errors(params: SamplingParams, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        check_constraint(params)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value) and "/project/cpp" not in str(info.value)


def test_deeply_nested_schema_is_refused_before_compiling() -> None:
    schema: dict = {"type": "integer"}
    for _ in range(60):
        schema = {"type": "array", "items": schema}
    with pytest.raises(UserError, match="nests deeper than 48 levels"):
        check_constraint(SamplingParams(json_schema=schema))


def test_no_constraint_and_valid_ones_pass() -> None:
    check_constraint(SamplingParams())
    check_constraint(SamplingParams(regex=r"[0-9]{1,3}"))
    check_constraint(SamplingParams(grammar='root ::= "yes" | "no"'))
    check_constraint(SamplingParams(json_schema={"type": "object", "properties": {"a": {"type": "integer"}}}))


# in process, on the hf backend (a tiny random Llama): the same errors, before any native code runs


@pytest.mark.parametrize(
    ("prompt", "params", "fragment"),
    [
        ([5, 300], SamplingParams(max_tokens=2), "prompt token id 300 is outside the vocabulary of hf:"),
        ([-1], SamplingParams(max_tokens=2), "prompt token id -1 is outside"),
        ("x", SamplingParams(max_tokens=2, grammar="root ::= ("), "invalid grammar"),
        ("x", SamplingParams(max_tokens=2, json_schema={"type": "array", "items": 5}), "items must be a boolean or"),
        ("x", SamplingParams(max_tokens=2, regex="[z-a]"), "invalid regex"),
        ("x\ud800", SamplingParams(max_tokens=2), "unpaired UTF-16 surrogate"),
    ],
)
def test_hf_refuses_bad_input_with_a_user_error(tiny_hf, prompt, params: SamplingParams, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        tiny_hf.complete(prompt, params)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_hf_detokenize_and_chat_template_errors_are_user_errors(tiny_hf) -> None:
    from reasonlab.llm import Message

    with pytest.raises(UserError, match="detokenize token id 1000 is outside the vocabulary"):
        tiny_hf.detokenize([1, 1000])
    with pytest.raises(UserError, match=r"the chat template of hf:.* refuses these messages"):
        tiny_hf.chat([Message("tool", "x")], SamplingParams(max_tokens=2))


def test_hf_extreme_temperatures_and_seeds_still_sample(tiny_hf) -> None:
    greedy = tiny_hf.complete("The capital", SamplingParams(max_tokens=4, temperature=0))
    for temperature in (5e-324, 1e-30):
        tiny = tiny_hf.complete("The capital", SamplingParams(max_tokens=4, temperature=temperature, seed=2**70))
        assert tiny.token_ids == greedy.token_ids
        assert tiny.logprobs[0] == pytest.approx(0.0, abs=1e-6)
    flat = tiny_hf.complete("The capital", SamplingParams(max_tokens=4, temperature=1e300, seed=-5, top_logprobs=2))
    assert len(flat.token_ids) == 4 and all(len(top) == 2 for top in flat.top_logprobs)


def test_hf_schema_bounds_hold_on_every_seed(tiny_hf) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 7},
                                               "s": {"type": "string", "maxLength": 3}}, "required": ["n", "s"]}
    for seed in range(6):
        result = tiny_hf.complete("x", SamplingParams(max_tokens=40, seed=seed, json_schema=schema))
        data = json.loads(result.text)
        assert 3 <= data["n"] <= 7 and len(data["s"]) <= 3
        assert result.text == json.dumps(data, ensure_ascii=False)  # no free whitespace: json.dumps' layout


def test_a_huggingface_factory_imports_xgrammar_only_when_a_constraint_needs_it(monkeypatch) -> None:
    """HFPolicy builds its factory at load: a machine without xgrammar still runs unconstrained decoding."""
    import sys

    from reasonlab.llm.constrained import ConstraintFactory

    monkeypatch.setitem(sys.modules, "xgrammar", None)  # `import xgrammar` now raises ImportError
    factory = ConstraintFactory.from_huggingface(object(), vocab_size=10, stop_token_ids=[0])
    assert factory.vocab_size == 10
    with pytest.raises(ImportError):
        factory._tokenizer_info()
