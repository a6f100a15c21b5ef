"""The memory folder: layout, the ASCII tree, confinement of every path, atomic and size-limited writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.memagent import Memory, MemoryAccessError, MemoryLimits, path_problem, wiki_links

from .helpers import digest

FILES = {
    "user.md": "# User\n- name: Ada Lovelace\n- employer: [[entities/acme_corp.md]]\n",
    "entities/acme_corp.md": "# Acme Corp\n- city: Paris\n",
    "entities/people/bob.md": "# Bob\n- relation: colleague\n",
}




@pytest.fixture
def memory(tmp_path: Path) -> Memory:
    return Memory.from_files(tmp_path / "memory", FILES)


def test_files_read_and_dump_show_the_markdown_files(memory: Memory) -> None:
    (memory.root / "notes.txt").write_text("not markdown")
    (memory.root / ".filters").write_text("hidden")
    assert list(memory.files()) == ["entities/acme_corp.md", "entities/people/bob.md", "user.md"]
    assert memory.files()["user.md"] == FILES["user.md"] == memory.read("user.md")
    assert memory.dump() == ("## entities/acme_corp.md\n# Acme Corp\n- city: Paris\n\n"
                             "## entities/people/bob.md\n# Bob\n- relation: colleague\n\n"
                             "## notes.txt\nnot markdown\n"
                             f"## user.md\n{FILES['user.md']}\n")
    assert wiki_links(memory.read("user.md")) == ["entities/acme_corp.md"]
    assert wiki_links("see [[a.md|Alice]] and [[ b.md ]] but not [x]") == ["a.md", "b.md"]


def test_tree_hides_dotfiles_and_marks_empty_folders(memory: Memory) -> None:
    (memory.root / "archive").mkdir()
    (memory.root / ".filters").write_text("x")
    (memory.root / "__pycache__").mkdir()
    assert memory.tree() == (
        "./\n"
        "├── archive/ (empty)\n"
        "├── entities/\n"
        "│   ├── acme_corp.md\n"
        "│   └── people/\n"
        "│       └── bob.md\n"
        "└── user.md"
    )


def test_missing_folder_is_a_user_error_unless_created(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        Memory(tmp_path / "nope")
    assert Memory(tmp_path / "new", create=True).root == (tmp_path / "new").resolve()


@pytest.mark.parametrize(("path", "reason"), [
    ("../outside.md", "leaves the memory folder"),
    ("entities/../../outside.md", "leaves the memory folder"),
    ("/etc/passwd", "is absolute"),
    ("~/secret.md", "is absolute"),
    (".filters", "hidden"),
    ("entities\\x.md", "backslashes"),
    ("a/b/c/d/e/f/g/h/i.md", "more than the limit of 8"),
    (42, "must be a str"),
])
def test_paths_that_leave_the_memory_are_refused(memory: Memory, tmp_path: Path, path: object, reason: str) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("outside")
    before = digest(tmp_path)
    with pytest.raises(MemoryAccessError, match=reason):
        memory.write(path, "pwned")  # type: ignore[arg-type]
    with pytest.raises(MemoryAccessError, match=reason):
        memory.read(path)  # type: ignore[arg-type]
    assert digest(tmp_path) == before


def test_symlinks_are_never_followed(memory: Memory, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("secret")
    os.symlink(outside / "secret.md", memory.root / "entities" / "leak.md")
    os.symlink(outside, memory.root / "linked")
    before = digest(tmp_path)
    for path in ("entities/leak.md", "linked/secret.md", "linked/new.md"):
        assert "symbolic link" in (path_problem(str(memory.root), path, 8) or "")
        with pytest.raises(MemoryAccessError, match="symbolic link"):
            memory.write(path, "pwned")
        with pytest.raises(MemoryAccessError, match="symbolic link"):
            memory.read(path)
    assert "leak.md" not in memory.files() and "linked/secret.md" not in memory.files()
    assert "leak.md (symbolic link, not followed)" in memory.tree()
    assert digest(tmp_path) == before


def test_writes_are_atomic_and_make_folders(memory: Memory) -> None:
    memory.write("entities/places/lyon.md", "# Lyon\n")
    memory.write("user.md", "# User\n")
    assert memory.read("entities/places/lyon.md") == "# Lyon\n" and memory.read("user.md") == "# User\n"
    assert [p.name for p in memory.root.rglob(".*")] == []  # no temporary file left behind
    assert memory.delete("entities/places/lyon.md") and not memory.delete("entities/places/lyon.md")
    assert memory.delete("entities/places") and not (memory.root / "entities" / "places").exists()
    with pytest.raises(MemoryAccessError, match="is a folder"):
        memory.write("entities", "x")


def test_apply_writes_a_change_set_as_a_whole(memory: Memory) -> None:
    memory.apply({"user.md": b"# User\n", "notes/new.md": b"# New\n"}, ["entities/people/bob.md"],
                 {"empty"}, {"entities/people"})
    assert memory.files() == {"user.md": "# User\n", "notes/new.md": "# New\n", "entities/acme_corp.md": FILES[
        "entities/acme_corp.md"]}
    assert (memory.root / "empty").is_dir() and not (memory.root / "entities" / "people").exists()
    assert [p.name for p in memory.root.rglob(".*")] == []


def test_apply_that_fails_while_staging_changes_nothing(memory: Memory, monkeypatch: pytest.MonkeyPatch) -> None:
    before = digest(memory.root)
    real_fsync, calls = os.fsync, []

    def full_disk_on_the_second_file(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_on_the_second_file)
    with pytest.raises(OSError, match="No space left"):
        memory.apply({"a/new.md": b"first", "user.md": b"second", "z/deep/new.md": b"third"},
                     ["entities/acme_corp.md"], set(), set())
    assert len(calls) == 2 and digest(memory.root) == before  # no file replaced, deleted or left half-made
    assert [p.name for p in memory.root.rglob(".*")] == [] and not (memory.root / "a").exists()


def test_apply_replaces_a_file_by_a_folder_of_the_same_name(memory: Memory) -> None:
    memory.apply({"user.md/inside.md": b"x"}, ["user.md"], {"user.md"}, set())
    assert memory.read("user.md/inside.md") == "x"


def test_limits_refuse_writes_and_leave_the_memory_unchanged(tmp_path: Path) -> None:
    limits = MemoryLimits(max_file_bytes=100, max_memory_bytes=150, max_files=4, max_depth=2)
    memory = Memory.from_files(tmp_path / "memory", {"user.md": "u" * 60, "entities/a.md": "a" * 60}, limits)
    before = digest(memory.root)
    with pytest.raises(MemoryAccessError, match="more than max_file_bytes=100"):
        memory.write("big.md", "x" * 101)
    with pytest.raises(MemoryAccessError, match="more than max_memory_bytes=150"):
        memory.write("entities/b.md", "b" * 40)
    with pytest.raises(MemoryAccessError, match="max_files=4"):
        memory.write("notes/c.md", "c")
    with pytest.raises(MemoryAccessError, match="more than the limit of 2"):
        memory.write("entities/x/y.md", "y")
    assert digest(memory.root) == before
    memory.write("user.md", "u" * 80)  # replacing a file counts its old size out
    (memory.root / "entities" / "huge.md").write_text("h" * 200)
    with pytest.raises(MemoryAccessError, match="bytes, more than max_memory_bytes"):
        memory.check()


def test_copy_to_keeps_links_as_links_and_leaves_hidden_files(memory: Memory, tmp_path: Path) -> None:
    (memory.root / ".filters").write_text("secret rules")
    os.symlink("/etc/passwd", memory.root / "passwd.md")
    copy = memory.copy_to(tmp_path / "copy")
    assert copy.files() == memory.files()
    assert os.readlink(copy.root / "passwd.md") == "/etc/passwd"
    assert not (copy.root / ".filters").exists()
    with pytest.raises(UserError, match="already exists"):
        memory.copy_to(tmp_path / "copy")
