"""Simulate responses of a linear mixed model over a layout, and its marginal covariance.

One replicate is y = Xβ + Σₖ Zₖλₖzₖσ + σ·s∘ε with z and ε standardised draws (mean 0,
variance 1) of each term's and the residual's family (normal unless the truth names one,
`workbench.simulation.distributions`) and s the residual SD of each row relative to σ
(1 unless the residuals are heteroscedastic, `workbench.simulation.residuals`).

Draw order (**contract**, the study runner draws the same way): replicate r of design
point p draws its data from ``numpy.random.default_rng(numpy.random.SeedSequence(seed,
spawn_key=(p, r)))``: first the spherical random effects z — terms in design order
(`Design.terms`, most levels first), within a term level-major and effect-minor, each term's
q·levels values by one draw of its family — then the n residuals ε in row order by one draw
of the residual family. With every family normal this is one ``standard_normal(q_total + n)``
call (NumPy's normals do not depend on how a request is split), the contract of normal
studies since the first version. A replicate is therefore the same whether it is drawn alone
or in a batch, in any order, by any worker.

A layout drawn once per design point comes from ``SeedSequence(seed, spawn_key=(p,))``. A
layout redrawn for every replicate (``[layout] redraw = true``), and the uniforms of a
response-dependent dropout, come from the replicate's own layout stream
``SeedSequence(seed, spawn_key=(p, r, 1))``, separate from its data stream: the data draws of
a replicate do not depend on how its layout was drawn, only on its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import formulaic
import numpy as np
import pandas as pd

from workbench import arguments
from workbench.model.design import Design, build_design, term_arrays
from workbench.errors import WorkbenchError
from workbench.model.formula import Formula
from workbench.kernels.simulate import marginal_covariance, simulate_responses
from workbench.model.parameters import term_covariances, term_lambdas
from workbench.model.truth import Mechanism, truth_mechanism, truth_to_parameters
from workbench.simulation.distributions import NORMAL, Family

__all__ = [
    "DrawPlan",
    "SimulationInputs",
    "draw_normals",
    "draw_plan",
    "draw_standardised",
    "layout_generator",
    "marginal_cov",
    "marginal_cov_design",
    "replicate_generator",
    "simulate",
    "simulate_design",
    "simulation_inputs",
]

# The third spawn-key element of a replicate's layout stream (its data stream has none).
LAYOUT_STREAM = 1


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


class DrawPlan(NamedTuple):
    """What one replicate's standardised draws are: (family, count) blocks in draw order, and the residual scale."""

    blocks: tuple[tuple[Family, int], ...]  # each term's z in design order, then the n residuals
    scale: np.ndarray | None  # (n,) residual SD of each row relative to σ; None: 1 for every row

    @property
    def size(self) -> int:
        return sum(count for _, count in self.blocks)

    @property
    def normal(self) -> bool:
        """Standard normals only: the draws are exactly `draw_normals`'."""
        return self.scale is None and all(family.normal for family, _ in self.blocks)


def draw_plan(design: Design, mechanism: Mechanism | None = None, scale: np.ndarray | None = None) -> DrawPlan:
    """The draws of a replicate over `design` (normal and homoscedastic without a mechanism)."""
    families = mechanism.families if mechanism is not None else (NORMAL,) * len(design.terms)
    residual = mechanism.residuals.family if mechanism is not None else NORMAL
    blocks = [(family, term.q * term.nlevels) for family, term in zip(families, design.terms)]
    blocks.append((residual, design.n))
    return DrawPlan(tuple(blocks), None if scale is None else np.asarray(scale, dtype=float))


def replicate_generator(seed: int, point: int, replicate: int) -> np.random.Generator:
    """The random number generator of one replicate's data (the draw contract)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point, replicate)))


def layout_generator(seed: int, point: int, replicate: int) -> np.random.Generator:
    """The random number generator of one replicate's redrawn layout and dropout (the draw contract)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point, replicate, LAYOUT_STREAM)))


def draw_standardised(seed: int, point: int, replicates, plan: DrawPlan) -> np.ndarray:
    """The draws (len(replicates), size) of the given replicates: [z, s∘ε] per row, as the kernel takes them."""
    if plan.normal:
        return draw_normals(seed, point, replicates, plan.size)
    replicates = np.asarray(replicates, dtype=np.int64).reshape(-1)
    out = np.empty((replicates.shape[0], plan.size))
    for i, replicate in enumerate(replicates):
        rng = replicate_generator(seed, point, int(replicate))
        start = 0
        for family, count in plan.blocks:
            out[i, start : start + count] = family.draw(rng, count)
            start += count
    if plan.scale is not None:
        out[:, plan.size - plan.scale.shape[0] :] *= plan.scale
    return out


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
    design: Design,
    beta: np.ndarray,
    theta: np.ndarray,
    sigma: float,
    replicates,
    seed: int = 0,
    point: int = 0,
    plan: DrawPlan | None = None,
) -> np.ndarray:
    """Responses (len(replicates), n) of the given replicates of design point `point`.

    `plan` gives the families and residual scale of the draws (default: normal, homoscedastic).
    """
    inputs = simulation_inputs(design, beta, theta, sigma)
    normals = draw_standardised(seed, point, replicates, plan if plan is not None else draw_plan(design))
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
    truth : data-scale truth, with the families of the effects and residuals and any
        heteroscedastic residual SD (see `workbench.model.truth`).
    nsim : number of replicates; replicate r is drawn as in the module's draw contract.
    seed, point : the study seed and design point index of the draw contract.
    """
    _check_model(formula, layout, truth)
    arguments.integer(nsim, "nsim", 1)
    arguments.seed(seed)
    arguments.integer(point, "point", 0)
    design, (beta, theta, sigma), mechanism, scale = _model(formula, layout, truth)
    plan = draw_plan(design, mechanism, scale)
    return simulate_design(design, beta, theta, sigma, np.arange(nsim), seed=seed, point=point, plan=plan)


def _model(formula, layout: pd.DataFrame, truth: Mapping):
    """The design over `layout`, (β, θ, σ), the mechanism and the residual scale of the rows the design kept."""
    design = build_design(formula, layout, response_required=False, fitted=False)
    parameters = truth_to_parameters(design, truth)
    mechanism = truth_mechanism(design, truth)
    scale = None
    if not mechanism.residuals.homoscedastic:
        rows = layout if design.n_dropped == 0 else layout.loc[_complete_rows(design, layout)]
        scale = mechanism.residuals.scale(rows, parameters[2])
    return design, parameters, mechanism, scale


def _complete_rows(design: Design, layout: pd.DataFrame) -> np.ndarray:
    """The rows of `layout` that `build_design` kept: no missing value in a column the model uses."""
    fixed = formulaic.Formula(design.formula.fixed).required_variables
    used = [c for c in dict.fromkeys([*design.formula.columns, *sorted(fixed)]) if c in layout.columns]
    used = [c for c in used if c != design.formula.response]
    return ~layout[used].isna().any(axis=1).to_numpy()


def marginal_cov_design(
    design: Design, theta: np.ndarray, sigma: float, max_rows: int = 4000, scale: np.ndarray | None = None
) -> np.ndarray:
    """The dense marginal covariance σ²(diag(s²) + ZΛΛ'Z') (n, n) of y for the design at (θ, σ).

    `scale` is the residual SD of each row relative to σ (default: 1 for every row).
    """
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
    if scale is None:
        marginal_covariance(codes, z, term_q, cov, float(sigma) ** 2, out)
    else:
        marginal_covariance(codes, z, term_q, cov, 0.0, out)
        out[np.diag_indices(design.n)] += float(sigma) ** 2 * np.asarray(scale, dtype=float) ** 2
    return out


def marginal_cov(formula: str | Formula, layout: pd.DataFrame, truth: Mapping, max_rows: int = 4000) -> np.ndarray:
    """The marginal covariance σ²(diag(s²) + ZΛΛ'Z') (n, n) of y over the rows of `layout`.

    s is the residual SD of each row relative to σ (1 for homoscedastic residuals); the
    families of the effects and residuals do not change it. Dense, so refused above
    `max_rows` rows.
    """
    _check_model(formula, layout, truth)
    arguments.integer(max_rows, "max_rows", 1)
    design, (_, theta, sigma), _, scale = _model(formula, layout, truth)
    return marginal_cov_design(design, theta, sigma, max_rows=max_rows, scale=scale)


def _check_model(formula, layout, truth) -> None:
    if not isinstance(formula, Formula):
        arguments.text(formula, "formula")
    arguments.frame(layout, "layout")
    arguments.mapping(truth, "truth")
