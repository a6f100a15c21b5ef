"""What one sandbox run may use and what it returns: limits, results, layer names and error kinds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from reasonlab.errors import UserError

Layer = Literal["namespace", "user", "tmpfs", "seccomp", "rlimit", "audit", "env", "timeout", "supervisor"]
ErrorKind = Literal[
    "timeout", "cpu", "memory", "filesize", "processes", "forbidden", "exception", "output", "result", "crash"
]
# "auto" and "strict" (the same: both refuse to run without the namespace, user and seccomp layers);
# "unsafe-hook-only" runs a plain subprocess with rlimits, seccomp, env and the audit hook, as the caller's user
SandboxMode = Literal["auto", "strict", "unsafe-hook-only"]
UNSAFE_MODE = "unsafe-hook-only"

# paths inside the namespace; without bubblewrap both are folders of a private host temp dir
SANDBOX_WORKDIR = "/sandbox"
SANDBOX_TMPDIR = "/tmp"
NOBODY = 65534
SKIPPABLE_LAYERS = ("audit", "seccomp")
LARGEST = 1 << 40  # upper bound of every integer limit


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """What one run may use; every limit is enforced by the kernel or the parent, not by the child."""

    wall_seconds: float = 10.0  # parent kills the process group after this
    cpu_seconds: int = 5  # RLIMIT_CPU (SIGXCPU, then SIGKILL one second later)
    memory_mb: int = 512  # RLIMIT_AS, virtual memory of the sandboxed process
    tmpfs_mb: int = 64  # size of each writable tmpfs (the workdir and /tmp)
    file_mb: int = 64  # RLIMIT_FSIZE, largest single file the code may write
    max_files: int = 1000  # entries the workdir may hold when it is copied back
    max_output_bytes: int = 1_000_000  # cap on stdout, on stderr and on the JSON result, each
    max_processes: int = 8  # RLIMIT_NPROC in the user namespace: threads and processes the code may add

    def __post_init__(self) -> None:
        wall = self.wall_seconds
        if isinstance(wall, bool) or not isinstance(wall, (int, float)) or not 0 < wall < math.inf:
            raise UserError(f"SandboxLimits.wall_seconds={wall!r} must be a positive, finite number of seconds")
        for name in ("cpu_seconds", "memory_mb", "tmpfs_mb", "file_mb", "max_files", "max_output_bytes",
                     "max_processes"):
            value, least = getattr(self, name), 0 if name == "max_processes" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise UserError(f"SandboxLimits.{name}={value!r} must be an integer >= {least}; pass one")
            if value > LARGEST:
                # megabytes are shifted into bytes for setrlimit, which takes 63-bit values
                raise UserError(f"SandboxLimits.{name}={value!r} must be at most {LARGEST}; pass a smaller one")


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    """One run: the JSON value of `result` (or of the last expression), or the violation that stopped it."""

    ok: bool
    value: Any = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    error_kind: ErrorKind | None = None
    layer: Layer | None = None  # the layer that stopped the code; None when nothing did
    seconds: float = 0.0
    changed_files: tuple[str, ...] = ()  # workdir paths written or deleted on the caller's side


@dataclasses.dataclass(frozen=True)
class LayerStatus:
    """Whether a layer holds on this machine, and what it enforces or why it is off."""

    active: bool
    detail: str
