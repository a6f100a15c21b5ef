"""Small statistics every experiment reports: mean and spread over seeds, intervals for rates.

A number in a summary or a demo line always travels with its n and its spread:

    >>> format_rate(7, 20)
    '0.35 (7/20, 95% CI 0.18-0.57)'
    >>> format_mean([0.5, 0.7, 0.6])
    '0.600 ± 0.100 (n=3)'
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Rate", "format_mean", "format_rate", "mean_spread", "wilson_interval"]


def mean_spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """`{"mean", "sd", "min", "max", "n"}` over the values that are not None (sd: sample standard deviation,
    0 for one value; every field None when there is no value)."""
    kept = [float(value) for value in values if value is not None]
    if not kept:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    return {
        "mean": statistics.fmean(kept),
        "sd": statistics.stdev(kept) if len(kept) > 1 else 0.0,
        "min": min(kept),
        "max": max(kept),
        "n": len(kept),
    }


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate (95% for z = 1.96); (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    rate = successes / n
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(successes: float, n: int) -> str:
    """`0.35 (7/20, 95% CI 0.18-0.57)`."""
    low, high = wilson_interval(successes, n)
    rate = successes / n if n else float("nan")
    count = f"{successes:g}/{n}"
    return f"{rate:.2f} ({count}, 95% CI {low:.2f}-{high:.2f})"


def format_mean(values: Sequence[float | None], digits: int = 3) -> str:
    """`0.600 ± 0.100 (n=3)`: mean ± sample standard deviation over the values that are not None."""
    stats = mean_spread(values)
    if not stats["n"]:
        return "n/a (n=0)"
    return f"{stats['mean']:.{digits}f} ± {stats['sd']:.{digits}f} (n={stats['n']})"


@dataclass(frozen=True)
class Rate:
    """k successes out of n, with the 95% Wilson interval."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    def as_dict(self) -> dict[str, float | int | None]:
        low, high = wilson_interval(self.k, self.n)
        return {"rate": self.value, "k": self.k, "n": self.n, "ci_low": low, "ci_high": high}

    def __str__(self) -> str:
        return format_rate(self.k, self.n) if self.n else "n/a (0/0)"
