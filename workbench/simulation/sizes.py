"""Group sizes of a layout: fixed, uniform, shifted Poisson, or a list cycled over the groups.

A nested layout's ``size`` (observations per innermost unit) is

- a positive integer: every unit has that many;
- ``{min = a, max = b}``: uniform on a..b, drawn per unit;
- ``{poisson = m, min = a}``: a + Poisson(m − a), drawn per unit, so that the mean is m and
  no unit is smaller than a (``min`` defaults to 1; m ≥ a);
- ``[k₁, k₂, ...]``: the sizes in turn, cycled over the units in layout order.

A longitudinal layout's ``visits`` (visits per subject, the first ones of ``times``) is
``{min = a}`` or ``{min = a, max = b}`` (uniform on a..b, b defaulting to the number of
times), ``{poisson = m, min = a}`` (as above, then capped at the number of times, which
lowers the mean when the cap binds) or a list cycled over the subjects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.checks import Checker, is_integer, is_number, key_path, show
from workbench.errors import LayoutError

__all__ = ["Sizes", "parse_sizes", "parse_visits"]

_check = Checker(LayoutError)


@dataclass(frozen=True)
class Sizes:
    """A rule for the sizes of a layout's groups."""

    kind: str  # "fixed" | "uniform" | "poisson" | "cycle"
    low: int = 1
    high: int | None = None  # the largest size (uniform), or the cap of a Poisson size
    mean: float = 0.0  # Poisson
    values: tuple[int, ...] = ()  # cycle

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """The sizes of ``count`` groups; only uniform and Poisson sizes draw from ``rng``."""
        if self.kind == "fixed":
            return np.full(count, self.low, dtype=np.int64)
        if self.kind == "uniform":
            return rng.integers(self.low, self.high, size=count, endpoint=True)
        if self.kind == "poisson":
            sizes = self.low + rng.poisson(self.mean - self.low, count)
            return sizes if self.high is None else np.minimum(sizes, self.high)
        return np.resize(np.array(self.values, dtype=np.int64), count)

    @property
    def largest(self) -> int:
        """An upper bound of the sizes, for the guard against huge layouts (a Poisson size may
        exceed it, with negligible probability)."""
        if self.kind == "cycle":
            return max(self.values)
        if self.kind == "fixed":
            return self.low
        if self.high is not None:
            return self.high
        extra = self.mean - self.low
        return self.low + math.ceil(extra + 10 * math.sqrt(extra) + 10)


def parse_sizes(value: Any, path: str) -> Sizes:
    """Check a nested layout's ``size`` (see the module docstring)."""
    if isinstance(value, Mapping):
        if "poisson" in value:
            return _poisson(value, path, None)
        _check.keys(value, path, ("min", "max"))
        low = _check.integer(value["min"], key_path(path, "min"), 1)
        high = _check.integer(value["max"], key_path(path, "max"), 1)
        if high < low:
            minimum = f"{key_path(path, 'min')} ({low})"
            _check.fail(key_path(path, "max"), f"must be at least {minimum}, got {high}")
        return Sizes("uniform", low, high)
    if isinstance(value, list):
        return _cycle(value, path, None)
    if not (is_integer(value) and value >= 1):
        _check.fail(
            path,
            "must be a positive integer, a table {min, max} or {poisson, min}, or a list of positive integers,"
            f" got {show(value)}",
        )
    return Sizes("fixed", int(value))


def parse_visits(value: Any, path: str, n_times: int) -> Sizes:
    """Check a longitudinal layout's ``visits`` for ``n_times`` times (see the module docstring)."""
    if isinstance(value, list):
        return _cycle(value, path, n_times)
    if not isinstance(value, Mapping):
        _check.fail(path, f"must be a table like {{min = 3}} or a list of visit counts, got {show(value)}")
    if "poisson" in value:
        return _poisson(value, path, n_times)
    _check.keys(value, path, ("min",), ("max",))
    low = _check.integer(value["min"], key_path(path, "min"), 1, n_times)
    high = _check.integer(value.get("max", n_times), key_path(path, "max"), low, n_times)
    return Sizes("uniform", low, high)


def _poisson(value: Mapping, path: str, cap: int | None) -> Sizes:
    _check.keys(value, path, ("poisson",), ("min",))
    low = _check.integer(value.get("min", 1), key_path(path, "min"), 1, cap)
    mean_path = key_path(path, "poisson")
    mean = value["poisson"]
    if not (is_number(mean) and mean >= low):
        _check.fail(mean_path, f"must be a number of at least {key_path(path, 'min')} ({low}), got {show(mean)}")
    return Sizes("poisson", low, cap, float(mean))


def _cycle(value: list, path: str, cap: int | None) -> Sizes:
    ok = value and all(is_integer(v) and v >= 1 and (cap is None or v <= cap) for v in value)
    if not ok:
        within = "positive integers" if cap is None else f"integers from 1 to {cap}"
        _check.fail(path, f"must be a non-empty list of {within}, got {show(value)}")
    return Sizes("cycle", values=tuple(int(v) for v in value))
