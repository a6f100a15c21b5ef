"""CPU threads for every command: one number, set once by `reasonlab --threads N` or `REASONLAB_THREADS`.

The default leaves one core free (`cores - 1`, at least 1): on a 2-core machine with one other busy process, torch
and llama.cpp at 2 threads spin-wait on each other and decode 10x slower (measured: 48 tokens in 52.9 s at 2
threads vs 4.7 s at 1). A config's own `threads` field, where a system has one, wins over this number.
"""

from __future__ import annotations

import os
import sys

from reasonlab.errors import UserError

__all__ = ["ENV_VAR", "available_cores", "configure_threads", "current_threads", "default_threads", "describe"]

ENV_VAR = "REASONLAB_THREADS"
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


def _from_env() -> int | None:
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{ENV_VAR}={text!r} is not a positive integer: set it to a thread count such as 1")
    return int(text)


def current_threads() -> int:
    """The thread count every command uses: `--threads`, else `REASONLAB_THREADS`, else the default."""
    return _from_env() or default_threads()


def configure_threads(threads: int | None = None) -> int:
    """Fix the thread count for this process (and the processes it starts); returns it.

    Sets `REASONLAB_THREADS` and the OpenMP/BLAS variables (read by torch when it is first imported) and, when
    torch is already imported, `torch.set_num_threads`."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads} is not a positive integer: pass a thread count such as 1")
    count = threads or current_threads()
    os.environ[ENV_VAR] = str(count)
    for name in _THREAD_ENV:
        os.environ[name] = str(count)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    return count


def describe() -> str:
    """One line for `reasonlab info`: the count and where it came from."""
    source = f"{ENV_VAR}" if _from_env() else f"default: cores - 1 of {available_cores()}"
    return f"{current_threads()} ({source}; set with `reasonlab --threads N` or {ENV_VAR})"
