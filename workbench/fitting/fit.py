"""`workbench.fitting.fit`: maximum-likelihood and REML fits of linear mixed models, at lme4's optimum.

A formula without random-effect terms (`y ~ 1 + x`) is a linear model: it is fitted by least
squares through the same factorisation, with an empty θ (see `least_squares_problem`), so that
its deviance and REML criterion are lm's and it can be the null of a variance-component test.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba.core.errors import NumbaError

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.model.design import Design, build_design
from workbench.model.formula import parse_formula
from workbench.kernels.objective import criterion, factorize, make_workspace, solve_effects
from workbench.kernels.montecarlo import fit_theta, is_singular
from workbench.kernels.polish import polish_theta
from workbench.kernels.products import CrossProducts
from workbench.kernels.status import CONVERGED
from workbench.fitting.result import FitResult, varcorr_frame
from workbench.fitting.problem import Problem
from workbench.fitting.scaling import Scaling, scale_design, well_scaled
from workbench.fitting.structure import Structure, cross_products
from workbench.model.parameters import term_lambdas

GRADIENT_TOL = 1e-7  # relative to 1 + |d|
MAX_ITER = 500  # quasi-Newton iterations of one minimisation
POLISH_STEPS = 3  # Newton steps on the gradient after the quasi-Newton stop (kernels.polish)


@dataclass(frozen=True)
class Optimum:
    """Where the optimiser stopped."""

    theta: np.ndarray
    objective: float
    n_evals: int
    gradient_norm: float
    return_code: int

    @property
    def converged(self) -> bool:
        return self.return_code == CONVERGED


def optimize(problem: Problem, reml: bool, polish: bool = True) -> Optimum:
    """Minimise the (RE)ML criterion (see `kernels.montecarlo.fit_theta` for the starts).

    With `polish`, a converged θ̂ then takes Newton steps on the gradient (`kernels.polish`);
    without, it is where a study's fit of the same data stops.
    """
    design = problem.design
    theta = np.empty(design.ntheta)
    ws = make_workspace(problem.structure)
    lower = design.theta_lower_bounds()
    value, evals, pg, code = fit_theta(problem.structure, problem.products, ws, reml, lower, GRADIENT_TOL, MAX_ITER, theta)
    if polish and code == CONVERGED:
        # the one-off fit's θ̂ to the last digits: first-order accessors (fitted values, the ML
        # deviance of a REML fit, conditional covariances) inherit its error
        value, more, pg = polish_theta(problem.structure, problem.products, ws, reml, lower, POLISH_STEPS, theta)
        evals += more
    return Optimum(theta, float(value), int(evals), float(pg), int(code))


def fit(formula: str, data: pd.DataFrame, reml: bool = True) -> FitResult:
    """Fit `formula` (lme4 syntax) to `data` by REML (default) or maximum likelihood.

    Data far from unit scale are fitted as a well-scaled copy and mapped back exactly
    (`workbench.fitting.scaling`), so shifting the response or rescaling a column changes
    the fit only as it should.
    """
    arguments.text(formula, "formula")
    arguments.frame(data, "data")
    reml = arguments.boolean(reml, "reml")
    design = build_design(parse_formula(formula, random_required=False), data, drop_unused=True)
    with numerical_failures_as_errors():
        if not design.terms:
            problem = least_squares_problem(design)
            if well_scaled(design):
                return summarize_fit(problem, least_squares_optimum(problem, reml), reml)
            scaled_design, scaling = scale_design(design)
            scaled = least_squares_problem(scaled_design)
            return summarize_fit(problem, least_squares_optimum(scaled, reml), reml, (scaled, scaling))
        problem = Problem.build(design)
        if well_scaled(design):
            return summarize_fit(problem, optimize(problem, reml), reml)
        scaled_design, scaling = scale_design(design)
        scaled = Problem(scaled_design, problem.structure, cross_products(scaled_design, problem.structure))
        return summarize_fit(problem, optimize(scaled, reml), reml, (scaled, scaling))


@contextmanager
def numerical_failures_as_errors():
    """A linear-algebra or arithmetic failure inside a fit as one `WorkbenchError` line."""
    try:
        yield
    except WorkbenchError:
        raise
    except (np.linalg.LinAlgError, ArithmeticError, SystemError, ValueError, NumbaError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise WorkbenchError(f"fit: the model cannot be fitted to these data ({type(exc).__name__}: {first})") from None


def least_squares_problem(design: Design) -> Problem:
    """The problem of a design without random-effect terms: no fronts, Ω = [X y]'[X y].

    Its factor holds R_X and ℓ_yy, so the kernels give lm's ML deviance and REML criterion.
    """
    xy = np.column_stack([design.x, design.y])
    return Problem(design, least_squares_structure(design.n, design.p), CrossProducts(np.zeros(0), np.ascontiguousarray(xy.T @ xy)))


def least_squares_structure(n: int, p: int) -> Structure:
    """The structure of a model of n rows and p fixed effects without random-effect terms."""
    empty = np.zeros(0, np.int64)
    total = p + 1
    return Structure(
        n=n,
        p=p,
        term_q=empty,
        term_row0=empty,
        theta_term=empty,
        theta_row=empty,
        theta_col=empty,
        front_term=empty,
        front_ptr=np.zeros(1, np.int64),
        front_rows=empty,
        front_relpos=empty,
        front_parent=empty,
        front_mat_ptr=np.zeros(1, np.int64),
        front_acol_ptr=np.zeros(1, np.int64),
        row_term=np.full(total, -1, np.int64),
        row_comp=np.zeros(total, np.int64),
        t0=0,
        nprefix=0,
    )


def least_squares_optimum(problem: Problem, reml: bool) -> Optimum:
    """The 'optimum' of a problem with an empty θ: the criterion needs no search."""
    ws = make_workspace(problem.structure)
    theta = np.zeros(0)
    factorize(theta, problem.structure, problem.products, ws)
    return Optimum(theta, float(criterion(problem.structure, ws, reml)), 1, 0.0, CONVERGED)


def summarize_fit(
    problem: Problem, optimum: Optimum, reml: bool, scaled: tuple[Problem, Scaling] | None = None
) -> FitResult:
    """The full result at an optimum: fixed effects, their SEs, variance components, BLUPs.

    With `scaled` (a scaled copy of `problem` and its `Scaling`), `optimum` is the copy's and
    every estimate is computed on the copy, then mapped back to `problem`'s units.
    """
    work, scaling = scaled if scaled is not None else (problem, None)
    design, st = problem.design, problem.structure
    ws = make_workspace(st)
    factorize(optimum.theta, st, work.products, ws)
    objective = float(criterion(st, ws, reml))
    deviance = float(criterion(st, ws, False))
    solution = solve_effects(st, ws)
    n, p = design.n, design.p
    tt = ws.tt
    d = tt.shape[0]
    r2 = tt[d - 1, d - 1] ** 2
    sigma2 = r2 / (n - p if reml else n)
    lxx = np.tril(tt[d - 1 - p : d - 1, d - 1 - p : d - 1])
    nrandom = len(st.row_term) - p - 1
    beta = solution[nrandom:]
    if p:
        inv = np.linalg.inv(lxx)
        vcov = sigma2 * inv.T @ inv
    else:
        vcov = np.zeros((0, 0))
    effects = _ranef_arrays(work.design, st, optimum.theta, solution)
    theta = optimum.theta.copy()
    if scaling is not None:
        objective = scaling.criterion(objective, n, reml)
        deviance = scaling.criterion(deviance, n, False)
        sigma2 = sigma2 * scaling.y_scale**2
        beta, vcov = scaling.fixef(beta), scaling.vcov(vcov)
        effects = [scaling.ranef(k, e) for k, e in enumerate(effects)]
        theta = scaling.theta(design, theta)
    names = pd.Index(design.fixef_names)  # one index for the three: building an index costs more than a small fit
    singular = bool(is_singular(theta, design.theta_lower_bounds()))
    return FitResult(
        formula=design.formula.text,
        reml=reml,
        objective=objective,
        loglik=-0.5 * objective,
        sigma=float(np.sqrt(sigma2)),
        theta=theta,
        fixef=pd.Series(beta, index=names, dtype=float),
        fixef_se=pd.Series(np.sqrt(np.diag(vcov)), index=names, dtype=float),
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        varcorr=varcorr_frame(design, theta, float(np.sqrt(sigma2))),
        ranef=_ranef(design, effects),
        converged=optimum.converged,
        singular=singular,
        n_evals=optimum.n_evals,
        gradient_norm=optimum.gradient_norm,
        return_code=optimum.return_code,
        n_obs=n,
        n_levels={t.group: t.nlevels for t in design.terms},
        problem=problem,
        deviance=deviance,
    )


def _ranef_arrays(design: Design, st: Structure, theta: np.ndarray, solution: np.ndarray) -> list[np.ndarray]:
    """Conditional modes b = Λu of each term, (levels, q)."""
    out = []
    for k, (term, lam) in enumerate(zip(design.terms, term_lambdas(design, theta))):
        u = solution[st.term_row0[k] : st.term_row0[k] + term.q * term.nlevels].reshape(term.nlevels, term.q)
        out.append(u @ lam.T)
    return out


def _ranef(design: Design, effects: list[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Conditional modes per grouping factor (terms on the same factor side by side)."""
    out: dict[str, pd.DataFrame] = {}
    for term, values in zip(design.terms, effects):
        frame = pd.DataFrame(values, index=pd.Index(term.levels, name=term.group), columns=list(term.names))
        out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
    return out


def loglik(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> float:
    """The log-likelihood at given (β, θ, σ) (not profiled).

    −2ℓ = log|L_Z|² + n log(2πσ²) + (r²(θ) + ‖L_XX'(β − β̂(θ))‖²)/σ².
    """
    problem = Problem.build(design) if design.terms else least_squares_problem(design)
    st = problem.structure
    ws = make_workspace(st)
    factorize(np.asarray(theta, float), st, problem.products, ws)
    ml = criterion(st, ws, False)  # log|L_Z|² + n(1 + log(2π r²/n))
    tt = ws.tt
    d = tt.shape[0]
    n, p = design.n, design.p
    r2 = tt[d - 1, d - 1] ** 2
    logdet_z = ml - n * (1.0 + np.log(2.0 * np.pi * r2 / n))
    beta_hat = solve_effects(st, ws)[len(st.row_term) - p - 1 :]
    lxx = np.tril(tt[d - 1 - p : d - 1, d - 1 - p : d - 1])
    shift = lxx.T @ (np.asarray(beta, float) - beta_hat)
    minus2 = logdet_z + n * np.log(2.0 * np.pi * sigma**2) + (r2 + shift @ shift) / sigma**2
    return float(-0.5 * minus2)
