"""Simulate responses of a linear mixed model over a layout, and its marginal covariance.

One replicate is y = Xβ + Σₖ Zₖλₖuₖσ + σε with standard normal u and ε.

Draw order (**contract**, the study runner draws the same way): replicate r of design
point p uses ``numpy.random.default_rng(numpy.random.SeedSequence(seed, spawn_key=(p, r)))``
and one call ``standard_normal(q_total + n)``: first the spherical random effects u — terms
in design order (`Design.terms`, most levels first), within a term level-major and
effect-minor — then the n residuals ε in row order. A replicate is therefore the same
whether it is drawn alone or in a batch, in any order, by any worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from workbench import arguments
from workbench.model.design import Design, build_design, term_arrays
from workbench.errors import WorkbenchError
from workbench.model.formula import Formula
from workbench.kernels.simulate import marginal_covariance, simulate_responses
from workbench.model.parameters import term_covariances, term_lambdas
from workbench.model.truth import truth_to_parameters

__all__ = [
    "SimulationInputs",
    "draw_normals",
    "marginal_cov",
    "marginal_cov_design",
    "replicate_generator",
    "simulate",
    "simulate_design",
    "simulation_inputs",
]


class SimulationInputs(NamedTuple):
    """The arrays `kernels.simulate.simulate_responses` takes, for one design and one truth."""

    xbeta: np.ndarray  # (n,) Xβ
    codes: np.ndarray  # (K, n) int64 level of each row, per term
    z: np.ndarray  # (K, n, qmax) each term's z columns, zero-padded
    term_q: np.ndarray  # (K,) int64 effects per level
    term_offset: np.ndarray  # (K,) int64 first u of each term in a replicate's normals
    lam: np.ndarray  # (K, qmax, qmax) λ of each term, zero-padded
    sigma: float
    size: int  # normals per replicate: q_total + n


def replicate_generator(seed: int, point: int, replicate: int) -> np.random.Generator:
    """The random number generator of one replicate of one design point (the draw contract)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point, replicate)))


def draw_normals(seed: int, point: int, replicates, size: int) -> np.ndarray:
    """Standard normals (len(replicates), size): row i is replicate `replicates[i]`'s draw."""
    replicates = np.asarray(replicates, dtype=np.int64).reshape(-1)
    out = np.empty((replicates.shape[0], size))
    for i, replicate in enumerate(replicates):
        out[i] = replicate_generator(seed, point, int(replicate)).standard_normal(size)
    return out


def simulation_inputs(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> SimulationInputs:
    """Pack a design and (β, θ, σ) into the arrays of the simulation kernel."""
    codes, z, term_q, term_offset = _term_arrays(design)
    qmax = z.shape[2]
    lam = np.zeros((len(design.terms), qmax, qmax))
    for k, lam_k in enumerate(term_lambdas(design, theta)):
        lam[k, : lam_k.shape[0], : lam_k.shape[0]] = lam_k
    xbeta = design.x @ np.asarray(beta, dtype=float) if design.p else np.zeros(design.n)
    q_total = sum(t.q * t.nlevels for t in design.terms)
    return SimulationInputs(xbeta, codes, z, term_q, term_offset, lam, float(sigma), q_total + design.n)


def _term_arrays(design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """codes (K, n), zero-padded z (K, n, qmax), term_q (K,) and term_offset (K,) of the design's terms."""
    terms = design.terms
    codes, z = term_arrays(design)
    term_q = np.array([t.q for t in terms], dtype=np.int64)
    sizes = np.array([t.q * t.nlevels for t in terms], dtype=np.int64)
    term_offset = (np.cumsum(sizes) - sizes).astype(np.int64)
    return codes, z, term_q, term_offset


def simulate_design(
    design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float, replicates, seed: int = 0, point: int = 0
) -> np.ndarray:
    """Responses (len(replicates), n) of the given replicates of design point `point`."""
    inputs = simulation_inputs(design, beta, theta, sigma)
    normals = draw_normals(seed, point, replicates, inputs.size)
    out = np.empty((normals.shape[0], design.n))
    simulate_responses(
        inputs.xbeta, inputs.codes, inputs.z, inputs.term_q, inputs.term_offset, inputs.lam, inputs.sigma, normals, out
    )
    return out


def simulate(
    formula: str | Formula, layout: pd.DataFrame, truth: Mapping, nsim: int = 1, seed: int = 0, point: int = 0
) -> np.ndarray:
    """Simulate `nsim` responses (nsim, n) of the model over the rows of `layout`.

    Parameters
    ----------
    formula : lme4-style formula; its response column need not be in `layout`.
    layout : the rows (covariates and grouping factors); rows with missing values are dropped.
    truth : data-scale truth (see `workbench.model.truth`).
    nsim : number of replicates; replicate r is drawn as in the module's draw contract.
    seed, point : the study seed and design point index of the draw contract.
    """
    _check_model(formula, layout, truth)
    arguments.integer(nsim, "nsim", 1)
    arguments.seed(seed)
    arguments.integer(point, "point", 0)
    design = build_design(formula, layout, response_required=False, fitted=False)
    beta, theta, sigma = truth_to_parameters(design, truth)
    return simulate_design(design, beta, theta, sigma, np.arange(nsim), seed=seed, point=point)


def marginal_cov_design(design: Design, theta: np.ndarray, sigma: float, max_rows: int = 4000) -> np.ndarray:
    """The dense marginal covariance σ²(I + ZΛΛ'Z') (n, n) of y for the design at (θ, σ)."""
    if design.n > max_rows:
        raise WorkbenchError(
            f"marginal_cov: the layout has {design.n} rows; the dense {design.n}×{design.n} covariance"
            f" is built for at most max_rows = {max_rows} rows"
        )
    codes, z, term_q, _ = _term_arrays(design)
    qmax = z.shape[2]
    cov = np.zeros((len(design.terms), qmax, qmax))
    for k, cov_k in enumerate(term_covariances(design, theta, sigma)):
        cov[k, : cov_k.shape[0], : cov_k.shape[0]] = cov_k
    out = np.empty((design.n, design.n))
    marginal_covariance(codes, z, term_q, cov, float(sigma) ** 2, out)
    return out


def marginal_cov(formula: str | Formula, layout: pd.DataFrame, truth: Mapping, max_rows: int = 4000) -> np.ndarray:
    """The marginal covariance σ²(I + ZΛΛ'Z') (n, n) of y over the rows of `layout`.

    Dense, so refused above `max_rows` rows.
    """
    _check_model(formula, layout, truth)
    arguments.integer(max_rows, "max_rows", 1)
    design = build_design(formula, layout, response_required=False, fitted=False)
    _, theta, sigma = truth_to_parameters(design, truth)
    return marginal_cov_design(design, theta, sigma, max_rows=max_rows)


def _check_model(formula, layout, truth) -> None:
    if not isinstance(formula, Formula):
        arguments.text(formula, "formula")
    arguments.frame(layout, "layout")
    arguments.mapping(truth, "truth")
