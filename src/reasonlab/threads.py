"""CPU threads for every command: one number, set once by `reasonlab --threads N` or `REASONLAB_THREADS`.

Where it comes from, first found wins: `--threads`, `REASONLAB_THREADS`, the user's own `OMP_NUM_THREADS`, else
the default, which leaves one core free (`cores - 1`, at least 1): on a 2-core machine with one other busy
process, torch and llama.cpp at 2 threads spin-wait on each other and decode 10x slower (measured: 48 tokens in
52.9 s at 2 threads vs 4.7 s at 1). A config's own `threads` field, where a system has one, wins over this number.
Processes a command starts (sandboxed tools, DDP workers) inherit it through the environment.
"""

from __future__ import annotations

import os
import sys

from reasonlab.errors import UserError

__all__ = ["ENV_VAR", "available_cores", "configure_threads", "current_threads", "default_threads", "describe",
           "explicit_threads"]

ENV_VAR = "REASONLAB_THREADS"
_SOURCE_VAR = "REASONLAB_THREADS_SOURCE"  # where the count came from, for `reasonlab info` and child processes
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """`cores - 1`, at least 1: never oversubscribed by one other busy process."""
    return max(1, available_cores() - 1)


def _positive(name: str, fix: str) -> int | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{name}={text!r} is not a positive integer: {fix}")
    return int(text)


def _resolve() -> tuple[int, str]:
    """(count, source) from the environment: REASONLAB_THREADS, else OMP_NUM_THREADS, else the default."""
    if (count := _positive(ENV_VAR, "set it to a thread count such as 1")) is not None:
        return count, os.environ.get(_SOURCE_VAR) or ENV_VAR
    if (count := _positive("OMP_NUM_THREADS", "set it to a thread count such as 1, or unset it")) is not None:
        return count, "OMP_NUM_THREADS"
    return default_threads(), "default"


def current_threads() -> int:
    """The thread count every command uses: `--threads`, else `REASONLAB_THREADS`, else `OMP_NUM_THREADS`, else
    cores - 1."""
    return _resolve()[0]


def explicit_threads() -> int | None:
    """The count when the user chose one (`--threads`, `REASONLAB_THREADS`, `OMP_NUM_THREADS`), else None: for
    commands whose tiny models run best on one thread unless told otherwise."""
    count, source = _resolve()
    return None if source == "default" else count


def configure_threads(threads: int | None = None) -> int:
    """Fix the thread count for this process (and the processes it starts); returns it.

    Sets `REASONLAB_THREADS` (with its source) and the OpenMP/BLAS variables (read by torch when it is first
    imported) and, when torch is already imported, `torch.set_num_threads`."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads} is not a positive integer: pass a thread count such as 1")
    count, source = (threads, "--threads") if threads else _resolve()
    os.environ[ENV_VAR] = str(count)
    os.environ[_SOURCE_VAR] = source
    for name in _THREAD_ENV:
        os.environ[name] = str(count)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    return count


def describe() -> str:
    """One line for `reasonlab info`: the count and where it came from."""
    count, source = _resolve()
    origin = f"default: cores - 1 of {available_cores()}" if source == "default" else source
    return f"{count} ({origin}; set with `reasonlab --threads N` or {ENV_VAR})"
