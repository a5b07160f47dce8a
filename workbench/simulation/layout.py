"""Layouts: the rows of one data set, covariates and grouping factors, made from a spec.

A spec is the ``[layout]`` table of a study file. Its ``kind`` is one of

- ``longitudinal``: ``subjects`` measured at ``times``, optionally with unbalanced
  ``visits`` (``{min = k}``, ``{min, max}``, ``{poisson, min}`` or a list; see
  :mod:`workbench.simulation.sizes`), monotone dropout ``dropout = p`` (each later visit
  lost with probability p once the previous one was), or dropout at random on the previous
  response ``dropout = {intercept, slope}`` (see :mod:`workbench.simulation.dropout`);
- ``nested``: ``levels = {state = 20, city = 5}`` (outer first) with ``size``
  observations per innermost unit (an integer, ``{min, max}``, ``{poisson, min}`` or a
  list cycled over the units; see :mod:`workbench.simulation.sizes`); inner labels restart
  at 1 within each parent, as in data that needs ``(1 | state/city)``;
- ``crossed``: ``factors = {sender = 30, receiver = 30}`` with ``size`` observations per
  cell, each cell kept with probability ``fraction``, optionally ``exclude_equal``;
- ``table``: the rows of a CSV file at ``path``, optionally only some ``columns``.

Every kind takes ``[layout.covariates.<name>]`` tables (see
:mod:`workbench.simulation.covariates`) and

- ``missing = p`` in [0, 1): each observation is missing completely at random with
  probability p (drawn after the rows and covariates);
- ``redraw = true``: a study draws the layout — group sizes, covariates, missingness —
  anew for every replicate, from the replicate's own layout stream (see
  :mod:`workbench.simulation.simulate`), instead of once per design point. The
  random-effect structure (which factors, nested or crossed, q per term) stays the same.

The draws of one layout, in order: the rows (random visits, sizes, dropout, cells), the
covariates in file order, then the ``missing`` draw; a response-dependent dropout draws
after them, once the data set's response exists.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from workbench.checks import Checker, is_number, key_path, show
from workbench.errors import LayoutError
from workbench.simulation.covariates import Covariate, add_covariates, parse_covariates
from workbench.simulation.dropout import ResponseDropout, drop_missing
from workbench.simulation.sizes import Sizes, parse_sizes, parse_visits

__all__ = ["KINDS", "MAX_ROWS", "LayoutSpec", "make_layout", "prepare_layout", "validate_layout"]

KINDS = ("longitudinal", "nested", "crossed", "table")
# Keys every kind takes, besides its own.
_COMMON = ("covariates", "missing", "redraw")
# A guard against typos such as ``subjects = 5000000``, which would exhaust memory.
MAX_ROWS = 100_000_000

_check = Checker(LayoutError)


@dataclass(frozen=True)
class _Plan:
    """What validation learned about a layout: how to make its rows and what they hold."""

    rows: Callable[[np.random.Generator], pd.DataFrame]
    columns: tuple[str, ...]
    units: dict[str, tuple[str, ...]]  # column -> the columns that identify its units
    innermost: tuple[str, ...]  # the columns that identify the smallest groups
    max_rows: int
    dropout: ResponseDropout | None = None


@dataclass(frozen=True)
class LayoutSpec:
    """A validated layout spec, ready to make rows (a ``table`` layout's file is read once)."""

    plan: _Plan
    covariates: tuple[Covariate, ...]
    missing: float
    redraw: bool
    prefix: str

    @property
    def dropout(self) -> ResponseDropout | None:
        """The response-dependent dropout, applied to each simulated data set (or None)."""
        return self.plan.dropout

    def make(self, rng: np.random.Generator) -> pd.DataFrame:
        """The rows of one data set, drawn only from ``rng`` (before any response-dependent dropout)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        frame = self.plan.rows(rng)
        frame = add_covariates(frame, list(self.covariates), self.plan.units, self.plan.innermost, rng)
        frame = drop_missing(frame, self.missing, rng)
        if frame.empty:
            _check.fail(key_path(self.prefix, "missing"), f"removed every row this time (missing {self.missing:g})")
        return frame


def prepare_layout(spec: Mapping, base_dir: Path | None = None, prefix: str = "layout") -> LayoutSpec:
    """Validate a layout spec once, for making many layouts from it; raise `LayoutError` naming the bad key."""
    return _prepare(spec, base_dir, prefix)


def validate_layout(spec: Mapping, base_dir: Path | None = None, prefix: str = "layout") -> None:
    """Check a layout spec without generating it; raise `LayoutError` naming the bad key.

    Parameters
    ----------
    spec : Mapping
        The ``[layout]`` table.
    base_dir : Path, optional
        The folder a ``table`` layout's ``path`` is relative to (default: the working folder).
    prefix : str
        The key path of ``spec`` in the study file, used in error messages.
    """
    _prepare(spec, base_dir, prefix)


def make_layout(
    spec: Mapping,
    rng: np.random.Generator,
    base_dir: Path | None = None,
    prefix: str = "layout",
) -> pd.DataFrame:
    """Make the rows of one data set from a layout spec, drawing only from ``rng``.

    Raises `LayoutError` for an invalid spec, and for a ``crossed`` layout whose random
    ``fraction`` happened to keep no cell.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return _prepare(spec, base_dir, prefix).make(rng)


def _prepare(spec: Mapping, base_dir: Path | None, prefix: str) -> LayoutSpec:
    spec = _check.table(spec, prefix)
    kind_path = key_path(prefix, "kind")
    if "kind" not in spec:
        _check.fail(kind_path, f"required key is missing (one of: {', '.join(KINDS)})")
    kind = spec["kind"]
    if kind not in KINDS:
        _check.fail(kind_path, f"must be one of {' | '.join(KINDS)}, got {show(kind)}")
    settings = {key: value for key, value in spec.items() if key not in _COMMON}
    plan = _PLANNERS[kind](settings, prefix, base_dir)
    if plan.max_rows > MAX_ROWS:
        _check.fail(prefix, f"would have up to {plan.max_rows:,} rows, more than {MAX_ROWS:,}")
    covariates = parse_covariates(
        spec.get("covariates", {}), key_path(prefix, "covariates"), plan.columns
    )
    missing_path = key_path(prefix, "missing")
    missing = float(_check.number_in(spec.get("missing", 0.0), missing_path, (0, 1), "left"))
    if missing and plan.dropout is not None:
        dropout_path = key_path(prefix, "dropout")
        _check.fail(missing_path, f"cannot be combined with a response-dependent {dropout_path}")
    redraw = _check.boolean(spec.get("redraw", False), key_path(prefix, "redraw"))
    return LayoutSpec(plan, tuple(covariates), missing, redraw, prefix)


def _allow(spec: Mapping, prefix: str, required: tuple[str, ...], optional: tuple[str, ...]):
    _check.keys(spec, prefix, ("kind", *required), (*optional, *_COMMON))


def _name(spec: Mapping, key: str, default: str, prefix: str) -> str:
    return _check.string(spec.get(key, default), key_path(prefix, key))


def _counts(value, path: str, noun: str, minimum: int) -> dict[str, int]:
    """Check a table of factor name -> number of levels, in the file's order."""
    if not isinstance(value, Mapping) or len(value) < minimum:
        need = "a table" if minimum <= 1 else f"a table of at least {minimum} entries"
        _check.fail(path, f"must be {need} like {{{noun} = 10, ...}}, got {show(value)}")
    for name in value:
        if not name:
            _check.fail(key_path(path, name), "a factor needs a non-empty name")
    return {name: _check.integer(count, key_path(path, name), 1) for name, count in value.items()}


def _labels(counts: list[int]) -> list[np.ndarray]:
    """Labels 1..k of each factor over all combinations, the first factor varying slowest."""
    labels, stride = [], math.prod(counts)
    combination = np.arange(stride)
    for count in counts:
        stride //= count
        labels.append(combination // stride % count + 1)
    return labels


# --- longitudinal ---------------------------------------------------------------------


def _plan_longitudinal(spec: Mapping, prefix: str, base_dir: Path | None) -> _Plan:
    _allow(spec, prefix, ("subjects", "times"), ("subject", "time", "visits", "dropout"))
    subjects = _check.integer(spec["subjects"], key_path(prefix, "subjects"), 1)
    times_path = key_path(prefix, "times")
    times = spec["times"]
    if not (isinstance(times, list) and times and all(is_number(t) for t in times)):
        _check.fail(times_path, f"must be a non-empty list of numbers, got {show(times)}")
    if any(later <= earlier for earlier, later in zip(times, times[1:])):
        _check.fail(times_path, f"must be increasing, got {show(times)}")
    subject = _name(spec, "subject", "subject", prefix)
    time = _name(spec, "time", "time", prefix)
    if time == subject:
        _check.fail(key_path(prefix, "time"), f"same column name as {key_path(prefix, 'subject')}")
    visits, dropout = _visit_rule(spec, prefix, len(times), subject)
    rows = partial(_longitudinal_rows, subjects, np.asarray(times), subject, time, visits)
    return _Plan(rows, (subject, time), {subject: (subject,), time: (time,)}, (subject,),
                subjects * len(times), dropout)


def _visit_rule(
    spec: Mapping, prefix: str, n_times: int, subject: str
) -> tuple[Sizes | float | None, ResponseDropout | None]:
    """The visits rule (`Sizes`, a monotone dropout probability, or None) and any response-dependent dropout."""
    dropout_path = key_path(prefix, "dropout")
    if "visits" in spec and "dropout" in spec:
        visits_path = key_path(prefix, "visits")
        _check.fail(dropout_path, f"cannot be combined with {visits_path}")
    if "dropout" in spec and isinstance(spec["dropout"], Mapping):
        table = spec["dropout"]
        _check.keys(table, dropout_path, ("intercept", "slope"))
        intercept = _check.number(table["intercept"], key_path(dropout_path, "intercept"))
        slope = _check.number(table["slope"], key_path(dropout_path, "slope"))
        return None, ResponseDropout(float(intercept), float(slope), subject)
    if "dropout" in spec:
        return float(_check.number_in(spec["dropout"], dropout_path, (0, 1))), None
    if "visits" in spec:
        return parse_visits(spec["visits"], key_path(prefix, "visits"), n_times), None
    return None, None


def _longitudinal_rows(subjects, times, subject, time, visits, rng) -> pd.DataFrame:
    n_times = len(times)
    if visits is None:
        counts = np.full(subjects, n_times)
    elif isinstance(visits, Sizes):
        counts = visits.draw(rng, subjects)
    else:
        # A subject stays for each later visit until the first dropout draw succeeds.
        stays = rng.random((subjects, n_times - 1)) >= visits
        counts = 1 + np.cumprod(stays, axis=1).sum(axis=1)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    visit = np.arange(counts.sum()) - starts
    return pd.DataFrame(
        {subject: np.repeat(np.arange(1, subjects + 1), counts), time: times[visit]}
    )


# --- nested ---------------------------------------------------------------------------


def _plan_nested(spec: Mapping, prefix: str, base_dir: Path | None) -> _Plan:
    _allow(spec, prefix, ("levels",), ("size",))
    levels = _counts(spec["levels"], key_path(prefix, "levels"), "state", 1)
    size = parse_sizes(spec.get("size", 1), key_path(prefix, "size"))
    names = tuple(levels)
    units = {name: names[: i + 1] for i, name in enumerate(names)}
    rows = partial(_nested_rows, levels, size)
    return _Plan(rows, names, units, names, math.prod(levels.values()) * size.largest)


def _nested_rows(levels: dict[str, int], size: Sizes, rng) -> pd.DataFrame:
    labels = _labels(list(levels.values()))
    sizes = size.draw(rng, len(labels[0]))
    return pd.DataFrame({name: np.repeat(label, sizes) for name, label in zip(levels, labels)})


# --- crossed --------------------------------------------------------------------------


def _plan_crossed(spec: Mapping, prefix: str, base_dir: Path | None) -> _Plan:
    _allow(spec, prefix, ("factors",), ("size", "fraction", "exclude_equal"))
    factors = _counts(spec["factors"], key_path(prefix, "factors"), "sender", 2)
    size = _check.integer(spec.get("size", 1), key_path(prefix, "size"), 1)
    fraction_path = key_path(prefix, "fraction")
    fraction = _check.number_in(spec.get("fraction", 1.0), fraction_path, (0, 1), "right")
    exclude_path = key_path(prefix, "exclude_equal")
    exclude_equal = _check.boolean(spec.get("exclude_equal", False), exclude_path)
    if exclude_equal and len(set(factors.values())) > 1:
        _check.fail(
            exclude_path, f"needs factors with equal numbers of levels, got {show(factors)}"
        )
    if exclude_equal and next(iter(factors.values())) == 1:
        _check.fail(exclude_path, "leaves no cell when every factor has one level")
    names = tuple(factors)
    rows = partial(_crossed_rows, factors, size, fraction, exclude_equal, fraction_path)
    return _Plan(rows, names, {name: (name,) for name in names}, names,
                math.prod(factors.values()) * size)


def _crossed_rows(factors: dict[str, int], size, fraction, exclude_equal, fraction_path, rng):
    labels = _labels(list(factors.values()))
    keep = np.ones(len(labels[0]), dtype=bool)
    if exclude_equal:
        keep &= ~np.all([label == labels[0] for label in labels[1:]], axis=0)
    if fraction < 1:
        keep &= rng.random(len(keep)) < fraction
    if not keep.any():
        _check.fail(
            fraction_path, f"kept no cell this time (fraction {fraction:g}); use a larger fraction"
        )
    columns = {name: np.repeat(label[keep], size) for name, label in zip(factors, labels)}
    return pd.DataFrame(columns)


# --- table ----------------------------------------------------------------------------


def _plan_table(spec: Mapping, prefix: str, base_dir: Path | None) -> _Plan:
    _allow(spec, prefix, ("path",), ("columns",))
    path_key = key_path(prefix, "path")
    folder = Path.cwd() if base_dir is None else Path(base_dir)
    file = (folder / _check.string(spec["path"], path_key)).resolve()
    if not file.is_file():
        _check.fail(path_key, f"no such file: {file}")
    try:
        table = pd.read_csv(file, low_memory=False)
    except (ValueError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        _check.fail(path_key, f"cannot read {file} as CSV: {reason}")
    if table.empty:
        _check.fail(path_key, f"{file} has no rows")
    if "columns" in spec:
        table = table[_columns(spec["columns"], key_path(prefix, "columns"), list(table.columns))]
    names = tuple(table.columns)
    rows = partial(_table_rows, table)
    return _Plan(rows, names, {name: (name,) for name in names}, (), len(table))


def _columns(value, path: str, available: list[str]) -> list[str]:
    if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        _check.fail(path, f"must be a non-empty list of column names, got {show(value)}")
    for i, name in enumerate(value):
        if name not in available:
            known = ", ".join(available)
            _check.fail(path, f"unknown column {show(name)} (the file has: {known})")
        if name in value[:i]:
            _check.fail(path, f"column {show(name)} is listed twice")
    return value


def _table_rows(table: pd.DataFrame, rng) -> pd.DataFrame:
    return table.copy()


_PLANNERS = {
    "longitudinal": _plan_longitudinal,
    "nested": _plan_nested,
    "crossed": _plan_crossed,
    "table": _plan_table,
}
