"""`--help` shows every option's default, including options left at None because a preset decides.

A command's options that default to None are "not given": `resolve_config` keeps the preset's value (or the
config model's default) for them. Their help shows that value, read from the default preset when the help is
drawn (never at import: some presets import torch), as `[default: VALUE (--preset NAME)]`. Text such as
`[default: 8]` written in a help string is shown as written (typer's rich markup would otherwise take it for a
style tag and drop it).

Mark a command with `@help_defaults(source, **paths)` under `@app.command(...)`; `show_defaults(app)` (called by
the root CLI) makes every command draw its help this way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from typer.core import TyperCommand

__all__ = ["DefaultsCommand", "help_defaults", "preset_value", "show_defaults"]

F = TypeVar("F", bound=Callable[..., Any])
Source = Callable[[str | None], BaseModel | Mapping[str, Any]]
ATTRIBUTE = "__help_defaults__"
WRITTEN_DEFAULT = re.compile(r"(?<!\\)\[(default: )")  # an unescaped '[default: ...]' in a help string
NO_VALUE = object()
NOTHING_BY_DEFAULT = ("--config", "--set")  # no YAML file, no KEY=VALUE pair unless given


def help_defaults(source: Source, **paths: str) -> Callable[[F], F]:
    """Mark a command: `source(preset_name)` gives the config its options default to (preset_name is the
    default of its `--preset` option, or None); `paths` maps an option's parameter name to its dotted key in
    that config where the two differ (e.g. `chunk="chunk_size"`, `schedule="curriculum.schedule"`)."""

    def mark(function: F) -> F:
        setattr(function, ATTRIBUTE, (source, paths))
        return function

    return mark


def preset_value(config: BaseModel | Mapping[str, Any], path: str) -> Any:
    """The value at dotted `path` of a config (NO_VALUE when it has none)."""
    data: Any = config.model_dump() if isinstance(config, BaseModel) else config
    for key in path.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return NO_VALUE
        data = data[key]
    return data


class DefaultsCommand(TyperCommand):
    """A typer command whose help shows the defaults of options left at None (see the module docstring)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with _defaults_in_help(self):
            super().format_help(ctx, formatter)


def show_defaults(app: typer.Typer) -> None:
    """Make every command of `app` and of its sub-apps a DefaultsCommand (before typer builds the click tree)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = DefaultsCommand
    for group in app.registered_groups:
        if group.typer_instance is not None:
            show_defaults(group.typer_instance)


@contextmanager
def _defaults_in_help(command: TyperCommand) -> Iterator[None]:
    """Append each None option's default to its help while the help is drawn; restore the help strings after."""
    original = {id(param): param.help for param in command.params if hasattr(param, "help")}
    try:
        defaults = _resolved_defaults(command)
        for param in command.params:
            text = getattr(param, "help", None) or ""
            written = WRITTEN_DEFAULT.search(text) is not None
            text = WRITTEN_DEFAULT.sub(r"\\[\1", text)
            if param.name in defaults and not written:
                text = f"{text} \\[default: {defaults[param.name]}]".strip()
            if hasattr(param, "help"):
                param.help = text
        yield
    finally:
        for param in command.params:
            if id(param) in original:
                param.help = original[id(param)]


def _resolved_defaults(command: TyperCommand) -> dict[str, str]:
    """Option name -> the default shown, for options that default to None and hold a value in the source."""
    marked = getattr(command.callback, ATTRIBUTE, None)
    source, paths = marked if marked is not None else (lambda name: {}, {})
    preset = next((p for p in command.params if p.name == "preset"), None)
    preset_name = preset.default if preset is not None and isinstance(preset.default, str) else None
    config = source(preset_name)
    shown = {p.name: "none" for p in command.params
             if p.name and not p.default and set(getattr(p, "opts", ())) & set(NOTHING_BY_DEFAULT)}
    for param in command.params:
        unset = param.default is None or (isinstance(param.default, (list, tuple)) and not param.default)
        if not unset or param.required or param.name is None or param.name in shown:
            continue
        value = preset_value(config, paths.get(param.name, param.name))
        if value is NO_VALUE:
            continue
        where = f" (--preset {preset_name})" if preset_name is not None else ""
        shown[param.name] = f"{_format(param, value)}{where}"
    return shown


def _format(param: Any, value: Any) -> str:
    """A value as a user would type it: flags by name, lists comma-separated, None as 'none'."""
    if isinstance(value, bool) and getattr(param, "secondary_opts", None):
        return (param.opts if value else param.secondary_opts)[0]
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value) or "none"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={item}" for key, item in value.items()) or "none"
    return str(value)
