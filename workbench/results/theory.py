"""Exact sampling theory of ML and REML in the balanced one-way random-intercept model.

The model is y_ij = mu + a_i + e_ij, i = 1..a groups, j = 1..n per group, with
a_i ~ N(0, var_a) and e_ij ~ N(0, var_e). With lambda = var_e + n var_a,

    U = SSA / lambda ~ chi2(a - 1),   W = SSE / var_e ~ chi2(a (n - 1)),

independent of each other and of the grand mean, which is N(mu, lambda / (a n))
(Searle, Casella & McCulloch 1992, Variance Components, ch. 3-4). The likelihoods
depend on the data only through SSA, SSE and the grand mean:

    -2 log L_ML   = a log lambda + SSA / lambda + a (n - 1) log var_e + SSE / var_e + const
    -2 log L_REML = (a - 1) log lambda + SSA / lambda + a (n - 1) log var_e + SSE / var_e + const

at the maximising mu. Both are convex in (1 / lambda, 1 / var_e), and var_a >= 0 is the
linear constraint 1 / lambda <= 1 / var_e, so the maximiser is the stationary point
lambda = SSA / D, var_e = MSE when that satisfies lambda >= var_e, and otherwise the
boundary lambda = var_e = (SSA + SSE) / P, with D = a - 1, P = a n - 1 (REML) or D = a,
P = a n (ML). This is what lme4 returns, its bound theta >= 0 being var_a >= 0.

Expectations are one- or two-dimensional integrals over the chi-square laws of U and W,
evaluated with adaptive Gauss-Kronrod quadrature (scipy.integrate.quad) in the variable
sqrt(chi2), whose chi density is smooth at the origin for every degree of freedom.
Tails beyond probability 1e-17 are dropped. The requested tolerances are 1e-11
relative and 1e-12 absolute (on the scale var_e = 1); on the designs tested the
expectations and coverages agree with an independent two-dimensional quadrature to
within 5e-14 (var_e = 1). P(var_a_hat = 0) is an F distribution function, exact to
double precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import exp, log, sqrt

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special, stats

METHODS = ("ML", "REML")

# Probability left out in each tail of a chi-square law; below double precision.
_TAIL = 1e-17
_EPSABS = 1e-12
_EPSREL = 1e-11
_LIMIT = 200


@dataclass(frozen=True)
class _OneWay:
    """A balanced one-way design and method, on the scale var_e = 1."""

    groups: int
    size: int
    ratio: float  # var_a / var_e
    method: str

    @property
    def df_groups(self) -> int:
        return self.groups - 1

    @property
    def df_error(self) -> int:
        return self.groups * (self.size - 1)

    @property
    def lam(self) -> float:
        """lambda = var_e + n var_a, the expected mean square between groups."""
        return 1.0 + self.size * self.ratio

    @property
    def divisor_groups(self) -> int:
        """D: SSA / D is the estimate of lambda off the boundary."""
        return self.groups - 1 if self.method == "REML" else self.groups

    @property
    def divisor_pooled(self) -> int:
        """P: (SSA + SSE) / P is the estimate of var_e on the boundary."""
        n_obs = self.groups * self.size
        return n_obs - 1 if self.method == "REML" else n_obs

    @property
    def slope(self) -> float:
        """d such that var_a is estimated as 0 exactly when U < d W."""
        return self.divisor_groups / (self.df_error * self.lam)


def _check(groups, size, var_a, var_e, method) -> _OneWay:
    """Validate a design and return it on the scale var_e = 1."""
    if method not in METHODS:
        raise ValueError(f"method: must be one of {METHODS}, got {method!r}")
    if int(groups) != groups or groups < 2:
        raise ValueError(f"groups: must be an integer >= 2, got {groups}")
    if int(size) != size or size < 2:
        raise ValueError(f"size: must be an integer >= 2, got {size}")
    if not np.isfinite(var_e) or var_e <= 0:
        raise ValueError(f"var_e: must be positive, got {var_e}")
    if not np.isfinite(var_a) or var_a < 0:
        raise ValueError(f"var_a: must be non-negative, got {var_a}")
    return _OneWay(int(groups), int(size), float(var_a) / float(var_e), method)


def _z(level: float) -> float:
    """Normal quantile of a two-sided interval of the given level."""
    if not 0 < level < 1:
        raise ValueError(f"level: must be between 0 and 1, got {level}")
    return float(special.ndtri((1 + level) / 2))


def _chi_pdf(s: float, dof: int) -> float:
    """Density of the chi distribution (the square root of a chi2(dof) variable)."""
    if s <= 0.0:
        return 1.0 / sqrt(np.pi / 2) if dof == 1 else 0.0
    return exp((dof - 1) * log(s) - 0.5 * s * s - (0.5 * dof - 1) * log(2.0) - special.gammaln(0.5 * dof))


@lru_cache(maxsize=64)
def _chi_range(dof: int) -> tuple[float, float]:
    """Interval holding all but 2 * _TAIL of the chi(dof) probability."""
    return sqrt(stats.chi2.ppf(_TAIL, dof)), sqrt(stats.chi2.isf(_TAIL, dof))


def _quad(func, lower: float, upper: float, points=None) -> float:
    """Adaptive quadrature of func over [lower, upper], 0 for an empty interval."""
    if upper <= lower:
        return 0.0
    inside = [p for p in (points or ()) if lower < p < upper]
    value, _ = integrate.quad(
        func, lower, upper, points=inside or None, epsabs=_EPSABS, epsrel=_EPSREL, limit=_LIMIT
    )
    return value


def _expect_chi2(func, dof: int, upper_chi2: float = np.inf) -> float:
    """E[func(X); X < upper_chi2] for X ~ chi2(dof), integrating over sqrt(X)."""
    lower, upper = _chi_range(dof)
    upper = min(upper, sqrt(upper_chi2)) if np.isfinite(upper_chi2) else upper
    mode = sqrt(max(dof - 1, 0))
    return _quad(lambda s: func(s * s) * _chi_pdf(s, dof), lower, upper, points=[mode])


def truncated_estimates(ssa, sse, groups: int, size: int, method: str):
    """ML or REML estimates (var_a, var_e) from the sums of squares, truncated at var_a = 0.

    Parameters
    ----------
    ssa, sse : array_like
        Between-group and within-group sums of squares (broadcast together).
    groups, size : int
        Number of groups a and observations per group n.
    method : {"ML", "REML"}

    Returns
    -------
    var_a, var_e : numpy.ndarray
    """
    design = _check(groups, size, 0.0, 1.0, method)
    ssa, sse = np.broadcast_arrays(np.asarray(ssa, dtype=float), np.asarray(sse, dtype=float))
    mse = sse / design.df_error
    lam = ssa / design.divisor_groups
    inside = lam >= mse
    var_a = np.where(inside, (lam - mse) / design.size, 0.0)
    var_e = np.where(inside, mse, (ssa + sse) / design.divisor_pooled)
    return var_a, var_e


def prob_zero(groups: int, size: int, var_a: float, var_e: float, method: str) -> float:
    """Exact probability that the ML or REML estimate of var_a is 0 (scalar arguments).

    The estimate is 0 when SSA / D < MSE, i.e. when an F(a - 1, a (n - 1)) variable
    falls below D var_e / ((a - 1) (var_e + n var_a)), D = a (ML) or a - 1 (REML).
    """
    design = _check(groups, size, var_a, var_e, method)
    threshold = design.slope * design.df_error / design.df_groups
    return float(special.fdtr(design.df_groups, design.df_error, threshold))


def expected_estimates(groups: int, size: int, var_a: float, var_e: float, method: str) -> dict:
    """Exact expectations of the truncated ML or REML estimators (scalar arguments).

    Given W = w, the boundary is U < d w and both expectations have closed forms in
    chi-square distribution functions, using E[U; U > u] = k P(chi2(k + 2) > u) for
    U ~ chi2(k); the remaining integral over W is done by quadrature.

    Returns
    -------
    dict
        ``var_a``, ``var_e``: the expectations; ``bias_var_a``, ``bias_var_e``: minus the truth.
    """
    design = _check(groups, size, var_a, var_e, method)
    k, nu, lam = design.df_groups, design.df_error, design.lam
    d_groups, d_pooled = design.divisor_groups, design.divisor_pooled

    def given_w_var_a(w):
        cut = design.slope * w
        above = lam / d_groups * k * special.chdtrc(k + 2, cut) - w / nu * special.chdtrc(k, cut)
        return above / design.size

    def given_w_var_e(w):
        cut = design.slope * w
        boundary = lam * k * special.chdtr(k + 2, cut) + w * special.chdtr(k, cut)
        return w / nu * special.chdtrc(k, cut) + boundary / d_pooled

    mean_a = var_e * _expect_chi2(given_w_var_a, nu)
    mean_e = var_e * _expect_chi2(given_w_var_e, nu)
    return {"var_a": mean_a, "var_e": mean_e, "bias_var_a": mean_a - var_a, "bias_var_e": mean_e - var_e}


def mean_coverage(
    groups: int, size: int, var_a: float, var_e: float, method: str, level: float = 0.95
) -> float:
    """Exact coverage of the Wald interval for mu built from the ML or REML estimates (scalar arguments).

    The interval is ybar ± z SE with SE^2 = (var_e_hat + n var_a_hat) / (a n) and
    z = Phi^-1((1 + level) / 2). Given U and W it covers with probability
    2 Phi(z sqrt(R)) - 1, where R = SE^2 a n / lambda is U / D off the boundary and
    (U + W / lambda) / P on it.
    """
    design = _check(groups, size, var_a, var_e, method)
    z = _z(level)
    k, nu, lam, slope = design.df_groups, design.df_error, design.lam, design.slope

    def covers(ratio):
        return special.erf(z * sqrt(ratio / 2.0))

    # Off the boundary: U > d W, i.e. W < U / d, integrated over U.
    off = _expect_chi2(lambda u: covers(u / design.divisor_groups) * special.chdtr(nu, u / slope), k)

    # On the boundary: U < d W, the inner integral over U given W.
    def boundary_given_w(w):
        return _expect_chi2(lambda u: covers((u + w / lam) / design.divisor_pooled), k, upper_chi2=slope * w)

    on = _expect_chi2(boundary_given_w, nu)
    return off + on


def one_way_table(designs, methods=METHODS, level: float = 0.95) -> pd.DataFrame:
    """Exact ML/REML properties for a list of balanced one-way designs.

    Parameters
    ----------
    designs : iterable of (groups, size, var_a, var_e)
    methods : sequence of {"ML", "REML"}
    level : float
        Nominal level of the Wald interval for mu.

    Returns
    -------
    pandas.DataFrame
        One row per design and method: the design, ``prob_zero``, ``mean_var_a``,
        ``mean_var_e``, ``bias_var_a``, ``bias_var_e`` and ``coverage_mu``.
    """
    rows = []
    for groups, size, var_a, var_e in designs:
        for method in methods:
            means = expected_estimates(groups, size, var_a, var_e, method)
            rows.append(
                {
                    "groups": groups,
                    "size": size,
                    "var_a": var_a,
                    "var_e": var_e,
                    "method": method,
                    "prob_zero": prob_zero(groups, size, var_a, var_e, method),
                    "mean_var_a": means["var_a"],
                    "mean_var_e": means["var_e"],
                    "bias_var_a": means["bias_var_a"],
                    "bias_var_e": means["bias_var_e"],
                    "coverage_mu": mean_coverage(groups, size, var_a, var_e, method, level),
                }
            )
    return pd.DataFrame(rows)


# Under var_a = 0: the boundary and the likelihood-ratio tests of var_a = 0.
#
# Both (restricted) log-likelihood ratios depend on the data only through u = SSA / SSE. Off the
# boundary (u > D / nu, nu = a (n - 1)) the maximised criteria differ by
#
#     T(u) = P log((SSA + SSE) / P) - D log(SSA / D) - nu log(SSE / nu)
#          = P log(1 + u) - D log(u) + D log(D) + nu log(nu) - P log(P),
#
# with D, P as above (REML: D = a - 1, P = a n - 1, the restricted LRT; ML: D = a, P = a n, the
# LRT), and T = 0 on the boundary. dT/du = (nu u - D) / (u (1 + u)) > 0 there, so T is an
# increasing function of u, and u = (a - 1) F / nu with F ~ F(a - 1, a (n - 1)) under var_a = 0.


def null_prob_zero(groups: int, size: int, method: str) -> float:
    """Exact probability under var_a = 0 that the ML or REML estimate of var_a is 0.

    P(F(a - 1, a (n - 1)) <= D / (a - 1)): for REML P(F <= 1), for ML P(F <= a / (a - 1)).
    """
    return prob_zero(groups, size, 0.0, 1.0, method)


def lrt_statistic(ssa, sse, groups: int, size: int, method: str):
    """The LRT (ML) or restricted LRT (REML) statistic of var_a = 0 from the sums of squares.

    Returns an array broadcast from `ssa` and `sse`; 0 where the estimate of var_a is 0.
    """
    design = _check(groups, size, 0.0, 1.0, method)
    ssa, sse = np.broadcast_arrays(np.asarray(ssa, dtype=float), np.asarray(sse, dtype=float))
    return _statistic_of_ratio(ssa / sse, design)


def _statistic_of_ratio(ratio, design: _OneWay):
    d_groups, d_pooled, nu = design.divisor_groups, design.divisor_pooled, design.df_error
    ratio = np.asarray(ratio, dtype=float)
    inside = ratio > d_groups / nu
    safe = np.where(inside, ratio, 1.0)
    value = d_pooled * np.log1p(safe) - d_groups * np.log(safe)
    value += d_groups * log(d_groups) + nu * log(nu) - d_pooled * log(d_pooled)
    return np.where(inside, np.maximum(value, 0.0), 0.0)


def lrt_point_mass(groups: int, size: int, method: str) -> float:
    """Exact probability under var_a = 0 that the (restricted) LRT statistic is 0.

    The statistic is 0 exactly when the estimate of var_a is, so this is `null_prob_zero`.
    """
    return null_prob_zero(groups, size, method)


def lrt_null_sf(statistic: float, groups: int, size: int, method: str) -> float:
    """Exact P(T >= statistic) under var_a = 0 of the LRT (ML) or restricted LRT (REML) statistic T.

    1 for a statistic of 0 (or less); otherwise P(F > f) with T(f) = statistic off the boundary,
    found by Brent's method on the increasing T.
    """
    design = _check(groups, size, 0.0, 1.0, method)
    if statistic <= 0.0:
        return 1.0
    start = design.divisor_groups / design.df_error
    high = 2.0 * start
    while float(_statistic_of_ratio(high, design)) < statistic:
        high *= 2.0
    ratio = optimize.brentq(lambda u: float(_statistic_of_ratio(u, design)) - statistic, start, high, xtol=1e-14, rtol=1e-14)
    return float(special.fdtrc(design.df_groups, design.df_error, ratio * design.df_error / design.df_groups))
