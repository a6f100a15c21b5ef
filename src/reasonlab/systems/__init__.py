"""The ten systems. Each is a sub-package with its own `cli.py` (a Typer sub-app named `app`) and
`experiment.py` (its small-scale reproduction, registering a quick demo). Systems never import each other.
The pattern every system follows is docs/contributing.md."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 `__getattr__`/`__dir__` for a system package: `{module: [names]}` are imported on first use, so
    `reasonlab --help` (which imports every system's cli) does not pay for torch. A module is never named like
    a name it exports (training.train, evaluation.evaluate), so importing a submodule never shadows an export."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
