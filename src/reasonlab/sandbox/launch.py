"""The namespace, user and env layers: how the child is started, through bubblewrap, util-linux unshare
(a root caller without a working bubblewrap, see unshare.py) or as a plain subprocess.

`choose_launcher` picks the first bubblewrap setup that starts Python on this machine, else, for a root
caller, the unshare launcher, and refuses (UserError) when the namespace, user or seccomp layer is missing,
unless the caller chose mode "unsafe-hook-only"; `launch_argv` puts bubblewrap (and, for a root caller, the
staging that drops to uid 65534) or the unshare setup in front of the runner. The child sees the system
libraries and the sandbox's own runtime read-only: a copy of the interpreter, its standard library, numpy
and runner.py in a neutral cache folder (runtime.py), bound at /opt/reasonlab, so no host path of the interpreter, the virtualenv or the checkout reaches it. It runs as
`/opt/reasonlab/python/bin/python3.X -I -B /opt/reasonlab/runner.py RESULT_FD`, as pid 1 of its namespace.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal, get_args

from reasonlab.errors import UserError
from reasonlab.sandbox.limits import (
    NOBODY,
    SANDBOX_TMPDIR,
    SANDBOX_WORKDIR,
    UNSAFE_MODE,
    SandboxLimits,
    SandboxMode,
)
from reasonlab.sandbox.runtime import RUNNER, RUNNER_MOUNT, RUNTIME_MOUNT, Runtime, cache_parent, runtime
from reasonlab.sandbox.seccomp import seccomp_program
from reasonlab.sandbox.unshare import unshare_argv, unshare_tools

LauncherName = Literal["bwrap", "unshare"]
# tests force one launcher; both hold every layer, so this is no switch to a weaker sandbox
LAUNCHER_VARIABLE = "REASONLAB_SANDBOX_LAUNCHER"


@dataclasses.dataclass(frozen=True)
class Launcher:
    """How to start the child: through bubblewrap, util-linux unshare or as a plain subprocess, and as which user.

    host_user: "caller" (a non-root caller's own uid), "nobody" (uid 65534, dropped to by a root caller)
    or "root" (a root caller that could not drop). `staged` lists host paths uid 65534 cannot reach
    (a cache under /root): a root caller re-binds them in a private mount namespace before dropping.
    `runtime` is what the namespace binds at /opt/reasonlab. `unshare` (unshare, mount, setpriv) marks the
    launcher that builds the namespaces itself as root and drops to uid 65534 inside them.
    """

    namespace: bool
    host_user: Literal["caller", "nobody", "root"]
    staged: tuple[str, ...] = ()
    bwrap: str | None = None
    note: str = ""
    runtime: Runtime | None = None
    unshare: tuple[str, str, str] | None = None


def choose_launcher(mode: SandboxMode, strict_raises: bool = True, prefer: LauncherName | None = None) -> Launcher:
    """The launcher for `mode`: "auto" and "strict" need the namespace, user and seccomp layers (a UserError
    naming the missing ones, unless `strict_raises` is off); only "unsafe-hook-only" runs without them.

    bubblewrap comes first, the unshare launcher (root only) second; `prefer` (default: the environment
    variable REASONLAB_SANDBOX_LAUNCHER, for tests) allows only one of them. Both hold every layer.
    """
    if mode == "fallback":
        raise UserError("sandbox mode 'fallback' ran untrusted code without namespaces and is now called "
                        f"{UNSAFE_MODE!r}; pass mode={UNSAFE_MODE!r} to opt in, or install bubblewrap and use 'auto'")
    if mode not in get_args(SandboxMode):
        raise UserError(f"unknown sandbox mode {mode!r}; use one of {', '.join(get_args(SandboxMode))}")
    if mode == UNSAFE_MODE:
        return _fallback_launcher(f"mode={UNSAFE_MODE!r} was asked for")
    launcher = _isolating_launcher(prefer or _preferred())
    if not launcher.namespace:
        launcher = _fallback_launcher(launcher.note)
    missing = missing_layers(launcher)
    if missing and strict_raises:
        raise UserError(f"the sandbox cannot isolate untrusted code on this machine ({'; '.join(missing)}): "
                        "install bubblewrap (apt-get install bubblewrap) where unprivileged user namespaces are "
                        "allowed, or run as root with util-linux (unshare, mount, setpriv) so the sandbox builds "
                        f"the namespaces with unshare, or pass mode={UNSAFE_MODE!r} to accept rlimits, seccomp "
                        "and the audit hook only")
    return launcher


def _preferred() -> LauncherName | None:
    """REASONLAB_SANDBOX_LAUNCHER: "bwrap" or "unshare" allows only that launcher (tests); unset allows both."""
    value = os.environ.get(LAUNCHER_VARIABLE, "")
    if value not in ("", *get_args(LauncherName)):
        raise UserError(f"{LAUNCHER_VARIABLE}={value!r} names no launcher; unset it or use one of "
                        f"{', '.join(get_args(LauncherName))}")
    return value or None  # type: ignore[return-value]


def _isolating_launcher(prefer: LauncherName | None) -> Launcher:
    """bubblewrap's launcher where it works, else (unless bubblewrap is preferred) the unshare one, else why not."""
    launcher = Launcher(False, "caller", note="bubblewrap not tried (unshare preferred)") if prefer == "unshare" else \
        _namespace_launcher(shutil.which("bwrap"))
    if launcher.namespace or prefer == "bwrap":
        return launcher
    alternative = _unshare_launcher(unshare_tools())
    return alternative if alternative.namespace else Launcher(False, "caller", note=f"{launcher.note}; "
                                                                                      f"{alternative.note}")


def _unshare_launcher(tools: tuple[str, str, str] | None) -> Launcher:
    """The launcher that builds the namespaces with util-linux as root, or one saying why it cannot here."""
    if os.geteuid() != 0:
        return Launcher(False, "caller", note="unshare: builds the namespaces only for a root caller")
    if tools is None:
        return Launcher(False, "caller", note="unshare: util-linux unshare, mount or setpriv is not on PATH")
    built = _runtime_or_refusal("unshare: ")
    return built if isinstance(built, Launcher) else _probed_unshare(tools, built)


def _runtime_or_refusal(prefix: str) -> Runtime | Launcher:
    """The sandbox runtime, or a launcher saying why it could not be made (a cache folder others can write...)."""
    try:
        return runtime()
    except OSError as error:
        return Launcher(False, "caller", note=f"{prefix}the sandbox runtime could not be made under {cache_parent()} "
                        f"({error}); set REASONLAB_SANDBOX_CACHE to a folder only this user can write")


@functools.lru_cache(maxsize=8)
def _probed_unshare(tools: tuple[str, str, str], built: Runtime) -> Launcher:
    launcher = Launcher(True, "nobody", runtime=built, unshare=tools)
    failure = _probe(launcher)
    return launcher if not failure else Launcher(False, "caller", note=f"unshare cannot start a sandbox here "
                                                                          f"({failure})")


def missing_layers(launcher: Launcher) -> list[str]:
    """Which of the layers every safe mode needs (namespace, user, seccomp) `launcher` lacks, and why."""
    missing = [] if launcher.namespace else [f"namespace: {launcher.note}"]
    if launcher.host_user == "root":
        missing.append("user: the code would run as host root (uid 65534 cannot read the sandbox runtime and it "
                       "could not be re-bound for it)")
    if seccomp_program(lock_rlimits=False) is None:
        missing.append("seccomp: the filter is built for x86_64 only")
    return missing


@functools.lru_cache(maxsize=8)
def _namespace_launcher(bwrap: str | None) -> Launcher:
    """The first bubblewrap setup that starts Python on this machine, or a launcher saying why none does."""
    if bwrap is None:
        return Launcher(False, "caller", note="bwrap is not on PATH")
    built = _runtime_or_refusal("")
    if isinstance(built, Launcher):
        return built
    candidates = [Launcher(True, "caller", bwrap=bwrap, runtime=built)]
    if os.geteuid() == 0:
        unreachable = tuple(p for p in _namespace_sources(built) if not _reachable_by_nobody(p))
        candidates = [Launcher(True, "nobody", unreachable, bwrap, runtime=built),
                      Launcher(True, "root", bwrap=bwrap, runtime=built)]
        if unreachable and _tool_paths() is None:
            candidates.pop(0)
    failures = [] if len(candidates) > 1 or os.geteuid() != 0 else [
        "the sandbox runtime is not readable by uid 65534 and unshare, mount or setpriv is missing"]
    for launcher in candidates:
        failure = _probe(launcher)
        if not failure:
            return dataclasses.replace(launcher, note="; ".join(failures))
        failures.append(f"as {launcher.host_user}: {failure}")
    return Launcher(False, "caller", note=f"bwrap cannot start a sandbox here ({'; '.join(failures)})")


def _fallback_launcher(reason: str) -> Launcher:
    if os.geteuid() != 0:
        return Launcher(False, "caller", note=reason)
    reachable = all(_reachable_by_nobody(p) for p in _host_sources())
    return Launcher(False, "nobody" if reachable else "root", note=reason)


def user_note(launcher: Launcher) -> str:
    if launcher.unshare is not None:
        return (f"host uid {NOBODY} (set by unshare --setuid after the namespaces were built as root), no "
                "capabilities, no_new_privs")
    if launcher.host_user == "nobody":
        how = "the runtime re-bound in a private mount namespace, " if launcher.staged else ""
        return f"host uid {NOBODY} ({how}dropped from root), no capabilities"
    if launcher.host_user == "caller":
        seen = "" if launcher.namespace else "; without the namespace the code can read what that user can"
        return f"host uid {os.getuid()} (the caller), no capabilities{seen}"
    if launcher.namespace:
        return (f"off: host root without capabilities, uid 65534 only inside the user namespace ({launcher.note}); "
                "RLIMIT_NPROC does not apply, seccomp still blocks fork and /proc/sys is hidden")
    return "off: the code runs as root, because python or the sandbox runner is not readable by uid 65534"


@functools.lru_cache(maxsize=1)
def _tool_paths() -> tuple[str, str, str] | None:
    """util-linux's unshare, mount and setpriv, needed to stage binds for a root caller."""
    tools = tuple(shutil.which(name) for name in ("unshare", "mount", "setpriv"))
    return None if None in tools else tools  # type: ignore[return-value]


def _probe(launcher: Launcher) -> str:
    """Start `python -c pass` the way a run would; return the complaint, or "" when it works."""
    seccomp = seccomp_program(lock_rlimits=False)
    assert launcher.runtime is not None
    with tempfile.TemporaryDirectory(prefix="reasonlab-sandbox-probe-") as private:
        python = [launcher.runtime.python, "-I", "-B", "-c", "pass"]
        argv, fds = launch_argv(launcher, SandboxLimits(), seccomp, python, Path(private))
        try:
            done = subprocess.run(argv, pass_fds=fds, capture_output=True, timeout=30,
                                  env=child_env(SANDBOX_WORKDIR, SANDBOX_TMPDIR, launcher), **user_kwargs(launcher))
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
        finally:
            for fd in fds:
                os.close(fd)
    complaint = " | ".join(done.stderr.decode(errors="replace").split("\n")).strip()[-300:]
    return "" if done.returncode == 0 else complaint or f"exit status {done.returncode}"


def system_libs() -> set[str]:
    """The system library folders, bound at their own (standard) paths in the namespace."""
    libs = {d for d in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32") if os.path.isdir(d)}
    return libs | {d for d in ("/lib", "/lib64", "/lib32", "/libx32") if os.path.isdir(d) and not os.path.islink(d)}


def _outermost(paths: set[str]) -> list[str]:
    roots: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths}, key=len):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return roots


def bind_sources() -> list[str]:
    """Host directories a child without the namespace reads: the Python installation and the system libraries."""
    python = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    return _outermost(python | system_libs())


def read_roots(launcher: Launcher) -> list[str]:
    """Where the audit hook lets the child read, as paths the child sees: no host path of Python in the namespace."""
    devices = ["/dev/null", "/dev/urandom", "/dev/random", "/dev/zero"]
    if launcher.namespace:
        return [RUNTIME_MOUNT, *_outermost(system_libs()), *devices]
    sources = bind_sources()
    return sources + [os.path.realpath(s) for s in sources] + devices


def _namespace_sources(built: Runtime) -> list[str]:
    """Every host path bubblewrap binds for the child: the runtime and the system libraries."""
    return [built.root, *_outermost(system_libs())]


def _host_sources() -> list[str]:
    """Every host path a child without the namespace reads: the Python installation and the runner."""
    return [*bind_sources(), RUNNER]


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


def user_kwargs(launcher: Launcher) -> dict[str, Any]:
    """Popen drops a root caller to uid 65534 itself, unless setpriv or unshare does it inside the launcher."""
    if launcher.host_user != "nobody" or launcher.staged or launcher.unshare is not None:
        return {}
    return {"user": NOBODY, "group": NOBODY, "extra_groups": []}


def child_env(workdir: str, tmpdir: str, launcher: Launcher) -> dict[str, str]:
    """A fresh environment: nothing inherited, so no tokens, keys or proxy settings reach the code; in the
    namespace LD_LIBRARY_PATH names the runtime's libpython (the interpreter's RUNPATH is a host path)."""
    threads = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "GOTO_NUM_THREADS")
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": tmpdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    if launcher.namespace and launcher.runtime is not None:
        env |= dict(launcher.runtime.env)
    # OpenBLAS reserves a buffer per thread and fails under RLIMIT_AS with its default thread count
    return env | dict.fromkeys(threads, "1")


def runner_command(launcher: Launcher, result_fd: int) -> list[str]:
    """The runner, isolated (-I: no script dir on sys.path, no user site, no PYTHON* variables), no .pyc;
    in the namespace the runtime's copy of both."""
    if launcher.namespace:
        assert launcher.runtime is not None
        return [launcher.runtime.python, "-I", "-B", RUNNER_MOUNT, str(result_fd)]
    return [sys.executable, "-I", "-B", RUNNER, str(result_fd)]


_STAGE_SCRIPT = 'mount=$1; shift; while [ "$1" != -- ]; do "$mount" --bind "$1" "$2" || exit 1; shift 2; done; ' \
    'shift; exec "$@"'


def launch_argv(launcher: Launcher, limits: SandboxLimits, seccomp: bytes | None, command: list[str],
                private: Path) -> tuple[list[str], list[int]]:
    """The argv that starts `command` (bwrap in front of it when namespaces are used) and the fds it needs."""
    if not launcher.namespace:
        return command, []
    if launcher.unshare is not None:
        assert launcher.runtime is not None
        binds = [(lib, lib) for lib in _outermost(system_libs())]
        links = [(link, os.readlink(link)) for link in ("/lib", "/lib64", "/lib32", "/libx32") if os.path.islink(link)]
        return unshare_argv(launcher.unshare, launcher.runtime.root, binds, links, limits, command, private), []
    assert launcher.bwrap is not None
    tmpfs = str(limits.tmpfs_mb << 20)
    argv = [launcher.bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--uid", str(NOBODY),
            "--gid", str(NOBODY), "--hostname", "sandbox", "--die-with-parent", "--cap-drop", "ALL",
            # the runner is pid 1: no bubblewrap init without rlimits whose /proc/1/mem the code could open
            "--as-pid-1",
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
    assert launcher.runtime is not None
    # one folder whose host path names no project, venv or interpreter: mountinfo shows that path, no other
    binds = [(launcher.runtime.root, RUNTIME_MOUNT)] + [(lib, lib) for lib in _outermost(system_libs())]
    for index, (source, destination) in enumerate(binds):
        if source in launcher.staged:
            # a bind needs a mountpoint of the same kind: an empty folder
            mountpoint = private / f"bind{index}"
            mountpoint.mkdir(mode=0o755)
            prefix += [source, str(mountpoint)]
            argv += ["--ro-bind", str(mountpoint), destination]
        else:
            argv += ["--ro-bind", source, destination]
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


def bwrap_loads_seccomp(launcher: Launcher) -> bool:
    """Whether bubblewrap loads the filter (`--seccomp FD`); otherwise the runner loads it with prctl."""
    return launcher.namespace and launcher.unshare is None


def fallback_dirs(private: Path, launcher: Launcher) -> tuple[str, str]:
    """Without the namespace: the workdir and tmp dir in the private temp dir, the child's own."""
    workdir, tmpdir = private / "work", private / "tmp"
    for path in (workdir, tmpdir):
        path.mkdir(mode=0o700)
        if launcher.host_user == "nobody":
            os.chown(path, NOBODY, NOBODY)
    if launcher.host_user == "nobody":
        os.chmod(private, 0o711)
    return str(workdir), str(tmpdir)
