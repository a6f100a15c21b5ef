"""Progress lines for long commands: phases with their time, ETAs, and a heartbeat so no command is silent for
more than half a minute.

    with progress.heartbeat("trm"):              # prints "trm: <phase>, 40 s so far" after 20 s without news
        with progress.phase("training TRM, seed 0"):
            for step in ...:
                progress.say(f"step {step}/{total}, {progress.eta(step, total, started)}")

Lines go to stderr, so stdout stays for results.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

__all__ = ["eta", "heartbeat", "phase", "say"]

HEARTBEAT_SECONDS = 20.0


class _State:
    lock = threading.Lock()
    last_output = time.monotonic()
    phases: ClassVar[list[tuple[str, float]]] = []  # (label, start) of the phases open now, innermost last


def say(message: str) -> None:
    """Print one progress line (stderr) and reset the heartbeat's clock."""
    with _State.lock:
        print(message, file=sys.stderr, flush=True)
        _State.last_output = time.monotonic()


def eta(done: int, total: int, started: float) -> str:
    """`"ETA 1 min 20 s"` from the work done since `started` (a `time.monotonic()` value)."""
    if done <= 0 or total <= done:
        return "ETA -" if total > done else "done"
    remaining = (time.monotonic() - started) / done * (total - done)
    return f"ETA {_duration(remaining)}"


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


@contextmanager
def phase(label: str) -> Iterator[None]:
    """Announce `label`, keep it as the heartbeat's current phase, and report its time when it ends."""
    started = time.monotonic()
    say(f"{label} ...")
    with _State.lock:
        _State.phases.append((label, started))
    try:
        yield
    except BaseException:
        say(f"{label}: failed after {_duration(time.monotonic() - started)}")
        raise
    else:
        say(f"{label}: done in {_duration(time.monotonic() - started)}")
    finally:
        with _State.lock:
            _State.phases.remove((label, started))


@contextmanager
def heartbeat(name: str, every: float = HEARTBEAT_SECONDS) -> Iterator[None]:
    """While the block runs, print `name: <current phase>, N s so far` whenever `every` seconds pass without a
    progress line."""
    started = time.monotonic()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(min(every, 1.0)):
            with _State.lock:
                quiet = time.monotonic() - _State.last_output
                label = _State.phases[-1][0] if _State.phases else "working"
            if quiet >= every:
                say(f"{name}: {label}, {_duration(time.monotonic() - started)} so far")

    thread = threading.Thread(target=beat, name=f"heartbeat-{name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
