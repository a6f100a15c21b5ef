"""Corpus input: a folder, one file or `debian:PACKAGE` read into document records, bad inputs into rejections.

Formats by extension: .txt/.text/.rst (text), .md/.markdown (markdown, title = first `# ` heading), .html/.htm
(main text through trafilatura, narrowed to the page's `<main>` landmark when it has one), .jsonl (one document
per line). A document's id is its file's posix path under the input root (`path:LINE` for a JSON-lines row without
an id). Hidden files are ignored; every other input that yields no document is a rejection of stage "read" with a
fixed reason (unsupported-format, binary, encoding, empty, malformed-jsonl, duplicate-id, too-large, unreadable),
so the run report counts it and the run never crashes on it.

    read = read_corpus(CorpusConfig(input="debian:python3.11-doc"))   # 530 HTML pages, ~25 s on one core
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import CorpusConfig
from reasonlab.systems.webscale_rl.records import StageOutput, make_document, rejection

__all__ = ["DEBIAN_FOLDERS", "FORMATS", "html_text", "read_corpus", "resolve_input"]

STAGE = "read"
# file extension -> document format
FORMATS: dict[str, str] = {
    ".txt": "text", ".text": "text", ".rst": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html",
    ".jsonl": "jsonl",
}
# debian:PACKAGE -> (the folder under the unpacked root that holds documents, folder names skipped below it);
# packages not listed are read from the whole unpacked root
DEBIAN_FOLDERS: dict[str, tuple[str, frozenset[str]]] = {
    "python3.11-doc": ("usr/share/doc/python3.11/html", frozenset({"_sources", "_static", "_images"})),
}
BINARY_PROBE_BYTES = 8192
_HEADING_LINE = re.compile(r"\n+## ")
_PILCROW = re.compile(r"[ \t]*¶[ \t]*$", re.MULTILINE)  # the permalink mark Sphinx and MkDocs put after headings


@dataclass
class _Reader:
    """The state of one read: the config, the documents and rejections so far, and who owns each id."""

    config: CorpusConfig
    output: StageOutput = field(default_factory=StageOutput)
    owners: dict[str, str] = field(default_factory=dict)

    def reject(self, record_id: str, reason: str, detail: str) -> None:
        self.output.rejected.append(rejection(record_id, STAGE, reason, detail))

    def keep(self, doc_id: str, text: str, source: str, fmt: str, title: str = "") -> None:
        """Keep a document unless its text is empty or too long, or its id is taken (rejections name `source`,
        the file or `file:LINE`, so two rows sharing an id stay apart)."""
        text = text.strip()
        if not text:
            self.reject(source, "empty", f"{source}: no text left after extraction: remove the file or fill it")
        elif len(text) > self.config.max_document_chars:
            self.reject(source, "too-large", f"{source}: {len(text)} characters > max_document_chars "
                        f"{self.config.max_document_chars}: split the document or raise corpus.max_document_chars")
        elif doc_id in self.owners:
            self.reject(source, "duplicate-id", f"{source}: id {doc_id!r} is already used by "
                        f"{self.owners[doc_id]}: give every document its own id")
        else:
            self.owners[doc_id] = source
            self.output.kept.append(make_document(doc_id, text, source, fmt, title))

    def full(self) -> bool:
        limit = self.config.max_documents
        return limit is not None and len(self.output.kept) >= limit


def resolve_input(spec: str) -> Path:
    """The folder or file `spec` names: a path, or `debian:PACKAGE` (fetched and unpacked into the cache once)."""
    if spec.startswith("debian:"):
        package = spec.removeprefix("debian:")
        from reasonlab.tasks.documents import fetch_debian_package

        root = fetch_debian_package(package)
        folder = root / DEBIAN_FOLDERS.get(package, ("", frozenset()))[0]
        if not folder.is_dir():
            raise UserError(f"{spec} has no folder {folder.relative_to(root)} after unpacking: delete "
                            f"{root.parent} to fetch it again")
        return folder
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"corpus input {spec} does not exist: pass a folder of .txt/.md/.html/.jsonl files, "
                        "one such file, or debian:PACKAGE (such as debian:python3.11-doc)")
    return path


def _skipped_folders(spec: str) -> frozenset[str]:
    if spec.startswith("debian:"):
        return DEBIAN_FOLDERS.get(spec.removeprefix("debian:"), ("", frozenset()))[1]
    return frozenset()


def _input_files(root: Path, skipped: frozenset[str]) -> list[tuple[str, Path]]:
    """(posix path under root, path) of every file not hidden and not under a skipped folder, by that path."""
    if not root.is_dir():
        return [(root.name, root)]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in skipped]
        for name in names:
            if not name.startswith("."):
                path = Path(folder, name)
                files.append((path.relative_to(root).as_posix(), path))
    return sorted(files)


def read_corpus(config: CorpusConfig) -> StageOutput:
    """Read `config.input` into document records (kept, sorted by doc_id) and rejections (stage "read").

    Files are read in order of their path; with `max_documents` set, reading stops once that many documents are
    kept (for a folder of files these are the first ones by doc_id), and later files are neither read nor counted.
    """
    reader = _Reader(config)
    root = resolve_input(config.input)
    for relpath, path in _input_files(root, _skipped_folders(config.input)):
        if reader.full():
            break
        _read_file(reader, relpath, path)
    reader.output.kept.sort(key=lambda doc: doc["doc_id"])
    return reader.output


def _read_file(reader: _Reader, relpath: str, path: Path) -> None:
    """One file: its format from the extension, then the checks every bad-input kind fails."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        reader.reject(relpath, "unsupported-format", f"{relpath}: extension {path.suffix or '(none)'} is not one "
                      f"of {' '.join(FORMATS)}: convert the file or move it out of the input")
        return
    try:
        if not path.is_file():
            reader.reject(relpath, "unreadable", f"{relpath}: not a regular file: move it out of the input")
            return
        if fmt == "jsonl":  # a container: streamed line by line, so max_file_bytes does not apply
            _read_jsonl(reader, relpath, path)
            return
        size = path.stat().st_size
        if size > reader.config.max_file_bytes:
            reader.reject(relpath, "too-large", f"{relpath}: {size} bytes > max_file_bytes "
                          f"{reader.config.max_file_bytes}: split the file or raise corpus.max_file_bytes")
            return
        data = path.read_bytes()
    except OSError as error:
        reader.reject(relpath, "unreadable", f"{relpath}: {error.strerror or error}: check its permissions")
        return
    text = _decode(reader, relpath, data)
    if text is not None:
        _read_document(reader, relpath, text, fmt)


def _rejected_as_binary(reader: _Reader, record_id: str, data: bytes) -> bool:
    if b"\x00" not in data[:BINARY_PROBE_BYTES]:
        return False
    reader.reject(record_id, "binary", f"{record_id}: NUL bytes in the first {BINARY_PROBE_BYTES} bytes, a binary "
                  "file (or UTF-16 text): remove it from the input, or convert it: iconv -f utf-16 -t utf-8")
    return True


def _decode(reader: _Reader, record_id: str, data: bytes) -> str | None:
    """UTF-8 text (a BOM dropped, newlines normalised), or None after rejecting binary or other encodings."""
    if _rejected_as_binary(reader, record_id, data):
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        reader.reject(record_id, "encoding", f"{record_id}: not UTF-8 (byte 0x{data[error.start]:02x} at offset "
                      f"{error.start}): convert it, e.g. iconv -f latin1 -t utf-8 FILE > FILE.utf8")
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_document(reader: _Reader, relpath: str, text: str, fmt: str) -> None:
    if fmt == "html":
        try:
            text, title = html_text(text)
        except Exception as error:  # the extractor must not end the run on one odd page
            reader.reject(relpath, "unreadable", f"{relpath}: the HTML extractor failed "
                          f"({type(error).__name__}: {error}): check the file is HTML")
            return
    elif fmt == "markdown":
        title = _markdown_title(text)
    else:
        title = ""
    reader.keep(relpath, text, relpath, fmt, title)


def _markdown_title(text: str) -> str:
    heading = re.search(r"^# +(.+?)\s*#*\s*$", text, re.MULTILINE)
    return heading.group(1) if heading else ""


def html_text(html: str) -> tuple[str, str]:
    """(main text, title) of an HTML page through trafilatura; the title is the first <h1>, else <title>; headings
    come out as markdown `## heading` lines."""
    import trafilatura

    tree = trafilatura.load_html(html)
    if tree is None:
        return "", ""
    heading = " ".join(str(tree.xpath("string(//h1[1])")).split())
    title = _PILCROW.sub("", heading).strip() or " ".join((tree.findtext(".//title") or "").split())
    body = tree.find("body")
    landmarks = tree.xpath("//main | //*[@role='main']")
    # the page's own main landmark: cuts the menus and sidebars out, and trafilatura's time with them
    if landmarks and body is not None and body in landmarks[0].iterancestors():
        main = landmarks[0]
        for child in list(body):
            body.remove(child)
        body.append(main)
    for heading_element in tree.xpath("//h1 | //h2 | //h3 | //h4 | //h5 | //h6"):
        # a markdown mark, so the generator still knows the section a sentence sits in once the tags are gone
        heading_element.text = "## " + (heading_element.text or "").lstrip()
    # without metadata (3x slower: the title above is what it would find on most pages)
    extracted = trafilatura.extract(tree, fast=True, with_metadata=False)
    # a blank line before each heading, as in markdown: the generator starts a section there
    return _HEADING_LINE.sub("\n\n## ", _PILCROW.sub("", extracted or "")), title


def _read_jsonl(reader: _Reader, relpath: str, path: Path) -> None:
    """One document per line; a bad line is one rejection and the other lines still load."""
    with path.open("rb") as handle:
        if _rejected_as_binary(reader, relpath, handle.read(BINARY_PROBE_BYTES)):
            return
        handle.seek(0)
        for number, raw in enumerate(handle, start=1):
            if reader.full():
                return
            line_id = f"{relpath}:{number}"
            line = _decode(reader, line_id, raw)
            if line is None or not line.strip():
                continue
            row = _parse_row(reader, line_id, line)
            if row is not None:
                doc_id, text, title = row
                reader.keep(doc_id, text, line_id, "jsonl", title)


def _parse_row(reader: _Reader, line_id: str, line: str) -> tuple[str, str, str] | None:
    """(doc_id, text, title) of one JSON-lines row, or None after rejecting it as malformed-jsonl."""
    config = reader.config
    try:
        row: Any = json.loads(line)
    except json.JSONDecodeError as error:
        reader.reject(line_id, "malformed-jsonl", f"{line_id}: not JSON ({error.msg} at column {error.colno}): "
                      "fix the line or remove it")
        return None
    if not isinstance(row, dict):
        reader.reject(line_id, "malformed-jsonl", f"{line_id}: a JSON {type(row).__name__}, not an object: "
                      f"write one object per line with a {config.text_field!r} field")
        return None
    text = row.get(config.text_field)
    if not isinstance(text, str):
        reader.reject(line_id, "malformed-jsonl", f"{line_id}: no string field {config.text_field!r}: set "
                      "corpus.text_field to the field that holds the text")
        return None
    doc_id = row.get(config.id_field)
    if doc_id is None:
        doc_id = line_id
    elif isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        reader.reject(line_id, "malformed-jsonl", f"{line_id}: field {config.id_field!r} is a "
                      f"{type(doc_id).__name__}: make it a string or an integer, or set corpus.id_field")
        return None
    title = row.get("title")
    return str(doc_id), text, title if isinstance(title, str) else ""
