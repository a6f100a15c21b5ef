"""Configuration: one pydantic model per command, built from a preset, a YAML file, `--set KEY=VALUE` pairs
and the command's named options, in that order (a later source wins; an option left at None is not given).

Every system's CLI calls `resolve_config`; errors are one line naming the input and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reasonlab.errors import UserError

__all__ = ["check_keys", "config_error", "load_config", "load_yaml", "lookup_preset", "parse_list", "parse_sets", "resolve_config"]

ConfigT = TypeVar("ConfigT", bound=BaseModel)
PresetT = TypeVar("PresetT")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, raising a one-line UserError on a missing file or bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist: pass the path of an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"config file {path} is not valid YAML{line}: fix the syntax and retry") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping of option: value, not {type(data).__name__}")
    return data


def lookup_preset(presets: Mapping[str, PresetT], name: str, option: str = "--preset") -> PresetT:
    """`presets[name]`, or a one-line UserError listing the names there are."""
    if name not in presets:
        close = difflib.get_close_matches(name, list(presets), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"{option} {name!r} is unknown{hint}: use one of {', '.join(presets)}")
    return presets[name]


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """`["rl.lr=1e-4", "seeds=[0,1]"]` -> `{"rl": {"lr": 0.0001}, "seeds": [0, 1]}` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UserError(f"--set {item!r} is not KEY=VALUE: write e.g. --set lr=1e-4 or --set rl.lr=1e-4")
        _deep_merge(out, _nested(key.split("."), _read_value(text)))
    return out


def _read_value(text: str) -> Any:
    """A --set value as YAML, with `1e-4` read as a number (YAML 1.1 would keep it a string)."""
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if value.strip().lower() not in ("nan", "inf", "-inf", "infinity") else value
        except ValueError:
            return value
    return value


def parse_list(text: str | None, option: str) -> list[str] | None:
    """A comma-separated option (`--arms a,b`) as a list; None when not given; naming nothing is an error."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UserError(f"{option} {text!r} names nothing: give a comma-separated list")
    return items


def resolve_config(
    cls: type[ConfigT],
    preset: BaseModel | Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
    sets: Sequence[str] = (),
    **options: Any,
) -> ConfigT:
    """Preset, then the YAML file, then `--set` pairs, then named options that are not None; validated."""
    data = _as_dict(preset)
    sources: list[tuple[str, dict[str, Any]]] = []
    if config_file is not None:
        sources.append((f"config file {config_file}", load_yaml(config_file)))
    sources.append(("--set", parse_sets(sets)))
    sources.append(("option", {key: value for key, value in options.items() if value is not None}))
    for source, layer in sources:
        check_keys(cls, layer, source)
        _deep_merge(data, layer)
    return _validate(cls, data, config_file)


def load_config(cls: type[ConfigT], path: str | Path | None = None, **overrides: Any) -> ConfigT:
    """Build `cls` from an optional YAML file, then apply CLI overrides (None means 'not given')."""
    return resolve_config(cls, None, path, (), **overrides)


def config_error(err: ValidationError, source: str | Path | None = None) -> UserError:
    """One readable sentence for the first problem pydantic found (no URL, no dump)."""
    first = err.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "config"
    where = f" in {source}" if source is not None else ""
    return UserError(f"config field '{field}'{where}: {first['msg']}: fix the value and retry")


def _validate(cls: type[ConfigT], data: dict[str, Any], source: str | Path | None) -> ConfigT:
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise config_error(err, source) from None


def check_keys(cls: type[BaseModel], layer: Mapping[str, Any], source: str, prefix: str = "") -> None:
    """Refuse keys `cls` does not have, nested ones included (a typo would otherwise be dropped or half-applied)."""
    fields = cls.model_fields
    for key, value in layer.items():
        if key not in fields:
            if cls.model_config.get("extra") == "allow":
                continue
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise UserError(f"{source}: {cls.__name__} has no option '{prefix}{key}'{hint}: "
                            f"see `--help` for the options")
        sub = _model_type(fields[key].annotation)
        if sub is not None and isinstance(value, Mapping):
            check_keys(sub, value, source, f"{prefix}{key}.")


def _model_type(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _as_dict(config: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, BaseModel):
        return config.model_dump(exclude_unset=False)
    return {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in config.items()}


def _nested(path: list[str], value: Any) -> dict[str, Any]:
    for key in reversed(path[1:]):
        value = {key: value}
    return {path[0]: value}


def _deep_merge(into: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = _deep_merge(dict(into[key]), value)
        else:
            into[key] = value
    return into
