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

with var(s_i^2) the sample variance (divisor n_sim - 1). Two measures are derived from
these: relbias = bias / theta with MCSE = MCSE(bias) / |theta|, and rmse = sqrt(mse) with
MCSE(mse) / (2 rmse) by the delta method. The model-SE measures and coverage use the
replicates whose standard error is also finite (their count ``n_with_se`` is n_sim in
those formulas; the empirical-SE term of the relative error keeps ``n_used``).
"""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr
from scipy.special import ndtri

SUBSETS = ("all", "converged")
MEASURES = ("bias", "relbias", "empse", "modelse", "relative_error_modelse", "rmse", "coverage")

# Cells with fewer usable replicates than this get NaN: no spread can be estimated.
_MIN_REPLICATES = 2


def summarise(raw: xr.Dataset, level: float = 0.95) -> xr.Dataset:
    """Performance measures with Monte Carlo SEs per design point, analysis, parameter and subset.

    Parameters
    ----------
    raw : xarray.Dataset
        Raw replicates with dims (point, replicate, analysis, param), the variables
        ``estimate``, ``std_error``, ``converged``, ``singular`` and ``truth``, and
        optionally ``done(point, replicate)`` marking the replicates computed so far.
    level : float
        Nominal level of the Wald intervals estimate ± z std_error, z = Phi^-1((1 + level) / 2).

    Returns
    -------
    xarray.Dataset
        Dims (point, analysis, param, subset) with subset = "all" (every finished replicate
        with a finite estimate) and "converged" (only converged fits). Each measure of
        ``MEASURES`` with its ``<measure>_mcse``; ``n_used`` and ``n_with_se`` (replicates
        behind the estimate-based and the SE-based measures); ``truth``; ``n_done(point)``;
        ``converged_share`` and ``singular_share`` (point, analysis) over all finished
        replicates, with their binomial MCSEs. Cells with fewer than 2 replicates are NaN.
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
    data_vars["truth"] = (("point", "param"), truth[:, 0, :])

    # Variable-length strings: Zarr v3 has a specification for them, not for fixed-width ones.
    coords = {
        "point": raw["point"].values,
        "analysis": raw["analysis"].values.astype(object),
        "param": raw["param"].values.astype(object),
        "subset": np.array(SUBSETS, dtype=object),
    }
    summary = xr.Dataset(data_vars, coords=coords)
    extra = {
        name: coord.variable
        for name, coord in raw.coords.items()
        if name not in raw.dims and set(coord.dims) <= {"point", "analysis", "param"}
    }
    summary = summary.assign_coords(extra)
    summary.attrs = {**_plain_attrs(raw.attrs), "level": level}
    return summary


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
    }
    out = {}
    for name, (value, mcse, missing) in result.items():
        out[name] = np.where(missing, np.nan, value)
        out[f"{name}_mcse"] = np.where(missing, np.nan, mcse)
    out["n_used"] = n
    out["n_with_se"] = n_se
    return out


def format_table(summary: xr.Dataset, point=None, subset: str = "all") -> str:
    """Plain-text table of bias, empirical SE and coverage (each with its MCSE) per parameter and analysis.

    Parameters
    ----------
    summary : xarray.Dataset
        The output of :func:`summarise`.
    point : optional
        A value of the ``point`` coordinate; every point in turn when omitted.
    subset : {"all", "converged"}
    """
    points = summary["point"].values if point is None else [point]
    factors = [name for name, coord in summary.coords.items() if name != "point" and coord.dims == ("point",)]
    return "\n\n".join(
        _format_point(summary.sel(point=value, subset=subset), factors, subset) for value in points
    )


_COLUMNS = (("bias", "bias"), ("empse", "empirical SE"), ("coverage", "coverage"))


def _format_point(cell: xr.Dataset, factors: list[str], subset: str) -> str:
    """Heading (the point's grid factor values) and table of one design point."""

    def text(name: str, index: dict) -> str:
        return _with_mcse(cell[name].sel(index), cell[f"{name}_mcse"].sel(index))

    settings = ", ".join(f"{name} = {_plain(cell[name].values)}" for name in factors)
    heading = f"point {_plain(cell['point'].values)}" + (f": {settings}" if settings else "")
    methods = [str(m) for m in cell["analysis"].values]
    shares = "; ".join(
        f"{m} converged {text('converged_share', {'analysis': m})}, "
        f"singular {text('singular_share', {'analysis': m})}"
        for m in methods
    )
    header = ["parameter"] + [label for _ in methods for _, label in _COLUMNS]
    body = [
        [str(param)] + [text(name, {"analysis": m, "param": param}) for m in methods for name, _ in _COLUMNS]
        for param in cell["param"].values
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    per_method = len(_COLUMNS)
    blocks = [range(1 + j * per_method, 1 + (j + 1) * per_method) for j in range(len(methods))]
    group_gap, column_gap = "   ", "  "

    def line(row: list[str]) -> str:
        parts = [row[0].ljust(widths[0])]
        parts += [column_gap.join(row[i].rjust(widths[i]) for i in block) for block in blocks]
        return group_gap.join(parts).rstrip()

    block_widths = [sum(widths[i] for i in block) + (per_method - 1) * len(column_gap) for block in blocks]
    titles = [m.center(width, "-") for m, width in zip(methods, block_widths)]
    method_line = group_gap.join([" " * widths[0], *titles])
    level = cell.attrs.get("level", 0.95)
    return "\n".join(
        [
            heading,
            f"replicates finished {int(cell['n_done'].values)}; {shares}",
            f"subset {subset}; estimate (MCSE); coverage of {level:.0%} Wald intervals",
            method_line.rstrip(),
            line(header),
            *(line(row) for row in body),
        ]
    )


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
