"""The child side of the sandbox: reads the job from stdin, runs the code, writes JSON lines to the result fd.

The parent runs this file by path, `python -I -B runner.py RESULT_FD` (inside bubblewrap it is bound
read-only at /opt/reasonlab/runner.py), so it imports nothing but the standard library: no reasonlab,
nothing that would pull torch into the sandbox. In order it recreates the workdir, sets its rlimits,
loads the seccomp filter when bubblewrap did not, runs the trusted preamble, installs the audit hook and
runs the code; then it names the layer behind a failure and lists the workdir for the checked copy back.
The first line it writes is the header (ok, value, error, kind, layer, files), one line per entry follows.
Everything after the code starts is reachable by the code (this module is its `__main__`), so the header is
a claim the parent checks, and the audit hook is built so that none of its decisions read this module.
"""

import ast
import base64
import contextlib
import errno
import hashlib
import json
import linecache
import os
import resource
import signal
import sys
import traceback

PID = os.getpid()
dumps = json.dumps
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
NOFILE = 256  # RLIMIT_NOFILE of the code: the descriptors it can hold


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
              (resource.RLIMIT_NOFILE, NOFILE, NOFILE)]
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


# The audit hook, defence in depth behind the kernel layers. It is assembled from constants bound as default
# arguments when this file is loaded, before any untrusted code exists: no function below reads a module
# global, a closure cell or a module attribute, and none calls a method that the code could define on an
# argument. Rewriting this module (it is sys.modules["__main__"]), os, posixpath or builtins, or reading the
# hook's frames from a traceback, therefore changes none of its decisions. Besides these constants the hook
# reads only kernel state: paths, the working directory and the tmpfs inode counts.
S_IFMT, S_IFLNK, S_IFDIR = 0o170000, 0o120000, 0o040000
HOOK_BLOCKED = frozenset({
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.sendto", "subprocess.Popen", "os.system", "os.exec", "os.spawn",
    "os.posix_spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg", "signal.pthread_kill", "pty.spawn",
    "resource.setrlimit", "resource.prlimit", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "ctypes.cdata", "ctypes.cdata/buffer", "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr",
    "gc.get_referrers", "gc.get_referents", "gc.get_objects", "os.link",
    # another thread's running frame, which could be the hook's own
    "sys._current_frames", "sys._current_exceptions",
})
# (event, ((index of a path argument, index of its dir_fd or -1, written), ...)), searched in order
HOOK_PATH_EVENTS = (
    ("os.listdir", ((0, -1, False),)), ("os.scandir", ((0, -1, False),)), ("os.mkdir", ((0, 2, True),)),
    ("os.remove", ((0, 1, True),)), ("os.rmdir", ((0, 1, True),)), ("os.rename", ((0, 2, True), (1, 3, True))),
    ("os.symlink", ((1, 2, True),)), ("os.chmod", ((0, 2, True),)), ("os.chown", ((0, 3, True),)),
    ("os.utime", ((0, 3, True),)), ("os.truncate", ((0, -1, True),)), ("shutil.rmtree", ((0, 1, True),)),
    ("os.setxattr", ((0, -1, True),)), ("os.removexattr", ((0, -1, True),)), ("os.getxattr", ((0, -1, False),)),
    ("os.listxattr", ((0, -1, False),)), ("os.chdir", ((0, -1, False),)),
)
FUNCTION_FIELDS = ("__code__", "__defaults__", "__kwdefaults__")


def path_text(value, _type=type, _issubclass=issubclass, _str=str, _bytes=bytes, _copy=str.__str__,
              _decode=bytes.decode):
    """`value` as an exact str, read from its bytes without calling any method its class defines; else None."""
    kind = _type(value)
    if kind is _str:
        return value
    if kind is _bytes or _issubclass(kind, _bytes):
        return _decode(value, "utf-8", "surrogateescape")
    if _issubclass(kind, _str):
        return _copy(value)
    return None


def real_path(path, _lstat=os.lstat, _readlink=os.readlink, _getcwd=os.getcwd, _item=tuple.__getitem__,
              _errors=(OSError, ValueError), _kind=S_IFMT, _link=S_IFLNK):
    """os.path.realpath from captured C functions: symlinks and `..` resolved in order; None past 40 links."""
    if not path.startswith("/"):
        try:
            path = _getcwd() + "/" + path
        except _errors:
            return None
    pending = path.split("/")
    pending.reverse()
    resolved, hops = "", 0
    while pending:
        name = pending.pop()
        if name == "" or name == ".":
            continue
        if name == "..":
            resolved = resolved[:resolved.rfind("/")] if resolved else ""
            continue
        candidate = resolved + "/" + name
        try:
            mode = _item(_lstat(candidate), 0)
        except _errors:
            resolved = candidate
            continue
        if mode & _kind != _link:
            resolved = candidate
            continue
        hops += 1
        if hops > 40:
            return None
        target = _readlink(candidate)
        if target.startswith("/"):
            resolved = ""
        parts = target.split("/")
        parts.reverse()
        pending.extend(parts)
    return resolved or "/"


def within(path, roots):
    """Whether the resolved `path` is one of `roots` or lies below one."""
    if path is None:
        return False
    # a loop, not any(): the hook may not look up a builtin by name
    for root in roots:  # noqa: SIM110
        if path == root or path.startswith(root + "/"):
            return True
    return False


def entries_used(folders, on_tmpfs, _statvfs=os.statvfs, _listdir=os.listdir, _lstat=os.lstat,
                 _item=tuple.__getitem__, _errors=(OSError, ValueError), _kind=S_IFMT, _dir=S_IFDIR):
    """Inodes in use on the sandbox's tmpfs mounts, or entries under `folders` without them (a folder that
    cannot be listed counts as full)."""
    total = 0
    if on_tmpfs:
        for folder in folders:
            usage = _statvfs(folder)
            total += _item(usage, 5) - _item(usage, 6)  # f_files - f_ffree
        return total
    stack = [*folders]
    while stack:
        folder = stack.pop()
        try:
            names = _listdir(folder)
        except _errors:
            return 1 << 62
        for name in names:
            total += 1
            try:
                mode = _item(_lstat(folder + "/" + name), 0)
            except _errors:
                continue
            if mode & _kind == _dir:
                stack.append(folder + "/" + name)
    return total


def refuse(event, detail, violations, _error=PermissionError, _eperm=errno.EPERM):
    message = f"{event} is not allowed in the sandbox ({detail})"
    if not violations:
        violations.append(message)
    raise _error(_eperm, message)


def checked_path(event, value, dir_fd, roots, violations, _type=type, _int=int, _readlink=os.readlink,
                 _path_text=path_text, _real_path=real_path, _within=within, _refuse=refuse):
    """The resolved path an event names, refused unless it lies under `roots`; None for a descriptor."""
    if _type(value) is _int:
        return None
    text = "." if value is None else _path_text(value)
    if text is None:
        _refuse(event, "pass paths as str or bytes, e.g. os.fspath(path)", violations)
    if dir_fd is not None and not text.startswith("/"):
        if _type(dir_fd) is not _int:
            _refuse(event, "dir_fd must be an int", violations)
        if dir_fd >= 0:
            text = _readlink(f"/proc/self/fd/{dir_fd}") + "/" + text
    real = _real_path(text)
    if not _within(real, roots):
        _refuse(event, f"{text!r} is outside the working directory", violations)
    return real


def check_open_folders(event, text, roots, violations, _stat=os.stat, _readlink=os.readlink, _range=range,
                       _item=tuple.__getitem__, _errors=(OSError, ValueError), _real_path=real_path, _within=within,
                       _refuse=refuse, _kind=S_IFMT, _dir=S_IFDIR, _descriptors=NOFILE):
    """os.open's event does not name its dir_fd: a relative path must stay under `roots` from every open folder."""
    for fd in _range(_descriptors):
        try:
            mode = _item(_stat(f"/proc/self/fd/{fd}"), 0)
            folder = _readlink(f"/proc/self/fd/{fd}") if mode & _kind == _dir else None
        except _errors:
            continue
        if folder is not None and not _within(_real_path(folder + "/" + text), roots):
            _refuse(event, f"{text!r} from the open folder {folder!r} is outside the working directory", violations)


def audit_event(event, args, settings, _type=type, _str=str, _int=int, _tuple=tuple, _len=len,
                _path_text=path_text, _checked=checked_path, _refuse=refuse, _used=entries_used,
                _open_folders=check_open_folders,
                _lstat=os.lstat, _errors=(OSError, ValueError), _blocked=HOOK_BLOCKED,
                _path_events=HOOK_PATH_EVENTS, _write_flags=WRITE_FLAGS, _creat=os.O_CREAT,
                _function=type(path_text), _fields=FUNCTION_FIELDS, _own_file=__file__):
    """One audit event: return to allow it, raise PermissionError to refuse it."""
    write_roots, read_roots, folders, ceiling, on_tmpfs, max_files, violations = settings
    if _type(event) is not _str:
        event = _path_text(event)  # sys.audit takes str subclasses
    if _type(args) is not _tuple or event is None:
        return
    created = None
    if event == "open":
        if _len(args) != 3:
            _refuse(event, "malformed event", violations)
        path, mode, flags = args
        if _type(path) is _int:
            return
        descriptor = mode is None  # os.open, which takes a dir_fd its event leaves out
        writes = not ((mode is None or _type(mode) is _str) and (flags is None or _type(flags) is _int))
        if not writes:
            mode, flags = mode or "", flags or 0
            writes = "w" in mode or "a" in mode or "x" in mode or "+" in mode or flags & _write_flags != 0
        roots = write_roots if writes else read_roots
        real = _checked(event, path, None, roots, violations)
        text = _path_text(path)
        if descriptor and not text.startswith("/"):
            _open_folders(event, text, roots, violations)
        if writes and (_type(flags) is not _int or flags & _creat):
            created = real
    elif event in _blocked:
        _refuse(event, "blocked operation", violations)
    elif event == "object.__setattr__" and _len(args) == 3 and _type(args[0]) is _function:
        field = args[1]
        if _type(field) is _str and (field == "__code__" or (
                field in _fields and args[0].__code__.co_filename == _own_file)):
            _refuse(event, f"replacing {field} of a function", violations)
    else:
        specs = None
        for name, candidate in _path_events:
            if name == event:
                specs = candidate
                break
        if specs is None:
            return
        if event == "os.symlink" and _len(args) == 3:
            target, link = _path_text(args[0]), _path_text(args[1])
            if target is None or link is None:
                _refuse(event, "pass paths as str or bytes", violations)
            if not target.startswith("/"):
                target = link[:link.rfind("/") + 1] + target
            _checked(event, target, args[2], write_roots, violations)
        for index, fd_index, written in specs:
            if index >= _len(args):
                _refuse(event, "malformed event", violations)
            dir_fd = args[fd_index] if 0 <= fd_index < _len(args) else None
            real = _checked(event, args[index], dir_fd, write_roots if written else read_roots, violations)
        if event == "os.mkdir" or event == "os.symlink":
            created = real
    if created is not None and _used(folders, on_tmpfs) >= ceiling:
        try:
            _lstat(created)
        except _errors:
            _refuse(event, f"more than max_files={max_files} files and folders", violations)


def make_audit_hook(write_roots, read_roots, max_files, existing, on_tmpfs, violations, _audit_event=audit_event,
                    _real_path=real_path, _used=entries_used):
    """The hook for `sys.addaudithook`, with every setting resolved now into immutable values."""
    # a root that cannot be resolved (a symlink loop) is left out: nothing lies inside it
    write_roots = tuple(real for real in (_real_path(str(root)) for root in write_roots) if real is not None)
    read_roots = tuple(real for real in (_real_path(str(root)) for root in read_roots) if real is not None)
    read_roots += write_roots
    ceiling = _used(write_roots, on_tmpfs) + max_files - existing
    settings = (write_roots, read_roots, write_roots, ceiling, on_tmpfs, max_files, violations)

    def hook(event, args, _audit_event=_audit_event, _settings=settings):
        _audit_event(event, args, _settings)

    return hook


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
    # ESRCH: a host pid names no process in the sandbox's pid namespace
    if code in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ECONNREFUSED, errno.ENETUNREACH,
                errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ESRCH):
        return "forbidden", "namespace"
    filename = error.filename if isinstance(error.filename, (str, bytes)) else None
    if code == errno.ENOENT and filename and not within(real_path(os.fsdecode(filename)), (job["workdir"],
                                                                                         job["tmpdir"])):
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
    """Print the traceback to stderr without this file's frames (the caller of the code, the hooks)."""
    with contextlib.suppress(BaseException):
        # lookup_lines=False: no frame's source is read until it is printed, so this file is never opened
        report = traceback.TracebackException(type(error), error, error.__traceback__, lookup_lines=False,
                                              compact=True)
        pending = [report]
        while pending:
            current = pending.pop()
            current.stack = traceback.StackSummary.from_list(
                [frame for frame in current.stack if frame.filename != __file__])
            chained = (current.__cause__, current.__context__, *(getattr(current, "exceptions", None) or ()))
            pending += [exception for exception in chained if exception is not None]
        sys.stderr.write("".join(report.format()))


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
        sys.addaudithook(make_audit_hook((job["workdir"], job["tmpdir"]), job["read_roots"], job["max_files"],
                                         len(entries), job["namespace"], violations))
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
        message = violations[0] if layer == "audit" else describe(error)
        # the parent refuses a header much longer than the result itself
        header.update(kind=kind, layer=layer, error=message if len(message) <= 4000 else message[:4000] + "...")
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


if __name__ == "__main__":
    main()
