"""A balanced one-way random-intercept study set beside the exact ML/REML theory, with MCSEs.

For the model y ~ 1 + (1 | g) on a balanced layout (``kind = "nested"`` with one level
factor g and a fixed ``size``), `workbench.results.theory` gives per design point and method the
exact probability of a zero variance estimate, the expected estimates of both variances
and the coverage of the Wald interval for the mean. `compare` sets them beside the
study's singular share, mean estimates of ``var[g:(Intercept)]`` and ``var[Residual]``
and coverage of ``beta[(Intercept)]``, over all finished replicates.

The Monte Carlo SE of a mean estimate is the summary's (the sample SD over sqrt(n)); the
SE of a share is binomial at the theoretical probability, sqrt(p (1 - p) / n), which is
what the share's spread is if the theory holds — and stays positive when a share of 0 is
observed for a probability of 1e-7.

A fit is flagged singular when the relative SD theta = sigma_a / sigma_e is below
SINGULAR_TOL, not when it is exactly 0; `singular_gap` is the exact probability of the
difference, 0 < theta_hat < SINGULAR_TOL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from workbench.results import theory
from workbench.errors import WorkbenchError
from workbench.kernels.montecarlo import SINGULAR_TOL
from workbench.study.spec import parse_study

# quantity: (title in figures, exact quantity in tables, what the study measures of it)
QUANTITIES = {
    "prob_zero": (r"$P(\hat\sigma^2_a = 0)$ vs singular share", "P(σ̂²ₐ = 0)", "singular share"),
    "mean_var_a": (r"$E[\hat\sigma^2_a]$", "E[σ̂²ₐ]", "mean σ̂²ₐ"),
    "mean_var_e": (r"$E[\hat\sigma^2_e]$", "E[σ̂²ₑ]", "mean σ̂²ₑ"),
    "coverage_mu": (r"coverage of $\mu$ (Wald)", "coverage of μ", "coverage"),
}


@dataclass(frozen=True)
class OneWayDesign:
    """One design point of a balanced one-way study."""

    groups: int
    size: int
    var_a: float
    var_e: float


@dataclass(frozen=True)
class OneWayStudy:
    """What the theory needs of a study: the grouping factor and every point's design."""

    group: str
    designs: tuple[OneWayDesign, ...]

    @property
    def var_a_param(self) -> str:
        return f"var[{self.group}:(Intercept)]"


def one_way_study(summary: xr.Dataset) -> OneWayStudy | None:
    """The one-way designs of a study's summary, or None if it is not a balanced one-way study."""
    if not {"kind", "group", "effect", "analysis_model"} <= set(summary.coords) or "study" not in summary.attrs:
        return None
    params = summary["param"].values
    kind, effect = summary["kind"].values, summary["effect"].values
    fixed = params[kind == "fixed"]
    components = np.flatnonzero((kind == "variance") | (kind == "covariance"))
    if list(fixed) != ["beta[(Intercept)]"] or "var[Residual]" not in params or len(components) != 1:
        return None
    if kind[components[0]] != "variance" or effect[components[0]] != "(Intercept)":
        return None
    if not (summary["analysis_model"].values == "").any():
        return None  # the theory is of the generating model fitted to its own data
    group = str(summary["group"].values[components[0]])
    try:
        points = parse_study(summary.attrs["study"], Path.cwd()).points()
    except WorkbenchError:
        return None
    if len(points) != summary.sizes["point"]:
        return None
    truth = summary["truth"]
    designs = []
    for point in points:
        layout = point.layout
        levels, size = layout.get("levels"), layout.get("size")
        if layout.get("kind") != "nested" or list(levels) != [group] or not isinstance(size, int):
            return None
        if levels[group] < 2 or size < 2:
            return None
        values = truth.isel(point=point.index)
        var_a = float(values.isel({"param": components[0]}))
        var_e = float(values.sel({"param": "var[Residual]"}))
        designs.append(OneWayDesign(levels[group], size, var_a, var_e))
    return OneWayStudy(group, tuple(designs))


def compare(summary: xr.Dataset, study: OneWayStudy) -> pd.DataFrame:
    """Theory beside study per point, method and quantity, in long form.

    Returns
    -------
    pandas.DataFrame
        Columns ``point``, ``groups``, ``size``, ``var_a``, ``var_e``, ``method``,
        ``quantity`` (a key of QUANTITIES), ``theory``, ``study``, ``mcse`` and
        ``z`` = (study - theory) / mcse.
    """
    level = float(summary.attrs.get("level", 0.95))
    rows = []
    for point, design in enumerate(study.designs):
        shape = (design.groups, design.size, design.var_a, design.var_e)
        for analysis, model, method in zip(
            summary["analysis"].values, summary["analysis_model"].values, summary["estimator"].values
        ):
            if model != "":
                continue
            method = str(method)
            cell = summary.isel(point=point).sel({"analysis": analysis, "subset": "all"})
            means = theory.expected_estimates(*shape, method)
            exact = {
                "prob_zero": theory.prob_zero(*shape, method),
                "mean_var_a": means["var_a"],
                "mean_var_e": means["var_e"],
                "coverage_mu": theory.mean_coverage(*shape, method, level),
            }
            coverage = cell.sel({"param": "beta[(Intercept)]"})
            observed = {
                "prob_zero": (cell["singular_share"], None, cell["n_done"]),
                "mean_var_a": _mean_estimate(cell.sel({"param": study.var_a_param})),
                "mean_var_e": _mean_estimate(cell.sel({"param": "var[Residual]"})),
                "coverage_mu": (coverage["coverage"], None, coverage["n_with_se"]),
            }
            for quantity, (value, mcse, n) in observed.items():
                if mcse is None:
                    p = exact[quantity]
                    mcse = np.sqrt(p * (1 - p) / float(n))
                value, mcse = float(value), float(mcse)
                rows.append(
                    {
                        "point": point,
                        "groups": design.groups,
                        "size": design.size,
                        "var_a": design.var_a,
                        "var_e": design.var_e,
                        "method": method,
                        "quantity": quantity,
                        "theory": exact[quantity],
                        "study": value,
                        "mcse": mcse,
                        "z": (value - exact[quantity]) / mcse if mcse > 0 else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def _mean_estimate(cell: xr.Dataset) -> tuple[float, float, None]:
    """Mean estimate (truth + bias) and its MCSE."""
    return float(cell["truth"] + cell["bias"]), float(cell["bias_mcse"]), None


def singular_gap(design: OneWayDesign, method: str, tolerance: float = SINGULAR_TOL) -> float:
    """Exact P(0 < theta_hat < tolerance): how far 'singular' is from 'var_a estimated as 0'.

    Off the boundary var_a_hat = (SSA / D - MSE) / n and var_e_hat = MSE, so theta_hat² =
    var_a_hat / var_e_hat < tol² exactly when (SSA / D) / MSE < 1 + n tol². With
    F = (SSA / (a - 1)) / MSE ~ (lambda / var_e) F(a - 1, a (n - 1)), lambda = var_e + n var_a,
    that is F < c (1 + n tol²), where F < c is the event var_a_hat = 0 and
    c = D var_e / ((a - 1) lambda), D = a (ML) or a - 1 (REML).
    """
    a, n = design.groups, design.size
    divisor = a if method == "ML" else a - 1
    cut = divisor * design.var_e / ((a - 1) * (design.var_e + n * design.var_a))
    df = (a - 1, a * (n - 1))
    return float(special.fdtr(*df, cut * (1 + n * tolerance**2)) - special.fdtr(*df, cut))
