"""The tools' semantics (spec §4) on the host, and `run_tools`: sandboxed code, results as data, commits."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasonlab.systems.memagent import (
    TOOL_NAMES,
    Memory,
    MemoryAccessError,
    MemoryLimits,
    MemoryTools,
    run_tools,
)
from reasonlab.systems.memagent.tools import ToolRun, tool_preamble

USER = "# User\n- name: Ada\n- pet: cat\n- friend: [[entities/bob.md]]\n- pet: cat\n"
BOB = "# Bob\n- city: Oslo\n"


@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory.from_files(tmp_path / "memory", {"user.md": USER, "entities/bob.md": BOB})


@pytest.fixture
def tools(memory: Memory) -> MemoryTools:
    return MemoryTools(str(memory.root), **memory.limits.model_dump())


def test_the_tool_set_is_the_spec_table(tools: MemoryTools) -> None:
    assert set(tools.bind()) == set(TOOL_NAMES) and len(TOOL_NAMES) == 10


def test_update_file_replaces_the_first_match_only_and_explains_failures(tools: MemoryTools, memory: Memory) -> None:
    assert tools.update_file("user.md", "- pet: cat", "- pet: dog") is True
    assert memory.read("user.md") == USER.replace("- pet: cat", "- pet: dog", 1)
    assert memory.read("user.md").count("- pet: cat") == 1
    assert tools.update_file("nope.md", "a", "b") == "Error: file nope.md does not exist"
    assert tools.update_file("user.md", "- pet: parrot", "x").startswith("Error: old_content was not found")
    assert tools.update_file("user.md", "- name: Ada", "- name: Ada") == "Error: the update leaves user.md unchanged"
    assert tools.update_file("user.md", "", "x").startswith("Error: old_content and new_content must be strings")


def test_read_create_delete_and_folders(tools: MemoryTools, memory: Memory) -> None:
    assert tools.read_file("entities/bob.md") == BOB
    assert tools.read_file("entities/carol.md") == "Error: file entities/carol.md does not exist"
    assert tools.read_file("entities") == "Error: entities is a folder; use list_files()"
    assert tools.create_file("entities/places/oslo.md", "# Oslo\n") is True
    assert memory.read("entities/places/oslo.md") == "# Oslo\n"
    assert tools.delete_file("entities/places/oslo.md") is True and tools.delete_file("entities/places/oslo.md") is False
    assert tools.create_dir("archive/2025") is True and tools.create_dir("archive/2025") is True
    assert tools.check_if_dir_exists("archive/2025") and not tools.check_if_file_exists("archive/2025")
    assert tools.check_if_file_exists("user.md") and not tools.check_if_dir_exists("user.md")
    assert tools.list_files() == memory.tree() and "2025/ (empty)" in tools.list_files()
    with pytest.raises(TypeError, match="content must be a str"):
        tools.create_file("x.md", 42)  # type: ignore[arg-type]


def test_get_size_and_go_to_link(tools: MemoryTools) -> None:
    assert tools.get_size("user.md") == len(USER.encode())
    assert tools.get_size("entities") == len(BOB) and tools.get_size("") == len(USER) + len(BOB)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tools.get_size("nope.md")
    assert tools.go_to_link("[[entities/bob.md]]") == tools.go_to_link("[[entities/bob]]") == BOB
    assert tools.go_to_link("[[bob]]") == "Error: file bob.md does not exist"  # short links are invalid (spec §2)


def test_limits_are_checked_by_the_tools_themselves(memory: Memory) -> None:
    small = MemoryTools(str(memory.root), max_file_bytes=50, max_memory_bytes=150, max_files=10, max_depth=3)
    with pytest.raises(MemoryAccessError, match="more than the limit of 50 bytes per file"):
        small.create_file("big.md", "x" * 51)
    small.create_file("a.md", "x" * 40)
    with pytest.raises(MemoryAccessError, match="more than the limit of 150"):
        small.create_file("b.md", "x" * 50)
    with pytest.raises(MemoryAccessError, match="more than the limit of 3"):
        small.create_dir("a/b/c/d")


def test_result_block_is_the_spec_format() -> None:
    assert ToolRun({"x": 1}, None).result_block() == "<result>\n{'x': 1}\n</result>"
    failed = ToolRun({"x": 1}, "ZeroDivisionError: division by zero")
    assert failed.result_block() == "<result>\n({'x': 1}, 'ZeroDivisionError: division by zero')\n</result>"
    long = ToolRun({"text": "y" * 500}, None).result_block(max_chars=100)
    assert long.endswith("... [412 more characters]\n</result>") and len(long) == 144


def test_preamble_is_standalone_source() -> None:
    namespace: dict = {}
    exec(compile(tool_preamble(), "<preamble>", "exec"), namespace)
    assert issubclass(namespace["MemoryAccessError"], Exception) and "run_model_code" in namespace
    assert "reasonlab" not in tool_preamble().replace("reasonlab.", "")


CODE = """
user = read_file("user.md")
moved = update_file("entities/bob.md", "- city: Oslo", "- city: Bergen")
made = create_file("entities/carol.md", "# Carol\\n- relation: sister\\n")
gone = delete_file("entities/old.md")
folder = create_dir("archive")
size = get_size("")
tree = list_files()
bob = go_to_link("[[entities/bob.md]]")
pair = (1, 2)
nothing = None
seen = {"a"}
print("printing is lost")
import json
def helper():
    return 1
"""


def test_run_tools_returns_assigned_values_and_commits_every_change(memory: Memory) -> None:
    memory.write("entities/old.md", "# Old\n")
    run = run_tools(CODE, memory)
    assert run.error is None and run.kind is None, run.error
    values = run.locals
    assert set(values) == {"user", "moved", "made", "gone", "folder", "size", "tree", "bob", "pair", "nothing", "seen"}
    assert values["user"] == USER and values["moved"] is True and values["gone"] is True
    assert values["bob"] == "# Bob\n- city: Bergen\n" and values["pair"] == [1, 2] and values["nothing"] is None
    assert values["seen"] == "{'a'}"  # not JSON: its repr
    assert run.changed == ["entities/bob.md", "entities/carol.md", "entities/old.md"]
    assert memory.read("entities/bob.md") == "# Bob\n- city: Bergen\n"
    assert memory.read("entities/carol.md").startswith("# Carol")
    assert not (memory.root / "entities" / "old.md").exists()  # the deletion was carried back
    assert (memory.root / "archive").is_dir() and "archive/ (empty)" in values["tree"]
    assert "printing is lost" not in run.result_block()


def test_an_exception_keeps_earlier_values_and_writes(memory: Memory) -> None:
    run = run_tools("a = 1\ncreate_file('notes.md', 'kept')\nb = 1 / 0\nc = 3", memory)
    assert run.locals == {"a": 1} and run.error == "ZeroDivisionError: division by zero"
    assert run.kind == "exception" and run.changed == ["notes.md"] and memory.read("notes.md") == "kept"
    assert run.result_block() == "<result>\n({'a': 1}, 'ZeroDivisionError: division by zero')\n</result>"
    syntax = run_tools("x = (", memory)
    assert syntax.locals == {} and syntax.error.startswith("SyntaxError")


def test_a_run_past_the_memory_limits_commits_nothing(tmp_path: Path) -> None:
    limits = MemoryLimits(max_file_bytes=1000, max_memory_bytes=1500)
    memory = Memory.from_files(tmp_path / "memory", {"user.md": "# User\n"}, limits)
    code = "for i in range(3):\n    with open(f'n{i}.md', 'w') as f:\n        f.write('x' * 900)\nok = True"
    run = run_tools(code, memory)
    assert run.kind == "rejected" and "more than max_memory_bytes=1500" in run.error
    assert run.error.endswith("no change was saved") and run.locals["ok"] is True and run.changed == []
    assert memory.files() == {"user.md": "# User\n"}


def test_a_commit_that_fails_on_disk_saves_nothing(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    import reasonlab.systems.memagent.memory as memory_module

    def full_disk(path: Path, data: bytes) -> Path:
        raise OSError(28, "No space left on device")

    before = memory.files()
    monkeypatch.setattr(memory_module, "stage_bytes", full_disk)
    run = run_tools("create_file('a.md', 'A')\ndelete_file('user.md')", memory)
    assert run.kind == "rejected" and "No space left" in run.error and run.error.endswith("no change was saved")
    assert memory.files() == before and run.changed == []


def test_a_commit_shrinks_files_before_growing_others(tmp_path: Path) -> None:
    # in name order the first write alone would pass max_memory_bytes; the end state is within it
    limits = MemoryLimits(max_file_bytes=1400, max_memory_bytes=1500)
    memory = Memory.from_files(tmp_path / "memory", {"a.md": "a" * 700, "b.md": "b" * 700}, limits)
    run = run_tools("create_file('b.md', 'B' * 100)\ncreate_file('a.md', 'A' * 1300)", memory)
    assert run.error is None and run.changed == ["a.md", "b.md"]
    assert memory.files() == {"a.md": "A" * 1300, "b.md": "B" * 100}
