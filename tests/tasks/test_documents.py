import os
import re
import sys
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.tasks import documents
from reasonlab.tasks.documents import (
    DEBIAN_DOCS,
    Document,
    clean_rst,
    fetch_debian_package,
    load_documents,
    split_documents,
    token_windows,
)

SOURCES = "usr/share/doc/python3.11/html/_sources"


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    write(folder / "b.txt", "b" * 50)
    write(folder / "a.txt", "a" * 10)
    write(folder / "sub" / "c.txt", "c" * 30)
    write(folder / "sub" / "d.md", "d" * 100)
    write(folder / "latin1.txt", "caf\xe9 ".encode("latin-1") * 20)
    return folder


def test_folder_loads_matching_files_sorted_by_name_and_skips_non_utf8(corpus, capsys):
    docs = load_documents(corpus)
    assert [d.name for d in docs] == ["a.txt", "b.txt", "sub/c.txt"]
    assert [len(d.text) for d in docs] == [10, 50, 30]
    assert docs[1].text == "b" * 50
    warning = capsys.readouterr().err
    assert "skipped 1 file(s)" in warning and "latin1.txt" in warning


def test_pattern_min_chars_and_max_documents(corpus):
    assert [d.name for d in load_documents(corpus, pattern="**/*.md")] == ["sub/d.md"]
    assert [d.name for d in load_documents(corpus, pattern="*.txt")] == ["a.txt", "b.txt"]  # not recursive
    assert [d.name for d in load_documents(corpus, min_chars=30)] == ["b.txt", "sub/c.txt"]
    assert [d.name for d in load_documents(corpus, min_chars=30, max_documents=1)] == ["b.txt"]
    assert [d.name for d in load_documents(corpus, max_documents=2)] == ["a.txt", "b.txt"]


def test_folder_errors_are_one_line_and_name_the_fix(corpus, tmp_path):
    with pytest.raises(UserError, match=r"matches '\*\*/\*\.rst': pass another pattern"):
        load_documents(corpus, pattern="**/*.rst")
    with pytest.raises(UserError, match="100 or more characters: lower min_chars"):
        load_documents(corpus, min_chars=100)
    with pytest.raises(UserError, match="max_documents 0"):
        load_documents(corpus, max_documents=0)
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match=f"{re.escape(str(missing))} does not exist: pass a folder of .txt files") as error:
        load_documents(missing)
    assert "\n" not in str(error.value)


def test_single_file_source(corpus):
    assert load_documents(corpus / "sub" / "c.txt") == [Document("c.txt", "c" * 30)]
    assert load_documents(str(corpus / "sub" / "d.md"), pattern="*.txt") == [Document("d.md", "d" * 100)]
    with pytest.raises(UserError, match="30 characters, under min_chars 31"):
        load_documents(corpus / "sub" / "c.txt", min_chars=31)
    with pytest.raises(UserError, match="not readable UTF-8"):
        load_documents(corpus / "latin1.txt")


def install_fake_apt(tmp_path: Path, monkeypatch, fail_download: bool = False, fail_extract: bool = False) -> Path:
    """`apt-get` and `dpkg-deb` stand-ins first on PATH; every download is appended to the returned log."""
    bin_dir, log = tmp_path / "bin", tmp_path / "downloads.log"
    apt = f"""
import sys, pathlib
if {fail_download}:
    sys.exit("E: Unable to locate package " + sys.argv[2])
with open({str(log)!r}, "a") as handle:
    handle.write(" ".join(sys.argv[1:]) + "\\n")
pathlib.Path(sys.argv[2] + "_1.0_all.deb").write_text("fake deb")
"""
    dpkg = f"""
import sys, pathlib
assert sys.argv[1] == "-x" and pathlib.Path(sys.argv[2]).read_text() == "fake deb"
sources = pathlib.Path(sys.argv[3]) / {SOURCES!r}
(sources / "tutorial").mkdir(parents=True)
(sources / "tutorial" / "classes.rst.txt").write_text("Classes bundle data. " * 10)
(sources / "about.rst.txt").write_text("About.")
(sources / "notes.txt").write_text("not reST " * 10)
if {fail_extract}:
    sys.exit("dpkg-deb: error: unexpected end of archive")
"""
    for name, body in (("apt-get", apt), ("dpkg-deb", dpkg)):
        write(bin_dir / name, f"#!{sys.executable}\n{body}")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_fetch_unpacks_once_then_reuses_the_root(tmp_path, monkeypatch, capsys):
    log = install_fake_apt(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    root = fetch_debian_package("python3.11-doc", cache_dir=cache)
    assert root == cache / "python3.11-doc" / "root"
    assert (root / SOURCES / "about.rst.txt").read_text() == "About."
    assert fetch_debian_package("python3.11-doc", cache_dir=cache) == root
    assert log.read_text() == "download python3.11-doc\n"  # one download for two calls
    assert "reusing" in capsys.readouterr().err
    assert [p.name for p in (cache / "python3.11-doc").iterdir()] == ["root"]  # the work folder is gone


def test_debian_source_reads_the_package_sources_from_the_default_cache(tmp_path, monkeypatch):
    install_fake_apt(tmp_path, monkeypatch)
    monkeypatch.setenv("REASONLAB_CACHE", str(tmp_path / "env-cache"))
    docs = load_documents(DEBIAN_DOCS, min_chars=10)
    assert [(d.name, len(d.text)) for d in docs] == [("tutorial/classes.rst.txt", 210)]  # notes.txt: not .rst.txt
    assert (tmp_path / "env-cache" / "debian" / "python3.11-doc" / "root" / SOURCES).is_dir()
    assert [d.name for d in load_documents(DEBIAN_DOCS, pattern="*.txt")] == ["about.rst.txt", "notes.txt"]


def test_debian_source_calls_fetch_with_the_package(tmp_path, monkeypatch):
    write(tmp_path / "root" / "doc" / "x.txt", "xyz")
    fetched = []
    monkeypatch.setattr(documents, "fetch_debian_package", lambda package: fetched.append(package) or tmp_path / "root")
    assert load_documents("debian:other-doc") == [Document("doc/x.txt", "xyz")]  # unknown package: its whole root
    assert fetched == ["other-doc"]


def test_failed_download_or_extraction_leaves_no_root(tmp_path, monkeypatch):
    install_fake_apt(tmp_path, monkeypatch, fail_download=True)
    with pytest.raises(UserError, match=r"\(E: Unable to locate package nosuch-doc\).*pass a folder of .txt"):
        fetch_debian_package("nosuch-doc", cache_dir=tmp_path / "cache")
    install_fake_apt(tmp_path, monkeypatch, fail_extract=True)
    with pytest.raises(UserError, match="unexpected end of archive"):
        fetch_debian_package("python3.11-doc", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # half-unpacked files and empty folders removed


def test_missing_apt_tools_and_bad_package_names_are_user_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UserError, match=r"debian:python3.11-doc needs apt-get and dpkg-deb.*folder of .txt files"):
        fetch_debian_package("python3.11-doc", cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="not a Debian package name"):
        fetch_debian_package("-o=Dir::Cache=/", cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="not a Debian package name"):
        load_documents("debian:")


RST = """\
.. _tut-classes:

*******
Classes
*******

.. index::
   single: class
   pair: class; object

Classes bundle data.  See :ref:`tut-scopes`.



.. function:: area(width, height)
   :noindex:

   Return the area.

   .. index:: pair: area; function

   .. code-block:: python
      :linenos:

      def area(width, height):
          return width * height

.. toctree::
   :maxdepth: 2

   whatsnew.rst

.. XXX a note to the editors,
   over two lines

.. |version| replace:: 3.11

The end [#]_.

..

   A block quote after an empty comment.

.. [#] A footnote.
"""

CLEANED = """\
*******
Classes
*******

Classes bundle data.  See :ref:`tut-scopes`.


.. function:: area(width, height)

   Return the area.

   .. code-block:: python

      def area(width, height):
          return width * height

The end [#]_.

   A block quote after an empty comment.

.. [#] A footnote.
"""


def test_clean_rst_drops_markup_blocks_and_options_and_keeps_prose_and_code():
    assert clean_rst(RST) == CLEANED
    assert clean_rst("a\n\n\n\n\n\nb") == "a\n\n\nb\n"  # 5 blank lines become 2
    assert clean_rst(">>> x = 1\n... y = 2\n") == ">>> x = 1\n... y = 2\n"  # doctest continuation is not markup


def names(docs):
    return [d.name for d in docs]


def test_split_is_deterministic_disjoint_and_stable_when_documents_are_added():
    docs = [Document(f"doc{i:03d}.txt", "") for i in range(200)]
    train, test = split_documents(docs, held_out=0.25, seed=3)
    assert (names(train), names(test)) == tuple(map(names, split_documents(docs, held_out=0.25, seed=3)))
    assert not set(names(train)) & set(names(test)) and len(train) + len(test) == 200
    assert 30 <= len(test) <= 70  # binomial(200, 0.25): mean 50, sd 6
    assert names(train) == sorted(names(train))  # input order kept
    more_train, more_test = split_documents([*(Document(f"new{i}", "") for i in range(50)), *docs], 0.25, seed=3)
    assert [n for n in names(more_test) if n.startswith("doc")] == names(test)
    assert [n for n in names(more_train) if n.startswith("doc")] == names(train)
    assert names(split_documents(docs, held_out=0.25, seed=4)[1]) != names(test)


def test_split_refuses_an_empty_side():
    with pytest.raises(UserError, match=r"leaves the (training|held-out) side empty"):
        split_documents([Document("only.txt", "")], held_out=0.5)
    with pytest.raises(UserError, match=r"held_out 1\.0"):
        split_documents([Document("a", ""), Document("b", "")], held_out=1.0)


def test_token_windows():
    ids = list(range(10))
    assert token_windows(ids, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]  # tail 8, 9 dropped
    assert token_windows(ids, 4, stride=3) == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert token_windows(ids, 10) == [ids]
    assert token_windows(ids, 11) == []
    assert token_windows(tuple(ids), 5, stride=5) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    with pytest.raises(UserError, match="stride 0"):
        token_windows(ids, 4, stride=0)
