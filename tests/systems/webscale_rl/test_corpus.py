"""Corpus input: every bad-input kind becomes a rejection with its reason while the good files beside it load,
JSON-lines ids, HTML through trafilatura, deterministic order and the `debian:` folder table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import CorpusConfig
from reasonlab.systems.webscale_rl.corpus import html_text, read_corpus, resolve_input

PROSE = "The river rose after three days of rain, and the town moved its market to the hill. "

PAGE = """<!DOCTYPE html>
<html><head><title>Rivers – Example Site</title></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/blog">Blog</a></li><li><a href="/shop">Shop</a></li></ul></nav>
<div role="main">
<h1>River floods<a class="headerlink" href="#top">¶</a></h1>
<p>The river rose after three days of rain, and the town moved its weekly market to the hill above the bridge.
Farmers brought their grain by boat, because the low road stayed under water for a week.</p>
<p>Engineers later built a stone wall along the bank. It has held back every flood since 1911, including the
great spring flood that reached the steps of the church.</p>
</div>
<footer><p>Copyright 2024 Example Site. All rights reserved. Privacy policy.</p></footer>
</body></html>
"""


def _write(folder: Path, name: str, data: str | bytes) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")


def _jsonl(*rows: object) -> str:
    return "\n".join(row if isinstance(row, str) else json.dumps(row) for row in rows) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """One good file of each format beside one file of each bad kind."""
    folder = tmp_path / "corpus"
    _write(folder, "notes/plain.txt", PROSE * 3)
    _write(folder, "guide.md", "Intro line.\n\n# Flood guide\n\n" + PROSE)
    _write(folder, "page.html", PAGE)
    _write(folder, "rows.jsonl", _jsonl({"id": "row-a", "text": PROSE}, {"text": PROSE + "Second."},
                                        "{not json", {"id": "row-b"}))
    _write(folder, "binary.txt", b"PK\x03\x04\x00\x00binary\x00data")
    _write(folder, "latin1.txt", "Caf\u00e9 au lait, na\u00efve r\u00e9sum\u00e9.".encode("latin-1"))
    _write(folder, "empty.md", "  \n\n\t \n")
    _write(folder, "huge.txt", "word " * 400)
    _write(folder, "long.txt", PROSE * 5)
    _write(folder, "picture.png", b"\x89PNG\r\n")
    _write(folder, ".hidden.txt", PROSE)
    _write(folder, ".git/config", "[core]\n")
    os.symlink(folder / "missing-target.txt", folder / "dangling.txt")
    return folder


def test_every_bad_input_is_rejected_with_its_reason_and_the_good_files_still_load(corpus: Path) -> None:
    read = read_corpus(CorpusConfig(input=str(corpus), max_file_bytes=1500, max_document_chars=400))
    reasons = {record["id"]: record["reason"] for record in read.rejected}
    assert reasons == {
        "binary.txt": "binary",
        "latin1.txt": "encoding",
        "empty.md": "empty",
        "huge.txt": "too-large",  # 2000 bytes on disk > max_file_bytes
        "long.txt": "too-large",  # 419 characters (stripped) > max_document_chars
        "picture.png": "unsupported-format",
        "dangling.txt": "unreadable",
        "rows.jsonl:3": "malformed-jsonl",
        "rows.jsonl:4": "malformed-jsonl",
    }
    assert all(record["stage"] == "read" for record in read.rejected)
    assert [doc["doc_id"] for doc in read.kept] == ["guide.md", "notes/plain.txt", "page.html", "row-a",
                                                     "rows.jsonl:2"]
    assert [doc["format"] for doc in read.kept] == ["markdown", "text", "html", "jsonl", "jsonl"]


def test_rejection_details_say_what_is_wrong_and_how_to_fix_it(corpus: Path) -> None:
    read = read_corpus(CorpusConfig(input=str(corpus), max_file_bytes=1500, max_document_chars=400))
    details = {record["id"]: record["detail"] for record in read.rejected}
    assert "byte 0xe9 at offset 3" in details["latin1.txt"] and "iconv -f latin1 -t utf-8" in details["latin1.txt"]
    assert "2000 bytes > max_file_bytes 1500" in details["huge.txt"]
    assert "419 characters > max_document_chars 400" in details["long.txt"]
    assert "NUL bytes" in details["binary.txt"]
    assert "no string field 'text'" in details["rows.jsonl:4"]
    assert "extension .png" in details["picture.png"]


def test_an_unreadable_file_is_a_rejection_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "locked.txt", PROSE)
    _write(tmp_path, "open.txt", PROSE)
    read_bytes = Path.read_bytes

    def deny_locked(path: Path) -> bytes:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", deny_locked)
    read = read_corpus(CorpusConfig(input=str(tmp_path)))
    assert [(r["id"], r["reason"]) for r in read.rejected] == [("locked.txt", "unreadable")]
    assert "Permission denied" in read.rejected[0]["detail"]
    assert [doc["doc_id"] for doc in read.kept] == ["open.txt"]


def test_jsonl_ids_fields_and_bad_rows(tmp_path: Path) -> None:
    _write(tmp_path, "a.jsonl", _jsonl(
        {"key": 7, "body": "seven", "title": "Seven"},
        {"body": "no id here"},
        "",
        {"key": "x", "body": "first x"},
        {"key": "x", "body": "second x"},
        ["a", "list"],
        {"key": {"nested": 1}, "body": "bad id"},
        {"key": "y", "body": 12},
        {"key": "z", "body": "   "},
    ))
    read = read_corpus(CorpusConfig(input=str(tmp_path / "a.jsonl"), text_field="body", id_field="key"))
    assert [(doc["doc_id"], doc["text"], doc["title"], doc["source"]) for doc in read.kept] == [
        ("7", "seven", "Seven", "a.jsonl:1"),
        ("a.jsonl:2", "no id here", "", "a.jsonl:2"),
        ("x", "first x", "", "a.jsonl:4"),
    ]
    assert [(r["id"], r["reason"]) for r in read.rejected] == [
        ("a.jsonl:5", "duplicate-id"), ("a.jsonl:6", "malformed-jsonl"), ("a.jsonl:7", "malformed-jsonl"),
        ("a.jsonl:8", "malformed-jsonl"), ("a.jsonl:9", "empty"),
    ]
    assert "already used by a.jsonl:4" in read.rejected[0]["detail"]


def test_a_jsonl_row_in_another_encoding_is_rejected_alone(tmp_path: Path) -> None:
    rows = [json.dumps({"id": "ok", "text": "fine"}).encode(), b'{"id": "bad", "text": "caf\xe9"}',
            json.dumps({"id": "ok2", "text": "also fine"}).encode()]
    _write(tmp_path, "mixed.jsonl", b"\n".join(rows) + b"\n")
    read = read_corpus(CorpusConfig(input=str(tmp_path)))
    assert [doc["doc_id"] for doc in read.kept] == ["ok", "ok2"]
    assert [(r["id"], r["reason"]) for r in read.rejected] == [("mixed.jsonl:2", "encoding")]


def test_html_main_text_and_title_through_trafilatura() -> None:
    text, title = html_text(PAGE)
    assert title == "River floods"
    assert "Farmers brought their grain by boat" in text
    assert "It has held back every flood since 1911" in text
    assert "¶" not in text
    for chrome in ("Home", "Blog", "Shop", "All rights reserved"):
        assert chrome not in text


def test_html_with_a_main_landmark_keeps_only_the_landmark_text() -> None:
    related = "".join(f"<p>Related story {i}: the harbour committee met on Tuesday and agreed to repaint the "
                      "lighthouse before the summer season begins.</p>" for i in range(6))
    page = (f"<html><head><title>T</title></head><body><div>{related}</div><main><h1>Bridge</h1><p>The bridge "
            "opened in 1932 and carried trams until the line closed in 1961.</p></main></body></html>")
    assert html_text(page) == ("## Bridge\nThe bridge opened in 1932 and carried trams until the line closed in 1961.",
                               "Bridge")


def test_html_without_a_heading_takes_its_title_element_and_markdown_its_first_heading(tmp_path: Path) -> None:
    _write(tmp_path, "page.htm", PAGE.replace("<h1>River floods<a class=\"headerlink\" href=\"#top\">¶</a></h1>", ""))
    _write(tmp_path, "notes.markdown", "Some text first.\n# Heading One #\nMore prose here.\n# Heading Two\n")
    read = read_corpus(CorpusConfig(input=str(tmp_path)))
    assert {doc["doc_id"]: doc["title"] for doc in read.kept} == {"notes.markdown": "Heading One",
                                                                  "page.htm": "Rivers – Example Site"}


def test_text_is_normalised_bom_crlf_and_outer_whitespace(tmp_path: Path) -> None:
    _write(tmp_path, "win.txt", "\ufeff\r\n  First line.\r\nSecond line.\r\n\r\n")
    (doc,) = read_corpus(CorpusConfig(input=str(tmp_path))).kept
    assert doc["text"] == "First line.\nSecond line."


def test_order_is_deterministic_and_max_documents_keeps_the_first_ids(tmp_path: Path) -> None:
    for name in ("z.txt", "b/c.txt", "a.txt", "b-a.txt", "m.md"):  # written out of order
        _write(tmp_path, name, PROSE)
    first = read_corpus(CorpusConfig(input=str(tmp_path)))
    second = read_corpus(CorpusConfig(input=str(tmp_path)))
    assert first.kept == second.kept
    assert [doc["doc_id"] for doc in first.kept] == ["a.txt", "b-a.txt", "b/c.txt", "m.md", "z.txt"]
    capped = read_corpus(CorpusConfig(input=str(tmp_path), max_documents=2))
    assert [doc["doc_id"] for doc in capped.kept] == ["a.txt", "b-a.txt"]


def test_a_missing_input_is_a_one_line_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"corpus input .*nowhere does not exist: pass a folder") as error:
        resolve_input(str(tmp_path / "nowhere"))
    assert "\n" not in str(error.value)


def test_debian_input_reads_the_package_table_folder_and_skips_its_asset_folders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import reasonlab.tasks.documents as documents

    html = tmp_path / "root" / "usr/share/doc/python3.11/html"
    _write(html, "library/json.html", PAGE)
    for skipped in ("_sources/library/json.rst.txt", "_static/basic.txt", "_images/logo.txt"):
        _write(html, skipped, PROSE)
    _write(tmp_path / "root", "usr/share/doc/python3.11/README.txt", PROSE)  # outside the html folder
    _write(tmp_path / "other", "usr/share/doc/other/guide.txt", PROSE)
    roots = {"python3.11-doc": tmp_path / "root", "other-doc": tmp_path / "other"}
    monkeypatch.setattr(documents, "fetch_debian_package", lambda package: roots[package])
    assert resolve_input("debian:python3.11-doc") == html
    read = read_corpus(CorpusConfig(input="debian:python3.11-doc"))
    assert ([doc["doc_id"] for doc in read.kept], read.rejected) == (["library/json.html"], [])
    other = read_corpus(CorpusConfig(input="debian:other-doc"))  # not in the table: the whole root
    assert [doc["doc_id"] for doc in other.kept] == ["usr/share/doc/other/guide.txt"]


def test_html_headings_become_markdown_sections_the_generator_splits_on() -> None:
    """Sphinx puts the section number in a span and a pilcrow link after the title; the heading comes out as its
    own `## ` line after a blank line, so a sentence before it never runs into the next section's number."""
    from reasonlab.systems.webscale_rl.generation import split_blocks

    page = ("<html><body><main><h1>Tour</h1><p>These modules rarely occur in small scripts.</p>"
            "<h2><span class='section-number'>11.1. </span>Output Formatting<a class='headerlink'>¶</a></h2>"
            "<p>The reprlib module provides a version of repr() for large containers.</p></main></body></html>")
    text, title = html_text(page)
    assert title == "Tour"
    assert "small scripts.\n\n## 11.1. Output Formatting\nThe reprlib" in text and "¶" not in text
    assert split_blocks(text) == [("Tour", "These modules rarely occur in small scripts."),
                                  ("Output Formatting", "The reprlib module provides a version of repr() for large "
                                                        "containers.")]
