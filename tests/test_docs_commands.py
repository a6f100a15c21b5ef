"""Every `reasonlab ...` command line in README.md and docs/*.md parses: each command and option it names exists
and each value has the option's type (the commands are passed through click's parser, not run)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
PREFIX = re.compile(r"^(?:\$\s+)?(?:\S*/)?reasonlab(?:\s|$)")  # `reasonlab`, `.venv/bin/reasonlab`, `$ reasonlab`


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    args: list[str]  # after `reasonlab`


def code_block_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block, continuation lines joined onto the first."""
    lines: list[tuple[int, str]] = []
    inside, pending, start = False, "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if open_quote(pending + line):  # a quoted argument goes on to the next line
            pending += line + "\n"
            continue
        lines.append((start, pending + line))
        pending = ""
    return lines


def split_command(line: str) -> list[str]:
    """Shell words of one line, without a trailing comment (a word starting with `#`, as in bash; a `#` inside a
    word, as in `openai:URL#MODEL`, stays)."""
    lexer = shlex.shlex(without_comment(line).strip(), posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def without_comment(line: str) -> str:
    """`line` up to a `#` that starts a word outside quotes (a comment may hold an unmatched quote)."""
    return _scan(line)[0]


def open_quote(line: str) -> bool:
    """Whether `line` ends inside a quoted string (comments left out)."""
    return bool(_scan(line)[1])


def _scan(line: str) -> tuple[str, str]:
    """(the line without its comment, the quote still open at its end)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index], ""
    return line, quote


def doc_commands() -> list[DocCommand]:
    found = []
    for path in DOCS:
        for number, line in code_block_lines(path.read_text()):
            stripped = line.strip()
            if PREFIX.match(stripped):
                try:
                    words = split_command(stripped.removeprefix("$").strip())[1:]
                except ValueError as err:  # unbalanced quotes: the test of this line fails, naming it
                    words = [f"<cannot split the line: {err}>"]
                found.append(DocCommand(f"{path.relative_to(ROOT)}:{number}", words))
    return found


def root_command():
    import typer

    from reasonlab import cli

    cli._add_system_apps()  # mounts each system once
    return typer.main.get_command(cli.app)


PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z0-9_]*|<[^>]+>)$")  # N, PATH, <steps>: a value the reader fills in


def with_numbers_for_placeholders(command, args: list[str]) -> list[str]:
    """A placeholder given to a number option (`--steps N`) becomes 1, so that the check is of the option's name;
    a placeholder given to a text option is a valid text already."""
    numeric = {name for param in command.params for name in getattr(param, "opts", ())
               if _annotation(param) in (int, float)}
    return [("1" if PLACEHOLDER.match(word) and index and args[index - 1] in numeric else word)
            for index, word in enumerate(args)]


def _annotation(param) -> object:
    """The Python type of a parameter: typer keeps it in `type_descriptor`, click in `type`."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return getattr(descriptor, "annotation", None)
    return {"integer": int, "float": float}.get(getattr(getattr(param, "type", None), "name", ""))


def parse(command, args: list[str]) -> list[str]:
    """Parse `args` down the sub-command chain as click would before running; returns the command path."""
    path = ["reasonlab"]
    context = command.make_context("reasonlab", with_numbers_for_placeholders(command, list(args)))
    while hasattr(command, "resolve_command"):  # a group: the rest names a sub-command
        rest = [*getattr(context, "_protected_args", []), *context.args]
        if not rest:
            raise AssertionError(f"`{' '.join(path)}` needs a sub-command")
        name, command, rest = command.resolve_command(context, rest)
        path.append(name)
        context = command.make_context(name, with_numbers_for_placeholders(command, rest), parent=context)
    assert not context.args, f"unexpected extra arguments {context.args}"
    return path


COMMANDS = doc_commands()


def test_the_docs_hold_command_lines() -> None:
    """The scan finds the documented commands (a broken scan would pass every file vacuously)."""
    assert len(COMMANDS) >= 30
    assert {command.where.split(":")[0] for command in COMMANDS} >= {"README.md", "docs/trm.md", "docs/h1.md",
                                                                      "docs/ace.md", "docs/delethink.md",
                                                                      "docs/memagent.md"}


@pytest.mark.parametrize("command", COMMANDS, ids=[command.where for command in COMMANDS])
def test_documented_command_parses(command: DocCommand) -> None:
    try:
        parse(root_command(), command.args)
    except Exception as err:  # click's UsageError (vendored by typer) or a missing sub-command
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        pytest.fail(f"{command.where}: `reasonlab {shlex.join(command.args)}`: {message}")


@pytest.mark.parametrize(("line", "problem"), [
    ("reasonlab trm train --no-such-option 1", "No such option"),
    ("reasonlab demo trm", "unexpected extra argument"),
    ("reasonlab trm fly", "No such command"),
    ("reasonlab trm train --max-steps many", "Invalid value for '--max-steps'"),
    ("reasonlab trm", "needs a sub-command"),
])
def test_the_parser_refuses_what_does_not_exist(line: str, problem: str) -> None:
    with pytest.raises(Exception) as caught:
        parse(root_command(), split_command(line)[1:])
    err = caught.value
    assert problem in f"{type(err).__name__}: {err.format_message() if hasattr(err, 'format_message') else err}"


def test_joined_continuations_comments_and_prefixes() -> None:
    text = ("```bash\n.venv/bin/reasonlab trm train --preset cpu \\\n  --name a   # a comment\n"
            "reasonlab generate --llm 'openai:http://h:1/v1#m' \"hi\nthere\"  # it's\n```\nreasonlab outside a block\n")
    lines = [split_command(line) for _, line in code_block_lines(text)]
    assert lines == [[".venv/bin/reasonlab", "trm", "train", "--preset", "cpu", "--name", "a"],
                     ["reasonlab", "generate", "--llm", "openai:http://h:1/v1#m", "hi\nthere"]]
    assert parse(root_command(), lines[0][1:]) == ["reasonlab", "trm", "train"]


def test_placeholders_are_accepted_as_values() -> None:
    line = "reasonlab --threads N trm train --max-steps N --data-path PATH --lr <rate>"
    assert parse(root_command(), split_command(line)[1:]) == ["reasonlab", "trm", "train"]
    with pytest.raises(Exception, match="No such option"):
        parse(root_command(), split_command("reasonlab trm train --max-stepz N")[1:])
