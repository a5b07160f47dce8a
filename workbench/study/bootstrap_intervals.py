"""Parametric-bootstrap intervals in a study: each replicate's fit refitted on data drawn from it.

For replicate r of point p and fit f, `nsim` responses are drawn at the fit's (β̂, Σ̂, σ̂) from
``SeedSequence(bootstrap_seed(seed, p, r, f), spawn_key=(0, b))`` — exactly the draws of
``wb.fit(...).confint(method="bootstrap", nsim=nsim, seed=bootstrap_seed(seed, p, r, f))`` on
that replicate — and refitted by the fit's method; the limits are the percentiles of the
refits' estimates (lme4's `bootMer` with ``type = "perc"``). A replicate costs `nsim` fits.
"""

from __future__ import annotations

import numpy as np

from workbench.fitting.intervals import fitted_simulation_inputs, percentile_limits, refit_draws
from workbench.kernels.reasons import COMPUTED, FIT_FAILED, NOT_COMPUTABLE
from workbench.model.parameters import pairs, parameter_names, semidefinite_cholesky, theta_of

__all__ = ["bootstrap_limits", "bootstrap_seed"]

_BOOTSTRAP_STREAM = 2  # the spawn-key slot of bootstrap draws (1 is a redrawn layout's)


def bootstrap_seed(seed: int, point: int, replicate: int, fit: int) -> int:
    """The seed of the bootstrap of one fit of one replicate (a 64-bit integer)."""
    state = np.random.SeedSequence(seed, spawn_key=(point, replicate, _BOOTSTRAP_STREAM, fit)).generate_state(2)
    return int(state[0]) | (int(state[1]) << 32)


def bootstrap_limits(analysis, reml: bool, estimates: np.ndarray, seeds: list[int], nsim: int, level: float):
    """Percentile limits (R, P) `lower`, `upper` and reason codes of one fit over R replicates.

    `estimates` (R, P) are the replicates' estimates in `parameter_names(design)` order (NaN
    for a failed fit); `seeds` their `bootstrap_seed`.
    """
    design = analysis.design
    names = parameter_names(design)
    nrep, nparams = estimates.shape
    lower = np.full((nrep, nparams), np.nan)
    upper = np.full((nrep, nparams), np.nan)
    reason = np.full((nrep, nparams), COMPUTED, np.int8)
    for r in range(nrep):
        values = dict(zip(names, estimates[r]))
        if not np.isfinite(values["sd[Residual]"]):
            reason[r] = FIT_FAILED
            continue
        theta = _theta(design, values)
        sigma = values["sd[Residual]"]
        if theta is None or not sigma > 0:
            reason[r] = NOT_COMPUTABLE
            continue
        sim = fitted_simulation_inputs(design, estimates[r, : design.p], theta, sigma)
        draws, _ = refit_draws(analysis.problem, analysis.front0, bool(reml), sim, nsim, seeds[r])
        for j in range(nparams):
            lower[r, j], upper[r, j] = percentile_limits(draws[:, j], level)
        reason[r, ~np.isfinite(lower[r])] = NOT_COMPUTABLE
    return lower, upper, reason


def _theta(design, values: dict) -> np.ndarray | None:
    """θ of the fitted variance components (None if a covariance matrix is not semi-definite)."""
    sigma = values["sd[Residual]"]
    lambdas = []
    for term in design.terms:
        cov = np.zeros((term.q, term.q))
        for a, name in enumerate(term.names):
            cov[a, a] = values[f"var[{term.group}:{name}]"]
        for a, b in pairs(term.q):
            cov[a, b] = cov[b, a] = values.get(f"cov[{term.group}:{term.names[a]},{term.names[b]}]", 0.0)
        if not np.all(np.isfinite(cov)):
            return None
        chol = semidefinite_cholesky(cov / sigma**2)
        if chol is None:
            return None
        lambdas.append(chol)
    return theta_of(design, lambdas)
