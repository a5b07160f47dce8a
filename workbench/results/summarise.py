"""Monte Carlo performance measures of a study's raw replicates, each with its Monte Carlo SE.

The measures and their Monte Carlo standard errors (MCSE) follow Morris, White &
Crowther (2019), "Using simulation studies to evaluate statistical methods", Stat Med
38:2074-2102, Table 6. For the n_sim usable estimates theta_i of a parameter with true
value theta, mean theta_bar and model standard errors s_i:

- bias = theta_bar - theta;  MCSE = sqrt(sum (theta_i - theta_bar)^2 / (n_sim (n_sim - 1)))
- empse = sqrt(sum (theta_i - theta_bar)^2 / (n_sim - 1));  MCSE = empse / sqrt(2 (n_sim - 1))
- mse = sum (theta_i - theta)^2 / n_sim;
  MCSE = sqrt(sum ((theta_i - theta)^2 - mse)^2 / (n_sim (n_sim - 1)))
- modelse = sqrt(mean s_i^2);  MCSE = sqrt(var(s_i^2) / (4 n_sim modelse^2))
- relative error in modelse = modelse / empse - 1;
  MCSE = (modelse / empse) sqrt(var(s_i^2) / (4 n_sim modelse^4) + 1 / (2 (n_sim - 1)))
- coverage = share of |theta_i - theta| <= z s_i;  MCSE = sqrt(coverage (1 - coverage) / n_sim)
- coverage_all = the same share over every replicate with an estimate (n_used), an interval
  without a finite SE counted as not covering: coverage rests on n_with_se replicates only

with var(s_i^2) the sample variance (divisor n_sim - 1). Two measures are derived from
these: relbias = bias / theta with MCSE = MCSE(bias) / |theta|, and rmse = sqrt(mse) with
MCSE(mse) / (2 rmse) by the delta method. The model-SE measures and coverage use the
replicates whose standard error is also finite (their count ``n_with_se`` is n_sim in
those formulas; the empirical-SE term of the relative error keeps ``n_used``).
"""

from __future__ import annotations

import numbers
import textwrap

import numpy as np
import xarray as xr
from scipy.special import ndtri

from workbench.results.inference_summary import inference_attrs, inference_coordinates, interval_measures, test_measures
from workbench.results.metadata import SUMMARY, describe, factor_names

SUBSETS = ("all", "converged")
MEASURES = ("bias", "relbias", "empse", "modelse", "relative_error_modelse", "rmse", "coverage", "coverage_all")

# Cells with fewer usable replicates than this get NaN: no spread can be estimated.
_MIN_REPLICATES = 2


def summarise(raw: xr.Dataset, level: float = 0.95, alpha: tuple[float, ...] | None = None) -> xr.Dataset:
    """Performance measures with Monte Carlo SEs per design point, analysis, parameter and subset.

    Parameters
    ----------
    raw : xarray.Dataset
        Raw replicates with dims (point, replicate, analysis, param), the variables
        ``estimate``, ``std_error``, ``converged``, ``singular`` and ``truth``, and
        optionally ``done(point, replicate)`` marking the replicates computed so far.
    level : float
        Nominal level of the Wald intervals estimate ± z std_error, z = Phi^-1((1 + level) / 2).
    alpha : tuple of float, optional
        Levels of the tests' rejection rates (default: the store's ``alpha`` attribute, or 0.05).

    Returns
    -------
    xarray.Dataset
        Dims (point, analysis, param, subset) with subset = "all" (every finished replicate
        with a finite estimate) and "converged" (only converged fits). Each measure of
        ``MEASURES`` with its ``<measure>_mcse``; ``n_used`` and ``n_with_se`` (replicates
        behind the estimate-based and the SE-based measures); ``truth``; ``n_done(point)``;
        ``converged_share`` and ``singular_share`` (point, analysis) over all finished
        replicates, with their binomial MCSEs. Cells with fewer than 2 replicates are NaN.
        With tests or intervals in the store, the measures of
        `workbench.results.inference_summary` too, on dims (point, test, alpha) and
        (point, analysis, interval, param).
    """
    if not 0 < level < 1:
        raise ValueError(f"level: must be between 0 and 1, got {level}")
    z = float(ndtri((1 + level) / 2))
    cell, fit = ("point", "analysis", "param", "replicate"), ("point", "analysis", "replicate")
    estimate = _values(raw["estimate"], cell)
    std_error = _values(raw["std_error"], cell)
    truth = _values(raw["truth"], ("point", "param"))[:, np.newaxis, :]
    done = _done(raw)
    # Replicates not yet computed hold fill values; the done mask overrides them.
    converged = _values(raw["converged"], fit).astype(bool) & done[:, np.newaxis, :]
    singular = _values(raw["singular"], fit).astype(bool) & done[:, np.newaxis, :]

    usable = np.isfinite(estimate) & done[:, np.newaxis, np.newaxis, :]
    subsets = {"all": usable, "converged": usable & converged[:, :, np.newaxis, :]}
    per_subset = [_measures(estimate, std_error, truth, subsets[name], z) for name in SUBSETS]

    dims = ("point", "analysis", "param", "subset")
    data_vars = {
        name: (dims, np.stack([measures[name] for measures in per_subset], axis=-1))
        for name in per_subset[0]
    }
    n_done = done.sum(axis=-1)
    for name, flags in (("converged_share", converged), ("singular_share", singular)):
        share, mcse = _binomial(flags.sum(axis=-1), n_done[:, np.newaxis])
        data_vars[name] = (("point", "analysis"), share)
        data_vars[f"{name}_mcse"] = (("point", "analysis"), mcse)
    data_vars["n_done"] = (("point",), n_done)
    if alpha is None:
        alpha = tuple(np.atleast_1d(raw.attrs.get("alpha", [0.05])).astype(float))
    if "p_value" in raw:
        data_vars.update(test_measures(raw, done, alpha))
    if "lower" in raw:
        data_vars.update(interval_measures(raw, done))
    data_vars["truth"] = (("point", "param"), truth[:, 0, :])

    # Variable-length strings: Zarr v3 has a specification for them, not for fixed-width ones.
    coords = {
        "point": raw["point"].values,
        "analysis": np.array([str(v) for v in raw["analysis"].values], dtype=object),
        "param": np.array([str(v) for v in raw["param"].values], dtype=object),
        "subset": np.array(SUBSETS, dtype=object),
        **inference_coordinates(raw, alpha),
    }
    summary = xr.Dataset(data_vars, coords=coords)
    extra = {
        name: _object_strings(coord.variable)
        for name, coord in raw.coords.items()
        if name not in raw.dims and set(coord.dims) <= {"point", "analysis", "param"} and name not in coords
    }
    summary = summary.assign_coords(extra)
    # The creation time stays in the store: a summary changes only when its numbers do.
    attrs = {key: value for key, value in _plain_attrs(raw.attrs).items() if key not in _RUN_ATTRS}
    summary.attrs = {**attrs, "level": level, **inference_attrs(raw)}
    if "p_value" in raw:
        summary.attrs["alpha"] = np.asarray(alpha, dtype=float)
    for name in ("point", "analysis", "param"):
        summary[name].attrs.update(raw[name].attrs)
    return describe(summary, SUMMARY)


def timing(raw: xr.Dataset) -> xr.Dataset:
    """Processor time per fit of the finished replicates: mean and total per design point and analysis.

    Kept apart from the summary (which changes only when its numbers do): times differ from run to run.
    """
    seconds = _values(raw["fit_seconds"], ("point", "analysis", "replicate"))
    counted = _done(raw)[:, np.newaxis, :] & np.isfinite(seconds)
    total = np.where(counted, seconds, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / counted.sum(axis=-1)
    coords = {name: _object_strings(raw[name].variable) for name in ("point", "analysis")}
    coords.update(
        {name: _object_strings(coord.variable) for name, coord in raw.coords.items()
         if name not in raw.dims and set(coord.dims) <= {"point", "analysis"}}
    )
    data = xr.Dataset(
        {"mean_fit_seconds": (("point", "analysis"), mean), "fit_seconds_total": (("point", "analysis"), total)},
        coords=coords,
        attrs={key: raw.attrs[key] for key in ("study_name", "grid_factors") if key in raw.attrs},
    )
    return describe(data, SUMMARY)


# Attributes of one run or of how its store is laid out, rather than of the results.
_RUN_ATTRS = ("created", "units_per_chunk")


def _object_strings(variable: xr.Variable) -> xr.Variable:
    """Text as Python strings (object dtype), which every netCDF engine writes; other values unchanged."""
    if variable.dtype.kind in "OUT" or str(variable.dtype).startswith("StringDType"):
        text = np.array([str(v) for v in np.ravel(variable.values)], dtype=object).reshape(variable.shape)
        return xr.Variable(variable.dims, text, variable.attrs)
    return variable


def _values(array: xr.DataArray, dims: tuple[str, ...]) -> np.ndarray:
    """The values of ``array`` with its dims in the given order."""
    return np.asarray(array.transpose(*dims).values)


def _done(raw: xr.Dataset) -> np.ndarray:
    """Boolean (point, replicate) mask of the replicates computed so far."""
    if "done" not in raw:
        return np.ones((raw.sizes["point"], raw.sizes["replicate"]), dtype=bool)
    return _values(raw["done"], ("point", "replicate")).astype(bool)


def _plain_attrs(attrs: dict) -> dict:
    """The attributes whose values are strings or numbers, or sequences of them."""

    def plain(value) -> bool:
        return isinstance(value, (str, numbers.Number)) and not isinstance(value, complex)

    kept = {}
    for key, value in attrs.items():
        if plain(value):
            kept[key] = value
        elif isinstance(value, (list, tuple, np.ndarray)) and all(plain(item) for item in np.ravel(value)):
            kept[key] = value
    return kept


def _binomial(count: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share count / n and its MCSE sqrt(p (1 - p) / n); NaN where n < 2."""
    enough = n >= _MIN_REPLICATES
    share = np.where(enough, count / np.maximum(n, 1), np.nan)
    mcse = np.sqrt(np.where(enough, share * (1 - share) / np.maximum(n, 1), np.nan))
    return share, mcse


def _masked_mean(values: np.ndarray, mask: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the entries where ``mask`` holds (n of them)."""
    return np.where(mask, values, 0.0).sum(axis=-1) / n


def _masked_variance(values: np.ndarray, mask: np.ndarray, mean: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sample variance (divisor n - 1) over the last axis, two-pass for accuracy."""
    deviation = np.where(mask, values - mean[..., np.newaxis], 0.0)
    return (deviation**2).sum(axis=-1) / (n - 1)


def _measures(estimate, std_error, truth, use, z) -> dict[str, np.ndarray]:
    """All measures for one subset; arrays (point, analysis, param, replicate) reduce over replicate."""
    n = use.sum(axis=-1)
    with_se = use & np.isfinite(std_error)
    n_se = with_se.sum(axis=-1)
    truth_known = np.isfinite(truth)
    # Cells with n < 2 divide by zero here; they are set to NaN below.
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = _masked_mean(estimate, use, n)
        variance = _masked_variance(estimate, use, mean, n)
        bias = mean - truth
        bias_mcse = np.sqrt(variance / n)
        empse = np.sqrt(variance)
        empse_mcse = empse / np.sqrt(2 * (n - 1))

        relbias = np.where(truth != 0, bias / truth, np.nan)
        relbias_mcse = np.where(truth != 0, bias_mcse / np.abs(truth), np.nan)

        squared_error = (estimate - truth[..., np.newaxis]) ** 2
        mse = _masked_mean(squared_error, use, n)
        mse_mcse = np.sqrt(_masked_variance(squared_error, use, mse, n) / n)
        rmse = np.sqrt(mse)
        rmse_mcse = mse_mcse / (2 * rmse)

        model_variance = std_error**2
        mean_model_variance = _masked_mean(model_variance, with_se, n_se)
        spread_model_variance = _masked_variance(model_variance, with_se, mean_model_variance, n_se)
        modelse = np.sqrt(mean_model_variance)
        modelse_mcse = np.sqrt(spread_model_variance / (4 * n_se * mean_model_variance))
        ratio = modelse / empse
        relative_error = ratio - 1
        relative_error_mcse = ratio * np.sqrt(
            spread_model_variance / (4 * n_se * mean_model_variance**2) + 1 / (2 * (n - 1))
        )

        covered = with_se & (np.abs(estimate - truth[..., np.newaxis]) <= z * std_error)
        coverage = np.where(truth_known, covered.sum(axis=-1) / n_se, np.nan)
        coverage_mcse = np.sqrt(coverage * (1 - coverage) / n_se)
        # over every replicate with an estimate: one without a finite SE does not cover
        coverage_all = np.where(truth_known, covered.sum(axis=-1) / n, np.nan)
        coverage_all_mcse = np.sqrt(coverage_all * (1 - coverage_all) / n)

    few = n < _MIN_REPLICATES
    few_se = n_se < _MIN_REPLICATES
    result = {
        "bias": (bias, bias_mcse, few),
        "relbias": (relbias, relbias_mcse, few),
        "empse": (empse, empse_mcse, few),
        "modelse": (modelse, modelse_mcse, few_se),
        "relative_error_modelse": (relative_error, relative_error_mcse, few | few_se),
        "rmse": (rmse, rmse_mcse, few),
        "coverage": (coverage, coverage_mcse, few_se),
        "coverage_all": (coverage_all, coverage_all_mcse, few),
    }
    out = {}
    for name, (value, mcse, missing) in result.items():
        out[name] = np.where(missing, np.nan, value)
        out[f"{name}_mcse"] = np.where(missing, np.nan, mcse)
    out["n_used"] = n
    out["n_with_se"] = n_se
    return out


def format_table(summary: xr.Dataset, point=None, subset: str = "all", wide: bool = False) -> str:
    """Plain-text table of the measures (each with its MCSE) per design point, parameter and analysis.

    The default table fits 100 columns: bias, relative bias in %, empirical and model SE and
    coverage, each parameter on a line of its own with a row per analysis under it. With
    `wide`, every measure, a row per parameter and analysis.

    Parameters
    ----------
    summary : xarray.Dataset
        The output of :func:`summarise`.
    point : optional
        A value of the ``point`` coordinate; every point in turn when omitted.
    subset : {"all", "converged"}
    wide : bool
        Every measure (wider than 100 columns).
    """
    points = summary["point"].values if point is None else [point]
    factors = factor_names(summary) or [
        name for name, coord in summary.coords.items() if name != "point" and coord.dims == ("point",)
    ]
    return "\n\n".join(
        _format_point(summary.sel(point=value, subset=subset), factors, subset, wide) for value in points
    )


# (variable, column title, scale of value and MCSE); the compact table gives the SEs without
# their MCSEs (rounded to them), so that it fits 100 columns.
_COMPACT = (
    ("bias", "bias", 1),
    ("relbias", "rel. bias %", 100),
    ("empse", "emp. SE*", 1),
    ("modelse", "model SE*", 1),
    ("coverage", "coverage", 1),
)
_WITHOUT_MCSE = ("empse", "modelse")
_WIDE = (
    ("bias", "bias", 1),
    ("relbias", "rel. bias %", 100),
    ("empse", "emp. SE", 1),
    ("modelse", "model SE", 1),
    ("relative_error_modelse", "rel. error model SE %", 100),
    ("rmse", "RMSE", 1),
    ("coverage", "coverage", 1),
)
TABLE_WIDTH = 100


def _format_point(cell: xr.Dataset, factors: list[str], subset: str, wide: bool) -> str:
    """Heading (the point's grid factor values, fit shares) and table of one design point."""
    cell = cell.load()  # a summary opened lazily is read once here, not cell by cell below
    analyses = [str(m) for m in cell["analysis"].values]
    params = [str(p) for p in cell["param"].values]
    # Cells by position in the plain arrays: a label lookup through xarray takes a millisecond or two.
    positions = {
        "analysis": {m: i for i, m in enumerate(analyses)},
        "param": {p: i for i, p in enumerate(params)},
    }

    def value(name: str, index: dict) -> float:
        variable = cell.variables[name]
        return variable.values[tuple(positions[dim][index[dim]] for dim in variable.dims)]

    def text(name: str, index: dict, scale: float = 1, mcse: bool = True) -> str:
        shown = _with_mcse(scale * value(name, index), scale * value(f"{name}_mcse", index))
        return shown if mcse else shown.split(" (")[0]

    settings = ", ".join(f"{name} = {_plain(cell[name].values)}" for name in factors)
    heading = f"point {_plain(cell['point'].values)}" + (f": {settings}" if settings else "")
    lines = [heading]
    for name, title in (("converged_share", "converged"), ("singular_share", "singular")):
        shares = ", ".join(f"{m} {text(name, {'analysis': m})}" for m in analyses)
        lines += textwrap.wrap(f"{title}: {shares}", TABLE_WIDTH, subsequent_indent="  ")
    level = cell.attrs.get("level", 0.95)
    note = (
        f"{int(cell['n_done'].values)} replicates; subset {subset}; estimate (MCSE)"
        f"{'' if wide else ', * without it'}; coverage of {level:.0%} Wald intervals"
    )
    lines += textwrap.wrap(note, TABLE_WIDTH, subsequent_indent="  ")
    columns = _WIDE if wide else _COMPACT
    if wide:
        header = ["parameter", "analysis", "truth", *(title for _, title, _ in columns)]
        rows = [
            [param, m, _plain(value("truth", {"param": param}))]
            + [text(name, {"analysis": m, "param": param}, scale) for name, _, scale in columns]
            for param in params
            for m in analyses
        ]
        return "\n".join([*lines, *_aligned(header, rows, left=2)])
    header = ["", *(title for _, title, _ in columns)]
    rows, titles = [], {}
    for param in params:
        titles[len(rows)] = f"{param}, truth {_plain(value('truth', {'param': param}))}"
        for m in analyses:
            rows.append(
                [f"  {m}"]
                + [
                    text(name, {"analysis": m, "param": param}, scale, name not in _WITHOUT_MCSE)
                    for name, _, scale in columns
                ]
            )
    table = _aligned(header, rows, left=1)
    body = [table[0]]
    for i, line in enumerate(table[1:]):
        if i in titles:
            body.append(titles[i])
        body.append(line)
    return "\n".join([*lines, *body])


def _aligned(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Lines of a table: the first `left` columns flush left, the others flush right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [value.ljust(width) if i < left else value.rjust(width) for i, (value, width) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]


def _plain(value) -> str:
    value = np.asarray(value).item()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _with_mcse(value, mcse) -> str:
    """'value (mcse)' with the value rounded to the MCSE's second significant digit."""
    value, mcse = float(value), float(mcse)
    if not np.isfinite(value):
        return "-"
    if not np.isfinite(mcse):
        return f"{value:.4g}"
    if mcse == 0:
        return f"{value:.4g} (0)"
    decimals = int(min(max(1 - np.floor(np.log10(mcse)), 0), 12))
    return f"{value:.{decimals}f} ({mcse:.{decimals}f})"
