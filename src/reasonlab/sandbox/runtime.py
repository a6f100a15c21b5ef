"""The namespace layer's Python: a copy of the interpreter, its standard library, numpy and the runner.

A bind mount shows its source directory in the fourth field of `/proc/self/mountinfo` (its root within its
file system) wherever it is mounted, so binding the host's Python at a neutral path would still name the
interpreter's prefix, the virtual environment and the checkout. Instead the sandbox binds one folder whose
host path names none of them, `/var/cache/reasonlab-sandbox/<key>` for root, else
`$XDG_CACHE_HOME/reasonlab-sandbox/<key>` (`~/.cache/...`; `REASONLAB_SANDBOX_CACHE` overrides the parent),
read-only at /opt/reasonlab. It is made once per interpreter, reasonlab version, runner and numpy version
(`<key>` hashes those, never a path), in a temporary folder renamed into place, and reused:

    /opt/reasonlab/runner.py                       the child-side program
    /opt/reasonlab/python/bin/python3.X            the interpreter (its libpython beside it in lib/)
    /opt/reasonlab/python/lib/python3.X/           the standard library without test, idlelib, tkinter, ...
    /opt/reasonlab/python/lib/python3.X/site-packages/numpy, numpy.libs, numpy-*.dist-info

Python finds its prefix from the interpreter's location, so sys.executable, sys.prefix and sys.path name
/opt/reasonlab/python. Compiled modules are rewritten to name their file in the copy, and text sources that
name a host path (`_sysconfigdata_*.py`) are rewritten and recompiled. The interpreter and libpython keep
their build prefix in their bytes (RUNPATH, the default PREFIX); LD_LIBRARY_PATH points the loader at the copy.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import marshal
import os
import py_compile
import shutil
import stat
import sys
import sysconfig
import tempfile
import types
from pathlib import Path

RUNTIME_MOUNT = "/opt/reasonlab"
PYTHON_MOUNT = f"{RUNTIME_MOUNT}/python"
RUNNER_MOUNT = f"{RUNTIME_MOUNT}/runner.py"
# the child-side program: a stdlib-only script beside this file
RUNNER = os.path.join(os.path.dirname(os.path.realpath(__file__)), "runner.py")
# third-party packages copied in: sandboxed code may import the standard library and these
PACKAGES = ("numpy",)
# parts of the standard library no sandboxed program needs (tests, GUIs, installers, build files)
_SKIPPED = ("site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3")
_FORMAT = 1  # bump when the layout changes
_VERSION = f"python{sys.version_info[0]}.{sys.version_info[1]}"
_STDLIB = f"{sys.platlibdir}/{_VERSION}"  # where getpath looks for os.py and lib-dynload under the prefix


@dataclasses.dataclass(frozen=True)
class Runtime:
    """A built runtime: its host folder (bound at RUNTIME_MOUNT), the interpreter inside, its environment."""

    root: str
    python: str
    env: tuple[tuple[str, str], ...]


def cache_parent() -> Path:
    """Where runtimes live on the host: a folder named for the sandbox only, never for a project."""
    override = os.environ.get("REASONLAB_SANDBOX_CACHE")
    if override:
        return Path(override).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/cache/reasonlab-sandbox")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(cache).absolute() / "reasonlab-sandbox"


def host_paths() -> tuple[str, ...]:
    """The host paths a runtime must not name: the interpreter's prefixes, the virtualenv, this package's checkout."""
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
             str(Path(RUNNER).parents[2])}  # src/ of a checkout, or the site-packages holding reasonlab
    paths |= {os.path.realpath(path) for path in paths}
    return tuple(sorted((p for p in paths if p != "/"), key=len, reverse=True))


@functools.lru_cache(maxsize=1)
def runtime() -> Runtime:
    """The runtime for this interpreter, built on first use; OSError when its folder cannot be made or trusted."""
    sources = _Sources.find()
    parent = cache_parent()
    target = parent / sources.key()
    if not target.is_dir():
        _build(parent, target, sources)
    _check_owned(target)
    env = (("LD_LIBRARY_PATH", f"{PYTHON_MOUNT}/lib"),) if sources.libpython else ()
    return Runtime(str(target), f"{PYTHON_MOUNT}/bin/{_VERSION}", env)


@dataclasses.dataclass(frozen=True)
class _Sources:
    interpreter: str
    libpython: tuple[str, ...]
    stdlib: str
    dynload: str | None
    packages: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, version, top-level paths)

    @classmethod
    def find(cls) -> _Sources:
        interpreter = os.path.realpath(sys.executable)
        stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
        dynload = next((os.path.realpath(p) for p in sys.path if p.endswith("lib-dynload") and os.path.isdir(p)), None)
        return cls(interpreter, _libpython(), stdlib, dynload, tuple(_package(name) for name in PACKAGES
                                                                       if _installed(name)))

    def key(self) -> str:
        """A hash of what the runtime holds (versions, sizes, times, the runner's bytes), never of a path."""
        stamps = []
        for path in (self.interpreter, *self.libpython, os.path.join(self.stdlib, "os.py")):
            info = os.stat(path)
            stamps.append([info.st_size, info.st_mtime_ns])
        with open(RUNNER, "rb") as handle:
            runner = hashlib.sha256(handle.read()).hexdigest()
        try:
            reasonlab = importlib.metadata.version("reasonlab")
        except importlib.metadata.PackageNotFoundError:
            reasonlab = "unknown"
        parts = [_FORMAT, sys.version, sys.platlibdir, reasonlab, runner, stamps,
                 [[name, version] for name, version, _ in self.packages]]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def _libpython() -> tuple[str, ...]:
    """The shared libpython this process has mapped (none for a static build), with its other names."""
    with open("/proc/self/maps") as maps:
        mapped = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    found = sorted({os.path.realpath(p) for p in mapped if os.path.basename(p).startswith("libpython")})
    return tuple(found)


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _package(name: str) -> tuple[str, str, tuple[str, ...]]:
    dist = importlib.metadata.distribution(name)
    tops = {str(file).split("/")[0] for file in dist.files or () if not str(file).startswith("..")}
    paths = tuple(sorted(str(dist.locate_file(top)) for top in tops))
    return name, dist.version, tuple(p for p in paths if os.path.exists(p))


def _build(parent: Path, target: Path, sources: _Sources) -> None:
    """Copy the runtime into a temporary folder beside `target` and rename it into place."""
    parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    _check_owned(parent)
    building = Path(tempfile.mkdtemp(prefix=".build-", dir=parent))
    try:
        python = building / "python"
        (python / "bin").mkdir(parents=True)
        shutil.copy2(sources.interpreter, python / "bin" / _VERSION)
        (python / "lib").mkdir(exist_ok=True)
        for library in sources.libpython:
            shutil.copy2(library, python / "lib" / os.path.basename(library))
        stdlib = python / _STDLIB
        shutil.copytree(sources.stdlib, stdlib, ignore=_skip_stdlib)
        if sources.dynload and not (stdlib / "lib-dynload").is_dir():
            shutil.copytree(sources.dynload, stdlib / "lib-dynload")
        site = stdlib / "site-packages"
        site.mkdir()
        for _, _, tops in sources.packages:
            for top in tops:
                copy = site / os.path.basename(top)
                if os.path.isdir(top):
                    shutil.copytree(top, copy, ignore=shutil.ignore_patterns("direct_url.json"))
                else:
                    shutil.copy2(top, copy)
        shutil.copy2(RUNNER, building / "runner.py")
        _neutralize(building, host_paths())
        _publish(building)
        try:
            os.rename(building, target)
        except OSError:
            if not target.is_dir():  # else another process built the same runtime first
                raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)


def _skip_stdlib(folder: str, names: list[str]) -> set[str]:
    return {name for name in names if name in _SKIPPED or name.startswith("config-")}


def _neutralize(building: Path, hidden: tuple[str, ...]) -> None:
    """Make every compiled module name its file in the copy, and rewrite text sources that name a host path."""
    mount = {building: RUNTIME_MOUNT}
    encoded = [path.encode() for path in hidden]
    for top, _, files in os.walk(building):
        for name in files:
            path = Path(top, name)
            if name.endswith(".py"):
                text = path.read_bytes()
                if any(host in text for host in encoded):
                    for host in encoded:
                        text = text.replace(host, PYTHON_MOUNT.encode())
                    _replace(path, text)
                    cfile = importlib.util.cache_from_source(str(path))
                    try:
                        py_compile.compile(str(path), cfile, dfile=_inside(path, mount), doraise=True)
                    except py_compile.PyCompileError as error:  # callers handle OSError: no runtime
                        raise OSError(f"{path.name} does not compile once its host paths are replaced") from error
            elif name.endswith(".pyc") and Path(top).name == "__pycache__" and (
                    ".opt-" in name or not _rename_code(path, mount)):
                path.unlink()  # the child never runs with -O, nor with another Python's bytecode


def _inside(path: Path, mount: dict[Path, str]) -> str:
    (building, target), = mount.items()
    return target + "/" + path.relative_to(building).as_posix()


def _rename_code(pyc: Path, mount: dict[Path, str]) -> bool:
    """Point a compiled module's co_filename at its source in the copy; False for one of another Python."""
    data = pyc.read_bytes()
    try:
        source = Path(importlib.util.source_from_cache(str(pyc)))
        code = marshal.loads(data[16:]) if data[:4] == importlib.util.MAGIC_NUMBER else None
    except (ValueError, EOFError, TypeError):
        return False
    if not isinstance(code, types.CodeType):
        return False
    _replace(pyc, data[:16] + marshal.dumps(_renamed(code, _inside(source, mount))))
    return True


def _renamed(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` into a copied file and keep its times (a compiled module is checked against its source's)."""
    info = path.stat()
    path.chmod(stat.S_IMODE(info.st_mode) | stat.S_IWUSR)
    path.write_bytes(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def _publish(building: Path) -> None:
    """Everything readable (uid 65534 reads it for a root caller) and nothing writable but by the owner."""
    for top, _, files in os.walk(building):
        os.chmod(top, 0o755)
        for name in files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o111
                os.chmod(path, 0o755 if executable else 0o644)


def _check_owned(path: Path) -> None:
    """Refuse a cache folder that someone else could have filled: it must be ours and not writable by others."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"{path} is not a directory owned by uid {os.geteuid()} and writable by it alone")
