"""Run untrusted, model-written Python in a separate process under operating-system limits.

mem-agent runs the model's tool calls and ArcMemo runs model-written `transform(grid)` programs through
`run_python`. Every violation comes back as a `SandboxResult` value naming the layer that stopped it:

    namespace   bubblewrap (or, for a root caller without it, util-linux unshare): new pid, network, ipc, uts
                and mount namespaces (and a user namespace with bubblewrap); read-only system dirs
    user        the code runs as an unprivileged host user (uid 65534 when the caller is root)
    tmpfs       size-limited tmpfs mounts are the only writable places (/sandbox = workdir, /tmp)
    seccomp     a syscall filter: no fork of new processes, no non-unix sockets, no ptrace/mount/bpf
    rlimit      RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC (inside the user namespace)
    audit       a `sys.addaudithook` hook; an extra layer only, it does not hold against native code
    env         the environment is rebuilt from scratch: no secrets, single-threaded BLAS
    timeout     the parent kills the process group at the wall-clock limit
    supervisor  the parent caps output and checks every file before copying it back into the workdir

The boundary is the kernel: the namespace, user, tmpfs, seccomp and rlimit layers. The audit hook is defence
in depth. `mode="auto"` (the default) fails closed: it uses bubblewrap, or for a root caller where bubblewrap is
missing or cannot start, namespaces built with util-linux unshare; where neither gives the namespace, an
unprivileged uid and the seccomp filter it raises a UserError saying how to get them, and only `mode="unsafe-hook-only"` runs the code in a
plain subprocess with rlimits, seccomp, the audit hook, env, timeout and supervisor. `layer_report()` says which
layers hold here. The result travels as JSON lines over a pipe, never as pickle.

    limits.py      SandboxLimits, SandboxResult, LayerStatus and the layer and error-kind names
    launch.py      the launcher choice, bubblewrap, the root-to-nobody staging, the unsafe subprocess, the env
    unshare.py     the namespaces built by a root caller with util-linux unshare, mount and setpriv
    runtime.py     the copy of Python, its stdlib, numpy and the runner the namespace binds at /opt/reasonlab
    seccomp.py     the BPF program
    runner.py      the child: a stdlib-only script, run by path as `python -I -B runner.py RESULT_FD`
    supervisor.py  feeding the job, capping the output, the timeout and reading the result back
    workdir.py     the workdir snapshot and the checked copy back

    python -c "from reasonlab.sandbox import run_python; print(run_python('result = 6 * 7'))"
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.sandbox.launch import (
    Launcher,
    bwrap_loads_seccomp,
    choose_launcher,
    fallback_dirs,
    missing_layers,
    read_roots,
    user_note,
)
from reasonlab.sandbox.limits import (
    NOBODY,
    SANDBOX_TMPDIR,
    SANDBOX_WORKDIR,
    SKIPPABLE_LAYERS,
    ErrorKind,
    Layer,
    LayerStatus,
    SandboxLimits,
    SandboxMode,
    SandboxResult,
)
from reasonlab.sandbox.seccomp import seccomp_program
from reasonlab.sandbox.supervisor import execute, interpret
from reasonlab.sandbox.workdir import Snapshot, snapshot_workdir

__all__ = [
    "ErrorKind",
    "Layer",
    "LayerStatus",
    "SandboxLimits",
    "SandboxMode",
    "SandboxResult",
    "available_layers",
    "layer_report",
    "run_python",
]


def run_python(
    code: str,
    *,
    workdir: Path | str | None = None,
    inputs: dict[str, Any] | None = None,
    limits: SandboxLimits | None = None,
    preamble: str | None = None,
    mode: SandboxMode = "auto",
    skip_layers: Collection[str] = (),
) -> SandboxResult:
    """Run `code` in the sandbox; `inputs` is visible as a dict, `preamble` is trusted source run first.

    `mode`: "auto" (or its alias "strict") needs the namespaces (bubblewrap, or unshare for a root caller), a
    host-unprivileged uid and seccomp and raises a UserError saying how to get them where one is missing; "unsafe-hook-only" runs without the namespaces.
    `skip_layers` turns off "audit" and/or "seccomp" by name (tests, debugging).
    With `workdir`, the code runs in a copy on the tmpfs; changed regular files come back after checks,
    and only when the run ended normally or with an ordinary Python exception.
    """
    limits = limits or SandboxLimits()
    skipped = _check_skip_layers(skip_layers)
    _check_inputs(inputs)
    snapshot = snapshot_workdir(workdir, limits)
    launcher = choose_launcher(mode)
    seccomp = None if "seccomp" in skipped else seccomp_program(lock_rlimits=not launcher.namespace)
    job = _job(code, inputs, preamble, limits, launcher, snapshot, audit="audit" not in skipped, seccomp=seccomp)
    with tempfile.TemporaryDirectory(prefix="reasonlab-sandbox-") as private:
        if not launcher.namespace:
            job["workdir"], job["tmpdir"] = fallback_dirs(Path(private), launcher)
        exchange = execute(job, launcher, limits, seccomp if bwrap_loads_seccomp(launcher) else None, Path(private))
    return interpret(exchange, limits, snapshot)


def available_layers(mode: SandboxMode = "auto") -> dict[Layer, LayerStatus]:
    """Which layers hold for `run_python(..., mode=mode)` on this machine, with what each one enforces.

    In "auto" mode a run refuses to start unless namespace, user and seccomp are all active.
    """
    launcher = choose_launcher(mode, strict_raises=False)
    seccomp = seccomp_program(lock_rlimits=False) is not None
    off = f"off: {launcher.note}"
    namespace = _namespace_detail(launcher)
    unprivileged = launcher.host_user != "root" and (launcher.host_user == "nobody" or os.geteuid() != 0)
    nproc = "RLIMIT_NPROC per sandbox" if launcher.namespace and unprivileged else "no RLIMIT_NPROC"
    if launcher.unshare is not None:
        nproc = f"RLIMIT_NPROC counted for host uid {NOBODY} (shared by concurrent sandboxes)"
    return {
        "namespace": LayerStatus(launcher.namespace, namespace if launcher.namespace else off),
        "user": LayerStatus(unprivileged, user_note(launcher)),
        "tmpfs": LayerStatus(launcher.namespace, "size-limited tmpfs at /sandbox and /tmp, rest read-only"
                             if launcher.namespace else off),
        "seccomp": LayerStatus(seccomp, "no fork/vfork/clone of processes, only AF_UNIX sockets, no ptrace, "
                               "mount, bpf, keyctl, io_uring" if seccomp else "off: filter is built for x86_64 only"),
        "rlimit": LayerStatus(True, f"RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE; {nproc}"),
        "audit": LayerStatus(True, "sys.addaudithook: sockets, subprocesses, fork, ctypes calls, paths outside "
                             "the workdir; not a boundary on its own"),
        "env": LayerStatus(True, "environment rebuilt from scratch, single-threaded BLAS"),
        "timeout": LayerStatus(True, "parent kills the process group after wall_seconds"),
        "supervisor": LayerStatus(True, "output caps; returned files checked before they reach the workdir"),
    }


def _namespace_detail(launcher: Launcher) -> str:
    if launcher.unshare is not None:
        return ("util-linux unshare as root: new pid/net/ipc/uts/mount namespaces, chroot into a read-only tmpfs "
                "root, read-only system dirs, no host /etc, Python from a neutral runtime copy")
    return ("bubblewrap: new user/pid/net/ipc/uts/mount namespaces, read-only system dirs, no host /etc, "
            "Python from a neutral runtime copy")


_HOW_TO_GET = {
    "namespace": "install bubblewrap (apt-get install bubblewrap) where unprivileged user namespaces are allowed, "
                 "or run as root with util-linux (unshare, mount, setpriv)",
    "tmpfs": "comes with the namespace layer (bubblewrap, or unshare as root)",
    "user": "run as a non-root user, or let uid 65534 read the sandbox runtime (REASONLAB_SANDBOX_CACHE), or "
            "install util-linux (unshare, mount, setpriv)",
    "seccomp": "needs an x86_64 machine",
}


def layer_report() -> list[tuple[str, str]]:
    """Rows for `reasonlab info`: each layer with "holds" or "missing: how to get it" (mode "auto")."""
    rows = []
    for name, status in available_layers("auto").items():
        how = _HOW_TO_GET.get(name, status.detail)
        rows.append((name, "holds" if status.active else f"missing: {how} ({status.detail})"))
    launcher = choose_launcher("auto", strict_raises=False)
    refusal = missing_layers(launcher)
    how = "with unshare as root" if launcher.unshare is not None else "with bubblewrap"
    rows.append(("mode auto", f"runs untrusted code {how}" if not refusal else
                 "refuses to run untrusted code until the missing layers hold"))
    return rows


def _check_skip_layers(skip_layers: Collection[str]) -> frozenset[str]:
    unknown = set(skip_layers) - set(SKIPPABLE_LAYERS)
    if unknown:
        raise UserError(f"skip_layers={sorted(skip_layers)} names {sorted(unknown)}; only "
                        f"{', '.join(SKIPPABLE_LAYERS)} can be skipped")
    return frozenset(skip_layers)


def _check_inputs(inputs: dict[str, Any] | None) -> None:
    if inputs is not None and not isinstance(inputs, dict):
        raise UserError(f"sandbox inputs must be a dict, got {type(inputs).__name__}; wrap the value in a dict")
    try:
        json.dumps(inputs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise UserError(f"sandbox inputs are not JSON-serializable ({error}); pass lists, dicts, str, "
                        "numbers, bools or None") from error


def _job(code: str, inputs: dict[str, Any] | None, preamble: str | None, limits: SandboxLimits,
         launcher: Launcher, snapshot: Snapshot, audit: bool, seccomp: bytes | None) -> dict[str, Any]:
    workdir, tmpdir = (SANDBOX_WORKDIR, SANDBOX_TMPDIR) if launcher.namespace else ("", "")
    return {
        "code": code, "preamble": preamble or "", "inputs": inputs or {}, "files": snapshot.entries,
        "workdir": workdir, "tmpdir": tmpdir, "audit": audit,
        "read_roots": read_roots(launcher),
        # bubblewrap loads the filter; otherwise (unshare, no namespace) the runner loads it after its rlimits
        "seccomp": seccomp.hex() if seccomp is not None and not bwrap_loads_seccomp(launcher) else None,
        "seccomp_active": seccomp is not None, "namespace": launcher.namespace,
        "dropped": launcher.host_user == "nobody",
        # the runner (pid 1 in its namespace) counts too; outside a user namespace the count is per host user
        "nproc": limits.max_processes + 1 if launcher.namespace else None,
        "cpu_seconds": limits.cpu_seconds, "memory_bytes": limits.memory_mb << 20,
        "file_bytes": limits.file_mb << 20, "max_files": limits.max_files,
        "max_output_bytes": limits.max_output_bytes,
    }
