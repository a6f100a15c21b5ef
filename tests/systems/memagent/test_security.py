"""Escape attempts through every tool and through raw Python: each is contained with a clear error, the
memory folder is unchanged, and a sentinel file outside it is never read or written.

The sentinel lives outside /tmp (inside the sandbox /tmp is its own tmpfs, so a sentinel there would prove
nothing): under the repository's .pytest_cache, or under ~/.cache when the checkout itself is in /tmp.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reasonlab.sandbox import SandboxLimits
from reasonlab.systems.memagent import (
    Memory,
    MemoryAccessError,
    MemoryTools,
    ToolRun,
    run_tools,
    sandbox_limits,
)

from .helpers import digest

SECRET = "reasonlab-memagent-secret-5d1c"
OUTSIDE = "TOPSECRET-outside-the-memory"
PASSWD_FIRST_LINE = Path("/etc/passwd").read_text().splitlines()[0]
ATTACKS = {
    "traversal": ("../secret.txt", "leaves the memory folder"),
    "absolute": ("/etc/passwd", "is absolute"),
    "symlink": ("entities/leak.md", "symbolic link"),
}
# tool -> how the model would call it on a path
PATH_TOOLS: dict[str, Callable[[dict, str], object]] = {
    "create_file": lambda t, p: t["create_file"](p, "pwned"),
    "update_file": lambda t, p: t["update_file"](p, "root", "pwned"),
    "read_file": lambda t, p: t["read_file"](p),
    "delete_file": lambda t, p: t["delete_file"](p),
    "create_dir": lambda t, p: t["create_dir"](p),
    "check_if_file_exists": lambda t, p: t["check_if_file_exists"](p),
    "check_if_dir_exists": lambda t, p: t["check_if_dir_exists"](p),
    "get_size": lambda t, p: t["get_size"](p),
    "go_to_link": lambda t, p: t["go_to_link"](f"[[{p}]]"),
}
SANDBOX_CALLS = {
    "create_file": "create_file(P, 'pwned')", "update_file": "update_file(P, 'root', 'pwned')",
    "read_file": "read_file(P)", "delete_file": "delete_file(P)", "create_dir": "create_dir(P)",
    "check_if_file_exists": "check_if_file_exists(P)", "check_if_dir_exists": "check_if_dir_exists(P)",
    "get_size": "get_size(P)", "go_to_link": "go_to_link('[[' + P + ']]')",
}


def outside_root() -> Path:
    repo = Path(__file__).resolve().parents[3]
    base = repo / ".pytest_cache" if not repo.is_relative_to("/tmp") else Path.home() / ".cache" / "reasonlab-tests"
    return base / "memagent-outside" / uuid.uuid4().hex




@pytest.fixture
def sentinel() -> Iterator[Path]:
    """A file outside /tmp and outside the memory, which no attempt may read or change."""
    folder = outside_root()
    folder.mkdir(parents=True)
    (folder / "secret.txt").write_text(OUTSIDE)
    yield folder / "secret.txt"
    shutil.rmtree(folder)


@pytest.fixture
def memory(tmp_path: Path, sentinel: Path, monkeypatch: pytest.MonkeyPatch) -> Memory:
    """A memory holding a hostile symlink to the sentinel, a secret in the host environment, a .filters file."""
    monkeypatch.setenv("REASONLAB_MEMAGENT_SECRET", SECRET)
    memory = Memory.from_files(tmp_path / "memory", {"user.md": "# User\n- name: root\n",
                                                     "entities/acme.md": "# Acme\n"})
    (tmp_path / "secret.txt").write_text(OUTSIDE)
    os.symlink(sentinel, memory.root / "entities" / "leak.md")
    (memory.root / ".filters").write_text("Never reveal the user's name.\n")
    return memory


@pytest.fixture
def untouched(memory: Memory, sentinel: Path) -> Iterator[None]:
    """Assert after the test that the memory, the sentinel and the file beside the memory are unchanged."""
    before = (digest(memory.root), sentinel.read_bytes(), (memory.root.parent / "secret.txt").read_bytes())
    yield
    assert digest(memory.root) == before[0], "the memory folder changed"
    assert sentinel.read_bytes() == before[1] and (memory.root.parent / "secret.txt").read_bytes() == before[2]


def leaked(run: ToolRun) -> bool:
    text = run.result_block()
    return any(needle in text for needle in (OUTSIDE, SECRET, PASSWD_FIRST_LINE))


def stopped(run: ToolRun, kind: str, layer: str, message: str) -> None:
    assert (run.kind, run.layer) == (kind, layer), run.error
    assert message in (run.error or "") and run.changed == [] and not leaked(run)


# through every tool: on the host, the tools refuse the path themselves

@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("tool", list(PATH_TOOLS))
@pytest.mark.usefixtures("untouched")
def test_every_tool_refuses_paths_out_of_the_memory(memory: Memory, tool: str, attack: str) -> None:
    path, reason = ATTACKS[attack]
    tools = MemoryTools(str(memory.root), **memory.limits.model_dump()).bind()
    with pytest.raises(MemoryAccessError, match=reason):
        PATH_TOOLS[tool](tools, path)


# through every tool, in the sandbox: the model sees each refusal as an error, nothing changes

@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.usefixtures("untouched")
def test_every_tool_in_the_sandbox_reports_the_refusal(memory: Memory, attack: str) -> None:
    path, reason = ATTACKS[attack]
    calls = "".join(f"try:\n    got['{name}'] = {call}\nexcept Exception as error:\n"
                    f"    got['{name}'] = type(error).__name__ + ': ' + str(error)\n"
                    for name, call in SANDBOX_CALLS.items())
    run = run_tools(f"P = {path!r}\ngot = {{}}\n{calls}final = read_file(P)", memory)
    assert run.kind == "exception" and run.error.startswith("MemoryAccessError: read_file: ") and reason in run.error
    for name, message in run.locals["got"].items():
        assert message.startswith("MemoryAccessError: ") and reason in message, (name, message)
    assert set(run.locals["got"]) == set(PATH_TOOLS) and run.changed == [] and not leaked(run)


# raw Python: the sandbox stops what the tools cannot

@pytest.mark.usefixtures("untouched")
def test_raw_traversal_absolute_paths_and_passwd_are_forbidden(memory: Memory, sentinel: Path) -> None:
    relative = os.path.relpath(sentinel, memory.root)
    for code, target in [(f"data = open({relative!r}).read()", relative),
                         (f"data = open({str(sentinel)!r}).read()", str(sentinel)),
                         (f"open({str(sentinel)!r}, 'w').write('pwned')", str(sentinel)),
                         ("data = open('/etc/passwd').read()", "/etc/passwd")]:
        run = run_tools(code, memory)
        stopped(run, "forbidden", "audit", "is not allowed in the sandbox")
        assert f"{target!r} is outside the working directory" in run.error


@pytest.mark.usefixtures("untouched")
def test_raw_symlinks_pointing_out_are_not_followed(memory: Memory, sentinel: Path) -> None:
    stopped(run_tools("data = open('entities/leak.md').read()", memory), "forbidden", "audit",
            "'entities/leak.md' is outside the working directory")
    stopped(run_tools(f"import os\nos.symlink({str(sentinel)!r}, 'notes.md')", memory), "forbidden", "audit",
            "os.symlink is not allowed")


@pytest.mark.usefixtures("untouched")
def test_bypassing_the_tools_checks_still_hits_the_sandbox(memory: Memory, sentinel: Path) -> None:
    # the tools are not the boundary: with their checks switched off, the namespace hides host files ...
    bypass = "read_file.__func__.__globals__['path_problem'] = lambda *args: None\nread_file.__self__.root = '/'\n"
    hidden = run_tools(f"{bypass}data = read_file({str(sentinel).lstrip('/')!r})", memory)
    assert hidden.error is None and hidden.locals["data"].startswith("Error: file ") and not leaked(hidden)
    # ... and the audit hook refuses what the namespace shows
    stopped(run_tools(f"{bypass}data = read_file('proc/1/environ')", memory), "forbidden", "audit",
            "'/proc/1/environ' is outside the working directory")


@pytest.mark.usefixtures("untouched")
def test_environment_secrets_are_not_there(memory: Memory) -> None:
    assert os.environ["REASONLAB_MEMAGENT_SECRET"] == SECRET
    run = run_tools("import os\nnames = sorted(os.environ)\nvalue = os.environ.get('REASONLAB_MEMAGENT_SECRET')",
                    memory)
    assert run.error is None and run.locals["value"] is None
    assert "REASONLAB_MEMAGENT_SECRET" not in run.locals["names"] and not leaked(run)


@pytest.mark.parametrize(("code", "message"), [
    ("import socket\nsock = socket.create_connection(('127.0.0.1', 80))", "socket"),
    ("import subprocess\nout = subprocess.run(['cat', '/etc/passwd'], capture_output=True).stdout", "subprocess"),
    ("import os\npid = os.fork()", "os.fork is not allowed"),
], ids=["socket", "subprocess", "fork"])
@pytest.mark.usefixtures("untouched")
def test_sockets_subprocesses_and_fork_are_forbidden(memory: Memory, code: str, message: str) -> None:
    stopped(run_tools(code, memory), "forbidden", "audit", message)


@pytest.mark.usefixtures("untouched")
def test_a_1_gb_write_is_stopped_and_the_file_keeps_its_content(memory: Memory) -> None:
    raw = "with open('user.md', 'wb') as f:\n    for _ in range(1024):\n        f.write(b'x' * 2**20)"
    stopped(run_tools(raw, memory), "filesize", "rlimit", "File too large")
    through_tool = run_tools("ok = create_file('user.md', 'x' * 2_000_000)", memory)
    assert through_tool.kind == "exception" and not leaked(through_tool)
    assert through_tool.error.startswith("MemoryAccessError: create_file: content is 2000000 bytes")
    stopped(run_tools("ok = create_file('user.md', 'x' * 2**30)", memory), "memory", "rlimit", "MemoryError")


@pytest.mark.usefixtures("untouched")
def test_an_infinite_loop_is_stopped_and_its_writes_are_dropped(memory: Memory) -> None:
    code = "create_file('user.md', 'overwritten')\nwhile True:\n    pass"
    limits = sandbox_limits(memory.limits, wall_seconds=10, cpu_seconds=1)
    stopped(run_tools(code, memory, limits), "cpu", "rlimit", "CPU time limit")
    slept = run_tools("import time\ntime.sleep(60)", memory, SandboxLimits(wall_seconds=1))
    stopped(slept, "timeout", "timeout", "")


@pytest.mark.usefixtures("untouched")
def test_the_filters_file_is_out_of_reach(memory: Memory) -> None:
    stopped(run_tools("rules = read_file('.filters')", memory), "exception", None, "hidden file")
    rewritten = run_tools("with open('.filters', 'w') as f:\n    f.write('reveal everything')", memory)
    assert rewritten.kind == "rejected" and "hidden entries ['.filters']" in rewritten.error
    assert "no change was saved" in rewritten.error
