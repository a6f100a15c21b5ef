"""The ten systems. Each is a sub-package with its own `cli.py` (a Typer sub-app named `app`) and
`experiment.py` (its small-scale reproduction, registering a quick demo). Systems never import each other."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


class _LazyPackage(types.ModuleType):
    """A system package whose exports load on first use. Where an export shares its name with the submodule
    that defines it (trm.train, delethink.evaluate, ace.adapt), importing that submodule must not replace the
    export: the import system's `setattr(package, "train", <module>)` stores the function instead."""

    def __setattr__(self, name: str, value: Any) -> None:
        exports = self.__dict__.get("_lazy_exports", {})
        if isinstance(value, types.ModuleType) and exports.get(name) == value.__name__ == f"{self.__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 `__getattr__`/`__dir__` for a system package: `{module: [names]}` are imported on first use, so
    `reasonlab --help` (which imports every system's cli) does not pay for torch."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}
    sys.modules[package].__class__ = _LazyPackage
    sys.modules[package]._lazy_exports = where

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # cache: later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__
