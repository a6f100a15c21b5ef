"""The in-process vLLM backend: a clear error without the extra (always checked), a real generation with it (gpu)."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from reasonlab.errors import UserError
from reasonlab.llm import SamplingParams, load_llm


def test_without_vllm_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now fails, installed or not
    with pytest.raises(UserError, match=r"pip install 'reasonlab\[vllm\]' \(pip install -e '\.\[vllm\]'") as info:
        load_llm("vllm:Qwen/Qwen2.5-0.5B-Instruct")
    assert "\n" not in str(info.value) and "openai:URL#MODEL" in str(info.value)


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or not _cuda(), reason="needs vllm and a CUDA device")
def test_real_generation_with_token_ids_logprobs_and_a_schema() -> None:
    model = "Qwen/Qwen2.5-0.5B-Instruct"  # from the local Hugging Face cache (tests run offline)
    llm = load_llm(f"vllm:{model}", gpu_memory_utilization=0.3, max_model_len=2048, enforce_eager=True)
    assert llm.context_length == 2048
    result = llm.complete("The capital of France is", SamplingParams(max_tokens=8, temperature=0.0))
    assert "Paris" in result.text
    assert len(result.token_ids) == result.completion_tokens >= 1
    assert llm.detokenize(result.token_ids).strip() == result.text.strip()
    assert result.logprobs is not None and len(result.logprobs) == len(result.token_ids)
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    constrained = llm.complete("Q: 3 + 4? Answer as JSON.\nA:",
                               SamplingParams(max_tokens=20, temperature=0.0, json_schema=schema))
    assert isinstance(json.loads(constrained.text)["answer"], int)
