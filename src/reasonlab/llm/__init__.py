"""One interface to every language model: `load_llm(spec)` returns an `LLM` (see docs/llm.md)."""

from reasonlab.llm.base import (
    LLM,
    BaseLLM,
    Generation,
    Message,
    Prompt,
    SamplingParams,
    StreamDelta,
    TrainablePolicy,
    Usage,
    prompt_kind,
)
from reasonlab.llm.fake import HashingEmbedder, ScriptedLLM
from reasonlab.llm.registry import SPEC_HELP, load_llm

__all__ = [
    "LLM",
    "SPEC_HELP",
    "BaseLLM",
    "Generation",
    "HashingEmbedder",
    "Message",
    "Prompt",
    "SamplingParams",
    "ScriptedLLM",
    "StreamDelta",
    "TrainablePolicy",
    "Usage",
    "load_llm",
    "prompt_kind",
]
