"""Shared fixtures: the embedded Gemma loaded once, and real OpenAI-compatible servers started once per session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _split_cores_between_workers() -> None:
    """Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores as torch's and
    OpenMP's thread count, set before torch is imported and inherited by the subprocesses tests start: two workers
    of two threads each on 2 cores spin-wait on each other. An explicit OMP_NUM_THREADS is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


_split_cores_between_workers()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 240.0) -> None:
    """Poll `url` until it answers 200; fail with the server's output if it dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            pytest.fail(f"server exited with {process.returncode} before answering {url}:\n{output[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"server did not answer {url} within {timeout:.0f} s")


def start_server(command: list[str], port: int, log: Path) -> Iterator[str]:
    """Run a server subprocess (output to a log file: a full pipe would block it) until the session ends."""
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v1/models", process, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def embedded_hf():
    """Gemma-3-270M on the hf backend, loaded once per test session (converted once, under a file lock)."""
    from reasonlab.llm import load_llm

    return load_llm("hf:embedded")


@pytest.fixture(scope="session")
def embedded_gguf() -> Path:
    from reasonlab.llm.embedded import embedded_gemma_gguf

    return embedded_gemma_gguf()


@pytest.fixture(scope="session")
def llamacpp_server(embedded_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server over the embedded GGUF; yields its base URL."""
    pytest.importorskip("llama_cpp.server", reason="the llamacpp extra is not installed")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "2048", "--model_alias", "gemma"]
    yield from start_server(command, port, tmp_path_factory.mktemp("llamacpp") / "server.log")


@pytest.fixture(scope="session")
def reasonlab_server(embedded_hf, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`reasonlab serve --llm hf:embedded` as a real subprocess; yields its base URL (model id 'gemma')."""
    port = free_port()
    command = [sys.executable, "-m", "reasonlab.cli", "serve", "--llm", "hf:embedded", "--port", str(port),
               "--model-name", "gemma"]
    yield from start_server(command, port, tmp_path_factory.mktemp("serve") / "server.log")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for the test: tiny models run 2-3x faster that way than on two threads of a
    busy 2-core machine (spin-waiting). Test folders of tiny models use it for every test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """An `experiment` test is a long reproduction (minutes to an hour on 2 cores): the suite's 600 s per-test
    timeout is for CI tests, so an experiment without its own `timeout` mark gets four hours."""
    for item in items:
        if item.get_closest_marker("experiment") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(4 * 3600))
