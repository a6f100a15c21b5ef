"""`reasonlab demo`: a small registry of quick experiments, one per system, each <= 3 minutes on 2 cores.

A system registers its quick experiment in `reasonlab/systems/<name>/experiment.py`:

    from reasonlab.demo import register_demo

    @register_demo("trm", "Sudoku 4x4: TRM vs. deep supervision alone")
    def quick(run_root: Path) -> Path:
        ...  # writes a run directory under run_root and returns it
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEMOS", "Demo", "discover_demos", "register_demo"]


@dataclass(frozen=True)
class Demo:
    name: str
    title: str
    run: Callable[[Path], Path]


DEMOS: dict[str, Demo] = {}


def register_demo(name: str, title: str) -> Callable[[Callable[[Path], Path]], Callable[[Path], Path]]:
    """Register `fn(run_root) -> run_dir` as the quick experiment of system `name`."""

    def decorator(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        DEMOS[name] = Demo(name, title, fn)
        return fn

    return decorator


def discover_demos() -> dict[str, Demo]:
    """Import every `reasonlab.systems.<name>.experiment` module so that its demo registers itself."""
    import reasonlab.systems as systems

    for module in pkgutil.iter_modules(systems.__path__):
        if module.ispkg and importlib.util.find_spec(f"reasonlab.systems.{module.name}.experiment"):
            importlib.import_module(f"reasonlab.systems.{module.name}.experiment")
    return dict(sorted(DEMOS.items()))
