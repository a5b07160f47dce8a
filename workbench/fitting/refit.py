"""New responses for a fitted model: simulate from it and refit it (lme4's `simulate` and `refit`).

A refit keeps the design, its factor structure and every cross-product that does not involve
y; only the response row of A = [Z X y]'[Z X y] is refreshed, in one pass over the rows (as a
Monte Carlo replicate of a study is). That is the fast path of a user's own simulation loop.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.fitting.fit import optimize, summarize_fit
from workbench.fitting.problem import Problem
from workbench.fitting.result import FitResult
from workbench.fitting.structure import front_starts
from workbench.kernels.products import CrossProducts, refresh_response
from workbench.model.design import term_arrays
from workbench.simulation.simulate import simulate_design


class ResponseUpdate(NamedTuple):
    """The packed arrays `refresh_response` reads to refresh the response row of a problem."""

    codes: np.ndarray  # (K, n) level of each row per term
    z: np.ndarray  # (K, n, qmax) the terms' columns
    front0: np.ndarray  # (K,) first front of each prefix term

    @classmethod
    def of(cls, problem: Problem) -> "ResponseUpdate":
        codes, z = term_arrays(problem.design)
        return cls(codes, z, front_starts(problem.structure))


def check_response(y, n: int) -> np.ndarray:
    """`y` as a new float array of length `n` with finite values, else one `WorkbenchError`."""
    try:
        values = np.asarray(y)
    except Exception:  # an object NumPy cannot make an array of
        raise WorkbenchError(f"y: expected an array of {n} numbers, got {type(y).__name__}") from None
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        shown = f"an array of shape {values.shape}" if values.ndim != 1 else f"values of type {values.dtype}"
        raise WorkbenchError(f"y: expected a one-dimensional array of {n} numbers, got {shown}")
    if len(values) != n:
        raise WorkbenchError(f"y: must have one value per observation of the fit ({n}), got {len(values)}")
    values = np.array(values, dtype=float)  # a writable copy: kernels take one array type
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise WorkbenchError(f"y: must be finite; y[{bad[0]}] is {values[bad[0]]}")
    return values


def refit(result: FitResult, y, update: ResponseUpdate) -> FitResult:
    """The fit of the same model and method to the response `y` (one value per row of the fit)."""
    problem = result.problem
    y = check_response(y, problem.design.n)
    base = problem.products
    products = CrossProducts(base.a_front.copy(), base.a_tt.copy())
    design = dataclasses.replace(problem.design, y=y)
    refresh_response(update.codes, update.z, design.x, y, problem.structure, update.front0, *products)
    new = Problem(design, problem.structure, products)
    return summarize_fit(new, optimize(new, result.reml), result.reml)


def simulate(result: FitResult, nsim: int, seed: int) -> np.ndarray:
    """Responses (nsim, n) drawn from the fitted model at (β̂, θ̂, σ̂).

    Replicate r is drawn from ``SeedSequence(seed, spawn_key=(0, r))`` in the order of
    `workbench.simulation.simulate` (design point 0 of a study with that seed).
    """
    nsim = arguments.integer(nsim, "nsim", 1)
    seed = arguments.seed(seed)
    design = result.problem.design
    beta = result.fixef.to_numpy(dtype=float)
    return simulate_design(design, beta, result.theta, result.sigma, np.arange(nsim), seed=seed, point=0)
