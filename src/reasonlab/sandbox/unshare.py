"""The namespace and user layers without bubblewrap, for a root caller: util-linux unshare, mount and setpriv.

`unshare --mount --pid --net --ipc --uts` starts a waiting shell in new mount, network, ipc and uts namespaces
(private mount propagation, an empty network namespace); the one process it forks is pid 1 of the new pid
namespace, and the waiter exits with its status (128+N for a signal, as bubblewrap reports it; unshare's own
`--fork` cannot pass on a SIGKILL). As root, still outside any user namespace, pid 1 builds a
read-only tmpfs root in an empty folder of the run's private temp dir: the runtime at /opt/reasonlab and the
system libraries bound read-only (nosuid, nodev), /etc/ld.so.cache, size-limited tmpfs at /sandbox and /tmp
owned by uid 65534, a read-only /dev holding null, zero, full, random and urandom, and a fresh /proc of the
new pid namespace with /proc/sys hidden. Then it `exec`s setpriv (no inheritable capabilities, a bounding
set of setuid, setgid and sys_chroot only, no_new_privs) and setpriv `exec`s `unshare --root` (chroot into the
new root, drop the supplementary groups, setgid and setuid to 65534, which clears every capability) that
`exec`s the runner: no process is forked after pid 1, so the runner is pid 1 with the rlimits it sets itself.
The runner loads the seccomp filter with `prctl`, as bubblewrap's `--seccomp` would have before it ran.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from reasonlab.sandbox.limits import NOBODY, SANDBOX_TMPDIR, SANDBOX_WORKDIR, SandboxLimits
from reasonlab.sandbox.runtime import RUNTIME_MOUNT

TOOLS = ("unshare", "mount", "setpriv")
DEVICES = ("null", "zero", "full", "random", "urandom")
READ_ONLY = "bind,ro,nosuid,nodev"


def unshare_tools(path: str | None = None) -> tuple[str, str, str] | None:
    """util-linux's unshare, mount and setpriv on `path` (PATH by default), or None when one is missing."""
    tools = tuple(shutil.which(name, path=path) for name in TOOLS)
    return None if None in tools else tools  # type: ignore[return-value]


def unshare_argv(tools: tuple[str, str, str], runtime_root: str, binds: list[tuple[str, str]],
                 links: list[tuple[str, str]], limits: SandboxLimits, command: list[str],
                 private: Path) -> list[str]:
    """The argv that builds the namespaces and the tmpfs root in `private`, drops to uid 65534 and runs `command`."""
    unshare, _, _ = tools
    root = private / "root"
    root.mkdir(mode=0o700)
    # the shells would export PWD, the caller's working directory, to the runner
    script = "set -eu\nunset PWD OLDPWD\n" + "\n".join(_setup_lines(tools, str(root), runtime_root, binds, links, limits))
    return [unshare, "--mount", "--pid", "--net", "--ipc", "--uts", "--propagation", "private",
            "--", "/bin/sh", "-c", _WAITER, "/bin/sh", script, *command]


# a background job's stdin would be /dev/null: the job's pipe goes along as fd 3 and comes back as stdin
_WAITER = 'cd /; unset PWD OLDPWD; setup=$1; shift; exec 3<&0; "$0" -c "$setup" reasonlab-unshare "$@" <&3 3<&- & wait $! 2>/dev/null'


def _setup_lines(tools: tuple[str, str, str], root: str, runtime_root: str, binds: list[tuple[str, str]],
                 links: list[tuple[str, str]], limits: SandboxLimits) -> list[str]:
    """Shell lines run as root in the new namespaces; every path is quoted, the command comes as "$@"."""
    unshare, mount, setpriv = (shlex.quote(tool) for tool in tools)
    q = shlex.quote
    size = limits.tmpfs_mb << 20
    owned = f"size={size},mode=0700,uid={NOBODY},gid={NOBODY},nosuid,nodev"
    lines = [f"R={q(root)}", "printf sandbox > /proc/sys/kernel/hostname",
             f"{mount} -t tmpfs -o size=1m,mode=0755,nosuid,nodev reasonlab \"$R\""]
    lines += _bind_lines(mount, [(runtime_root, RUNTIME_MOUNT), *binds])
    lines += [f"ln -s {q(target)} \"$R\"{q(link)}" for link, target in links]
    if os.path.isfile("/etc/ld.so.cache"):
        lines += ["mkdir -p \"$R/etc\"", ": > \"$R/etc/ld.so.cache\"",
                  f"{mount} -o {READ_ONLY} /etc/ld.so.cache \"$R/etc/ld.so.cache\""]
    for folder in (SANDBOX_WORKDIR, SANDBOX_TMPDIR):
        lines += [f"mkdir -p \"$R\"{q(folder)}", f"{mount} -t tmpfs -o {owned} reasonlab \"$R\"{q(folder)}"]
    lines += _dev_lines(mount)
    lines += ["mkdir -p \"$R/proc\"", f"{mount} -t proc -o nosuid,nodev,noexec proc \"$R/proc\"",
              # /proc/sys holds the kernel's settings: hidden, as bubblewrap's setup hides it
              f"{mount} -t tmpfs -o ro,size=4k,nosuid,nodev,noexec reasonlab \"$R/proc/sys\"",
              f"{mount} -o remount,ro,nosuid,nodev \"$R\"",
              f"exec {setpriv} --inh-caps=-all --bounding-set=-all,+setuid,+setgid,+sys_chroot --no-new-privs -- "
              f"{unshare} --root=\"$R\" --setgid={NOBODY} --setuid={NOBODY} -- \"$@\""]
    return lines


def _bind_lines(mount: str, binds: list[tuple[str, str]]) -> list[str]:
    lines = []
    for source, destination in binds:
        target = "\"$R\"" + shlex.quote(destination)
        lines += [f"mkdir -p {target}", f"{mount} -o {READ_ONLY} {shlex.quote(source)} {target}"]
    return lines


def _dev_lines(mount: str) -> list[str]:
    """A read-only /dev with the host's harmless character devices bound in, and the fd links."""
    lines = ["mkdir -p \"$R/dev\"", f"{mount} -t tmpfs -o size=64k,mode=0755,nosuid,noexec reasonlab \"$R/dev\""]
    for device in DEVICES:
        lines += [f": > \"$R/dev/{device}\"", f"{mount} --bind /dev/{device} \"$R/dev/{device}\""]
    links = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}
    lines += [f"ln -s {target} \"$R/dev/{name}\"" for name, target in links.items()]
    return [*lines, f"{mount} -o remount,ro,nosuid,noexec \"$R/dev\""]
