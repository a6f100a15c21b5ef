"""Spec parsing: `openai:URL[?context_length=N]#MODEL` splits cleanly, and every malformed spec is one line."""

from __future__ import annotations

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import load_llm
from reasonlab.llm.registry import parse_openai_spec


@pytest.mark.parametrize(("spec", "expected"), [
    ("openai:http://localhost:8000/v1#Qwen/Qwen3-8B", ("http://localhost:8000/v1", "Qwen/Qwen3-8B", {})),
    ("openai:https://api.openai.com/v1#gpt-4o-mini", ("https://api.openai.com/v1", "gpt-4o-mini", {})),
    ("openai:http://[::1]:8080/v1?context_length=4096#m", ("http://[::1]:8080/v1", "m", {"context_length": 4096})),
    ("openai:http://host:11434/v1#llama3.2:latest#x", ("http://host:11434/v1", "llama3.2:latest#x", {})),
])
def test_openai_specs_split_into_url_model_and_options(spec: str, expected: tuple) -> None:
    assert parse_openai_spec(spec) == expected


@pytest.mark.parametrize("spec", [
    "openai:http://host:notaport#m",
    "openai:http://[::1#m",
    "openai:http://:8000/v1#m",
    "openai:host:8000/v1#m",
    "openai:http://host:99999/v1#m",
    "openai:http://host:8000/v1",
    "openai:http://host/v1?context_length=big#m",
    "openai:http://host/v1?api_version=1#m",
    "openai:http://host/v1#m?context_length=4096",
])
def test_malformed_openai_specs_are_one_line_user_errors(spec: str) -> None:
    with pytest.raises(UserError, match="bad openai spec") as info:
        load_llm(spec)
    assert "\n" not in str(info.value) and "openai:http://HOST:PORT/v1#MODEL" in str(info.value)
