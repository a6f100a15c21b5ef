"""Issue 16: the caller never raises, the audit hook cannot be switched off, the sandbox fails closed.

Each class is shown by the layer that stops it: the supervisor (whatever the child sends back), the audit
hook (attacks on its own state, which must not change a decision), the namespace and user layers (no
unsafe run without them), and pid 1 (the runner itself, with its rlimits). The tests that run code in the
namespace run with the launcher "auto" picks and again with the unshare launcher forced (`each_launcher`).
"""

from __future__ import annotations

import dis
import json
import os
import signal
import stat
import sys
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import reasonlab.sandbox as sandbox
import reasonlab.sandbox.launch as launch
import reasonlab.sandbox.runner as runner
import reasonlab.sandbox.runtime as runtime
from reasonlab.errors import UserError
from reasonlab.sandbox import SandboxLimits, SandboxResult, available_layers, run_python
from reasonlab.sandbox.supervisor import Exchange, _parse_lines, interpret
from reasonlab.sandbox.workdir import Snapshot, snapshot_workdir

LAYERS = available_layers()
AUTO_REFUSED = launch.missing_layers(launch.choose_launcher("auto", strict_raises=False))
needs_auto = pytest.mark.skipif(bool(AUTO_REFUSED), reason=f"sandbox mode auto refuses here: {AUTO_REFUSED}")
UNSAFE = "unsafe-hook-only"
FAST = SandboxLimits(wall_seconds=5, cpu_seconds=2, tmpfs_mb=1, max_output_bytes=10_000)


def unshare_untestable() -> str:
    """Why the forced unshare launcher adds nothing here (it cannot run, or "auto" uses it anyway); "" if it does."""
    missing = launch.missing_layers(launch.choose_launcher("auto", strict_raises=False, prefer="unshare"))
    if missing:
        return f"the unshare launcher lacks layers here: {'; '.join(missing)}"
    chosen = launch.choose_launcher("auto", strict_raises=False)
    return "mode auto uses the unshare launcher here already" if chosen.unshare is not None else ""


UNSHARE_UNTESTABLE = unshare_untestable()


@pytest.fixture(params=["auto", "unshare"])
def each_launcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The launcher "auto" picks, then the unshare launcher forced (REASONLAB_SANDBOX_LAUNCHER)."""
    if request.param == "unshare":
        if UNSHARE_UNTESTABLE:
            pytest.skip(UNSHARE_UNTESTABLE)
        monkeypatch.setenv(launch.LAUNCHER_VARIABLE, "unshare")
    return str(request.param)


# 1. nothing the child does raises in the caller: the result channel, parsed directly


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)
HEADERS = st.fixed_dictionaries({}, optional={
    "ok": JSON_VALUES, "value": JSON_VALUES, "error": JSON_VALUES, "files": st.booleans() | JSON_VALUES,
    "kind": st.sampled_from(["exception", "cpu", "crash", "nonsense"]) | JSON_VALUES,
    "layer": st.sampled_from(["audit", "namespace", "bogus"]) | JSON_VALUES,
})
ENTRIES = st.dictionaries(st.sampled_from(["type", "path", "data", "sha256"]),
                          st.sampled_from(["file", "dir", "a.md", "../x", "/etc/x", "\udc80", "\ud800", "eA=="])
                          | JSON_VALUES, max_size=4)
RECORDS = st.lists(HEADERS | JSON_VALUES, min_size=1, max_size=3).map(
    lambda lines: "\n".join(json.dumps(line) for line in lines).encode())
CHANNEL = st.one_of(st.binary(max_size=2048), RECORDS,
                    st.tuples(HEADERS, st.lists(ENTRIES, max_size=4)).map(
                        lambda parts: "\n".join(json.dumps(p) for p in [parts[0], *parts[1]]).encode()),
                    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth))


def exchange(result: bytes, returncode: int = 0, stopped: Any = None, seconds: float = 0.1) -> Exchange:
    return Exchange(stdout=b"\xff\xfe out", stderr=b"err \xc3", result=result, stopped=stopped,
                    returncode=returncode, seconds=seconds)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=CHANNEL, returncode=st.integers(-70, 300), stopped=st.sampled_from([None, None, "timeout", "output"]),
       with_workdir=st.booleans())
@example(data=b"[" * 100_000, returncode=0, stopped=None, with_workdir=False)
@example(data=b'{"a":' * 50_000, returncode=-9, stopped=None, with_workdir=False)
@example(data=b'{"ok": true, "files": true}\n{"type": "file", "path": "\\ud800", "data": "eA==", "sha256": "0"}',
         returncode=0, stopped=None, with_workdir=True)
@example(data=b'{"ok": true, "files": true}\n{"type": "file", "path": "a", "data": [[[1]]]}', returncode=0,
         stopped=None, with_workdir=True)
@example(data=b'{"ok": false, "error": "\\udc80 lone"}\n' + b"9" * 5000, returncode=137, stopped=None,
         with_workdir=False)
@example(data=b'{"error":""}', returncode=0, stopped=None, with_workdir=False)  # found by hypothesis (a fresh-clone make test)
def test_any_result_channel_becomes_a_result(data: bytes, returncode: int, stopped: Any, with_workdir: bool,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    limits = SandboxLimits(cpu_seconds=1)
    snapshot = Snapshot(None)
    if with_workdir:
        snapshot = snapshot_workdir(tmp_path_factory.mktemp("work"), limits)
    result = interpret(exchange(data, returncode, stopped), limits, snapshot)
    assert isinstance(result, SandboxResult)
    assert result.ok or (result.error and result.error_kind)
    assert result.error is None or result.error.encode("utf-8")  # printable: no lone surrogates


def test_the_parser_stays_bounded_on_hostile_lines() -> None:
    # each blob is ~4 MB; parsed naively the container-heavy ones would cost 20-30 times that in objects
    limits = SandboxLimits(max_output_bytes=100_000, max_files=1000)
    header = b'{"ok": true, "files": true}\n'
    blobs = [b"[" * 4_000_000, b'{"a":' * 800_000, b"\xff" * 4_000_000, b"1" * 4_000_000,
             b'"' + b"x" * 4_000_000 + b'"', b"{}\n" * 1_300_000, b'{"value": [' + b"{}," * 1_300_000 + b"{}]}",
             header + b'{"type": [' + b"{}," * 1_300_000 + b"{}]}", header + b'{"path": "' + b"\\n" * 2_000_000,
             header + b'{"type": "file", "path": "a"}\n' * 1100]
    tracemalloc.start()
    started = time.monotonic()
    for blob in blobs:
        assert _parse_lines(blob, limits)[:2] == (None, []), blob[:40]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 48 << 20 and time.monotonic() - started < 10


# 1. nothing the child does raises in the caller: real children


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_a_child_that_ends_without_a_result_is_a_crash_not_a_type_error() -> None:
    # the first example: interpret passed `seconds` twice to _died() and raised TypeError
    exited = run_python("import os\nos._exit(3)", limits=FAST)
    assert (exited.ok, exited.error_kind, exited.layer) == (False, "crash", None)
    assert "status 3 before returning a result" in str(exited.error)
    replaced = run_python("import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'pass'])",
                          skip_layers=("audit",), limits=FAST)
    assert (replaced.error_kind, "status 0") == ("crash", str(replaced.error).split("with ")[1][:8])


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_ignoring_sigxcpu_is_killed_at_the_hard_cpu_limit() -> None:
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass"
    stopped = run_python(code, limits=SandboxLimits(cpu_seconds=1, wall_seconds=20))
    assert (stopped.error_kind, stopped.layer) == ("cpu", "rlimit")


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_deep_json_on_the_result_descriptor_is_no_result() -> None:
    code = "import os, sys\nos.write(int(sys.argv[1]), b'[' * 50000 + b'\\n')\nos._exit(0)"
    forged = run_python(code, limits=FAST)
    assert (forged.ok, forged.error_kind, forged.layer) == (False, "result", "supervisor")
    assert "unreadable result: not JSON (RecursionError)" in str(forged.error)


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_an_endless_result_stream_is_cut_off_by_the_supervisor() -> None:
    code = "import os, sys\nfd = int(sys.argv[1])\nwhile True:\n    os.write(fd, b'x' * 65536)"
    flooded = run_python(code, limits=FAST)
    assert (flooded.error_kind, flooded.layer) == ("output", "supervisor") and flooded.seconds < 5


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_a_child_that_stops_itself_or_closes_its_pipes_does_not_hang_the_caller() -> None:
    # as pid 1 of its namespace the runner ignores its own SIGSTOP and goes on; as a plain child it stops
    for code in ("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)",
                 "import os, time\nfor fd in (0, 1, 2):\n    os.close(fd)\ntime.sleep(60)"):
        for mode in ("auto", UNSAFE):
            done = run_python(code, limits=SandboxLimits(wall_seconds=1), skip_layers=("audit",), mode=mode)
            assert done.seconds < 5 and (done.ok or done.error_kind in ("timeout", "crash")), (code, mode)


SIGNALS = [signal.SIGABRT, signal.SIGSEGV, signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1, signal.SIGXCPU,
           signal.SIGXFSZ, signal.SIGPIPE, signal.SIGBUS, signal.SIGFPE, signal.SIGHUP, signal.SIGALRM]
ENDINGS = st.one_of(
    st.integers(0, 255).map(lambda code: f"os._exit({code})"),
    st.sampled_from(SIGNALS).map(lambda sig: f"signal.signal({int(sig)}, signal.SIG_DFL)\nos.kill(os.getpid(), "
                                             f"{int(sig)})\nos._exit(0)"),
    st.binary(max_size=512).map(lambda junk: f"os.write(int(sys.argv[1]), {junk!r})\nos._exit(1)"),
)


@settings(max_examples=14, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(ending=ENDINGS, mode=st.sampled_from(["auto", UNSAFE]))
def test_any_exit_signal_or_junk_from_a_real_child_becomes_a_result(ending: str, mode: str) -> None:
    if mode == "auto" and AUTO_REFUSED:
        mode = UNSAFE
    started = time.monotonic()
    done = run_python(f"import os, signal, sys\n{ending}", limits=FAST, skip_layers=("audit",), mode=mode)
    assert isinstance(done, SandboxResult) and not done.ok and done.error and done.error_kind
    assert time.monotonic() - started < 10


# 2. the audit hook: nothing the code can reach changes a decision


HOOK_FUNCTIONS = [runner.path_text, runner.real_path, runner.within, runner.entries_used, runner.refuse,
                  runner.checked_path, runner.check_open_folders, runner.audit_event]


def _immutable(value: Any, seen_lists: list[Any]) -> bool:
    if isinstance(value, list):  # the violations list: a report, never read for a decision
        seen_lists.append(value)
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(item, seen_lists) for item in value)
    if isinstance(value, types.FunctionType):
        return value.__code__.co_filename == runner.__file__
    if isinstance(value, type):
        return not value.__flags__ & (1 << 9)  # Py_TPFLAGS_HEAPTYPE: a class the code could change
    return isinstance(value, (str, bytes, int, float, type(None), types.BuiltinFunctionType,
                              types.MethodDescriptorType, types.WrapperDescriptorType))


def test_the_hook_reads_no_global_no_cell_and_only_immutable_defaults(tmp_path: Path) -> None:
    hook = runner.make_audit_hook((str(tmp_path),), (), 10, 0, False, [])
    for function in [*HOOK_FUNCTIONS, hook]:
        code = function.__code__
        names = {op.opname for op in dis.get_instructions(code)}
        assert not names & {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_CLASSDEREF", "STORE_GLOBAL",
                            "LOAD_CLOSURE"}, function.__name__
        assert function.__closure__ is None and not code.co_freevars and not code.co_cellvars
        assert not any(isinstance(const, types.CodeType) for const in code.co_consts), function.__name__
        lists: list[Any] = []
        assert _immutable(function.__defaults__ or (), lists), function.__name__
        assert len(lists) <= 1 and not function.__kwdefaults__


def test_rewriting_the_runner_module_and_os_does_not_change_a_decision(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    hook = runner.make_audit_hook((str(tmp_path),), ("/dev/null",), 3, 0, False, [])
    above, inside = str(tmp_path / "../x"), str(tmp_path / "inside.txt")
    for name, value in list(vars(runner).items()):
        if name.startswith("__"):
            continue
        if isinstance(value, (frozenset, tuple, int)):
            monkeypatch.setattr(runner, name, type(value)())
        elif callable(value) and not isinstance(value, type):
            monkeypatch.setattr(runner, name, lambda *args, **kwargs: True)
    for module, names in ((os, ["lstat", "readlink", "getcwd", "fspath", "fsdecode", "listdir", "statvfs"]),
                          (os.path, ["realpath", "join", "islink", "lexists", "abspath"])):
        for name in names:
            monkeypatch.setattr(module, name, lambda *args, **kwargs: str(tmp_path))
    for event, args in [("open", ("/etc/passwd", "r", 0)), ("open", (above, "w", 0)),
                        ("socket.connect", (None, ("1.1.1.1", 80))), ("os.mkdir", (f"{above}-dir", 0o777, -1)),
                        ("gc.get_referrers", ())]:
        with pytest.raises(PermissionError):
            hook(event, args)
    hook("open", (inside, "w", 0))


def test_real_path_agrees_with_os_path_realpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "up").symlink_to("..")
    (tmp_path / "a" / "abs").symlink_to(tmp_path / "a" / "b")
    (tmp_path / "loop").symlink_to("loop")
    (tmp_path / "chain").symlink_to("a/up/a/abs/../b")
    monkeypatch.chdir(tmp_path / "a")
    for path in ["b", "../a/b/../..", "up/a/up/a/b", "abs/..", "/", ".", "../chain/x/../y", "missing/../b",
                 str(tmp_path / "a/abs/../../a/up"), "//a//b/", "../loop/..", "\udcff"]:
        assert runner.real_path(path) == os.path.realpath(path) or path.startswith("../loop"), path
    assert runner.real_path("../loop") is None  # a symlink loop resolves to nothing, which is never inside


HOOK_ATTACKS = {
    # the three lines: the runner is __main__, so its globals are the code's to rewrite
    "main-globals": (
        "import sys\nm = sys.modules['__main__']\n"
        "for name, value in list(vars(m).items()):\n"
        "    if isinstance(value, (frozenset, tuple, dict)) and not name.startswith('__'):\n"
        "        setattr(m, name, type(value)())\n"
        "    elif callable(value) and name not in ('main', 'classify', 'describe', 'manifest', 'dumps'):\n"
        "        setattr(m, name, lambda *a, **k: True)\n"),
    "frames": (
        "import sys\nframe = sys._getframe()\n"
        "while frame is not None:\n"
        "    for name, value in list(frame.f_globals.items()):\n"
        "        if isinstance(value, frozenset) or name in ('inside', 'within', 'real_path', 'checked_path'):\n"
        "            frame.f_globals[name] = frozenset() if isinstance(value, frozenset) else (lambda *a: True)\n"
        "    frame = frame.f_back\n"),
    "modules-and-builtins": (
        "import builtins, os, posixpath\n"
        "os.path.realpath = posixpath.realpath = lambda p, **k: '/sandbox/x'\n"
        "os.lstat = os.readlink = os.getcwd = os.fspath = os.fsdecode = lambda *a: '/sandbox'\n"
        "saved = (builtins.isinstance, builtins.any, builtins.len, builtins.PermissionError)\n"
        "builtins.isinstance = builtins.any = lambda *a: True\nbuiltins.len = lambda *a: 0\n"),
    "hook-frames-from-a-traceback": (
        "import types\n"
        "try:\n    open('/etc/hostname')\nexcept PermissionError as error:\n    tb = error.__traceback__\n"
        "while tb is not None:\n"
        "    for value in list(tb.tb_frame.f_locals.values()):\n"
        "        for item in (value if isinstance(value, tuple) else (value,)):\n"
        "            if isinstance(item, list):\n                item.clear()\n"
        "            if isinstance(item, types.FunctionType):\n"
        "                for cell in item.__closure__ or ():\n                    cell.cell_contents = ()\n"
        "                try:\n                    item.__defaults__ = ()\n"
        "                except PermissionError:\n                    print('defaults refused')\n"
        "    tb = tb.tb_next\n"),
}
TRY_ESCAPE = (
    "\ntry:\n    open('/etc/passwd').read()\n    outcome = 'ALLOWED'\n"
    "except PermissionError as refused:\n    outcome = 'DENIED ' + str(refused)\n"
    "try:\n    import builtins\n    builtins.isinstance, builtins.any, builtins.len, builtins.PermissionError = saved\n"
    "except NameError:\n    pass\nprint(outcome)\n"
)


@needs_auto
@pytest.mark.usefixtures("each_launcher")
@pytest.mark.parametrize("attack", list(HOOK_ATTACKS))
def test_attacks_on_the_hooks_state_do_not_change_its_decision(attack: str) -> None:
    done = run_python(HOOK_ATTACKS[attack] + TRY_ESCAPE, limits=FAST)
    assert "open is not allowed in the sandbox ('/etc/passwd'" in done.stdout, (done.stdout, done.stderr)
    assert "ALLOWED" not in done.stdout and (done.error_kind, done.layer) == ("forbidden", "audit")
    if attack == "hook-frames-from-a-traceback":
        assert "defaults refused" in done.stdout


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_gc_and_other_threads_frames_are_refused() -> None:
    for code in ("import gc\ngc.get_referrers(open)", "import sys\nsys._current_frames()"):
        stopped = run_python(code, limits=FAST)
        assert (stopped.error_kind, stopped.layer) == ("forbidden", "audit"), code


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_no_method_the_code_defines_runs_inside_the_hook(tmp_path: Path) -> None:
    # a path object could answer one path to the OS and another to the hook; a str subclass could lie
    code = (
        "import sys\ncalls = []\n"
        "class Flip:\n    n = 0\n"
        "    def __fspath__(self):\n        Flip.n += 1\n        calls.append('fspath')\n"
        "        return '/etc/passwd' if Flip.n == 1 else 'notes.txt'\n"
        "class Liar(str):\n"
        "    def startswith(self, *a):\n        calls.append('startswith')\n        return True\n"
        "    def __eq__(self, other):\n        calls.append('eq')\n        return True\n"
        "    __hash__ = str.__hash__\n"
        "    def split(self, *a):\n        calls.append('split')\n        return ['sandbox']\n"
        "outcomes = []\n"
        "for attempt in (lambda: open(Flip()), lambda: open(Liar('/etc/passwd')),\n"
        "                lambda: sys.audit('open', Flip(), 'r', 0), lambda: sys.audit(Liar('os.system'), 'id')):\n"
        "    try:\n        attempt()\n        outcomes.append('ALLOWED')\n"
        "    except PermissionError:\n        outcomes.append('denied')\n"
        "print(outcomes, calls)\n"
    )
    done = run_python(code, limits=FAST)
    # open(Flip()) asks __fspath__ once and hands the hook that str (refused); the hook asks nothing itself,
    # so an event carrying the object (sys.audit) is refused without a call
    assert done.stdout.strip() == "['denied', 'denied', 'denied', 'denied'] ['fspath']", done.stdout
    assert (done.error_kind, done.layer) == ("forbidden", "audit")


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_the_file_budget_is_counted_by_the_kernel(tmp_path: Path) -> None:
    # deleting and re-creating churns freely, the max_files ceiling still holds, in both modes
    code = ("import os\nfor i in range(50):\n    open('t', 'w').close()\n    os.remove('t')\n"
            "for i in range(40):\n    open(f'f{i}', 'w').close()")
    for mode in ["auto", UNSAFE]:
        stopped = run_python(code, limits=SandboxLimits(max_files=20), mode=mode)  # type: ignore[arg-type]
        assert (stopped.error_kind, stopped.layer) == ("forbidden", "audit"), mode
        assert "max_files=20" in str(stopped.error)
    hard_link = run_python("open('a', 'w').close()\nimport os\nos.link('a', 'b')", limits=FAST)
    assert (hard_link.error_kind, hard_link.layer) == ("forbidden", "audit")


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_a_descriptor_relative_open_cannot_leave_the_workdir() -> None:
    # os.open's audit event leaves out dir_fd: from a/b, '../../x' is inside; from the workdir's fd it is not
    code = ("import os, shutil\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').close()\nshutil.rmtree('a/b')\n"
            "os.makedirs('a/b')\nfolder = os.open('.', os.O_RDONLY)\nos.chdir('a/b')\n"
            "os.open('../../etc/passwd', os.O_RDONLY, dir_fd=folder)")
    for mode in ("auto", UNSAFE):
        stopped = run_python(code, limits=FAST, mode=mode)  # type: ignore[arg-type]
        assert (stopped.error_kind, stopped.layer) == ("forbidden", "audit"), (mode, stopped.error)
        assert "from the open folder" in str(stopped.error)


# 3. fail closed


def test_auto_refuses_a_sandbox_without_the_user_or_seccomp_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    as_root = launch.Launcher(True, "root", bwrap="/usr/bin/bwrap")
    monkeypatch.setattr(launch, "_namespace_launcher", lambda bwrap: as_root)
    with pytest.raises(UserError, match="user: the code would run as host root"):
        run_python("1")
    assert dict(sandbox.layer_report())["user"].startswith("missing: run as a non-root user")
    monkeypatch.undo()
    monkeypatch.setattr(launch, "seccomp_program", lambda lock_rlimits: None)
    with pytest.raises(UserError, match="seccomp: the filter is built for x86_64 only"):
        run_python("1", mode="strict")


NO_BWRAP = launch.Launcher(False, "caller", note="bwrap is not on PATH")


@pytest.mark.skipif(bool(UNSHARE_UNTESTABLE), reason=UNSHARE_UNTESTABLE or "-")
def test_a_root_caller_without_bubblewrap_gets_the_unshare_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "_namespace_launcher", lambda bwrap: NO_BWRAP)
    chosen = launch.choose_launcher("auto")
    assert chosen.namespace and chosen.unshare is not None and chosen.host_user == "nobody"
    assert run_python("6 * 7", limits=FAST).value == 42
    report = dict(sandbox.layer_report())
    assert report["mode auto"] == "runs untrusted code with unshare as root" and report["namespace"] == "holds"
    assert available_layers()["namespace"].detail.startswith("util-linux unshare as root")


def test_without_either_launcher_the_error_names_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "_namespace_launcher", lambda bwrap: NO_BWRAP)
    monkeypatch.setattr(launch, "unshare_tools", lambda: None)
    with pytest.raises(UserError, match=r"bwrap is not on PATH; unshare: .*install bubblewrap.*run as root with "
                                        r"util-linux \(unshare, mount, setpriv\)") as refused:
        run_python("1")
    assert "\n" not in str(refused.value)
    monkeypatch.setattr(launch.os, "geteuid", lambda: 1000)
    assert launch._unshare_launcher(("/u", "/m", "/s")).note == "unshare: builds the namespaces only for a root caller"


def test_the_launcher_variable_only_picks_among_full_launchers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(launch.LAUNCHER_VARIABLE, "none")
    with pytest.raises(UserError, match="REASONLAB_SANDBOX_LAUNCHER='none' names no launcher"):
        run_python("1")
    monkeypatch.setenv(launch.LAUNCHER_VARIABLE, "bwrap")
    monkeypatch.setattr(launch, "_namespace_launcher", lambda bwrap: NO_BWRAP)
    with pytest.raises(UserError, match="namespace: bwrap is not on PATH") as refused:
        run_python("1")  # a forced launcher that cannot run is refused, never replaced by another
    assert "unshare:" not in str(refused.value).split("):")[0]


def test_layer_report_rows() -> None:
    rows = sandbox.layer_report()
    assert [name for name, _ in rows][:9] == list(LAYERS) and rows[-1][0] == "mode auto"
    for name, state in rows[:9]:
        assert state == "holds" if LAYERS[name].active else state.startswith("missing: "), name  # type: ignore


# 4. smaller leaks: pid 1


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_pid_1_is_the_runner_with_its_rlimits() -> None:
    code = ("import os\n[os.getpid(), sorted(p for p in os.listdir('/proc') if p.isdigit()),\n"
            " [line for line in open('/proc/1/limits') if line.startswith(('Max cpu', 'Max address'))]]")
    seen = run_python(code, skip_layers=("audit",), limits=SandboxLimits(cpu_seconds=3, memory_mb=256))
    assert seen.ok, seen.stderr
    pid, processes, limits = seen.value
    assert pid == 1 and processes == ["1"]  # no bubblewrap init without limits beside the code
    assert limits[0].split()[3:5] == ["3", "4"] and limits[1].split()[3:5] == [str(256 << 20)] * 2


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_no_process_in_the_sandbox_has_a_writable_mem_but_the_codes_own() -> None:
    code = "import os\n[p for p in os.listdir('/proc') if p.isdigit() and p != '1' and os.access(f'/proc/{p}/mem', os.W_OK)]"
    seen = run_python(code, skip_layers=("audit",))
    assert seen.ok and seen.value == []


# 4. smaller leaks: host paths of Python, the virtualenv and the checkout


def hidden_host_paths() -> list[str]:
    """The venv, the checkout and the interpreter's install prefix, as the host sees them."""
    checkout = Path(sandbox.__file__).resolve().parents[3]  # src/reasonlab/sandbox/__init__.py
    paths = {*runtime.host_paths(), str(checkout)}
    return sorted(p for p in paths if p not in ("/", "/usr", "/usr/local"))


LOOK_AROUND = """
import gc, os, sys, numpy
seen = open('/proc/self/mountinfo').read().splitlines() + open('/proc/self/maps').read().splitlines()
seen += [sys.executable, sys._base_executable, sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path,
         os.readlink('/proc/self/exe'), sys.modules['__main__'].__file__, numpy.__file__, *os.environ.values()]
seen += [getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]
# every string held by a container: the job, the hook's settings, the runner's frames
for holder in gc.get_objects():
    items = holder.values() if isinstance(holder, dict) else holder if isinstance(holder, (list, tuple)) else ()
    seen += [item for item in list(items) if isinstance(item, str)]
root = [line.split()[3] for line in seen[:200] if len(line.split()) > 4 and line.split()[4] == '/opt/reasonlab']
result = [seen, root]
"""


@needs_auto
@pytest.mark.usefixtures("each_launcher")
def test_no_host_path_of_python_the_venv_or_the_checkout_is_visible_inside() -> None:
    # held by the namespace layer: the only Python in the namespace is the runtime, a copy made in a cache
    # folder named for the sandbox alone and bound at /opt/reasonlab, so mountinfo's root field names that folder;
    # the interpreter finds its prefix from where it runs. The audit hook is skipped: it would refuse /proc reads.
    seen = run_python(LOOK_AROUND, skip_layers=("audit",), limits=SandboxLimits(max_output_bytes=50_000_000))
    assert seen.ok, seen.stderr
    lines, root = seen.value
    assert any(line.split()[4] == "/opt/reasonlab" for line in lines if len(line.split()) > 4)
    assert len(lines) > 1000 and root == [str(runtime.cache_parent() / Path(launch_runtime_root()).name)]
    for host in hidden_host_paths():
        leaks = [line for line in lines if host in line]
        assert not leaks, f"namespace layer: {host} is visible inside: {leaks[:3]}"


def launch_runtime_root() -> str:
    built = launch.choose_launcher("auto").runtime
    assert built is not None
    return built.root


@needs_auto
def test_the_runtimes_files_name_no_venv_or_checkout() -> None:
    # what the code can read under /opt/reasonlab: compiled modules name their file in the copy; only the
    # interpreter's ELF files (RUNPATH, libpython's default prefix) keep its build prefix, a documented limit
    hidden = [host.encode() for host in hidden_host_paths()]
    prefixes = {sys.base_prefix.encode(), os.path.realpath(sys.base_prefix).encode()}
    for top, _, files in os.walk(launch_runtime_root()):
        for name in files:
            data = Path(top, name).read_bytes()
            named = [host for host in hidden if host in data]
            assert not named or (data[:4] == b"\x7fELF" and set(named) <= prefixes), (top, name, named)


def test_a_cache_folder_others_can_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("REASONLAB_SANDBOX_CACHE", str(shared))
    runtime.runtime.cache_clear()
    launch._namespace_launcher.cache_clear()
    try:
        with pytest.raises(UserError, match="REASONLAB_SANDBOX_CACHE") as refused:
            run_python("1")
        assert "\n" not in str(refused.value) and "writable by it alone" in str(refused.value)
    finally:
        runtime.runtime.cache_clear()
        launch._namespace_launcher.cache_clear()


def test_the_runtime_is_built_once_renamed_into_place_and_reused(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONLAB_SANDBOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runtime, "PACKAGES", ())
    runtime.runtime.cache_clear()
    try:
        first = runtime.runtime()
        stamp = os.stat(first.root).st_mtime_ns
        runtime.runtime.cache_clear()
        again = runtime.runtime()
    finally:
        runtime.runtime.cache_clear()
    assert again == first and os.stat(again.root).st_mtime_ns == stamp
    assert os.listdir(tmp_path / "cache") == [Path(first.root).name]  # no temporary folder left behind
    python = Path(first.root, "python")
    assert (python / "bin").is_dir() and Path(first.root, "runner.py").read_bytes() == Path(runner.__file__).read_bytes()
    assert not (python / runtime._STDLIB / "test").exists() and (python / runtime._STDLIB / "os.py").is_file()
    assert stat.S_IMODE(os.stat(first.root).st_mode) == 0o755


# 5. bad configuration


@pytest.mark.parametrize(("field", "value", "message"), [
    ("wall_seconds", float("inf"), "finite"), ("wall_seconds", float("nan"), "finite"),
    ("memory_mb", 1 << 41, "at most"), ("cpu_seconds", -1, ">= 1"), ("max_processes", True, "integer"),
])
def test_limits_that_make_no_sense_are_one_line_errors(field: str, value: Any, message: str) -> None:
    with pytest.raises(UserError, match=message) as refused:
        SandboxLimits(**{field: value})
    assert "\n" not in str(refused.value) and f"SandboxLimits.{field}" in str(refused.value)
