"""The sandbox: escape attempts are contained, each by a named layer, and the caller's files stay intact.

Each escape test runs once with every layer on (the audit hook stops it first) and once more per OS layer
with the layers above it skipped, so it shows that the kernel-side layer holds on its own. Every test runs
with the launcher mode "auto" picks here and again with the unshare launcher forced (where the caller is
root, util-linux is there and "auto" picked bubblewrap), asserting the same layers.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import reasonlab.sandbox as sandbox
from reasonlab.errors import UserError
from reasonlab.sandbox import SandboxLimits, available_layers, run_python
from reasonlab.sandbox.launch import LAUNCHER_VARIABLE, choose_launcher, missing_layers

LAYERS = available_layers()
needs_bwrap = pytest.mark.skipif(not LAYERS["namespace"].active,
                                 reason=f"bubblewrap sandbox unavailable: {LAYERS['namespace'].detail}")
needs_seccomp = pytest.mark.skipif(not LAYERS["seccomp"].active, reason=LAYERS["seccomp"].detail)
needs_nproc = pytest.mark.skipif(not (LAYERS["namespace"].active and LAYERS["user"].active),
                                 reason=f"RLIMIT_NPROC needs a host-unprivileged uid: {LAYERS['user'].detail}")

SECRET = "reasonlab-test-secret-7f3a"
OUTSIDE = "TOPSECRET-outside-the-workdir"


def _host_file() -> str:
    """A host file holding OUTSIDE and lying outside /tmp (inside the namespace /tmp is the sandbox's own tmpfs):
    this test file, or a file under the home cache when the checkout itself lives under /tmp."""
    here = Path(__file__).resolve()
    if not here.is_relative_to("/tmp"):
        return str(here)
    fallback = Path.home() / ".cache" / "reasonlab-tests" / "outside.txt"
    fallback.parent.mkdir(parents=True, exist_ok=True)
    fallback.write_text(f"{OUTSIDE}\n")
    return str(fallback)


HOST_FILE = _host_file()
UNSAFE = "unsafe-hook-only"
# (layers to skip, layer expected to stop the attempt)
BY_AUDIT = pytest.param((), "audit", id="audit")
BY_SECCOMP = pytest.param(("audit",), "seccomp", id="seccomp", marks=needs_seccomp)
BY_NAMESPACE = pytest.param(("audit", "seccomp"), "namespace", id="namespace", marks=needs_bwrap)
FILE_LAYERS = [BY_AUDIT, BY_NAMESPACE]


@pytest.fixture
def memory(tmp_path: Path) -> Path:
    """A memory folder, with a secret file beside it that the code must never read."""
    folder = tmp_path / "memory"
    (folder / "entities").mkdir(parents=True)
    (folder / "user.md").write_text("# User\n- name: Ada\n")
    (folder / "entities" / "lab.md").write_text("# Lab\n")
    (tmp_path / "secret.txt").write_text(OUTSIDE)
    return folder


# mode "auto" fails closed: where it refuses, every test that runs code in it is skipped with the reason
AUTO_REFUSED = missing_layers(choose_launcher("auto", strict_raises=False))
RUNS_WITHOUT_AUTO = {"test_public_api_is_pinned", "test_unsafe_mode_keeps_rlimits_audit_and_env",
                     "test_unsafe_mode_copies_the_workdir_back_too", "test_without_bwrap_auto_and_strict_fail_closed",
                     "test_user_errors_name_the_input"}


@pytest.fixture(autouse=True)
def auto_mode_or_skip(request: pytest.FixtureRequest) -> None:
    if AUTO_REFUSED and request.function.__name__ not in RUNS_WITHOUT_AUTO:
        pytest.skip(f"sandbox mode auto refuses on this machine: {'; '.join(AUTO_REFUSED)}")


def unshare_untestable() -> str:
    """Why the forced unshare launcher adds nothing here (it cannot run, or "auto" uses it anyway); "" if it does."""
    missing = missing_layers(choose_launcher("auto", strict_raises=False, prefer="unshare"))
    if missing:
        return f"the unshare launcher lacks layers here: {'; '.join(missing)}"
    chosen = choose_launcher("auto", strict_raises=False)
    return "mode auto uses the unshare launcher here already" if chosen.unshare is not None else ""


UNSHARE_UNTESTABLE = unshare_untestable()


@pytest.fixture(autouse=True, params=["auto", "unshare"])
def launcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The launcher "auto" picks, then the unshare launcher forced (REASONLAB_SANDBOX_LAUNCHER)."""
    if request.param == "unshare":
        if request.function.__name__ in RUNS_WITHOUT_AUTO:
            pytest.skip("runs no code in a namespace")
        if UNSHARE_UNTESTABLE:
            pytest.skip(UNSHARE_UNTESTABLE)
        monkeypatch.setenv(LAUNCHER_VARIABLE, "unshare")
    return str(request.param)


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONLAB_TEST_SECRET", SECRET)


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`: file bytes, or the target of a symlink."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            found[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


def leaked(result: sandbox.SandboxResult, *needles: str) -> bool:
    text = f"{result.value!r} {result.stdout} {result.stderr} {result.error}"
    return any(needle in text for needle in needles)


def test_public_api_is_pinned() -> None:
    assert sorted(sandbox.__all__) == sorted([
        "ErrorKind", "Layer", "LayerStatus", "SandboxLimits", "SandboxMode", "SandboxResult",
        "available_layers", "layer_report", "run_python",
    ])


# normal code


def test_result_variable_or_last_expression_comes_back_as_json() -> None:
    assert run_python("result = {'a': [1, 2.5, None, True]}").value == {"a": [1, 2.5, None, True]}
    last = run_python("x = 3\nx * 2")
    assert last.ok and last.value == 6 and last.error is None and last.layer is None
    assert run_python("result = 'kept'\n1 + 1").value == "kept"
    printed = run_python("print('hello'); print('oops', file=__import__('sys').stderr)")
    assert printed.ok and printed.value is None and printed.stdout == "hello\n" and printed.stderr == "oops\n"


def test_inputs_arrive_as_json_and_the_preamble_defines_tools() -> None:
    grid = [[1, 2, 3], [4, 5, 6]]
    flipped = run_python("result = transform(inputs['grid'])", inputs={"grid": grid},
                         preamble="def transform(grid):\n    return [row[::-1] for row in grid]\n")
    assert flipped.ok and flipped.value == [[3, 2, 1], [6, 5, 4]]


def test_exceptions_and_unserializable_results_are_values() -> None:
    crashed = run_python("def f():\n    return 1 / 0\nf()")
    assert not crashed.ok and crashed.error_kind == "exception" and crashed.layer is None
    assert crashed.error == "ZeroDivisionError: division by zero"
    assert 'File "<sandbox>", line 2, in f' in crashed.stderr
    unserializable = run_python("result = {1, 2}")
    assert unserializable.error_kind == "result" and "not JSON-serializable" in str(unserializable.error)
    assert run_python("result = float('nan')").error_kind == "result"
    assert run_python("def broken(:").error_kind == "exception"


def test_numpy_runs_under_the_memory_limit() -> None:
    pytest.importorskip("numpy")
    transposed = run_python("import numpy as np\nnp.array(inputs['grid']).T.tolist()", inputs={"grid": [[1, 2], [3, 4]]})
    assert transposed.ok, transposed.stderr
    assert transposed.value == [[1, 3], [2, 4]]


def test_workdir_writes_come_back_through_the_checked_copy(memory: Path) -> None:
    code = (
        "import os, shutil\n"
        "profile = open('user.md').read()\n"
        "open('user.md', 'a').write('- likes: tea\\n')\n"
        "os.makedirs('entities/new', exist_ok=True)\n"
        "open('entities/new/cafe.md', 'w').write('# Cafe\\n')\n"
        "os.remove('entities/lab.md')\n"
        "os.symlink('/etc/passwd', 'passwd-link')\n"  # a link the code makes never reaches the host
        "profile"
    )
    done = run_python(code, workdir=memory, skip_layers=("audit",))
    assert done.ok, done.stderr
    assert done.value == "# User\n- name: Ada\n"
    assert done.changed_files == ("entities/lab.md", "entities/new/cafe.md", "user.md")
    assert tree(memory) == {"entities/new/cafe.md": b"# Cafe\n", "user.md": b"# User\n- name: Ada\n- likes: tea\n"}


def test_an_ordinary_exception_still_returns_the_writes(memory: Path) -> None:
    done = run_python("open('notes.md', 'w').write('draft')\nraise ValueError('model bug')", workdir=memory)
    assert done.error_kind == "exception" and done.changed_files == ("notes.md",)
    assert (memory / "notes.md").read_text() == "draft"


def test_output_past_the_cap_is_cut_off() -> None:
    noisy = run_python("print('x' * 200_000)", limits=SandboxLimits(max_output_bytes=10_000))
    assert (noisy.ok, noisy.error_kind, noisy.layer) == (False, "output", "supervisor")
    assert len(noisy.stdout) <= 10_000 + 65_536
    big = run_python("result = 'y' * 20_000", limits=SandboxLimits(max_output_bytes=10_000))
    assert (big.error_kind, big.layer) == ("output", "supervisor")


@needs_bwrap
def test_code_runs_as_nobody_in_its_own_namespaces() -> None:
    seen = run_python("import os, socket\n[os.getuid(), os.getpid(), socket.gethostname(), os.getcwd()]",
                      skip_layers=("audit",))
    assert seen.value == [65534, 1, "sandbox", "/sandbox"]  # the runner is pid 1 (--as-pid-1, or unshare's exec chain)


def test_the_code_holds_no_capability_and_no_new_privileges() -> None:
    # the user layer, seen from inside: whichever launcher built the namespaces, nothing is left to gain
    seen = run_python("[line.split() for line in open('/proc/self/status') if line.startswith(('Cap', 'NoNew'))]",
                      skip_layers=("audit",))
    assert seen.ok, seen.stderr
    fields = dict(seen.value)
    assert fields["CapInh:"] == fields["CapPrm:"] == fields["CapEff:"] == fields["CapAmb:"] == "0" * 16
    assert fields["NoNewPrivs:"] == "1"


# escape attempts


FORGE = """
import base64, hashlib, json, os, sys
data = b"pwned"
lines = [{"ok": True, "value": 1, "kind": None, "layer": None, "error": None, "files": True},
         {"type": "file", "path": inputs["path"], "data": base64.b64encode(data).decode(),
          "sha256": inputs.get("sha256") or hashlib.sha256(data).hexdigest()}]
os.write(int(sys.argv[1]), ("\\n".join(json.dumps(line) for line in lines) + "\\n").encode())
os._exit(0)
"""


@pytest.mark.parametrize("forged", [{"path": "../escaped.txt"}, {"path": "ABSOLUTE"},
                                    {"path": "outside/pwned.txt"}, {"path": "user.md", "sha256": "0" * 64}],
                         ids=["dotdot", "absolute", "through-symlink", "bad-checksum"])
def test_a_forged_file_list_is_refused_by_the_supervisor(memory: Path, forged: dict[str, str]) -> None:
    # the code can write to the result pipe itself, so every returned path is checked on the host side
    (memory / "outside").symlink_to(memory.parent, target_is_directory=True)
    absolute = memory.parent / "abs.txt"  # a writable host folder next to the workdir: the forgery's target
    forged = {**forged, "path": str(absolute)} if forged["path"] == "ABSOLUTE" else forged
    before = tree(memory.parent)
    stopped = run_python(FORGE, workdir=memory, inputs=forged)
    assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, "filesize", "supervisor")
    assert "nothing was copied back" in str(stopped.error)
    assert tree(memory.parent) == before and not absolute.exists()


@pytest.mark.parametrize(("skip", "layer"), FILE_LAYERS)
def test_path_traversal_and_absolute_paths_are_contained(memory: Path, skip: tuple[str, ...], layer: str) -> None:
    before = tree(memory.parent)
    for code in ("open('../secret.txt').read()", f"open({HOST_FILE!r}).read()",
                 "open('../../../../../../etc/hostname').read()", "open('../escape.txt', 'w').write('out')"):
        stopped = run_python(code, workdir=memory, skip_layers=skip)
        assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, "forbidden", layer), code
        assert not leaked(stopped, OUTSIDE)
    assert tree(memory.parent) == before


@pytest.mark.parametrize(("skip", "layer"), FILE_LAYERS)
def test_a_symlink_in_the_workdir_pointing_out_is_not_followed(memory: Path, skip: tuple[str, ...],
                                                                layer: str) -> None:
    (memory / "link.md").symlink_to(HOST_FILE)
    (memory / "up.md").symlink_to("../secret.txt")
    before = tree(memory.parent)
    for name in ("link.md", "up.md"):
        stopped = run_python(f"open({name!r}).read()", workdir=memory, skip_layers=skip)
        assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
        assert not leaked(stopped, OUTSIDE)
    assert tree(memory.parent) == before


@pytest.mark.parametrize(("skip", "layer"), FILE_LAYERS)
def test_a_symlink_made_by_the_code_is_not_followed(memory: Path, skip: tuple[str, ...], layer: str) -> None:
    before = tree(memory.parent)
    code = f"import os\nos.symlink({HOST_FILE!r}, 'out')\nopen('out').read()"
    stopped = run_python(code, workdir=memory, skip_layers=skip)
    assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
    assert not leaked(stopped, OUTSIDE) and tree(memory.parent) == before


@pytest.mark.parametrize(("skip", "layer"), FILE_LAYERS)
def test_etc_passwd_is_not_the_host_file(skip: tuple[str, ...], layer: str) -> None:
    host_first_line = Path("/etc/passwd").read_text().splitlines()[0]
    stopped = run_python("open('/etc/passwd').read()", skip_layers=skip)
    assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
    assert not leaked(stopped, host_first_line)


def test_environment_secrets_do_not_reach_the_code() -> None:
    # nothing fails here: the env layer rebuilt the environment, so there is nothing to find
    assert os.environ["REASONLAB_TEST_SECRET"] == SECRET
    seen = run_python("import os\nresult = dict(os.environ)", skip_layers=("audit",))
    assert seen.ok and "REASONLAB_TEST_SECRET" not in seen.value and not leaked(seen, SECRET)
    assert seen.value["OPENBLAS_NUM_THREADS"] == "1" and LAYERS["env"].active


@pytest.mark.parametrize(("skip", "layer"), FILE_LAYERS)
def test_the_parents_environ_in_proc_is_out_of_reach(skip: tuple[str, ...], layer: str) -> None:
    # pid 1 inside is the sandbox's own runner: a parent reparented to the host's init (a detached pytest) is
    # not a host process the code could name there, so only the host pids that differ from it are targets
    for target in sorted({os.getpid(), os.getppid()} - {1}):
        stopped = run_python(f"open('/proc/{target}/environ', 'rb').read().decode()", skip_layers=skip)
        assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
        assert not leaked(stopped, SECRET)


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, pytest.param(("audit",), "env", id="env", marks=needs_bwrap)])
def test_pid_1_environ_holds_no_secret(skip: tuple[str, ...], layer: str) -> None:
    seen = run_python("open('/proc/1/environ', 'rb').read().decode()", skip_layers=skip)
    if layer == "audit":
        assert (seen.error_kind, seen.layer) == ("forbidden", "audit")
    else:
        # pid 1 is the runner itself (bwrap --as-pid-1): its environment is the scrubbed one
        assert seen.ok and "OPENBLAS_NUM_THREADS=1" in seen.value
    assert not leaked(seen, SECRET)


@pytest.fixture
def loopback_server() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, BY_SECCOMP, BY_NAMESPACE])
def test_no_network_even_to_a_loopback_server(loopback_server: socket.socket, skip: tuple[str, ...],
                                              layer: str) -> None:
    port = loopback_server.getsockname()[1]
    code = "import socket\nsocket.create_connection(('127.0.0.1', inputs['port']), timeout=2).sendall(b'leak')"
    stopped = run_python(code, inputs={"port": port}, skip_layers=skip)
    assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
    with pytest.raises(BlockingIOError):
        loopback_server.accept()


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, BY_NAMESPACE])
def test_signals_do_not_reach_host_processes(skip: tuple[str, ...], layer: str) -> None:
    host = subprocess.Popen(["sleep", "30"])
    try:
        stopped = run_python("import os, signal\nos.kill(inputs['pid'], signal.SIGKILL)", inputs={"pid": host.pid},
                             skip_layers=skip)
        assert (stopped.error_kind, stopped.layer) == ("forbidden", layer), stopped.error
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


UNIX_CONNECT = """
import socket
for address in inputs['addresses']:
    client = socket.socket(socket.AF_UNIX)
    try:
        client.connect(address)
    except OSError as error:
        raise OSError(error.errno, error.strerror, address.replace('\\0', '@')) from None
"""


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, BY_NAMESPACE])
def test_no_unix_socket_of_the_host_is_reachable(skip: tuple[str, ...], layer: str) -> None:
    # a socket file (outside /tmp, which is the sandbox's own tmpfs inside) and an abstract name (bound to the
    # host's network namespace)
    path = Path.home() / ".cache" / "reasonlab-tests" / f"host-{os.getpid()}.sock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    servers, addresses = [], [str(path), f"\0reasonlab-test-{os.getpid()}"]
    for address in addresses:
        server = socket.socket(socket.AF_UNIX)
        server.bind(address)
        server.listen()
        server.setblocking(False)
        servers.append(server)
    try:
        for address in addresses:
            stopped = run_python(UNIX_CONNECT, inputs={"addresses": [address]}, skip_layers=skip)
            assert (stopped.error_kind, stopped.layer) == ("forbidden", layer), (address, stopped.error)
        for server in servers:
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        for server in servers:
            server.close()
        path.unlink(missing_ok=True)


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, BY_SECCOMP])
def test_subprocesses_are_blocked(skip: tuple[str, ...], layer: str) -> None:
    for code in ("import subprocess\nsubprocess.run(['cat', '/etc/passwd'], capture_output=True).stdout",
                 "import os, sys\nos.posix_spawn(sys.executable, [sys.executable, '-c', 'pass'], {})"):
        stopped = run_python(code, skip_layers=skip)
        assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)
    shell = run_python("import os\nos.system('id')", skip_layers=skip)
    if layer == "audit":
        assert (shell.error_kind, shell.layer) == ("forbidden", "audit")
    else:
        assert shell.value == 127 << 8  # system() reports that its shell could not even be started


FORK_BOMB = "import os\nwhile True:\n    os.fork()"


@pytest.mark.parametrize(("skip", "layer"), [BY_AUDIT, BY_SECCOMP])
def test_a_fork_bomb_cannot_fork(skip: tuple[str, ...], layer: str) -> None:
    stopped = run_python(FORK_BOMB, skip_layers=skip)
    assert (stopped.error_kind, stopped.layer) == ("forbidden", layer)


@needs_nproc
def test_a_fork_bomb_without_seccomp_stops_at_rlimit_nproc() -> None:
    stopped = run_python(FORK_BOMB, skip_layers=("audit", "seccomp"), limits=SandboxLimits(max_processes=4))
    assert (stopped.error_kind, stopped.layer) == ("processes", "rlimit")


def test_an_infinite_loop_stops_at_the_cpu_limit(memory: Path) -> None:
    before = tree(memory)
    stopped = run_python("open('user.md', 'w').write('gone')\nwhile True:\n    pass", workdir=memory,
                         limits=SandboxLimits(cpu_seconds=1, wall_seconds=20))
    assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, "cpu", "rlimit")
    assert tree(memory) == before and stopped.changed_files == ()


def test_sleeping_forever_stops_at_the_wall_clock() -> None:
    stopped = run_python("import time\ntime.sleep(60)", limits=SandboxLimits(wall_seconds=1))
    assert (stopped.error_kind, stopped.layer) == ("timeout", "timeout")
    assert stopped.seconds < 5


def test_a_10_gb_allocation_fails_at_rlimit_as() -> None:
    stopped = run_python("block = bytearray(10 * 2**30)")
    assert (stopped.error_kind, stopped.layer) == ("memory", "rlimit")


@needs_bwrap
def test_many_small_files_fill_the_tmpfs_and_leave_the_workdir_intact(memory: Path) -> None:
    before = tree(memory)
    code = "for i in range(100_000):\n    with open(f'f{i}.txt', 'w') as f:\n        f.write('x')"
    stopped = run_python(code, workdir=memory, limits=SandboxLimits(tmpfs_mb=1), skip_layers=("audit",))
    assert (stopped.error_kind, stopped.layer) == ("filesize", "tmpfs")
    assert tree(memory) == before


@pytest.mark.parametrize(("skip", "kind", "layer"), [((), "forbidden", "audit"),
                                                     (("audit",), "filesize", "supervisor")])
def test_more_files_than_max_files_are_not_copied_back(memory: Path, skip: tuple[str, ...], kind: str,
                                                       layer: str) -> None:
    # empty files cost no tmpfs space: the audit hook counts them, the copy back refuses too many
    before = tree(memory)
    stopped = run_python("for i in range(40):\n    open(f'f{i}.txt', 'w').close()", workdir=memory,
                         limits=SandboxLimits(max_files=20), skip_layers=skip)
    assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, kind, layer)
    assert tree(memory) == before
    churn = run_python("import os\nfor i in range(100):\n    open('t.txt', 'w').close()\n    os.remove('t.txt')",
                       limits=SandboxLimits(max_files=20), skip_layers=skip)
    assert churn.ok, churn.error


GIGABYTE_WRITE = "with open('user.md', 'wb') as f:\n    for _ in range(1024):\n        f.write(b'x' * 2**20)"


@needs_bwrap
def test_a_1_gb_write_fills_the_tmpfs_and_leaves_the_original(memory: Path) -> None:
    before = tree(memory)
    stopped = run_python(GIGABYTE_WRITE, workdir=memory, limits=SandboxLimits(tmpfs_mb=16, file_mb=64))
    assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, "filesize", "tmpfs")
    assert tree(memory) == before


def test_a_1_gb_write_stops_at_rlimit_fsize_and_leaves_the_original(memory: Path) -> None:
    before = tree(memory)
    stopped = run_python(GIGABYTE_WRITE, workdir=memory, limits=SandboxLimits(file_mb=4))
    assert (stopped.ok, stopped.error_kind, stopped.layer) == (False, "filesize", "rlimit")
    assert tree(memory) == before


# modes, layers and user errors


def test_unsafe_mode_keeps_rlimits_audit_and_env() -> None:
    layers = available_layers(UNSAFE)
    assert not layers["namespace"].active and not layers["tmpfs"].active
    assert layers["rlimit"].active and layers["audit"].active and layers["env"].active
    assert run_python("6 * 7", mode=UNSAFE).value == 42
    seen = run_python("import os\ndict(os.environ)", mode=UNSAFE)
    assert seen.ok and "REASONLAB_TEST_SECRET" not in seen.value
    stopped = run_python("import socket\nsocket.socket()", mode=UNSAFE)
    assert (stopped.error_kind, stopped.layer) == ("forbidden", "audit")
    assert run_python("bytearray(10 * 2**30)", mode=UNSAFE).error_kind == "memory"


def test_unsafe_mode_copies_the_workdir_back_too(memory: Path) -> None:
    done = run_python("open('user.md', 'a').write('- unsafe\\n')", workdir=memory, mode=UNSAFE)
    assert done.ok and done.changed_files == ("user.md",)
    assert (memory / "user.md").read_text().endswith("- unsafe\n")


def test_without_bwrap_auto_and_strict_fail_closed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the class: bubblewrap missing must never mean "run as the calling user behind the hook alone"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not available_layers()["namespace"].active
    assert "bwrap is not on PATH" in available_layers()["namespace"].detail
    for mode in ("auto", "strict"):
        with pytest.raises(UserError, match=r"cannot isolate untrusted code.*install bubblewrap") as refused:
            run_python("1", mode=mode)  # type: ignore[arg-type]
        assert "\n" not in str(refused.value) and UNSAFE in str(refused.value)
    with pytest.raises(UserError, match="cannot isolate"):
        run_python("1")
    report = dict(sandbox.layer_report())
    assert report["namespace"].startswith("missing: install bubblewrap") and report["seccomp"] == "holds"
    assert report["mode auto"].startswith("refuses")
    assert run_python("1 + 1", mode=UNSAFE).value == 2  # only the mode named unsafe runs without namespaces


def test_user_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"SandboxLimits\.cpu_seconds=0 must be an integer >= 1"):
        SandboxLimits(cpu_seconds=0)
    with pytest.raises(UserError, match=r"SandboxLimits\.memory_mb=1.5"):
        SandboxLimits(memory_mb=1.5)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="not a directory"):
        run_python("1", workdir=tmp_path / "missing")
    with pytest.raises(UserError, match="not JSON-serializable"):
        run_python("1", inputs={"x": object()})
    with pytest.raises(UserError, match="only audit, seccomp can be skipped"):
        run_python("1", skip_layers=("namespace",))
    with pytest.raises(UserError, match="unknown sandbox mode"):
        run_python("1", mode="loose")  # type: ignore[arg-type]
    with pytest.raises(UserError, match=f"now called '{UNSAFE}'"):
        run_python("1", mode="fallback")  # type: ignore[arg-type]
