"""Covariates of a layout: drawn per observation, or once per unit of a grouping column.

A ``[layout.covariates.<name>]`` table has a ``dist`` and its parameters (defaults in
brackets): ``normal`` (``mean`` [0], ``sd`` [1]), ``uniform`` (``low`` [0], ``high`` [1]),
``binary`` (``p`` [0.5]; values 0 and 1), ``categorical`` (``levels``, ``probs`` [equal];
a pandas categorical with the levels in the given order) or ``grid`` (``values``, assigned
in turn). ``level`` is ``"observation"`` (the default) or a column of the layout: the value
is then drawn once per unit of that column. Units of a nested factor are identified
together with their parents, so city 1 of state 1 and city 1 of state 2 are two units.

``grid`` values restart in each enclosing group: an observation-level grid runs through
the rows of each innermost group (subject, nested unit, crossed cell; the whole table for
a ``table`` layout), a factor-level grid through the units of the factor within each
parent unit (for a nested factor) or over the whole layout.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.checks import Checker, is_number, key_path, show
from workbench.errors import LayoutError

__all__ = ["OBSERVATION", "Covariate", "add_covariates", "parse_covariates"]

OBSERVATION = "observation"
_REQUIRED = object()
# Each distribution's parameters with their defaults.
_PARAMETERS: dict[str, dict[str, Any]] = {
    "normal": {"mean": 0.0, "sd": 1.0},
    "uniform": {"low": 0.0, "high": 1.0},
    "binary": {"p": 0.5},
    "categorical": {"levels": _REQUIRED, "probs": None},
    "grid": {"values": _REQUIRED},
}
_PROBS_TOLERANCE = 1e-6

_check = Checker(LayoutError)


@dataclass(frozen=True)
class Covariate:
    """One validated covariate: its column name, distribution, parameters and level."""

    name: str
    dist: str
    params: dict[str, Any]
    level: str


def parse_covariates(table: Any, path: str, columns: tuple[str, ...]) -> list[Covariate]:
    """Check the ``covariates`` table of a layout whose other columns are ``columns``."""
    table = _check.table(table, path)
    return [_parse(spec, key_path(path, name), name, columns) for name, spec in table.items()]


def _parse(spec: Any, path: str, name: str, columns: tuple[str, ...]) -> Covariate:
    spec = _check.table(spec, path)
    if not name:
        _check.fail(path, "a covariate needs a non-empty name")
    if name in columns:
        _check.fail(path, "name clashes with an existing column of the layout")
    dist_path = key_path(path, "dist")
    if "dist" not in spec:
        _check.fail(dist_path, f"required key is missing (one of: {', '.join(_PARAMETERS)})")
    dist = spec["dist"]
    if dist not in _PARAMETERS:
        _check.fail(dist_path, f"must be one of {' | '.join(_PARAMETERS)}, got {show(dist)}")
    defaults = _PARAMETERS[dist]
    required = tuple(key for key, default in defaults.items() if default is _REQUIRED)
    optional = tuple(key for key in defaults if key not in required)
    _check.keys(spec, path, ("dist", *required), (*optional, "level"))
    params = {key: spec.get(key, default) for key, default in defaults.items()}
    _PARAMETER_CHECKS[dist](params, path)
    level = spec.get("level", OBSERVATION)
    if level != OBSERVATION and level not in columns:
        _check.fail(
            key_path(path, "level"),
            f"must be {show(OBSERVATION)} or a column of the layout ({', '.join(columns)}), "
            f"got {show(level)}",
        )
    return Covariate(name, dist, params, level)


def _check_normal(params: dict, path: str) -> None:
    _check.number(params["mean"], key_path(path, "mean"))
    _check.non_negative_number(params["sd"], key_path(path, "sd"))


def _check_uniform(params: dict, path: str) -> None:
    low = _check.number(params["low"], key_path(path, "low"))
    high = _check.number(params["high"], key_path(path, "high"))
    if high <= low:
        bound = f"{key_path(path, 'low')} ({show(low)})"
        _check.fail(key_path(path, "high"), f"must be greater than {bound}, got {show(high)}")


def _check_binary(params: dict, path: str) -> None:
    _check.number_in(params["p"], key_path(path, "p"), (0, 1))


def _check_categorical(params: dict, path: str) -> None:
    levels = _value_list(params["levels"], key_path(path, "levels"), distinct=True)
    probs = params["probs"]
    if probs is not None and not (
        isinstance(probs, list)
        and len(probs) == len(levels)
        and all(is_number(p) and p >= 0 for p in probs)
        and abs(sum(probs) - 1) <= _PROBS_TOLERANCE
    ):
        _check.fail(
            key_path(path, "probs"),
            f"must be {len(levels)} non-negative numbers (one per level) summing to 1, "
            f"got {show(probs)}",
        )


def _check_grid(params: dict, path: str) -> None:
    _value_list(params["values"], key_path(path, "values"), distinct=False)


def _value_list(value: Any, path: str, distinct: bool) -> list:
    if not (
        isinstance(value, list)
        and value
        and (all(isinstance(v, str) for v in value) or all(is_number(v) for v in value))
    ):
        _check.fail(path, f"must be a non-empty list of strings or of numbers, got {show(value)}")
    for i, item in enumerate(value):
        if distinct and item in value[:i]:
            _check.fail(path, f"lists {show(item)} twice")
    return value


_PARAMETER_CHECKS = {
    "normal": _check_normal,
    "uniform": _check_uniform,
    "binary": _check_binary,
    "categorical": _check_categorical,
    "grid": _check_grid,
}


def add_covariates(
    frame: pd.DataFrame,
    covariates: list[Covariate],
    units: Mapping[str, tuple[str, ...]],
    innermost: tuple[str, ...],
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Return ``frame`` with a column per covariate, drawn in order from ``rng``.

    Parameters
    ----------
    units : Mapping
        For each column of ``frame`` usable as a level, the columns identifying its units.
    innermost : tuple of str
        The columns identifying the smallest groups (empty: the whole frame is one group).
    """
    columns = {cov.name: _column(cov, frame, units, innermost, rng) for cov in covariates}
    return frame.assign(**columns)


def _column(cov: Covariate, frame: pd.DataFrame, units, innermost, rng: np.random.Generator):
    if cov.level == OBSERVATION:
        unit, parent_keys = np.arange(len(frame)), innermost
    else:
        keys = units[cov.level]
        unit, parent_keys = _codes(frame, keys), keys[:-1]
    n_units = int(unit.max()) + 1
    params = cov.params
    if cov.dist == "grid":
        # Codes number the units in order of appearance, so np.unique finds their first rows.
        first_rows = np.unique(unit, return_index=True)[1]
        parent = _codes(frame, parent_keys)[first_rows]
        position = pd.Series(parent).groupby(parent).cumcount().to_numpy()
        values = np.asarray(params["values"])
        return values[position % len(values)][unit]
    if cov.dist == "normal":
        return rng.normal(params["mean"], params["sd"], n_units)[unit]
    if cov.dist == "uniform":
        return rng.uniform(params["low"], params["high"], n_units)[unit]
    if cov.dist == "binary":
        return (rng.random(n_units) < params["p"]).astype(np.int64)[unit]
    levels, probs = params["levels"], params["probs"]
    if probs is not None:
        probs = np.asarray(probs, dtype=float) / sum(probs)
    codes = rng.choice(len(levels), size=n_units, p=probs)
    return pd.Categorical.from_codes(codes[unit], categories=levels)


def _codes(frame: pd.DataFrame, keys: tuple[str, ...]) -> np.ndarray:
    """Number the groups of ``frame`` by ``keys`` 0, 1, ... in order of first appearance."""
    if not keys:
        return np.zeros(len(frame), dtype=np.int64)
    groups = frame.groupby(list(keys), sort=False, dropna=False, observed=True)
    return groups.ngroup().to_numpy()
