"""Run untrusted, model-written Python in a separate process under operating-system limits.

mem-agent runs the model's tool calls and ArcMemo runs model-written `transform(grid)` programs through
`run_python`. Every violation comes back as a `SandboxResult` value naming the layer that stopped it:

    namespace   bubblewrap: new user, pid, network, ipc, uts and mount namespaces; read-only system dirs
    user        the code runs as an unprivileged host user (uid 65534 when the caller is root)
    tmpfs       size-limited tmpfs mounts are the only writable places (/sandbox = workdir, /tmp)
    seccomp     a syscall filter: no fork of new processes, no non-unix sockets, no ptrace/mount/bpf
    rlimit      RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC (inside the user namespace)
    audit       a `sys.addaudithook` hook; an extra layer only, it does not hold against native code
    env         the environment is rebuilt from scratch: no secrets, single-threaded BLAS
    timeout     the parent kills the process group at the wall-clock limit
    supervisor  the parent caps output and checks every file before copying it back into the workdir

Without bubblewrap (no user namespaces, e.g. Docker's default profile) it degrades to rlimit + seccomp +
audit + env + timeout + supervisor in a plain subprocess; `available_layers()` says which layers hold and
docs/sandbox.md explains what that means. The result travels as JSON lines over a pipe, never as pickle.

    python -c "from reasonlab.sandbox import run_python; print(run_python('result = 6 * 7'))"
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import functools
import hashlib
import json
import os
import platform
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal, get_args

from reasonlab.errors import UserError

__all__ = [
    "ErrorKind",
    "Layer",
    "LayerStatus",
    "SandboxLimits",
    "SandboxMode",
    "SandboxResult",
    "available_layers",
    "run_python",
]

Layer = Literal["namespace", "user", "tmpfs", "seccomp", "rlimit", "audit", "env", "timeout", "supervisor"]
ErrorKind = Literal[
    "timeout", "cpu", "memory", "filesize", "processes", "forbidden", "exception", "output", "result", "crash"
]
SandboxMode = Literal["auto", "strict", "fallback"]

# paths inside the namespace; without bubblewrap both are folders of a private host temp dir
SANDBOX_WORKDIR = "/sandbox"
SANDBOX_TMPDIR = "/tmp"
NOBODY = 65534
SKIPPABLE_LAYERS = ("audit", "seccomp")
_COMMIT_KINDS = (None, "exception")


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
        if not (isinstance(self.wall_seconds, (int, float)) and self.wall_seconds > 0):
            raise UserError(f"SandboxLimits.wall_seconds={self.wall_seconds!r} must be a positive number of seconds")
        for name in ("cpu_seconds", "memory_mb", "tmpfs_mb", "file_mb", "max_files", "max_output_bytes",
                     "max_processes"):
            value, least = getattr(self, name), 0 if name == "max_processes" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise UserError(f"SandboxLimits.{name}={value!r} must be an integer >= {least}; pass one")


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


@dataclasses.dataclass(frozen=True)
class _Launcher:
    """How to start the child: through bubblewrap or as a plain subprocess, and as which host user.

    host_user: "caller" (a non-root caller's own uid), "nobody" (uid 65534, dropped to by a root caller)
    or "root" (a root caller that could not drop). `staged` lists bind sources uid 65534 cannot reach
    (python under /root): a root caller re-binds them in a private mount namespace before dropping.
    """

    namespace: bool
    host_user: Literal["caller", "nobody", "root"]
    staged: tuple[str, ...] = ()
    bwrap: str | None = None
    note: str = ""


@dataclasses.dataclass
class _Snapshot:
    """The caller's workdir as it was sent in: job entries plus what to compare the returned files to."""

    root: Path | None
    entries: list[dict[str, str]] = dataclasses.field(default_factory=list)
    files: dict[str, str] = dataclasses.field(default_factory=dict)  # relative path -> sha256
    dirs: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Exchange:
    """What came back from the child: its streams, its result lines and how it ended."""

    stdout: bytes
    stderr: bytes
    result: bytes
    stopped: Literal["timeout", "output"] | None
    returncode: int
    seconds: float


class _RejectedChanges(Exception):
    """A file the child returned may not be copied into the caller's workdir."""


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

    `mode`: "auto" uses bubblewrap when it works and falls back otherwise, "strict" raises UserError
    without it, "fallback" never uses it. `skip_layers` turns off "audit" and/or "seccomp" (tests, debugging).
    With `workdir`, the code runs in a copy on the tmpfs; changed regular files come back after checks,
    and only when the run ended normally or with an ordinary Python exception.
    """
    limits = limits or SandboxLimits()
    skipped = _check_skip_layers(skip_layers)
    launcher = _launcher(mode)
    snapshot = _snapshot(workdir, limits)
    seccomp = None if "seccomp" in skipped else _seccomp_program(lock_rlimits=not launcher.namespace)
    job = _job(code, inputs, preamble, limits, launcher, snapshot, audit="audit" not in skipped, seccomp=seccomp)
    with tempfile.TemporaryDirectory(prefix="reasonlab-sandbox-") as private:
        if not launcher.namespace:
            job["workdir"], job["tmpdir"] = _fallback_dirs(Path(private), launcher)
        exchange = _execute(job, launcher, limits, seccomp if launcher.namespace else None, Path(private))
    return _interpret(exchange, limits, snapshot)


def available_layers(mode: SandboxMode = "auto") -> dict[Layer, LayerStatus]:
    """Which layers hold for `run_python(..., mode=mode)` on this machine, with what each one enforces."""
    launcher = _launcher(mode, strict_raises=False)
    seccomp = _seccomp_program(lock_rlimits=False) is not None
    off = f"off: {launcher.note}"
    namespace = "bubblewrap: new user/pid/net/ipc/uts/mount namespaces, read-only system dirs, no host /etc"
    unprivileged = launcher.host_user != "root"
    nproc = "RLIMIT_NPROC per sandbox" if launcher.namespace and unprivileged else "no RLIMIT_NPROC"
    return {
        "namespace": LayerStatus(launcher.namespace, namespace if launcher.namespace else off),
        "user": LayerStatus(unprivileged, _user_note(launcher)),
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


# launching


def _launcher(mode: SandboxMode, strict_raises: bool = True) -> _Launcher:
    if mode not in get_args(SandboxMode):
        raise UserError(f"unknown sandbox mode {mode!r}; use one of {', '.join(get_args(SandboxMode))}")
    if mode != "fallback":
        bwrap = shutil.which("bwrap")
        launcher = _namespace_launcher(bwrap)
        if launcher.namespace:
            return launcher
        if mode == "strict" and strict_raises:
            raise UserError(f"strict sandbox mode needs bubblewrap: {launcher.note}; install it "
                            "(apt-get install bubblewrap) where user namespaces are allowed, or use mode='auto'")
        return _fallback_launcher(launcher.note)
    return _fallback_launcher("mode='fallback' was asked for")


@functools.lru_cache(maxsize=8)
def _namespace_launcher(bwrap: str | None) -> _Launcher:
    """The first bubblewrap setup that starts Python on this machine, or a launcher saying why none does."""
    if bwrap is None:
        return _Launcher(False, "caller", note="bwrap is not on PATH")
    candidates = [_Launcher(True, "caller", bwrap=bwrap)]
    if os.geteuid() == 0:
        unreachable = tuple(p for p in _bind_sources() if not _reachable_by_nobody(p))
        candidates = [_Launcher(True, "nobody", unreachable, bwrap), _Launcher(True, "root", bwrap=bwrap)]
        if unreachable and _tool_paths() is None:
            candidates.pop(0)
    failures = [] if len(candidates) > 1 or os.geteuid() != 0 else ["python is not readable by uid 65534 "
                                                                     "and unshare, mount or setpriv is missing"]
    for launcher in candidates:
        failure = _probe(launcher)
        if not failure:
            return dataclasses.replace(launcher, note="; ".join(failures))
        failures.append(f"as {launcher.host_user}: {failure}")
    return _Launcher(False, "caller", note=f"bwrap cannot start a sandbox here ({'; '.join(failures)})")


def _fallback_launcher(reason: str) -> _Launcher:
    if os.geteuid() != 0:
        return _Launcher(False, "caller", note=reason)
    reachable = all(_reachable_by_nobody(p) for p in _bind_sources())
    return _Launcher(False, "nobody" if reachable else "root", note=reason)


def _user_note(launcher: _Launcher) -> str:
    if launcher.host_user == "nobody":
        how = "python re-bound in a private mount namespace, " if launcher.staged else ""
        return f"host uid {NOBODY} ({how}dropped from root), no capabilities"
    if launcher.host_user == "caller":
        seen = "" if launcher.namespace else "; without the namespace the code can read what that user can"
        return f"host uid {os.getuid()} (the caller), no capabilities{seen}"
    if launcher.namespace:
        return (f"off: host root without capabilities, uid 65534 only inside the user namespace ({launcher.note}); "
                "RLIMIT_NPROC does not apply, seccomp still blocks fork and /proc/sys is hidden")
    return "off: the code runs as root, because python is not readable by uid 65534"


@functools.lru_cache(maxsize=1)
def _tool_paths() -> tuple[str, str, str] | None:
    """util-linux's unshare, mount and setpriv, needed to stage binds for a root caller."""
    tools = tuple(shutil.which(name) for name in ("unshare", "mount", "setpriv"))
    return None if None in tools else tools  # type: ignore[return-value]


def _probe(launcher: _Launcher) -> str:
    """Start `python -c pass` the way a run would; return the complaint, or "" when it works."""
    seccomp = _seccomp_program(lock_rlimits=False)
    with tempfile.TemporaryDirectory(prefix="reasonlab-sandbox-probe-") as private:
        argv, fds = _command(launcher, SandboxLimits(), seccomp, [sys.executable, "-I", "-B", "-c", "pass"],
                             Path(private))
        try:
            done = subprocess.run(argv, pass_fds=fds, capture_output=True, timeout=30,
                                  env=_child_env(SANDBOX_WORKDIR, SANDBOX_TMPDIR), **_user_kwargs(launcher))
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
        finally:
            for fd in fds:
                os.close(fd)
    return "" if done.returncode == 0 else done.stderr.decode(errors="replace").strip()[-300:]


def _bind_sources() -> list[str]:
    """Host directories the child needs read-only: the Python installation and the system libraries."""
    python = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    libs = {d for d in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32") if os.path.isdir(d)}
    libs |= {d for d in ("/lib", "/lib64", "/lib32", "/libx32") if os.path.isdir(d) and not os.path.islink(d)}
    roots: list[str] = []
    for path in sorted({os.path.abspath(p) for p in python | libs}, key=len):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return roots


def _reachable_by_nobody(path: str) -> bool:
    """Whether uid 65534 can reach and read `path` through "other" permission bits (ACLs ignored)."""
    for candidate in {os.path.abspath(path), os.path.realpath(path)}:
        parts = Path(candidate).parts
        for depth in range(1, len(parts) + 1):
            try:
                mode = os.stat(Path(*parts[:depth])).st_mode
            except OSError:
                return False
            if not mode & stat.S_IXOTH or (depth == len(parts) and not mode & stat.S_IROTH):
                return False
    return True


def _user_kwargs(launcher: _Launcher) -> dict[str, Any]:
    """Popen drops a root caller to uid 65534 itself, unless setpriv does it after staging."""
    if launcher.host_user != "nobody" or launcher.staged:
        return {}
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def _child_env(workdir: str, tmpdir: str) -> dict[str, str]:
    """A fresh environment: nothing inherited, so no tokens, keys or proxy settings reach the code."""
    threads = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "GOTO_NUM_THREADS")
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": tmpdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    # OpenBLAS reserves a buffer per thread and fails under RLIMIT_AS with its default thread count
    return env | dict.fromkeys(threads, "1")


_STAGE_SCRIPT = 'mount=$1; shift; while [ "$1" != -- ]; do "$mount" --bind "$1" "$2" || exit 1; shift 2; done; ' \
    'shift; exec "$@"'


def _command(launcher: _Launcher, limits: SandboxLimits, seccomp: bytes | None, command: list[str],
             private: Path) -> tuple[list[str], list[int]]:
    """The argv that starts `command` (bwrap in front of it when namespaces are used) and the fds it needs."""
    if not launcher.namespace:
        return command, []
    assert launcher.bwrap is not None
    tmpfs = str(limits.tmpfs_mb << 20)
    argv = [launcher.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(NOBODY),
            "--gid", str(NOBODY), "--hostname", "sandbox", "--die-with-parent", "--cap-drop", "ALL",
            "--size", tmpfs, "--perms", "0700", "--tmpfs", SANDBOX_WORKDIR,
            "--size", tmpfs, "--perms", "0700", "--tmpfs", SANDBOX_TMPDIR,
            # /dev would be an unlimited writable tmpfs; /proc/sys is writable by a host-root uid
            "--dev", "/dev", "--remount-ro", "/dev", "--proc", "/proc", "--tmpfs", "/proc/sys",
            "--remount-ro", "/proc/sys", "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for link in ("/lib", "/lib64", "/lib32", "/libx32"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
    prefix: list[str] = []
    if launcher.staged:
        tools = _tool_paths()
        assert tools is not None
        unshare, mount, setpriv = tools
        os.chmod(private, 0o711)
        prefix = [unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _STAGE_SCRIPT,
                  "reasonlab-stage", mount]
    for index, source in enumerate(_bind_sources()):
        if source in launcher.staged:
            mountpoint = private / f"bind{index}"
            mountpoint.mkdir(mode=0o755)
            prefix += [source, str(mountpoint)]
            argv += ["--ro-bind", str(mountpoint), source]
        else:
            argv += ["--ro-bind", source, source]
    if launcher.staged:
        prefix += ["--", setpriv, "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", "--"]
    fds: list[int] = []
    if seccomp is not None:
        fd = os.memfd_create("reasonlab-seccomp")
        os.write(fd, seccomp)
        os.lseek(fd, 0, os.SEEK_SET)
        fds.append(fd)
        argv += ["--seccomp", str(fd)]
    argv += ["--chdir", SANDBOX_WORKDIR, "--remount-ro", "/", "--"]
    return prefix + argv + command, fds


# seccomp: a classic BPF program, assembled here so that no libseccomp is needed

_BPF_LD_ABS, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X86_64 = {"socket": 41, "clone": 56, "setrlimit": 160, "prlimit64": 302, "clone3": 435}
_X86_64_DENIED = (
    101, 155, 161, 165, 166,  # ptrace, pivot_root, chroot, mount, umount2
    57, 58, 175, 176, 313, 246, 320,  # fork, vfork, init/delete/finit_module, kexec_load, kexec_file_load
    248, 249, 250, 272, 308, 298, 321, 323,  # add_key, request_key, keyctl, unshare, setns, perf, bpf, uffd
    304, 310, 311, 425, 426, 427,  # open_by_handle_at, process_vm_readv/writev, io_uring_*
)


def _seccomp_program(lock_rlimits: bool) -> bytes | None:
    """The filter (x86_64 only): denied syscalls fail with EOPNOTSUPP so the runner can name the layer.

    clone is allowed only for threads (CLONE_THREAD); clone3 answers ENOSYS so glibc falls back to clone.
    With `lock_rlimits` (no namespace, where the child may be root) rlimits can no longer be raised.
    """
    if platform.machine() != "x86_64" or sys.maxsize < 2**63 - 1:
        return None
    nr = _X86_64
    code: list[tuple[int, int, str | None, str | None]] = [
        (_BPF_LD_ABS, 4, None, None), (_BPF_JEQ, _AUDIT_ARCH_X86_64, None, "deny"),
        (_BPF_LD_ABS, 0, None, None), (_BPF_JGE, 0x40000000, "deny", None),  # x32 syscalls
        (_BPF_JEQ, nr["clone"], "clone", None), (_BPF_JEQ, nr["clone3"], "enosys", None),
        (_BPF_JEQ, nr["socket"], "socket", None),
    ]
    if lock_rlimits:
        code += [(_BPF_JEQ, nr["setrlimit"], "deny", None), (_BPF_JEQ, nr["prlimit64"], "prlimit", None)]
    code += [(_BPF_JEQ, number, "deny", None) for number in _X86_64_DENIED]
    code += [(_BPF_RET, _RET_ALLOW, None, None)]
    labels = {
        "clone": [(_BPF_LD_ABS, 16, None, None), (_BPF_JSET, 0x00010000, "allow", "deny")],  # CLONE_THREAD
        "socket": [(_BPF_LD_ABS, 16, None, None), (_BPF_JEQ, 1, "allow", "deny")],  # AF_UNIX
        "prlimit": [(_BPF_LD_ABS, 32, None, None), (_BPF_JEQ, 0, None, "deny"),  # new_limit == NULL only
                    (_BPF_LD_ABS, 36, None, None), (_BPF_JEQ, 0, "allow", "deny")],
        "allow": [(_BPF_RET, _RET_ALLOW, None, None)],
        "deny": [(_BPF_RET, _RET_ERRNO | errno.EOPNOTSUPP, None, None)],
        "enosys": [(_BPF_RET, _RET_ERRNO | errno.ENOSYS, None, None)],
    }
    position: dict[str, int] = {}
    for label, block in labels.items():
        position[label] = len(code)
        code += block
    program = b""
    for index, (op, k, true, false) in enumerate(code):
        jt = position[true] - index - 1 if true else 0
        jf = position[false] - index - 1 if false else 0
        program += struct.pack("=HBBI", op, jt, jf, k)
    return program


# the job the runner reads from stdin


def _check_skip_layers(skip_layers: Collection[str]) -> frozenset[str]:
    unknown = set(skip_layers) - set(SKIPPABLE_LAYERS)
    if unknown:
        raise UserError(f"skip_layers={sorted(skip_layers)} names {sorted(unknown)}; only "
                        f"{', '.join(SKIPPABLE_LAYERS)} can be skipped")
    return frozenset(skip_layers)


def _snapshot(workdir: Path | str | None, limits: SandboxLimits) -> _Snapshot:
    """Read the caller's workdir (regular files, dirs and symlinks as links) without following links."""
    if workdir is None:
        return _Snapshot(None)
    root = Path(workdir).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"sandbox workdir {workdir} is not a directory; create it or pass workdir=None")
    snapshot, total = _Snapshot(root), 0
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs) + sorted(files):
            path = Path(top, name)
            relative = path.relative_to(root).as_posix()
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                snapshot.entries.append({"type": "symlink", "path": relative, "target": os.readlink(path)})
            elif stat.S_ISDIR(info.st_mode):
                snapshot.entries.append({"type": "dir", "path": relative})
                snapshot.dirs.add(relative)
            elif stat.S_ISREG(info.st_mode):
                if info.st_size > limits.file_mb << 20:
                    raise UserError(f"{path} is larger than SandboxLimits.file_mb={limits.file_mb}; raise it")
                data = _read_regular(path)
                total += len(data)
                snapshot.entries.append({"type": "file", "path": relative, "data": base64.b64encode(data).decode()})
                snapshot.files[relative] = hashlib.sha256(data).hexdigest()
    if total > limits.tmpfs_mb << 20 or len(snapshot.entries) > limits.max_files:
        raise UserError(f"sandbox workdir {root} holds {len(snapshot.entries)} entries and {total >> 20} MB, more "
                        f"than max_files={limits.max_files} or tmpfs_mb={limits.tmpfs_mb}; raise those limits")
    return snapshot


def _read_regular(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _job(code: str, inputs: dict[str, Any] | None, preamble: str | None, limits: SandboxLimits,
         launcher: _Launcher, snapshot: _Snapshot, audit: bool, seccomp: bytes | None) -> dict[str, Any]:
    if inputs is not None and not isinstance(inputs, dict):
        raise UserError(f"sandbox inputs must be a dict, got {type(inputs).__name__}; wrap the value in a dict")
    try:
        json.dumps(inputs, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise UserError(f"sandbox inputs are not JSON-serializable ({error}); pass lists, dicts, str, "
                        "numbers, bools or None") from error
    workdir, tmpdir = (SANDBOX_WORKDIR, SANDBOX_TMPDIR) if launcher.namespace else ("", "")
    sources = _bind_sources()
    return {
        "code": code, "preamble": preamble or "", "inputs": inputs or {}, "files": snapshot.entries,
        "workdir": workdir, "tmpdir": tmpdir, "audit": audit,
        "read_roots": sources + [os.path.realpath(s) for s in sources] + ["/dev/null", "/dev/urandom",
                                                                          "/dev/random", "/dev/zero"],
        # in the namespace bubblewrap loads the filter; without it the runner loads it after its rlimits
        "seccomp": seccomp.hex() if seccomp is not None and not launcher.namespace else None,
        "seccomp_active": seccomp is not None, "namespace": launcher.namespace,
        "dropped": launcher.host_user == "nobody",
        # bwrap's pid 1 and the runner count too; outside a user namespace the count is per host user
        "nproc": limits.max_processes + 2 if launcher.namespace else None,
        "cpu_seconds": limits.cpu_seconds, "memory_bytes": limits.memory_mb << 20,
        "file_bytes": limits.file_mb << 20, "max_files": limits.max_files,
        "max_output_bytes": limits.max_output_bytes,
    }


# running


def _execute(job: dict[str, Any], launcher: _Launcher, limits: SandboxLimits, seccomp: bytes | None,
             private: Path) -> _Exchange:
    """Start the child, feed it the job, collect its streams under the caps, and reap it."""
    result_read, result_write = os.pipe()
    runner = [sys.executable, "-I", "-B", "-c", _RUNNER, str(result_write)]
    argv, fds = _command(launcher, limits, seccomp, runner, private)
    start = time.monotonic()
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   pass_fds=[result_write, *fds], env=_child_env(job["workdir"], job["tmpdir"]),
                                   cwd=None if launcher.namespace else job["workdir"], start_new_session=True,
                                   **_user_kwargs(launcher))
    finally:
        os.close(result_write)
        for fd in fds:
            os.close(fd)
    payload = json.dumps(job).encode()
    result_cap = limits.max_output_bytes + (limits.tmpfs_mb << 20) * 4 // 3 + limits.max_files * 512 + 65536
    streams, stopped, returncode = _pump(process, payload, result_read, start + limits.wall_seconds,
                                         (limits.max_output_bytes, limits.max_output_bytes, result_cap))
    return _Exchange(*streams, stopped=stopped, returncode=returncode, seconds=time.monotonic() - start)


def _fallback_dirs(private: Path, launcher: _Launcher) -> tuple[str, str]:
    workdir, tmpdir = private / "work", private / "tmp"
    for path in (workdir, tmpdir):
        path.mkdir(mode=0o700)
        if launcher.host_user == "nobody":
            os.chown(path, NOBODY, NOBODY)
    if launcher.host_user == "nobody":
        os.chmod(private, 0o711)
    return str(workdir), str(tmpdir)


def _pump(process: subprocess.Popen, payload: bytes, result_fd: int, deadline: float,
          caps: tuple[int, int, int]) -> tuple[tuple[bytes, bytes, bytes], Literal["timeout", "output"] | None, int]:
    """Write the job and read stdout, stderr and the result pipe until they close, a cap or the deadline."""
    assert process.stdin and process.stdout and process.stderr
    selector = selectors.DefaultSelector()
    buffers = {process.stdout.fileno(): bytearray(), process.stderr.fileno(): bytearray(), result_fd: bytearray()}
    limit = dict(zip(buffers, caps, strict=True))
    for fd in buffers:
        selector.register(fd, selectors.EVENT_READ)
    stdin = process.stdin.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_WRITE)
    sent, stopped, status = 0, None, None
    while stopped is None and any(fd in selector.get_map() for fd in buffers):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stopped = "timeout"
            break
        events = selector.select(min(remaining, 0.25))
        for key, _ in events:
            if key.fd == stdin:
                try:
                    sent += os.write(stdin, payload[sent:sent + 65536])
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    sent = len(payload)
                if sent >= len(payload):
                    selector.unregister(stdin)
                    process.stdin.close()
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fd)
                continue
            buffers[key.fd] += chunk
            if len(buffers[key.fd]) > limit[key.fd]:
                stopped = "output"
        if not events and status is None:
            # a grandchild that escaped the filters may hold the pipes open after the runner exited
            status = _reap(process, block=False)
            if status is not None:
                break
    _kill_group(process)
    if status is None:
        status = _reap(process, block=True)
    _kill_group(process)
    selector.close()
    for stream in (process.stdin, process.stdout, process.stderr):
        if not stream.closed:
            stream.close()
    os.close(result_fd)
    stdout, stderr, result = (bytes(b) for b in buffers.values())
    return (stdout, stderr, result), stopped, status


def _reap(process: subprocess.Popen, block: bool) -> int | None:
    pid, status = os.waitpid(process.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# reading the result back


def _interpret(exchange: _Exchange, limits: SandboxLimits, snapshot: _Snapshot) -> SandboxResult:
    stdout = exchange.stdout.decode("utf-8", errors="replace")
    stderr = exchange.stderr.decode("utf-8", errors="replace")
    common = {"stdout": stdout, "stderr": stderr, "seconds": exchange.seconds}
    if exchange.stopped == "timeout":
        return SandboxResult(False, error=f"wall-clock limit of {limits.wall_seconds} s reached",
                             error_kind="timeout", layer="timeout", **common)
    if exchange.stopped == "output":
        return SandboxResult(False, error=f"output passed max_output_bytes={limits.max_output_bytes}",
                             error_kind="output", layer="supervisor", **common)
    header, lines = _parse_lines(exchange.result)
    if header is None:
        return _died(exchange.returncode, limits, exchange.seconds, **common)
    kind, layer = header.get("kind"), header.get("layer")
    kind = kind if kind in get_args(ErrorKind) else None if header.get("ok") is True else "crash"
    layer = layer if layer in get_args(Layer) else None
    error = header.get("error") if isinstance(header.get("error"), str) else None
    ok = header.get("ok") is True and kind is None
    changed: tuple[str, ...] = ()
    if snapshot.root is not None and header.get("files") is True and kind in _COMMIT_KINDS:
        try:
            changed = _apply_changes(snapshot, lines, limits)
        except _RejectedChanges as rejected:
            return SandboxResult(False, error=f"nothing was copied back: {rejected}", error_kind="filesize",
                                 layer="supervisor", **common)
        except OSError as failed:
            # the checks passed but the host refused a write (disk full, permissions): earlier files may be in
            return SandboxResult(False, error=f"copying back into {snapshot.root} failed: {failed}",
                                 error_kind="filesize", layer="supervisor", **common)
    return SandboxResult(ok, header.get("value") if ok else None, error=error, error_kind=kind,
                         layer=layer, changed_files=changed, **common)


def _parse_lines(data: bytes) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """JSON lines from the child: a header, then one line per workdir entry; anything else is no result."""
    try:
        records = [json.loads(line) for line in data.decode("utf-8").splitlines() if line]
    except ValueError:
        return None, []
    if not records or not all(isinstance(r, dict) for r in records):
        return None, []
    return records[0], records[1:]


def _died(returncode: int, limits: SandboxLimits, seconds: float, **common: Any) -> SandboxResult:
    """No result came back: name the limit from how the process ended (bwrap reports a signal as 128+N)."""
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    if signum == signal.SIGXCPU or (signum == signal.SIGKILL and seconds >= limits.cpu_seconds):
        return SandboxResult(False, error=f"CPU limit of {limits.cpu_seconds} s reached", error_kind="cpu",
                             layer="rlimit", **common)
    if signum == signal.SIGXFSZ:
        return SandboxResult(False, error=f"a file passed file_mb={limits.file_mb}", error_kind="filesize",
                             layer="rlimit", **common)
    try:
        how = f"signal {signal.Signals(signum).name}" if signum is not None else f"status {returncode}"
    except ValueError:
        how = f"signal {signum}"
    return SandboxResult(False, error=f"the sandboxed process ended with {how} before returning a result",
                         error_kind="crash", **common)


def _apply_changes(snapshot: _Snapshot, lines: list[dict[str, Any]], limits: SandboxLimits) -> tuple[str, ...]:
    """Copy returned regular files into the caller's workdir, delete removed ones; never follow a link."""
    assert snapshot.root is not None
    files, dirs, total = {}, set(), 0
    if len(lines) > limits.max_files:
        raise _RejectedChanges(f"more than max_files={limits.max_files} entries")
    for line in lines:
        relative = _checked_relative(line.get("path"))
        if line.get("type") == "dir":
            dirs.add(relative)
        elif line.get("type") == "file":
            data = line.get("data")
            if data is None:
                files[relative] = None
                continue
            try:
                content = base64.b64decode(str(data), validate=True)
            except ValueError as error:
                raise _RejectedChanges(f"{relative} is not valid base64") from error
            total += len(content)
            if len(content) > limits.file_mb << 20 or total > limits.tmpfs_mb << 20:
                raise _RejectedChanges(f"{relative} passes file_mb or tmpfs_mb")
            if hashlib.sha256(content).hexdigest() != line.get("sha256"):
                raise _RejectedChanges(f"{relative} does not match its checksum")
            files[relative] = content
        else:
            raise _RejectedChanges(f"unknown entry type {line.get('type')!r}")
    writes = {path: data for path, data in files.items()
              if data is not None and hashlib.sha256(data).hexdigest() != snapshot.files.get(path)}
    for path in sorted(dirs) + sorted(writes):
        _host_parent(snapshot.root, path, create=False)
    changed = []
    for path in sorted(dirs - snapshot.dirs):
        _host_parent(snapshot.root, path, create=True)
        if not os.path.lexists(snapshot.root / path):
            os.mkdir(snapshot.root / path)
    for path, data in sorted(writes.items()):
        _write_file(_host_parent(snapshot.root, path, create=True), path.rsplit("/", 1)[-1], data)
        changed.append(path)
    for path in sorted(set(snapshot.files) - set(files)):
        target = _host_parent(snapshot.root, path, create=False) / path.rsplit("/", 1)[-1]
        if os.path.lexists(target) and stat.S_ISREG(os.lstat(target).st_mode):
            os.unlink(target)
            changed.append(path)
    for path in sorted(snapshot.dirs - dirs, key=lambda p: -p.count("/")):
        # a folder that still holds a symlink or a file the sandbox never saw stays
        with contextlib.suppress(OSError):
            os.rmdir(_host_parent(snapshot.root, path, create=False) / path.rsplit("/", 1)[-1])
    return tuple(sorted(changed))


def _checked_relative(path: Any) -> str:
    if not isinstance(path, str) or not path or "\x00" in path or path.startswith("/") or len(path) > 4096:
        raise _RejectedChanges(f"bad path {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise _RejectedChanges(f"path {path!r} leaves the workdir")
    if any(len(os.fsencode(part)) > 255 for part in path.split("/")):
        raise _RejectedChanges(f"path {path[:80]!r} has a name longer than 255 bytes")
    return path


def _host_parent(root: Path, relative: str, create: bool) -> Path:
    """The real directory that holds `relative` under `root`; a symlink or file on the way is refused."""
    current = root
    for part in relative.split("/")[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if create:
                os.mkdir(current)
            continue
        if not stat.S_ISDIR(mode):
            raise _RejectedChanges(f"{relative} goes through {current}, which is not a real directory")
    return current


def _write_file(directory: Path, name: str, data: bytes) -> None:
    """Replace directory/name atomically; os.replace swaps a symlink itself instead of writing through it."""
    target = directory / name
    if os.path.isdir(target) and not os.path.islink(target):
        raise _RejectedChanges(f"{target} is a directory on the host")
    mode = stat.S_IMODE(os.lstat(target).st_mode) if os.path.isfile(target) and not os.path.islink(target) else 0o644
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".sandbox-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# the child: runs with `python -I -B -c`, reads the job from stdin and writes JSON lines to the result fd

_RUNNER = r'''
import ast, base64, errno, hashlib, json, linecache, os, resource, signal, sys, traceback

PID = os.getpid()
dumps = json.dumps
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
ALWAYS_BLOCKED = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "subprocess.Popen", "os.system", "os.exec", "os.spawn",
    "os.posix_spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn", "resource.setrlimit",
    "resource.prlimit", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
    "ctypes.cdata/buffer", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
    "gc.get_referrers", "gc.get_referents", "gc.get_objects",
})
# event -> [(index of a path argument, index of its dir_fd or None, written)]
PATH_EVENTS = {
    "os.mkdir": [(0, 2, True)], "os.rmdir": [(0, 1, True)], "os.remove": [(0, 1, True)],
    "os.rename": [(0, 2, True), (1, 3, True)], "os.link": [(0, 2, True), (1, 3, True)],
    "os.truncate": [(0, None, True)], "os.chmod": [(0, 2, True)], "os.chown": [(0, 3, True)],
    "os.utime": [(0, 3, True)], "os.symlink": [(1, 2, True)], "shutil.rmtree": [(0, 1, True)],
    "os.setxattr": [(0, None, True)], "os.removexattr": [(0, None, True)], "os.listdir": [(0, None, False)],
    "os.scandir": [(0, None, False)], "os.getxattr": [(0, None, False)], "os.listxattr": [(0, None, False)],
}


class CpuLimitExceeded(BaseException):
    pass


def on_sigxcpu(signum, frame):
    raise CpuLimitExceeded("CPU time limit reached")


def set_rlimits(job):
    signal.signal(signal.SIGXCPU, on_sigxcpu)
    # past RLIMIT_FSIZE a write fails with EFBIG instead of killing the process
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cpu, memory, size = job["cpu_seconds"], job["memory_bytes"], job["file_bytes"]
    limits = [(resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_CPU, cpu, cpu + 1),
              (resource.RLIMIT_AS, memory, memory), (resource.RLIMIT_FSIZE, size, size),
              (resource.RLIMIT_NOFILE, 256, 256)]
    if job["nproc"] is not None:
        limits.append((resource.RLIMIT_NPROC, job["nproc"], job["nproc"]))
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))


def install_seccomp(program):
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    ulong = ctypes.c_ulong
    if libc.prctl(38, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(22, ulong(2), ctypes.byref(fprog), ulong(0), ulong(0)) != 0:  # PR_SET_SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def materialize(entries, workdir):
    hashes = {}
    for entry in entries:
        path = os.path.join(workdir, entry["path"])
        if entry["type"] == "dir":
            os.makedirs(path, exist_ok=True)
        elif entry["type"] == "symlink":
            os.symlink(entry["target"], path)
        else:
            data = base64.b64decode(entry["data"])
            with open(path, "wb") as handle:
                handle.write(data)
            hashes[entry["path"]] = hashlib.sha256(data).hexdigest()
    return hashes


def inside(path, roots):
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots)


def install_audit_hook(write_roots, read_roots, violations, max_files, existing):
    read_roots = tuple(read_roots) + tuple(write_roots)
    # files and folders the code may still create; empty files cost no tmpfs space, so count them here
    budget = [max_files - existing]

    def deny(event, detail):
        message = f"{event} is not allowed in the sandbox ({detail})"
        if not violations:
            violations.append(message)
        raise PermissionError(errno.EPERM, message)

    def check(event, path, dir_fd, roots):
        if isinstance(path, int):
            return None
        path = "." if path is None else os.fsdecode(path)
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
        if not inside(path, roots):
            deny(event, f"{path!r} is outside the working directory")
        return path

    def count(event, path, created):
        if path is None or os.path.lexists(path) == created:
            return
        budget[0] += -1 if created else 1
        if budget[0] < 0:
            deny(event, f"more than max_files={max_files} files and folders")

    def hook(event, args):
        if event in ALWAYS_BLOCKED:
            deny(event, "blocked operation")
        elif event == "open":
            path, mode, flags = args
            writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
            path = check(event, path, None, write_roots if writes else read_roots)
            if (flags or 0) & os.O_CREAT:
                count(event, path, True)
        elif event == "ctypes.dlopen" and args[0] is not None:
            deny(event, f"loading {args[0]!r}")
        elif event in PATH_EVENTS:
            if event == "os.symlink":
                target = os.path.join(os.path.dirname(os.fsdecode(args[1])), os.fsdecode(args[0]))
                check(event, target, args[2], write_roots)
            paths = []
            for index, dir_fd_index, written in PATH_EVENTS[event]:
                dir_fd = args[dir_fd_index] if dir_fd_index is not None else None
                paths.append(check(event, args[index], dir_fd, write_roots if written else read_roots))
            if event in ("os.mkdir", "os.symlink", "os.link"):
                count(event, paths[-1], True)
            elif event in ("os.remove", "os.rmdir"):
                count(event, paths[0], False)

    sys.addaudithook(hook)


def run_code(code, namespace):
    tree = ast.parse(code, "<sandbox>")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    linecache.cache["<sandbox>"] = (len(code), None, code.splitlines(True), "<sandbox>")
    exec(compile(tree, "<sandbox>", "exec"), namespace)
    value = eval(compile(ast.Expression(last.value), "<sandbox>", "eval"), namespace) if last else None
    return namespace.get("result", value)


def classify(error, job, violations):
    if violations:
        return "forbidden", "audit"
    if isinstance(error, CpuLimitExceeded):
        return "cpu", "rlimit"
    if isinstance(error, MemoryError):
        return "memory", "rlimit"
    if isinstance(error, RuntimeError) and "can't start new thread" in str(error) and job["nproc"] is not None:
        return "processes", "rlimit"
    if not isinstance(error, OSError):
        return "exception", None
    code, namespace = error.errno, job["namespace"]
    if code == errno.EFBIG:
        return "filesize", "rlimit"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "filesize", "tmpfs" if namespace else None
    if code == errno.EOPNOTSUPP and job["seccomp_active"]:
        return "forbidden", "seccomp"
    if code == errno.EAGAIN and job["nproc"] is not None and error.filename is None:
        return "processes", "rlimit"
    if not namespace:
        if code in (errno.EACCES, errno.EPERM) and job["dropped"]:
            return "forbidden", "user"
        return "exception", None
    if code in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ECONNREFUSED, errno.ENETUNREACH,
                errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return "forbidden", "namespace"
    filename = error.filename if isinstance(error.filename, (str, bytes)) else None
    if code == errno.ENOENT and filename and not inside(os.fsdecode(filename), (job["workdir"], job["tmpdir"])):
        return "forbidden", "namespace"
    return "exception", None


def manifest(workdir, hashes, max_files):
    lines, count = [], 0
    for top, dirs, files in os.walk(workdir):
        for name in dirs + files:
            count += 1
            if count > max_files:
                return None
            path = os.path.join(top, name)
            relative = os.path.relpath(path, workdir)
            if os.path.islink(path):
                continue
            if os.path.isdir(path):
                lines.append({"type": "dir", "path": relative})
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    data = handle.read()
                digest = hashlib.sha256(data).hexdigest()
                encoded = base64.b64encode(data).decode() if hashes.get(relative) != digest else None
                lines.append({"type": "file", "path": relative, "sha256": digest, "data": encoded})
    return lines


def user_traceback(error):
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next
    try:
        traceback.print_exception(type(error), error, tb)
    except BaseException:
        pass


def describe(error):
    try:
        return "".join(traceback.format_exception_only(type(error), error)).strip()
    except BaseException:
        return type(error).__name__


def execute(job, header, violations):
    entries = job.pop("files")
    hashes = materialize(entries, job["workdir"])
    set_rlimits(job)
    if job["seccomp"] is not None:
        install_seccomp(bytes.fromhex(job["seccomp"]))
    os.chdir(job["workdir"])
    namespace = {"__name__": "__main__", "__builtins__": __builtins__, "inputs": job.pop("inputs")}
    if job["preamble"]:
        exec(compile(job["preamble"], "<preamble>", "exec"), namespace)
    if job["audit"]:
        write_roots = (os.path.realpath(job["workdir"]), os.path.realpath(job["tmpdir"]))
        install_audit_hook(write_roots, job["read_roots"], violations, job["max_files"], len(entries))
    header["files"] = True
    try:
        value = run_code(job["code"], namespace)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise
        value = namespace.get("result")
    if violations:
        raise PermissionError(errno.EPERM, violations[0])
    try:
        text = dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        header.update(kind="result", error=f"result is not JSON-serializable: {error}")
        return hashes
    if len(text) > job["max_output_bytes"]:
        header.update(kind="output", layer="supervisor",
                      error=f"result is {len(text)} bytes of JSON, more than max_output_bytes")
    else:
        header.update(ok=True, value=value)
    return hashes


def main():
    result_fd = int(sys.argv[1])
    job = json.loads(sys.stdin.buffer.read())
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    header = {"ok": False, "value": None, "error": None, "kind": None, "layer": None, "files": False}
    violations, hashes, lines = [], {}, []
    try:
        hashes = execute(job, header, violations)
    except BaseException as error:
        if os.getpid() != PID:
            os._exit(70)
        kind, layer = classify(error, job, violations)
        header.update(kind=kind, layer=layer, error=violations[0] if layer == "audit" else describe(error))
        if layer != "audit":
            user_traceback(error)
    if os.getpid() != PID:
        os._exit(70)
    sys.stdout.flush()
    sys.stderr.flush()
    if header["files"] and (header["ok"] or header["kind"] == "exception"):
        try:
            lines = manifest(job["workdir"], hashes, job["max_files"])
        except BaseException as error:
            kind, layer = classify(error, job, violations)
            header.update(ok=False, value=None, kind=kind if kind != "exception" else "crash", layer=layer,
                          error=f"could not collect the workdir: {describe(error)}")
            lines = []
        if lines is None:
            header.update(ok=False, value=None, kind="filesize", layer="supervisor",
                          error=f"the workdir holds more than max_files={job['max_files']} entries")
            lines = []
    else:
        header["files"] = False
    data = ("\n".join([dumps(header)] + [dumps(line) for line in lines]) + "\n").encode()
    while data:
        data = data[os.write(result_fd, data):]
    os._exit(0)


main()
'''
