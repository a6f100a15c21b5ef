"""Long real documents for language-model experiments (perplexity beyond the attention window, pretraining text).

A source is a folder of text files, one text file, or `debian:<package>`: a Debian package fetched with
`apt-get download` and unpacked with `dpkg-deb -x` into the cache (`$REASONLAB_CACHE/debian`, default
`~/.cache/reasonlab/debian`). The source of record is `debian:python3.11-doc`, whose reStructuredText sources
(the tutorial, library reference, HOWTOs, What's New) are real technical prose; `clean_rst` strips its markup-only
lines. Documents are split by a hash of their name, so a document added later never moves an old one across.

    documents = [Document(d.name, clean_rst(d.text)) for d in load_documents(DEBIAN_DOCS, min_chars=20_000)]
    train, held_out = split_documents(documents, held_out=0.2)
    windows = token_windows(tokenizer(held_out[0].text)["input_ids"], length=2048)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reasonlab.errors import UserError
from reasonlab.progress import say

__all__ = [
    "DEBIAN_DOCS",
    "Document",
    "clean_rst",
    "fetch_debian_package",
    "load_documents",
    "split_documents",
    "token_windows",
]

DEBIAN_DOCS = "debian:python3.11-doc"
DEFAULT_PATTERN = "**/*.txt"
# the folder (under the unpacked package) and file pattern a `debian:` source reads; other packages: root, DEFAULT_PATTERN
DEBIAN_SOURCES = {"python3.11-doc": ("usr/share/doc/python3.11/html/_sources", "**/*.rst.txt")}
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_DOWNLOAD_SECONDS = 1800


@dataclass(frozen=True)
class Document:
    """One text: `name` is its path relative to the source root (posix), `text` its whole content."""

    name: str
    text: str = field(repr=False)


def _cache_root() -> Path:
    return Path(os.environ.get("REASONLAB_CACHE", Path.home() / ".cache" / "reasonlab")) / "debian"


def _fallback_hint() -> str:
    return "or pass a folder of .txt files instead"


def _require_tools(package: str) -> None:
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    if missing:
        raise UserError(f"debian:{package} needs {' and '.join(missing)}, not found on PATH: install apt and dpkg "
                        f"(a Debian or Ubuntu system), {_fallback_hint()}")


def _run(command: list[str], cwd: Path, package: str) -> None:
    """Run one apt/dpkg step; a failure becomes a one-line UserError with the tool's last message."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=_DOWNLOAD_SECONDS)
    except subprocess.TimeoutExpired:
        raise UserError(f"{command[0]} for debian:{package} ran over {_DOWNLOAD_SECONDS} s: check the network "
                        f"to the apt archive, {_fallback_hint()}") from None
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise UserError(f"{' '.join(command)} failed for debian:{package} ({reason}): check the package name "
                        f"and run apt-get update, {_fallback_hint()}")


def fetch_debian_package(package: str, cache_dir: Path | None = None) -> Path:
    """Download and unpack a Debian package into `cache_dir/<package>/root` once; return that root folder."""
    if not _PACKAGE_NAME.fullmatch(package):
        raise UserError(f"debian:{package} is not a Debian package name: pass debian:<name> such as {DEBIAN_DOCS}")
    package_dir = Path(cache_dir if cache_dir is not None else _cache_root()) / package
    root = package_dir / "root"
    if root.is_dir():
        say(f"debian:{package}: reusing the copy unpacked in {root}")
        return root
    _require_tools(package)
    package_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=package_dir, prefix=".download-"))
    try:
        say(f"debian:{package}: downloading with apt-get ...")
        _run(["apt-get", "download", package], work, package)
        debs = sorted(work.glob("*.deb"))
        if len(debs) != 1:
            raise UserError(f"apt-get download {package} left {len(debs)} .deb files instead of one: "
                            f"check the package name, {_fallback_hint()}")
        _run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], work, package)
        try:
            os.rename(work / "root", root)  # one step: a killed fetch never leaves a half-unpacked root
        except OSError:
            if not root.is_dir():  # another process may have published the same package meanwhile
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            package_dir.rmdir()  # only when empty: a failed first fetch leaves nothing behind
    say(f"debian:{package}: unpacked into {root}")
    return root


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _read_folder(folder: Path, pattern: str, min_chars: int, max_documents: int | None) -> list[Document]:
    """Files under `folder` matching `pattern`, by name; unreadable or non-UTF-8 ones skipped with a warning."""
    paths = sorted((p for p in folder.glob(pattern) if p.is_file()), key=lambda p: p.relative_to(folder).as_posix())
    if not paths:
        raise UserError(f"no file under {folder} matches {pattern!r}: pass another pattern or folder")
    documents, skipped = [], []
    for path in paths:
        if max_documents is not None and len(documents) >= max_documents:
            break
        text = _read_text(path)
        name = path.relative_to(folder).as_posix()
        if text is None:
            skipped.append(name)
        elif len(text) >= min_chars:
            documents.append(Document(name, text))
    if skipped:
        say(f"warning: skipped {len(skipped)} file(s) under {folder} that are not readable UTF-8 text "
            f"(first: {skipped[0]})")
    return documents


def _resolve_debian(spec: str, pattern: str | None) -> tuple[Path, str]:
    """The folder and pattern a `debian:<package>` source reads (fetching the package on first use)."""
    package = spec.removeprefix("debian:")
    root = fetch_debian_package(package)
    subfolder, default_pattern = DEBIAN_SOURCES.get(package, ("", DEFAULT_PATTERN))
    folder = root / subfolder
    if not folder.is_dir():
        raise UserError(f"debian:{package} has no folder {subfolder} after unpacking: delete {root.parent} "
                        f"to fetch it again")
    return folder, pattern or default_pattern


def load_documents(source: str | Path, pattern: str | None = None, min_chars: int = 0,
                   max_documents: int | None = None) -> list[Document]:
    """Documents of a folder (files matching `pattern`, default `**/*.txt`), a text file, or `debian:<package>`,
    sorted by name; those under `min_chars` characters dropped, at most `max_documents` kept."""
    if max_documents is not None and max_documents < 1:
        raise UserError(f"max_documents {max_documents}: pass a positive number, or None for all")
    if isinstance(source, str) and source.startswith("debian:"):
        folder, pattern = _resolve_debian(source, pattern)
    else:
        folder = Path(source)
        if folder.is_file():
            return _single_file(folder, min_chars)
        if not folder.is_dir():
            raise UserError(f"document source {source} does not exist: pass a folder of .txt files, a text file, "
                            f"or debian:<package> (such as {DEBIAN_DOCS})")
    documents = _read_folder(folder, pattern or DEFAULT_PATTERN, min_chars, max_documents)
    if not documents:
        raise UserError(f"no readable document under {folder} has {min_chars} or more characters: "
                        f"lower min_chars or pass another source")
    return documents


def _single_file(path: Path, min_chars: int) -> list[Document]:
    text = _read_text(path)
    if text is None:
        raise UserError(f"document {path} is not readable UTF-8 text: pass a UTF-8 text file")
    if len(text) < min_chars:
        raise UserError(f"document {path} has {len(text)} characters, under min_chars {min_chars}: "
                        f"lower min_chars or pass a longer file")
    return [Document(path.name, text)]


# directives with no prose in them: index entries, toctrees, highlighting and authorship notes
_MARKUP_DIRECTIVES = frozenset({"index", "toctree", "highlight", "highlightlang", "sectionauthor", "moduleauthor",
                                "tabularcolumns", "currentmodule", "include", "testsetup", "testcleanup"})
_EXPLICIT_MARKUP = re.compile(r"\s*\.\.(?:\s+(.*))?$")  # ".." then a space or the line's end ("..." is not)
_DIRECTIVE_NAME = re.compile(r"([\w:-]+)::")
_DIRECTIVE = re.compile(r"\s*\.\. [\w:-]+::")
_OPTION = re.compile(r"\s+:[\w -]+:")


def _is_markup_only(line: str) -> bool:
    """A line opening a block with no prose: a markup directive, link target, substitution or comment."""
    explicit = _EXPLICIT_MARKUP.match(line)
    if explicit is None:
        return False
    rest = explicit.group(1) or ""
    directive = _DIRECTIVE_NAME.match(rest)
    if directive is not None:
        return directive.group(1) in _MARKUP_DIRECTIVES
    return not rest.startswith("[")  # footnotes and citations are prose; targets, substitutions, comments not


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block_end(lines: list[str], start: int) -> int:
    """Index just past the explicit-markup block opened at `start`: its more-indented lines and inner blanks."""
    if lines[start].strip() == ".." and (start + 1 == len(lines) or not lines[start + 1].strip()):
        return start + 1  # an empty comment: what follows is not part of it
    indent, end, i = _indent(lines[start]), start + 1, start + 1
    while i < len(lines):
        if lines[i].strip():
            if _indent(lines[i]) <= indent:
                break
            end = i + 1
        i += 1
    return end


def clean_rst(text: str) -> str:
    """reST as prose for a language model: markup-only blocks (`.. index::`, `.. _label:`, comments, toctree ...)
    and directive option lines dropped, code, prose and footnotes kept, 3+ blank lines collapsed into 2."""
    lines, kept, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if _is_markup_only(line):
            i = _block_end(lines, i)
            while i < len(lines) and not lines[i].strip() and (not kept or not kept[-1]):
                i += 1  # the blank lines that separated the dropped block
            continue
        kept.append(line.rstrip())
        i += 1
        if _DIRECTIVE.match(line):  # a kept directive (note, function, code-block ...): drop its :option: lines
            while i < len(lines) and _OPTION.match(lines[i]) and _indent(lines[i]) > _indent(line):
                i += 1
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(kept).strip("\n")) + "\n"


def _held_out_fraction(name: str, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the document name and seed alone."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(documents: Iterable[Document], held_out: float = 0.2,
                    seed: int = 0) -> tuple[list[Document], list[Document]]:
    """(train, held-out) by a hash of each name: about `held_out` of them held out, each document's side fixed
    by its name, so adding documents never moves one across."""
    if not 0 < held_out < 1:
        raise UserError(f"held_out {held_out}: pass a fraction between 0 and 1")
    documents = list(documents)
    train, test = [], []
    for document in documents:
        (test if _held_out_fraction(document.name, seed) < held_out else train).append(document)
    if not train or not test:
        side = "training" if not train else "held-out"
        raise UserError(f"splitting {len(documents)} documents with held_out={held_out} (seed {seed}) leaves the "
                        f"{side} side empty: add documents, or change held_out or seed")
    return train, test


def token_windows(token_ids: Sequence[int], length: int, stride: int | None = None) -> list[list[int]]:
    """Windows of exactly `length` tokens starting every `stride` tokens (default `length`); a shorter tail is
    dropped."""
    stride = length if stride is None else stride
    if length < 1 or stride < 1:
        raise UserError(f"token windows of length {length} and stride {stride}: pass positive numbers")
    return [list(token_ids[start:start + length]) for start in range(0, len(token_ids) - length + 1, stride)]
