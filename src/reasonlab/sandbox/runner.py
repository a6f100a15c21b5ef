"""The child side of the sandbox: reads the job from stdin, runs the code, writes JSON lines to the result fd.

The parent runs this file by path, `python -I -B runner.py RESULT_FD` (inside bubblewrap it is bound
read-only at /opt/reasonlab/runner.py), so it imports nothing but the standard library: no reasonlab,
nothing that would pull torch into the sandbox. In order it recreates the workdir, sets its rlimits,
loads the seccomp filter when bubblewrap did not, runs the trusted preamble, installs the audit hook and
runs the code; then it names the layer behind a failure and lists the workdir for the checked copy back.
The first line it writes is the header (ok, value, error, kind, layer, files), one line per entry follows.
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


if __name__ == "__main__":
    main()
