"""Every conversion between lme4's θ and the data scale, and the names and labels of the parameters.

θ lists the lower triangle of each term's λ, column-major, term by term (`Design.theta_map`).
For a term with standard deviations s and correlation matrix R, λ = diag(s)·chol(R)/σ, so that
Var(b) = σ²λλ' = diag(s) R diag(s). chol is the lower factor of a positive *semi*-definite R
(a correlation of ±1 gives a zero diagonal in λ, a singular covariance, as in lme4).

A parameter is named as in a study's ``param`` coordinate (`parameter_names`) and labelled
(`parameter_labels`) so that later stages select by label rather than by parsing names.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from workbench.errors import WorkbenchError
from workbench.model.design import Design

__all__ = [
    "KINDS",
    "ParameterLabel",
    "check_parameters",
    "correlation",
    "lambda_of",
    "pairs",
    "parameter_labels",
    "parameter_names",
    "parameter_values",
    "semidefinite_cholesky",
    "term_covariances",
    "term_lambdas",
    "theta_of",
]

#: The kinds of parameter, as the ``kind`` label of a study's ``param`` coordinate.
KINDS = ("fixed", "variance", "covariance", "residual", "sd", "corr")


class ParameterLabel(NamedTuple):
    """What a parameter is: its kind, grouping factor, effect(s) and scale.

    ``kind`` is one of `KINDS` (``residual`` for both ``var[Residual]`` and ``sd[Residual]``);
    ``group`` is the grouping factor (``"Residual"`` for the residual, ``""`` for fixed effects);
    ``effect`` the fixed or random effect (``"a,b"`` for a covariance or correlation, ``""`` for
    the residual); ``scale`` is ``"value"`` for fixed effects, ``"variance"`` for var/cov and
    var[Residual], ``"sd"`` for sd/corr and sd[Residual].
    """

    name: str
    kind: str
    group: str
    effect: str
    scale: str


def parameter_labels(design: Design) -> list[ParameterLabel]:
    """The label of every parameter, in the order of `parameter_names`."""
    labels = [ParameterLabel(f"beta[{name}]", "fixed", "", name, "value") for name in design.fixef_names]
    for scale, single, pair, residual in (("variance", "var", "cov", "var[Residual]"), ("sd", "sd", "corr", "sd[Residual]")):
        kinds = ("variance", "covariance") if scale == "variance" else ("sd", "corr")
        for term in design.terms:
            for name in term.names:
                labels.append(ParameterLabel(f"{single}[{term.group}:{name}]", kinds[0], term.group, name, scale))
            for a, b in pairs(term.q):
                effect = f"{term.names[a]},{term.names[b]}"
                labels.append(ParameterLabel(f"{pair}[{term.group}:{effect}]", kinds[1], term.group, effect, scale))
        labels.append(ParameterLabel(residual, "residual", "Residual", "", scale))
    return labels


def parameter_names(design: Design) -> list[str]:
    """The names of the parameter coordinates of a study, in the order of `parameter_values`.

    ``beta[<name>]`` for each fixed effect; then for each term in design order
    ``var[<group>:<name>]`` for each effect and ``cov[<group>:<a>,<b>]`` for each pair (a before
    b in λ's order); ``var[Residual]``; then the same on the SD scale: ``sd[<group>:<name>]``,
    ``corr[<group>:<a>,<b>]`` per term, and ``sd[Residual]``.
    """
    names = [f"beta[{name}]" for name in design.fixef_names]
    for scale, pair_scale, residual in (("var", "cov", "var[Residual]"), ("sd", "corr", "sd[Residual]")):
        for term in design.terms:
            names.extend(f"{scale}[{term.group}:{name}]" for name in term.names)
            names.extend(f"{pair_scale}[{term.group}:{term.names[a]},{term.names[b]}]" for a, b in pairs(term.q))
        names.append(residual)
    return names


def parameter_values(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> np.ndarray:
    """The values of the parameters named by `parameter_names`.

    var = σ²(λλ')ᵢᵢ, cov = σ²(λλ')ₐᵦ, var[Residual] = σ²; sd and sd[Residual] are their square
    roots; corr = cov/(sdₐ sdᵦ), clipped to [-1, 1] against rounding, NaN where an SD is 0.
    """
    beta, theta, sigma = check_parameters(design, beta, theta, sigma)
    covs = term_covariances(design, theta, sigma)
    values = list(beta)
    for term, cov in zip(design.terms, covs):
        values.extend(np.diag(cov))
        values.extend(cov[b, a] for a, b in pairs(term.q))
    values.append(sigma**2)
    for term, cov in zip(design.terms, covs):
        sd = np.sqrt(np.diag(cov))
        values.extend(sd)
        values.extend(correlation(cov[b, a], sd[a], sd[b]) for a, b in pairs(term.q))
    values.append(sigma)
    return np.array(values, dtype=float)


def term_lambdas(design: Design, theta: np.ndarray) -> list[np.ndarray]:
    """λₖ (q×q, lower triangular) of every term from θ, in design order."""
    theta = np.asarray(theta, dtype=float)
    lambdas = [np.zeros((t.q, t.q)) for t in design.terms]
    for value, k, row, col in zip(theta, *design.theta_map()):
        lambdas[k][row, col] = value
    return lambdas


def term_covariances(design: Design, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Var(bₖ) = σ²λₖλₖ' of one level of every term, in design order."""
    return [sigma**2 * (lam @ lam.T) for lam in term_lambdas(design, theta)]


def pairs(q: int) -> list[tuple[int, int]]:
    """Index pairs (a, b), a < b, in the order of λ's lower triangle, column-major."""
    return [(a, b) for a in range(q) for b in range(a + 1, q)]


def correlation(cov: float, sd_a: float, sd_b: float) -> float:
    if sd_a == 0 or sd_b == 0:
        return math.nan
    return float(min(1.0, max(-1.0, cov / (sd_a * sd_b))))


def check_parameters(design: Design, beta, theta, sigma) -> tuple[np.ndarray, np.ndarray, float]:
    beta = np.asarray(beta, dtype=float).reshape(-1)
    theta = np.asarray(theta, dtype=float).reshape(-1)
    if beta.shape[0] != design.p:
        raise WorkbenchError(f"beta: expected {design.p} values (one per fixed effect), got {beta.shape[0]}")
    if theta.shape[0] != design.ntheta:
        raise WorkbenchError(f"theta: expected {design.ntheta} values, got {theta.shape[0]}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise WorkbenchError(f"sigma: must be a positive number, got {sigma!r}")
    return beta, theta, float(sigma)


def semidefinite_cholesky(matrix: np.ndarray, tolerance: float = 1e-12) -> np.ndarray | None:
    """The lower factor L (LL' = matrix) of a positive semi-definite matrix, or None if it is not one.

    A zero pivot (up to `tolerance`) gives a zero column below it, which requires the rest of
    that column to vanish too: a correlation of ±1 is allowed, an impossible matrix is not.
    """
    a = np.array(matrix, dtype=float)
    q = a.shape[0]
    lower = np.zeros((q, q))
    for j in range(q):
        pivot = a[j, j] - lower[j, :j] @ lower[j, :j]
        if pivot < -tolerance:
            return None
        if pivot <= tolerance:
            rest = a[j + 1 :, j] - lower[j + 1 :, :j] @ lower[j, :j]
            if np.any(np.abs(rest) > np.sqrt(tolerance)):
                return None
            continue
        lower[j, j] = math.sqrt(pivot)
        lower[j + 1 :, j] = (a[j + 1 :, j] - lower[j + 1 :, :j] @ lower[j, :j]) / lower[j, j]
    return lower


def lambda_of(sd: np.ndarray, corr: np.ndarray, sigma: float) -> np.ndarray | None:
    """λ = diag(sd)·chol(corr)/σ of one term, or None when `corr` is not a correlation matrix."""
    chol = semidefinite_cholesky(corr)
    return None if chol is None else np.asarray(sd, float)[:, None] * chol / sigma


def theta_of(design: Design, lambdas: list[np.ndarray]) -> np.ndarray:
    """θ from the λ of every term: lower triangles, column-major, term by term."""
    return np.array([lambdas[k][r, c] for k, r, c in zip(*design.theta_map())], dtype=float)
