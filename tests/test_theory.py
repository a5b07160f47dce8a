"""Tests of the exact one-way ML/REML theory: likelihood maximisation, quadrature and Monte Carlo."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, special, stats

from workbench.results import theory

METHODS = ("ML", "REML")
# (groups, size, var_a, var_e): few groups and many zeros, no random effect, a strong one
DESIGNS = [(5, 4, 0.5, 1.0), (3, 2, 0.1, 2.0), (20, 3, 0.0, 1.0), (8, 10, 1.0, 0.5)]
Z95 = float(special.ndtri(0.975))


def simulate_data(rng, groups, size, var_a, var_e):
    """Responses y[i, j] of the one-way model with mu = 10."""
    effects = rng.normal(0.0, math.sqrt(var_a), size=(groups, 1))
    return 10.0 + effects + rng.normal(0.0, math.sqrt(var_e), size=(groups, size))


def sums_of_squares(y):
    group_means = y.mean(axis=1)
    ssa = y.shape[1] * np.sum((group_means - y.mean()) ** 2)
    sse = np.sum((y - group_means[:, None]) ** 2)
    return ssa, sse


def deviance(y, var_a, var_e, method):
    """-2 log-likelihood (ML) or REML criterion of the data, from the dense covariance matrix."""
    groups, size = y.shape
    membership = np.kron(np.eye(groups), np.ones((size, 1)))
    cov = var_e * np.eye(groups * size) + var_a * membership @ membership.T
    x = np.ones((groups * size, 1))
    y = y.ravel()
    cov_inv = np.linalg.inv(cov)
    information = x.T @ cov_inv @ x
    beta = np.linalg.solve(information, x.T @ cov_inv @ y)
    resid = y - x @ beta
    value = np.linalg.slogdet(cov)[1] + resid @ cov_inv @ resid
    if method == "REML":
        value += np.linalg.slogdet(information)[1]
    return value


def maximise_likelihood(y, method):
    """(var_a, var_e) by direct numerical optimisation over (sd_a, log var_e), so var_a = 0 is reachable."""

    def objective(params):
        return deviance(y, params[0] ** 2, math.exp(params[1]), method)

    start = np.array([math.sqrt(max(y.mean(axis=1).var(), 1e-2)), math.log(y.var(axis=1, ddof=1).mean())])
    fit = optimize.minimize(
        objective, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 5000}
    )
    return fit.x[0] ** 2, math.exp(fit.x[1]), fit.fun


@pytest.mark.parametrize("method", METHODS)
def test_estimators_maximise_the_likelihood(method):
    rng = np.random.default_rng(42)
    data = [simulate_data(rng, 6, 4, var_a, 1.0) for var_a in (1.0, 0.3, 0.05, 0.0)]
    # equal group means: SSA = 0 puts the estimate on the boundary
    flat = simulate_data(rng, 5, 3, 0.0, 1.0)
    data.append(flat - flat.mean(axis=1, keepdims=True) + 3.0)
    boundary_seen = False
    for y in data:
        groups, size = y.shape
        var_a, var_e = theory.truncated_estimates(*sums_of_squares(y), groups, size, method)
        numeric_a, numeric_e, numeric_deviance = maximise_likelihood(y, method)
        boundary_seen |= float(var_a) == 0.0
        assert float(var_a) == pytest.approx(numeric_a, abs=1e-6)
        assert float(var_e) == pytest.approx(numeric_e, rel=1e-6)
        # the closed form is at least as good an optimum as the numerical one
        assert deviance(y, float(var_a), float(var_e), method) <= numeric_deviance + 1e-9
    assert boundary_seen


def test_truncated_estimates_are_vectorised():
    var_a, var_e = theory.truncated_estimates([10.0, 1.0], [12.0, 12.0], 4, 3, "REML")
    # MSE = 12 / 8 = 1.5; MSA = 10 / 3 > 1.5, then 1 / 3 < 1.5 (pooled: 13 / 11)
    np.testing.assert_allclose(var_a, [(10 / 3 - 1.5) / 3, 0.0])
    np.testing.assert_allclose(var_e, [1.5, 13 / 11])


def simulate_sums(rng, groups, size, var_a, var_e, draws):
    """Draws of (SSA, SSE, mean - mu) straight from their chi-square and normal laws."""
    lam = var_e + size * var_a
    ssa = lam * rng.chisquare(groups - 1, draws)
    sse = var_e * rng.chisquare(groups * (size - 1), draws)
    mean = rng.normal(0.0, math.sqrt(lam / (groups * size)), draws)
    return ssa, sse, mean


def assert_within_4_mcse(exact, draws):
    mcse = draws.std(ddof=1) / math.sqrt(draws.size)
    assert abs(draws.mean() - exact) <= 4 * mcse, (exact, draws.mean(), mcse)


@pytest.mark.parametrize(("seed", "design"), list(enumerate(DESIGNS)))
def test_exact_values_agree_with_monte_carlo(seed, design):
    groups, size, var_a, var_e = design
    rng = np.random.default_rng(seed)
    ssa, sse, mean = simulate_sums(rng, groups, size, var_a, var_e, 200_000)
    for method in METHODS:
        est_a, est_e = theory.truncated_estimates(ssa, sse, groups, size, method)
        exact = theory.expected_estimates(groups, size, var_a, var_e, method)
        assert_within_4_mcse(theory.prob_zero(groups, size, var_a, var_e, method), (est_a == 0).astype(float))
        assert_within_4_mcse(exact["var_a"], est_a)
        assert_within_4_mcse(exact["var_e"], est_e)
        se = np.sqrt((est_e + size * est_a) / (groups * size))
        for level in (0.95, 0.8):
            z = special.ndtri((1 + level) / 2)
            coverage = theory.mean_coverage(groups, size, var_a, var_e, method, level)
            assert_within_4_mcse(coverage, (np.abs(mean) <= z * se).astype(float))


def two_dimensional(groups, size, ratio, method, integrand):
    """E[integrand(U, W, estimates...)] by 2-D quadrature over the chi-square densities (var_e = 1)."""
    lam = 1 + size * ratio
    k, nu = groups - 1, groups * (size - 1)
    divisor = groups - 1 if method == "REML" else groups
    boundary = divisor / (nu * lam)
    top_u, top_w = stats.chi2.isf(1e-16, k), stats.chi2.isf(1e-16, nu)

    def log_chi2_pdf(x, dof):
        return (dof / 2 - 1) * math.log(x) - x / 2 - dof / 2 * math.log(2) - math.lgamma(dof / 2)

    def density(u, w):
        if u <= 0 or w <= 0:
            return 0.0
        return math.exp(log_chi2_pdf(u, k) + log_chi2_pdf(w, nu))

    def value(u, w):
        var_a, var_e = theory.truncated_estimates(lam * u, w, groups, size, method)
        return integrand(float(var_a), float(var_e)) * density(u, w)

    tolerance = {"epsabs": 1e-12, "epsrel": 1e-11}
    # split along the boundary U = d W, where the estimators have a kink
    below = integrate.dblquad(value, 0, top_w, 0, lambda w: min(boundary * w, top_u), **tolerance)[0]
    above = integrate.dblquad(value, 0, top_w, lambda w: min(boundary * w, top_u), top_u, **tolerance)[0]
    return below + above


@pytest.mark.parametrize("method", METHODS)
def test_quadrature_agrees_with_an_independent_two_dimensional_quadrature(method):
    groups, size, ratio = 4, 3, 0.3
    lam = 1 + size * ratio

    def check(exact, integrand):
        assert exact == pytest.approx(two_dimensional(groups, size, ratio, method, integrand), abs=1e-10)

    means = theory.expected_estimates(groups, size, ratio, 1.0, method)
    check(means["var_a"], lambda var_a, var_e: var_a)
    check(means["var_e"], lambda var_a, var_e: var_e)
    # given the estimates, the interval covers with probability 2 Phi(z SE / sd(mean)) - 1
    check(
        theory.mean_coverage(groups, size, ratio, 1.0, method),
        lambda var_a, var_e: special.erf(Z95 * math.sqrt((var_e + size * var_a) / lam / 2)),
    )


def test_known_closed_forms():
    # two groups of two, no group effect: REML is 0 when F(1, 2) < 1, i.e. |t_2| < 1, probability 1/sqrt(3)
    assert theory.prob_zero(2, 2, 0.0, 1.0, "REML") == pytest.approx(1 / math.sqrt(3), abs=1e-14)
    # ML is 0 when F(1, 2) < 2: P(|t_2| < sqrt 2) = 1/sqrt(2)
    assert theory.prob_zero(2, 2, 0.0, 1.0, "ML") == pytest.approx(1 / math.sqrt(2), abs=1e-14)
    # a huge group variance is never truncated: REML is unbiased, ML shrinks var_a by (a - 1) / a
    big = theory.expected_estimates(5, 4, 1e8, 1.0, "REML")
    assert big["var_a"] == pytest.approx(1e8, rel=1e-12) and big["var_e"] == pytest.approx(1.0, rel=1e-9)
    ml = theory.expected_estimates(5, 4, 1e8, 1.0, "ML")
    assert ml["var_a"] == pytest.approx(((1 + 4e8) * 4 / 5 - 1) / 4, rel=1e-12)


def test_scale_invariance():
    small = theory.expected_estimates(6, 3, 0.4, 1.0, "REML")
    large = theory.expected_estimates(6, 3, 4.0, 10.0, "REML")
    assert large["var_a"] == pytest.approx(10 * small["var_a"], rel=1e-9)
    assert large["var_e"] == pytest.approx(10 * small["var_e"], rel=1e-9)
    assert theory.mean_coverage(6, 3, 4.0, 10.0, "ML") == pytest.approx(
        theory.mean_coverage(6, 3, 0.4, 1.0, "ML"), abs=1e-10
    )
    assert theory.prob_zero(6, 3, 4.0, 10.0, "ML") == pytest.approx(theory.prob_zero(6, 3, 0.4, 1.0, "ML"))


def test_one_way_table():
    table = theory.one_way_table([(5, 4, 0.5, 1.0), (10, 2, 0.0, 2.0)])
    assert isinstance(table, pd.DataFrame)
    assert list(table["method"]) == ["ML", "REML", "ML", "REML"]
    for column in ("prob_zero", "mean_var_a", "mean_var_e", "bias_var_a", "bias_var_e", "coverage_mu"):
        assert column in table and table[column].notna().all()
    row = table.iloc[3]
    assert row["prob_zero"] == theory.prob_zero(10, 2, 0.0, 2.0, "REML")
    assert row["bias_var_e"] == pytest.approx(row["mean_var_e"] - 2.0)
    # ML is 0 more often, and its interval is shorter, than REML's
    assert (table["prob_zero"].values[::2] > table["prob_zero"].values[1::2]).all()
    assert (table["coverage_mu"].values[::2] < table["coverage_mu"].values[1::2]).all()


@pytest.mark.parametrize(
    ("args", "word"),
    [
        ((1, 4, 0.5, 1.0, "ML"), "groups"),
        ((5, 1, 0.5, 1.0, "ML"), "size"),
        ((5, 4, -1.0, 1.0, "ML"), "var_a"),
        ((5, 4, 0.5, 0.0, "ML"), "var_e"),
        ((5, 4, 0.5, 1.0, "OLS"), "method"),
    ],
)
def test_invalid_designs_are_rejected(args, word):
    with pytest.raises(ValueError, match=word):
        theory.prob_zero(*args)
    with pytest.raises(ValueError, match="level"):
        theory.mean_coverage(5, 4, 0.5, 1.0, "ML", level=1.0)
