"""Configuration: one pydantic model per command, loadable from YAML and overridable from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reasonlab.errors import UserError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


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


def load_config(cls: type[ConfigT], path: str | Path | None = None, **overrides: Any) -> ConfigT:
    """Build `cls` from an optional YAML file, then apply CLI overrides (None means 'not given')."""
    data: dict[str, Any] = load_yaml(path) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        source = f" in {path}" if path is not None else ""
        raise UserError(f"config field '{field}'{source}: {first['msg']}: fix the value and retry") from None
