"""Fixtures of the llm tests: a tiny random hf model (built once per session) and real `reasonlab serve`
processes. Test files take these as fixtures; they never import each other or a conftest."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch

from tiny_hf import build_tiny_hf_model


@pytest.fixture(scope="session")
def tiny_hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama as an HF folder (`hf:FOLDER`)."""
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tiny_gemma(tiny_hf_folder: Path) -> Callable[..., Any]:
    """Builds a random 2-layer Gemma-3 (one sliding-window layer of `window` tokens, one global, an optional logit
    soft-cap) with the tiny Llama's tokenizer, on the hf backend."""

    def build(window: int = 8, softcap: float | None = None) -> Any:
        from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

        from reasonlab.llm.hf import HFPolicy

        tokenizer = AutoTokenizer.from_pretrained(tiny_hf_folder)
        torch.manual_seed(0)
        config = Gemma3TextConfig(vocab_size=len(tokenizer) + 20, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                  sliding_window=window, layer_types=["sliding_attention", "full_attention"],
                                  max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                                  final_logit_softcapping=softcap)
        return HFPolicy(Gemma3ForCausalLM(config).eval(), tokenizer, name="tiny-gemma3")

    return build


@pytest.fixture(scope="session")
def tiny_hf(tiny_hf_folder: Path):
    """The tiny random Llama on the hf backend, shared by the session (tests must not change it for good)."""
    from reasonlab.llm import load_llm

    return load_llm(f"hf:{tiny_hf_folder}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_serving(port: int, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    """Poll GET /v1/models until it answers; fail with the server's output if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"server on port {port} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="module")
def serve_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[list[str]], tuple[Any, int]]]:
    """Start server processes for the module: `serve_process([*command, "--port"])` appends a free port, waits
    until it answers and returns (process, port); all are stopped when the module is done."""
    with _processes(tmp_path_factory.mktemp("serve")) as start:
        yield start


@contextmanager
def _processes(logs: Path) -> Iterator[Callable[[list[str]], tuple[Any, int]]]:
    running: list[subprocess.Popen] = []

    def start(command: list[str]) -> tuple[Any, int]:
        port, log = _free_port(), logs / f"server-{len(running)}.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen([*command, str(port)], stdout=sink, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        running.append(process)
        _wait_until_serving(port, process, log)
        return process, port

    try:
        yield start
    finally:
        for process in running:
            process.terminate()
            process.wait(timeout=30)


def _stream_matches(llm: Any, prompt: Any, params: Any) -> list[Any]:
    """The deltas of `llm.stream`, after asserting that they join to exactly what `llm.complete` returns."""
    whole = llm.complete(prompt, params)
    deltas = list(llm.stream(prompt, params))
    assert "".join(d.text for d in deltas) == whole.text
    assert [t for d in deltas for t in d.token_ids] == whole.token_ids
    assert [d.finish_reason for d in deltas] == [None] * (len(deltas) - 1) + [whole.finish_reason]
    if whole.logprobs is not None:
        assert [v for d in deltas for v in d.logprobs] == whole.logprobs
    return deltas


def _split_stop(llm: Any, prompt: Any, max_tokens: int = 16) -> str:
    """A stop string of greedy `prompt` that spans two tokens (its first occurrence starts in one, ends in the next)."""
    from reasonlab.llm import SamplingParams

    ids = llm.complete(prompt, SamplingParams(max_tokens=max_tokens, temperature=0)).token_ids
    text = llm.detokenize(ids)
    for k in range(1, len(ids) - 1):
        before, after = llm.detokenize(ids[:k]), llm.detokenize(ids[: k + 1])
        stop = before[-2:] + after[len(before) : len(before) + 2]
        if len(before) >= 2 and len(after) >= len(before) + 2 and text.find(stop) == len(before) - 2:
            return stop
    raise AssertionError(f"no stop string spans two tokens in {text!r}")


@pytest.fixture(scope="session")
def stream_matches() -> Callable[[Any, Any, Any], list[Any]]:
    """`stream_matches(llm, prompt, params)`: assert that streamed deltas join to the completion; the deltas."""
    return _stream_matches


@pytest.fixture(scope="session")
def split_stop() -> Callable[..., str]:
    """`split_stop(llm, prompt)`: a stop string that greedy decoding of `prompt` completes across two tokens."""
    return _split_stop
