"""`reasonlab demo`: one quick experiment per system, each at most 3 minutes on 2 cores, each ending in a headline.

A system registers its quick experiment in `reasonlab/systems/<name>/experiment.py`:

    from reasonlab.demo import Headline, register_demo, write_headline

    @register_demo("trm", "6x6 Sudoku: TRM vs deep supervision alone", minutes=2)
    def quick(run_root: Path, fresh: bool) -> Path:
        ...  # writes a run directory under run_root (reusing earlier work unless `fresh`)
        write_headline(run_dir, Headline(system="trm", measures=..., result=..., paper=..., holds=...))
        return run_dir

The headline is the demo's one claim in miniature: what is measured (one sentence), our number with its n and
spread, the paper's claim beside it, whether the miniature claim held in this run, and the run's summary plot.
A demo that cannot show its mechanism in 3 minutes says so with `kind="pipeline check"`. `reasonlab report`
opens with the headlines of every run it finds.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from reasonlab.runs import atomic_write_text

__all__ = ["DEMOS", "HEADLINE_FILE", "Demo", "Headline", "discover_demos", "read_headline", "register_demo",
           "write_headline"]

HEADLINE_FILE = "headline.json"
DemoFn = Callable[[Path, bool], Path]


class Headline(BaseModel):
    """A run's one claim, as the demo prints it and the report's first table shows it."""

    system: str = Field(description="system name, e.g. trm")
    measures: str = Field(description="one sentence: what is measured, on what")
    result: str = Field(description="our number(s) with n and spread, e.g. '0.62 vs 0.48 (n=200 puzzles, 95% CI ...)'")
    paper: str = Field(description="the paper's claim this miniature stands for")
    holds: bool | None = Field(None, description="did the miniature claim hold in this run (None: not a claim)")
    kind: Literal["result", "pipeline check"] = "result"
    plot: str | None = Field(None, description="the summary plot, relative to the run directory")
    note: str = Field("", description="what the reader must know: a shipped checkpoint, a scale caveat")


@dataclass(frozen=True)
class Demo:
    name: str
    title: str
    minutes: float  # expected minutes on 2 cores, announced before it starts
    run: DemoFn


DEMOS: dict[str, Demo] = {}


def register_demo(name: str, title: str, minutes: float = 3.0) -> Callable[[DemoFn], DemoFn]:
    """Register `fn(run_root, fresh) -> run_dir` as the quick experiment of system `name`."""

    def decorator(fn: DemoFn) -> DemoFn:
        DEMOS[name] = Demo(name, title, minutes, fn)
        return fn

    return decorator


def discover_demos() -> dict[str, Demo]:
    """Import every `reasonlab.systems.<name>.experiment` module so that its demo registers itself."""
    import reasonlab.systems as systems

    for module in pkgutil.iter_modules(systems.__path__):
        if module.ispkg and importlib.util.find_spec(f"reasonlab.systems.{module.name}.experiment"):
            importlib.import_module(f"reasonlab.systems.{module.name}.experiment")
    return dict(sorted(DEMOS.items()))


def write_headline(run_dir: str | Path, headline: Headline) -> Path:
    """Write `headline.json` into the run directory (atomically)."""
    path = Path(run_dir) / HEADLINE_FILE
    atomic_write_text(path, headline.model_dump_json(indent=2) + "\n")
    return path


def read_headline(run_dir: str | Path) -> Headline | None:
    """The run's headline, or None when it has none (or an unreadable one)."""
    path = Path(run_dir) / HEADLINE_FILE
    if not path.is_file():
        return None
    try:
        return Headline.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError):
        return None
