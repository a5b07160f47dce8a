"""Confidence intervals of a fit's parameters: Wald, profile likelihood (as lme4's) and parametric bootstrap.

Rows follow lme4's `confint`: every term's SDs and correlations in θ's order (the lower
triangle of λ, column by column: ``sd[g:a]``, ``corr[g:a,b]``, ``sd[g:b]``), then
``sd[Residual]``, then ``beta[<name>]`` — lme4's ``.sig01``, …, ``.sigma`` and fixed effects,
named as studies name parameters (`workbench.model.truth.parameter_names`).

- ``"wald"``: estimate ± z·SE. For β the SEs are lme4's; lme4 gives no Wald interval for the
  variance components, here they get one on the SD and correlation scale from the delta-method
  SEs of `kernels.montecarlo.estimates` (the observed information of the fit's own criterion),
  cut to the parameter space (SDs ≥ 0, correlations in [−1, 1]). An SD estimated as 0, or a
  correlation involving one, has no SE and gets NaN limits.
- ``"profile"``: lme4's `confint(method = "profile")`. The signed root of the change in the ML
  deviance, ζ = sign(x − x̂)·√(D(x) − D̂), with all other parameters re-optimised, and the limits
  where ζ = ∓z, found by bracketing and Brent's method on ζ itself rather than lme4's spline
  through profile points. Like lme4 1.1-31, a REML fit is profiled through its ML refit (lme4's
  `devfun2` calls `refitML`), so its profile intervals are those of the ML fit. An SD whose profile
  stays above −z on the way to 0 gets the lower limit 0, a correlation ±1 likewise, and an upper
  limit the profile never reaches is +inf.
- ``"bootstrap"``: a parametric bootstrap (lme4's `bootMer`, ``type = "perc"``): `nsim` responses
  drawn from the fitted model by the simulation draw contract (replicate r from
  ``SeedSequence(seed, spawn_key=(0, r))``), each refitted by the fit's method with the same
  design, and the (1 ∓ level)/2 sample quantiles (NumPy's default, linear interpolation) of each
  parameter over the replicates whose fit did not fail and where it is defined (a correlation
  is not when a replicate's SD is 0). The frame's ``attrs`` record ``nsim``, ``seed`` and the
  number of ``failed`` refits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER, least_squares_optimum, least_squares_problem, optimize
from workbench.fitting.problem import Problem
from workbench.fitting.structure import front_starts, term_arrays
from workbench.kernels import profile as kernel
from workbench.kernels.bootstrap import bootstrap_fits
from workbench.kernels.montecarlo import estimates
from workbench.kernels.objective import criterion, factorize, make_workspace
from workbench.kernels.products import CrossProducts
from workbench.kernels.status import CONVERGED, FAILED
from workbench.model.design import Design
from workbench.model.parameters import parameter_names
from workbench.simulation.simulate import SimulationInputs, draw_normals, simulation_inputs

METHODS = ("wald", "profile", "bootstrap")
PROFILE_GTOL = 1e-9  # relative gradient tolerance of a profile point: ζ near z needs D to ~1e-8
BOOTSTRAP_CHUNK = 512  # replicates whose normals are drawn at once
_BRACKET_STEPS = 60


@dataclass(frozen=True)
class Parameter:
    """One row of the interval table: what kind of parameter and where it sits."""

    name: str
    kind: str  # "sd", "corr", "sigma" or "beta"
    term: int = 0
    first: int = 0  # the effect (sd), the earlier effect (corr) or the fixed-effect column (beta)
    second: int = 0  # the later effect of a correlation


def interval_parameters(design: Design) -> list[Parameter]:
    """The rows of lme4's `confint`, in its order, with workbench's names."""
    rows = []
    for k, term in enumerate(design.terms):
        for c in range(term.q):
            for r in range(c, term.q):
                if r == c:
                    rows.append(Parameter(f"sd[{term.group}:{term.names[r]}]", "sd", k, r))
                else:
                    rows.append(Parameter(f"corr[{term.group}:{term.names[c]},{term.names[r]}]", "corr", k, c, r))
    rows.append(Parameter("sd[Residual]", "sigma"))
    rows.extend(Parameter(f"beta[{name}]", "beta", first=j) for j, name in enumerate(design.fixef_names))
    return rows


def confint(result, method: str = "wald", level: float = 0.95, nsim: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Confidence intervals of every parameter of `result` (a `FitResult`): columns lower, upper.

    See the module docstring for the methods; `nsim` and `seed` are the bootstrap's.
    """
    method = arguments.choice(method, "method", METHODS)
    level = _level(level)
    nsim = arguments.integer(nsim, "nsim", 2)
    seed = arguments.seed(seed)
    problem = result.problem
    rows = interval_parameters(problem.design)
    z = float(special.ndtri(0.5 + level / 2))
    if method == "wald":
        limits = _wald(problem, result.reml, result.theta, rows, z)
        attrs = {}
    elif method == "profile":
        limits = _profile(problem, result.reml, result.theta, rows, z)
        attrs = {}
    else:
        limits, failed = _bootstrap(result, rows, level, nsim, seed)
        attrs = {"nsim": nsim, "seed": seed, "failed": failed}
    frame = pd.DataFrame(limits, index=pd.Index([row.name for row in rows], name="parameter"), columns=["lower", "upper"])
    frame.attrs.update({"method": method, "level": level, **attrs})
    return frame


def _level(value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise WorkbenchError(f"level: must be a number between 0 and 1, got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise WorkbenchError(f"level: must be a number between 0 and 1, got {value!r}")
    return float(value)


def _estimates(problem: Problem, reml: bool, theta: np.ndarray) -> dict[str, tuple[float, float]]:
    """Estimate and standard error of every named parameter at θ."""
    names = parameter_names(problem.design)
    est, se = np.empty(len(names)), np.empty(len(names))
    ws = make_workspace(problem.structure)
    estimates(problem.structure, problem.products, ws, reml, np.asarray(theta, float), est, se)
    return {name: (float(e), float(s)) for name, e, s in zip(names, est, se)}


def _space(row: Parameter) -> tuple[float, float]:
    """The parameter space of a row."""
    if row.kind in ("sd", "sigma"):
        return 0.0, np.inf
    if row.kind == "corr":
        return -1.0, 1.0
    return -np.inf, np.inf


def _wald(problem: Problem, reml: bool, theta: np.ndarray, rows: list[Parameter], z: float) -> np.ndarray:
    values = _estimates(problem, reml, theta)
    out = np.empty((len(rows), 2))
    for r, row in enumerate(rows):
        estimate, se = values[row.name]
        low, high = _space(row)
        out[r] = np.clip([estimate - z * se, estimate + z * se], low, high)
    return out


# ---------------------------------------------------------------------------------------------
# profile


class _VarianceProfile:
    """ζ of one SD, correlation or σ, with the search vectors of the points already evaluated."""

    def __init__(self, problem: Problem, theta: np.ndarray, base: float, row: Parameter, estimate: float, sigma: float):
        self.problem, self.theta, self.base, self.row = problem, theta, base, row
        self.estimate, self.sigma = estimate, sigma
        self.ws = make_workspace(problem.structure)
        self.visited: dict[int, list[tuple[float, np.ndarray]]] = {}

    def _mode(self, value: float) -> int:
        if self.row.kind == "sigma":
            return kernel.SIGMA
        if self.row.kind == "sd":
            return kernel.SD_ZERO if value == 0.0 else kernel.SD
        return kernel.CORR_BOUND if abs(value) == 1.0 else kernel.CORR

    def _start(self, mode: int, value: float) -> np.ndarray:
        seen = self.visited.get(mode)
        if seen:
            return min(seen, key=lambda item: abs(item[0] - value))[1].copy()
        psi = self.theta.copy()
        st, row = self.problem.structure, self.row
        if mode == kernel.SD:
            entries = [kernel.theta_index(st, row.term, row.first, c) for c in range(row.first + 1)]
            if not np.any(psi[entries]):
                psi[entries[-1]] = value / self.sigma
        elif mode == kernel.CORR_BOUND:
            entries = [kernel.theta_index(st, row.term, row.second, c) for c in range(row.second + 1)]
            psi[entries[-1]] = np.sqrt(np.sum(psi[entries] ** 2))
        return psi

    def zeta(self, value: float) -> float:
        mode = self._mode(value)
        psi = self._start(mode, value)
        theta = np.empty_like(psi)
        row = self.row
        criterion, _, code = kernel.profile_point(
            psi, mode, row.term, row.first, row.second, float(value), self.problem.structure,
            self.problem.products, self.ws, False, PROFILE_GTOL, MAX_ITER, theta,
        )
        if not np.isfinite(criterion):
            raise WorkbenchError(f"confint: the profile of {row.name} failed at {value:.6g}")
        if code == CONVERGED:
            self.visited.setdefault(mode, []).append((float(value), psi))
        return float(np.sign(value - self.estimate) * np.sqrt(max(criterion - self.base, 0.0)))


class _FixedEffectProfile:
    """ζ of one fixed effect: ML refits of the response less b times its column, on the others."""

    def __init__(self, problem: Problem, theta: np.ndarray, base: float, row: Parameter, estimate: float):
        design = problem.design
        j = row.first
        reduced = dataclasses.replace(
            design,
            x=np.ascontiguousarray(np.delete(design.x, j, axis=1)),
            fixef_names=tuple(n for i, n in enumerate(design.fixef_names) if i != j),
        )
        self.problem = Problem.build(reduced) if reduced.terms else least_squares_problem(reduced)
        st = self.problem.structure
        if reduced.terms:
            self.codes, self.z = term_arrays(reduced)
        else:
            self.codes, self.z = np.zeros((0, design.n), np.int64), np.zeros((0, design.n, 1))
        self.products = CrossProducts(self.problem.products.a_front.copy(), self.problem.products.a_tt.copy())
        self.x, self.y = reduced.x, design.y
        self.held = np.ascontiguousarray(design.x[:, j])
        self.front0 = front_starts(st)
        self.lower = design.theta_lower_bounds()
        self.ws = make_workspace(st)
        self.theta, self.base, self.row, self.estimate = theta, base, row, estimate
        self.visited: list[tuple[float, np.ndarray]] = []

    def zeta(self, value: float) -> float:
        start = min(self.visited, key=lambda item: abs(item[0] - value))[1] if self.visited else self.theta
        theta = np.empty_like(self.theta)
        deviance, _, code = kernel.fixed_effect_point(
            float(value), self.problem.structure, self.products, self.codes, self.z, self.x, self.y, self.held,
            self.front0, self.ws, self.lower, GRADIENT_TOL, MAX_ITER, start.copy(), theta,
        )
        if not np.isfinite(deviance):
            raise WorkbenchError(f"confint: the profile of {self.row.name} failed at {value:.6g}")
        if code == CONVERGED:
            self.visited.append((float(value), theta))
        return float(np.sign(value - self.estimate) * np.sqrt(max(deviance - self.base, 0.0)))


def _limit(profile, estimate: float, step: float, bound: float, side: int, z: float) -> float:
    """The value where ζ = side·z on one side of the estimate, or `bound` if ζ never gets there.

    Steps out from the estimate, doubling, until side·ζ ≥ z (a positive parameter's way to a
    bound of 0 that is not reached is halved instead), then Brent's method on the bracket.
    """
    previous = estimate
    for _ in range(_BRACKET_STEPS):
        value = estimate + side * step
        if side * (value - bound) >= 0:
            if bound == 0.0 and profile.row.kind == "sigma":
                value = previous / 4  # σ = 0 is not in the model, and ζ → −∞ on the way there
            else:
                value = bound
        current = profile.zeta(value)
        if side * current >= z:
            break
        if value == bound:
            return bound
        previous = value
        step *= 2.0
    else:
        return bound if np.isfinite(bound) else side * np.inf
    from scipy.optimize import brentq  # here: only profile limits need it, and it takes 0.1 s to import

    scale = max(abs(estimate), abs(value - previous), 1e-12)
    return brentq(
        lambda t: profile.zeta(t) - side * z, min(previous, value), max(previous, value), xtol=1e-10 * scale, rtol=1e-12
    )


def _profile(problem: Problem, reml: bool, theta: np.ndarray, rows: list[Parameter], z: float) -> np.ndarray:
    design = problem.design
    if reml:
        ml = optimize(problem, False) if design.terms else least_squares_optimum(problem, False)
        if not ml.converged:
            raise WorkbenchError("confint: the ML refit for the profile did not converge")
        theta_ml = ml.theta
    else:
        theta_ml = np.asarray(theta, float)
    values = _estimates(problem, False, theta_ml)
    ws = make_workspace(problem.structure)
    factorize(theta_ml, problem.structure, problem.products, ws)
    base = float(criterion(problem.structure, ws, False))
    sigma = values["sd[Residual]"][0]
    out = np.empty((len(rows), 2))
    for r, row in enumerate(rows):
        estimate, se = values[row.name]
        low, high = _space(row)
        if not np.isfinite(estimate):
            out[r] = np.nan  # a correlation with an SD estimated as 0 is not defined
            continue
        if row.kind == "beta":
            profile = _FixedEffectProfile(problem, theta_ml, base, row, estimate)
        else:
            profile = _VarianceProfile(problem, theta_ml, base, row, estimate, sigma)
        step = z * se if np.isfinite(se) and se > 0 else 0.25 * max(abs(estimate), 0.1 * sigma)
        for side, bound, col in ((-1, low, 0), (1, high, 1)):
            out[r, col] = bound if estimate == bound else _limit(profile, estimate, step, bound, side, z)
    return out


# ---------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_draws(result, nsim: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The parametric bootstrap's estimates: one row per replicate, one column per parameter.

    Columns follow `workbench.model.truth.parameter_names`; replicate r is drawn from
    ``SeedSequence(seed, spawn_key=(0, r))`` at the fitted (β̂, θ̂, σ̂) and refitted by the fit's
    method. Also returns each refit's status code (`workbench.fitting.status.FitStatus`).
    """
    nsim = arguments.integer(nsim, "nsim", 1)
    seed = arguments.seed(seed)
    problem, reml = result.problem, result.reml
    design, st = problem.design, problem.structure
    values = _estimates(problem, reml, result.theta)
    beta = np.array([values[f"beta[{name}]"][0] for name in design.fixef_names])
    sim = fitted_simulation_inputs(design, beta, np.asarray(result.theta, float), values["sd[Residual]"][0])
    draws, status = refit_draws(problem, front_starts(st), reml, sim, nsim, seed)
    return pd.DataFrame(draws, columns=parameter_names(design)), status


def refit_draws(problem: Problem, front0: np.ndarray, reml: bool, sim: SimulationInputs, nsim: int, seed: int):
    """`nsim` responses drawn from `sim` (replicate r from ``SeedSequence(seed, spawn_key=(0, r))``),
    each refitted on `problem`'s design: their estimates (nsim, parameters) and status codes."""
    design, st = problem.design, problem.structure
    draws = np.empty((nsim, len(parameter_names(design))))
    status = np.empty(nsim, np.int64)
    lower = design.theta_lower_bounds()
    for first in range(0, nsim, BOOTSTRAP_CHUNK):
        replicates = np.arange(first, min(first + BOOTSTRAP_CHUNK, nsim))
        normals = draw_normals(seed, 0, replicates, sim.size)
        block = np.empty((len(replicates), draws.shape[1]))
        codes = np.empty(len(replicates), np.int64)
        bootstrap_fits(st, problem.products, sim, design.x, front0, normals, reml, lower, GRADIENT_TOL, MAX_ITER, block, codes)
        draws[replicates] = block
        status[replicates] = codes
    return draws, status


def percentile_limits(draws: np.ndarray, level: float) -> np.ndarray:
    """The (lower, upper) percentiles of the finite draws of one parameter; NaN if there are none."""
    finite = draws[np.isfinite(draws)]
    return np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2]) if finite.size else np.full(2, np.nan)


def _bootstrap(result, rows: list[Parameter], level: float, nsim: int, seed: int) -> tuple[np.ndarray, int]:
    draws, status = bootstrap_draws(result, nsim, seed)
    out = np.array([percentile_limits(draws[row.name].to_numpy(), level) for row in rows]).reshape(len(rows), 2)
    return out, int(np.sum(status == FAILED))


def fitted_simulation_inputs(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> SimulationInputs:
    """The simulation kernel's arrays; a model without random effects has empty term arrays."""
    if design.terms:
        return simulation_inputs(design, beta, theta, sigma)
    empty = np.zeros(0, np.int64)
    xbeta = design.x @ beta if design.p else np.zeros(design.n)
    return SimulationInputs(
        xbeta, np.zeros((0, design.n), np.int64), np.zeros((0, design.n, 1)), empty, empty, np.zeros((0, 1, 1)),
        float(sigma), design.n,
    )
