"""What the variables of a study's datasets mean: CF-style attributes, and the grid factors as coordinates.

Every data variable and coordinate of the raw store and of the summary carries a
``long_name``; ``units`` is ``"1"`` for counts, shares and flags and ``"s"`` for times.
Estimates, standard errors, bias, SEs and RMSE are in the units of their parameter (the
response's units for fixed effects and SDs, squared for variances), which differ along
``param``: they carry a ``description`` saying so instead of one ``units``. The fit status
codes are CF flags (``flag_values``, ``flag_meanings``).

Grid factors become coordinates on ``point`` with Python-friendly names (``subjects`` for
``layout.subjects``, ``sd_group_Intercept`` for ``truth.re.group.sd."(Intercept)"``); the
dotted path as written in the study file is kept in the coordinate's ``path`` attribute. A
grid over a whole table (``"truth.re.g.sd" = [{...}, {...}]``) becomes one coordinate per
leaf value. ``grid_factors`` (a dataset attribute) lists the factor coordinates in order,
first varying slowest.
"""

from __future__ import annotations

import json
import keyword
import re
import tomllib
from collections.abc import Mapping

import numpy as np
import xarray as xr

from workbench.checks import show
from workbench.fitting.status import flag_meanings, flag_values

CONVENTIONS = "CF-1.10"
IN_PARAMETER_UNITS = "in the units of each parameter: the response's for fixed effects and SDs, squared for variances"

# name: (long_name, units or None for parameter units, extra attributes)
RAW = {
    "point": ("design point", "1"),
    "replicate": ("replicate (data set) of a design point", "1"),
    "analysis": ("fitted model and estimator, <analysis>:<method>", None),
    "analysis_model": ("name of the fitted model (empty: the generating model)", None),
    "estimator": ("estimator (ML or REML)", None),
    "param": ("parameter", None),
    "kind": ("kind of parameter (fixed, variance, covariance, residual, sd, corr)", None),
    "group": ("grouping factor of a random-effect parameter", None),
    "effect": ("effect(s) of a parameter", None),
    "scale": ("scale of a parameter (value, variance, sd)", None),
    "truth": ("true value of the parameter", None),
    "estimate": ("estimate of the parameter", None),
    "std_error": ("model-based standard error of the estimate", None),
    "objective": ("criterion at the optimum: -2 log-likelihood (ML) or REML criterion, lme4's scale", "1"),
    "converged": ("fit converged (flag)", "1"),
    "singular": ("fit is singular: a relative SD below 1e-4 (flag)", "1"),
    "n_evals": ("evaluations of the objective", "1"),
    "fit_seconds": ("processor time per fit (wall time of its chunk shared out over fits and threads)", "s"),
    "status": ("how the fit ended", "1"),
    "done": ("replicate finished (flag)", "1"),
    "test": ("test, <fit>:<ddf>:<effect> or lrt:<smaller><<larger>:<method>:<null>", None),
    "test_kind": ("kind of test (fixed: t or z test of a fixed effect; lrt: likelihood ratio)", None),
    "test_analysis": ("fit whose estimates are tested (the larger fit of a likelihood-ratio test)", None),
    "test_effect": ("fixed effect tested, or the parameters the larger model adds", None),
    "test_null": ("ddf method of a t test, or null distribution of a likelihood-ratio test", None),
    "statistic": ("test statistic: t (or z), or the likelihood-ratio statistic", "1"),
    "df": ("degrees of freedom of the test (inf for z)", "1"),
    "p_value": ("p-value of the test", "1"),
    "test_reason": ("why a test has no value (reason_codes attribute)", "1"),
    "interval": ("interval method", None),
    "lower": ("lower limit of the interval", None),
    "upper": ("upper limit of the interval", None),
    "interval_reason": ("why an interval has no value (reason_codes attribute)", "1"),
}

_MEASURE_NAMES = {
    "bias": ("bias: mean estimate minus truth", None),
    "relbias": ("relative bias: bias / truth, a fraction (0.01 = 1%)", "1"),
    "empse": ("empirical standard error: SD of the estimates", None),
    "modelse": ("model standard error: root mean of the squared standard errors", None),
    "relative_error_modelse": ("relative error of the model SE: modelse / empse - 1, a fraction", "1"),
    "rmse": ("root mean squared error", None),
    "coverage": ("coverage of the Wald intervals estimate +- z std_error among fits with a finite SE, a share", "1"),
    "coverage_all": ("coverage of the Wald intervals over all fits with an estimate (no SE: not covering)", "1"),
    "rejection": ("rejection rate at alpha over all finished replicates (no p-value: not rejecting)", "1"),
    "rejection_computed": ("rejection rate at alpha among the replicates with a p-value", "1"),
    "interval_coverage": ("coverage of the interval over all fits that asked for it (not computed: not covering)", "1"),
    "interval_coverage_computed": ("coverage of the interval among the computed intervals", "1"),
    "interval_be_coverage": ("bias-eliminated coverage: computed intervals covering the mean estimate", "1"),
    "interval_not_computed": ("share of the intervals asked for that could not be computed", "1"),
    "converged_share": ("share of converged fits among the finished replicates", "1"),
    "singular_share": ("share of singular fits among the finished replicates", "1"),
}
SUMMARY = {
    **{
        key: RAW[key]
        for key in ("point", "analysis", "analysis_model", "estimator", "param", "kind", "group", "effect", "scale", "truth")
    },
    **_MEASURE_NAMES,
    **{f"{name}_mcse": (f"Monte Carlo SE of the {name}", units) for name, (_, units) in _MEASURE_NAMES.items()},
    "subset": ("replicates summarised: all (finite estimates) or converged (converged fits only)", None),
    "n_used": ("replicates behind the estimate-based measures", "1"),
    "n_with_se": ("replicates with a finite standard error, behind model SE and coverage", "1"),
    "n_done": ("replicates finished", "1"),
    "mean_fit_seconds": ("mean processor time per fit", "s"),
    "n_p_missing": ("finished replicates without a p-value", "1"),
    "nominal_band": ("Monte Carlo band of a rejection rate equal to alpha: 1.96 sqrt(alpha (1 - alpha) / n_done)", "1"),
    "interval_width": ("mean width of the computed intervals", None),
    "interval_n": ("fits that asked for the interval (finished replicates)", "1"),
    "alpha": ("nominal level of the tests", "1"),
    **{key: RAW[key] for key in ("test", "test_kind", "test_analysis", "test_effect", "test_null", "interval")},
    "fit_seconds_total": ("processor time of all fits", "s"),
}


def describe(data: xr.Dataset, table: Mapping[str, tuple[str, str | None]]) -> xr.Dataset:
    """Set long_name and units (or the parameter-units description) of every variable named in `table`."""
    for name, (long_name, units) in table.items():
        if name not in data.variables:
            continue
        attrs = data[name].attrs
        attrs["long_name"] = long_name
        if units is not None:
            attrs["units"] = units
        elif np.issubdtype(data[name].dtype, np.number):
            attrs["description"] = IN_PARAMETER_UNITS
        if name == "status":
            attrs.update(status_flags())
    data.attrs["Conventions"] = CONVENTIONS
    return data


def status_flags() -> dict:
    """The CF flag attributes of the fit status codes."""
    return {"flag_values": np.array(flag_values(), dtype=np.int8), "flag_meanings": flag_meanings()}


# --- grid factors ---------------------------------------------------------------------------

_RESERVED = {*RAW, *SUMMARY, "grid_factors"}


def grid_coordinates(factors: Mapping[str, list]) -> tuple[dict[str, tuple[np.ndarray, dict]], list[str]]:
    """The coordinates on `point` of the grid factors, and the names of those that are dimensions.

    `factors` maps each grid path, as written in the study file, to its value at every point.
    Returns name -> (values, attributes), in grid order, and one name per grid path: the
    coordinate that becomes a dimension in `workbench.results.on_grid`. A path whose values
    are tables gives one coordinate per leaf (a key path inside the table); the first leaf
    whose values tell the tables apart is the dimension, and the others (attribute
    ``grid_dimension``) vary along it; if no leaf tells them apart, a coordinate
    ``<name>_level`` numbers the tables. Values that are neither numbers, strings nor tables
    become their TOML-like text.
    """
    leaves: list[tuple[int, tuple[str, ...], str, list]] = []
    for index, (path, values) in enumerate(factors.items()):
        segments = _segments(path)
        for inner, leaf_values in _leaves(values):
            leaves.append((index, (*segments, *inner), _joined(path, inner), leaf_values))
    short = [_identifier(_short(segments)) for _, segments, _, _ in leaves]
    names = []
    for (_, segments, _, _), name in zip(leaves, short):
        if short.count(name) > 1 or name in _RESERVED or hasattr(xr.Dataset, name):
            name = _identifier("_".join(segments))
        names.append(name)
    result: dict[str, tuple[np.ndarray, dict]] = {}
    dimensions = []
    for index, (path, values) in enumerate(factors.items()):
        mine = [(name, leaf) for name, leaf in zip(names, leaves) if leaf[0] == index]
        levels = [_key(value) for value in values]
        distinct = len(set(levels))
        dimension = next((name for name, leaf in mine if len(set(map(_key, leaf[3]))) == distinct), None)
        if dimension is None:
            dimension = f"{_identifier(_short(_segments(path)))}_level"
            order = list(dict.fromkeys(levels))
            attrs = {"long_name": f"level of grid factor {path}", "path": path, "label": label(_segments(path))}
            result[dimension] = (np.array([order.index(level) for level in levels]), attrs)
        dimensions.append(dimension)
        for name, (_, segments, leaf_path, leaf_values) in mine:
            attrs = {
                "long_name": f"grid factor {leaf_path}",
                "description": f"the value of {leaf_path} at each design point, in the study file's units",
                "path": leaf_path,
                "label": label(segments),
            }
            if name != dimension:
                attrs["grid_dimension"] = dimension
            result[name] = (_values(leaf_values), attrs)
    return result, dimensions


def _key(value):
    """A hashable stand-in for a grid value (tables and lists as their text)."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else show(value)


def label(segments: tuple[str, ...]) -> str:
    """A short label of a grid path for figures and tables: sd[g:(Intercept)], beta[x], subjects."""
    if segments[:2] == ("truth", "re") and len(segments) >= 5:
        return f"{segments[3]}[{segments[2]}:{'.'.join(segments[4:])}]"
    if segments[:2] == ("truth", "beta") and len(segments) >= 3:
        return f"beta[{'.'.join(segments[2:])}]"
    return ".".join(segments[1:]) or ".".join(segments)


def _short(segments: tuple[str, ...]) -> str:
    if segments[:2] == ("truth", "re") and len(segments) >= 4:
        return "_".join((segments[3], segments[2], *segments[4:]))
    return "_".join(segments[1:]) or "_".join(segments)


def _identifier(text: str) -> str:
    name = re.sub(r"[\W_]+", "_", text).strip("_") or "factor"
    if name[0].isdigit():
        name = f"f_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def _segments(path: str) -> tuple[str, ...]:
    """The keys of a dotted path; quoted keys as TOML reads them."""
    try:
        document = tomllib.loads(f"{path} = 0")
    except tomllib.TOMLDecodeError:
        return tuple(path.split("."))
    segments = []
    while isinstance(document, dict):
        (key, document), = document.items()
        segments.append(key)
    return tuple(segments)


def _joined(path: str, inner: tuple[str, ...]) -> str:
    quoted = [key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key) for key in inner]
    return ".".join([path, *quoted])


def _leaves(values: list) -> list[tuple[tuple[str, ...], list]]:
    """(key path inside the tables, value at every point) of each leaf; [((), values)] for scalars."""
    if not all(isinstance(v, Mapping) for v in values):
        return [((), list(values))]
    keys = list(dict.fromkeys(key for value in values for key in value))
    leaves = []
    for key in keys:
        inner = [value.get(key) for value in values]
        for path, leaf in _leaves(inner):
            leaves.append(((key, *path), leaf))
    return leaves


def _values(values: list) -> np.ndarray:
    """Grid values as a coordinate: numbers stay numbers (NaN where a table lacks one), anything else text."""
    numbers = [v for v in values if v is not None]
    if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        if len(numbers) == len(values):
            return np.array(values)
        return np.array([np.nan if v is None else float(v) for v in values])
    return np.array(["" if v is None else v if isinstance(v, str) else show(v) for v in values], dtype=object)


def factor_names(data: xr.Dataset) -> list[str]:
    """The grid factor coordinates of a dataset that are its grid's dimensions, in grid order (first varying slowest)."""
    return [name for name in str(data.attrs.get("grid_factors", "")).split() if name in data.coords]
