"""Likelihood-ratio tests against lme4/RLRsim (tests/data/inference_intervals.json), the one-way closed forms, and twins.

Tolerances: statistics 1e-6 relative (at least 1e-8 absolute: they are differences of
criteria of order 10³, each matched to ~1e-9 of lme4's); χ² and mixture p-values 1e-4
absolute; exact p-values within four Monte Carlo SEs of the difference of two simulated
p-values, √(p(1 − p)(1/n₁ + 1/n₂)) at their mean p (RLRsim's draws and ours are independent).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

import workbench as wb
from twins import dense_z
from workbench.errors import FormulaError, WorkbenchError
from workbench.fitting import lrt as lrt_module
from workbench.kernels import rlrt
from workbench.results import theory

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "inference_intervals.json").read_text())
NSIM = 100_000


def _within_monte_carlo_error(p1, n1, p2, n2, sds=4.0):
    mean = 0.5 * (p1 + p2)
    return abs(p1 - p2) <= sds * np.sqrt(mean * (1 - mean) * (1 / n1 + 1 / n2))


def _fits(case):
    data = pd.read_csv(DATA / case["data"])
    reml = case["method"] == "REML"
    return wb.fit(case["smaller"], data, reml=reml), wb.fit(case["larger"], data, reml=reml)


@pytest.fixture(scope="module", params=REFERENCE["tests"], ids=lambda c: f"{c['case']}-{c['method']}-{c['larger']}")
def tested(request):
    case = request.param
    return case, *_fits(case)


def test_statistic_and_df_match_lme4(tested):
    case, smaller, larger = tested
    result = wb.lrt(smaller, larger)
    assert result.statistic == pytest.approx(case["statistic"], rel=1e-6, abs=1e-8)
    assert result.df == case["df"]
    assert result.npar[1] - result.npar[0] == case["df"]


def test_chi2_p_value(tested):
    case, smaller, larger = tested
    assert wb.lrt(smaller, larger, null="chi2").p_value == pytest.approx(case["p_chi2"], abs=1e-4)


def test_mixture_p_value(tested):
    case, smaller, larger = tested
    added = [n for n in lrt_module.variance_names(larger.problem.design) if n.startswith("sd[")]
    added = [n for n in added if n not in lrt_module.variance_names(smaller.problem.design)]
    if len(added) != 1:  # a test of a correlation: not on a boundary
        with pytest.raises(WorkbenchError, match="null 'mixture' is for a test of one variance component"):
            wb.lrt(smaller, larger, null="mixture")
        return
    assert wb.lrt(smaller, larger, null="mixture").p_value == pytest.approx(case["p_mixture"], abs=1e-4)


@pytest.mark.parametrize(
    "case", [c for c in REFERENCE["tests"] if "exact" in c], ids=lambda c: f"{c['case']}-{c['method']}-{c['larger']}"
)
def test_exact_p_value_matches_rlrsim(case):
    smaller, larger = _fits(case)
    exact = case["exact"]
    result = wb.lrt(smaller, larger, null="exact", nsim=NSIM, seed=11)
    assert result.statistic == pytest.approx(exact["statistic"], rel=1e-6, abs=1e-8)
    assert result.nsim == NSIM
    assert result.p_value_se == pytest.approx(np.sqrt(result.p_value * (1 - result.p_value) / NSIM))
    assert _within_monte_carlo_error(result.p_value, NSIM, exact["p_value"], exact["nsim"])


# --- the balanced one-way model: exact theory under var_a = 0 ----------------------------


def _one_way_frame(y):
    groups, size = y.shape
    return pd.DataFrame({"y": y.ravel(), "g": np.repeat([f"g{i}" for i in range(groups)], size)})


def _sums_of_squares(y):
    means = y.mean(axis=1)
    return y.shape[1] * np.sum((means - y.mean()) ** 2), np.sum((y - means[:, None]) ** 2)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("shape, seed", [((10, 4), 0), ((6, 3), 1), ((15, 2), 2)])
def test_closed_form_statistic_is_the_fitted_one(method, shape, seed):
    rng = np.random.default_rng(seed)
    y = 3 + rng.normal(scale=0.6, size=(shape[0], 1)) + rng.normal(size=shape)
    frame = _one_way_frame(y)
    reml = method == "REML"
    result = wb.lrt(wb.fit("y ~ 1", frame, reml=reml), wb.fit("y ~ 1 + (1 | g)", frame, reml=reml))
    ssa, sse = _sums_of_squares(y)
    expected = float(theory.lrt_statistic(ssa, sse, *shape, method))
    assert result.statistic == pytest.approx(expected, rel=1e-8, abs=1e-9)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("groups, size", [(10, 4), (5, 2), (30, 6)])
def test_point_mass_at_zero_is_the_chance_of_a_zero_estimate(method, groups, size):
    """P(T = 0) = P(U/D ≤ W/ν), U ~ χ²(a − 1), W ~ χ²(a(n − 1)), by quadrature over W."""
    k, nu = groups - 1, groups * (size - 1)
    divisor = groups - 1 if method == "REML" else groups
    expected, _ = integrate.quad(lambda w: stats.chi2.cdf(divisor * w / nu, k) * stats.chi2.pdf(w, nu), 0, np.inf, epsabs=1e-13)
    assert theory.lrt_point_mass(groups, size, method) == pytest.approx(expected, abs=1e-10)
    assert theory.null_prob_zero(groups, size, method) == theory.prob_zero(groups, size, 0.0, 2.5, method)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_closed_form_null_is_the_law_of_fitted_statistics(method):
    """Under var_a = 0 the statistic's survival function at a few points, by Monte Carlo over data sets."""
    groups, size, reps = 6, 3, 20000
    rng = np.random.default_rng(5)
    y = rng.normal(size=(reps, groups, size))
    means = y.mean(axis=2)
    ssa = size * np.sum((means - means.mean(axis=1, keepdims=True)) ** 2, axis=1)
    sse = np.sum((y - means[..., None]) ** 2, axis=(1, 2))
    sample = theory.lrt_statistic(ssa, sse, groups, size, method)
    assert np.mean(sample == 0) == pytest.approx(theory.lrt_point_mass(groups, size, method), abs=4 * 0.5 / np.sqrt(reps))
    for t in (0.1, 1.0, 3.0):
        p = theory.lrt_null_sf(t, groups, size, method)
        assert _within_monte_carlo_error(np.mean(sample >= t), reps, p, np.inf)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_exact_null_simulation_is_the_closed_form_on_balanced_data(method):
    data = pd.read_csv(DATA / "oneway_lrt.csv")
    reml = method == "REML"
    larger = wb.fit("y ~ 1 + (1 | g)", data, reml=reml)
    design = larger.problem.design
    sample = lrt_module.null_sample(design, design.terms[0], not reml, 0, NSIM, seed=4)
    groups, size = 10, 4
    assert _within_monte_carlo_error(np.mean(sample == 0), NSIM, theory.lrt_point_mass(groups, size, method), np.inf)
    for t in (0.05, 0.5, 1.5, 4.0):
        assert _within_monte_carlo_error(np.mean(sample >= t), NSIM, theory.lrt_null_sf(t, groups, size, method), np.inf)
    # and the closed-form p-value of the data is RLRsim's within its Monte Carlo error
    case = next(c for c in REFERENCE["tests"] if c["case"] == "oneway" and c["method"] == method)
    exact = theory.lrt_null_sf(case["statistic"], groups, size, method)
    assert _within_monte_carlo_error(exact, np.inf, case["exact"]["p_value"], case["exact"]["nsim"])


def test_exact_ml_null_with_a_fixed_effect_dropped_is_the_one_way_law():
    """Testing μ = 0 and var_a = 0 together in the balanced one-way model (q = 1): the LRT is
    N log(SST₀/N) − [a log(SSA/a) + ν log(SSE/ν) + N] off the boundary (N log((SSA + SSE)/N) + N
    on it), with Nȳ², SSA and SSE independent χ²(1), χ²(a − 1) and χ²(ν) under the null."""
    groups, size = 10, 4
    data = pd.read_csv(DATA / "oneway_lrt.csv")
    design = wb.fit("y ~ 1 + (1 | g)", data, reml=False).problem.design
    sample = lrt_module.null_sample(design, design.terms[0], True, 1, NSIM, seed=6)
    rng = np.random.default_rng(7)
    n_obs, nu = groups * size, groups * (size - 1)
    mean, ssa, sse = rng.chisquare(1, NSIM), rng.chisquare(groups - 1, NSIM), rng.chisquare(nu, NSIM)
    inside = ssa / groups > sse / nu
    alternative = np.where(
        inside,
        groups * np.log(ssa / groups) + nu * np.log(sse / nu),
        n_obs * np.log((ssa + sse) / n_obs),
    )
    law = np.maximum(n_obs * np.log((mean + ssa + sse) / n_obs) - alternative, 0.0)
    for t in (0.5, 2.0, 4.0, 8.0):
        assert _within_monte_carlo_error(np.mean(sample >= t), NSIM, np.mean(law >= t), NSIM)


# --- twins of the spectral kernel -----------------------------------------------------------


def test_spectral_weights_are_the_dense_eigenvalues():
    data = pd.read_csv(DATA / "clusters16_lrt.csv")
    design = wb.fit("y ~ 1 + treat + x + (1 | cluster)", data).problem.design
    mu, xi = lrt_module.spectral_weights(design, design.terms[0])
    z = dense_z(design)
    x = design.x
    projection = np.eye(design.n) - x @ np.linalg.pinv(x)
    np.testing.assert_allclose(np.sort(mu), np.sort(np.linalg.svd(projection @ z, compute_uv=False) ** 2), atol=1e-9)
    np.testing.assert_allclose(np.sort(xi), np.sort(np.linalg.svd(z, compute_uv=False) ** 2), atol=1e-9)


def test_supremum_is_the_maximum_over_lambda():
    rng = np.random.default_rng(2)
    mu = np.array([0.05, 0.3, 1.0])
    counts = np.array([2.0, 3.0, 1.0])
    xi = np.array([0.2, 0.7, 1.0])
    xi_counts = np.array([1.0, 2.0, 3.0])
    grid = np.concatenate([[0.0], np.exp(np.linspace(-10.0, 8.0, 199))])
    tables = rlrt.grid_tables(mu, xi, xi_counts, grid)
    for _ in range(20):
        chi = rng.chisquare(counts)
        rest = rng.chisquare(20)
        n0 = 30.0

        def negative(log_lam):
            return -rlrt.ratio_objective(np.exp(log_lam), n0, mu, chi, rest, xi, xi_counts)

        candidates = [0.0]
        for start in np.linspace(-12, 10, 45):
            best = optimize.minimize_scalar(negative, bounds=(start - 0.5, start + 0.5), method="bounded", options={"xatol": 1e-12})
            candidates.append(-best.fun)
        assert rlrt.supremum(n0, mu, chi, rest, xi, xi_counts, grid, tables) == pytest.approx(max(candidates), abs=1e-9)


def test_exact_null_is_reproducible_and_chunk_invariant(monkeypatch):
    data = pd.read_csv(DATA / "clusters16_lrt.csv")
    design = wb.fit("y ~ 1 + treat + x + (1 | cluster)", data).problem.design
    first = lrt_module.null_sample(design, design.terms[0], False, 0, 500, seed=9)
    assert np.array_equal(first, lrt_module.null_sample(design, design.terms[0], False, 0, 500, seed=9))
    assert not np.array_equal(first, lrt_module.null_sample(design, design.terms[0], False, 0, 500, seed=10))


# --- models without random effects ----------------------------------------------------------


@pytest.mark.parametrize("case", REFERENCE["ols"], ids=lambda c: f"{c['case']}-{c['formula']}")
def test_least_squares_fit_is_lm(case):
    data = pd.read_csv(DATA / case["data"])
    reml = wb.fit(case["formula"], data)
    ml = wb.fit(case["formula"], data, reml=False)
    assert reml.objective == pytest.approx(case["criterion_reml"], rel=1e-10)
    assert ml.objective == pytest.approx(case["deviance_ml"], rel=1e-10)
    assert reml.sigma == pytest.approx(case["sigma"], rel=1e-10)
    for name, value in case["coef"].items():
        assert reml.fixef[name] == pytest.approx(value, rel=1e-10, abs=1e-12)
        assert ml.fixef[name] == pytest.approx(value, rel=1e-10, abs=1e-12)
        assert reml.fixef_se[name] == pytest.approx(case["se"][name], rel=1e-10)
    assert reml.theta.size == 0 and reml.ranef == {} and not reml.singular and reml.converged
    assert list(reml.varcorr["grp"]) == ["Residual"]
    n, p = ml.n_obs, len(case["coef"])
    # ML's σ̂² = RSS/n, so its SEs are lm's times √((n − p)/n), as lme4's would be
    assert ml.fixef_se.to_numpy() == pytest.approx(reml.fixef_se.to_numpy() * np.sqrt((n - p) / n), rel=1e-10)


def test_simulation_still_needs_a_random_effect():
    layout = pd.DataFrame({"x": np.arange(5.0)})
    with pytest.raises(FormulaError, match="formula: no random-effect term"):
        wb.simulate("y ~ 1 + x", layout, {"beta": {"(Intercept)": 1.0, "x": 1.0}, "sigma": 1.0, "re": {}})


# --- refusals -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sleep_fits():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    fits = {}
    for key, formula in {
        "ri": "Reaction ~ 1 + Days + (1 | Subject)",
        "ri0": "Reaction ~ 1 + (1 | Subject)",
        "slopes": "Reaction ~ 1 + Days + (1 + Days | Subject)",
        "uncorr": "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
        "ols": "Reaction ~ 1 + Days",
    }.items():
        fits[key] = wb.fit(formula, data)
        fits[key + "_ml"] = wb.fit(formula, data, reml=False)
    fits["log"] = wb.fit("LogReaction ~ 1 + Days + (1 + Days | Subject)", data.assign(LogReaction=np.log(data["Reaction"])))
    fits["half"] = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", data.iloc[:90])
    fits["other_y"] = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", data.assign(Reaction=data["Reaction"] + 1))
    return fits


@pytest.mark.parametrize(
    "smaller, larger, kwargs, message",
    [
        ("slopes", "ri", {}, "lrt: the models are not nested: the smaller has sd[Subject:Days], the larger does not"),
        ("ri", "log", {}, "lrt: the models have different responses (Reaction and LogReaction)"),
        ("ri", "half", {}, "lrt: the fits are of different data (180 and 90 rows"),
        ("ri", "other_y", {}, "lrt: the fits are of different data (the values of Reaction differ)"),
        ("ri", "slopes_ml", {}, "lrt: one fit is by ML and the other by REML"),
        ("ri0", "slopes", {}, "lrt: REML criteria of models with different fixed effects are not comparable"),
        ("ri", "ri", {}, "lrt: the models have the same parameters"),
        ("ri", "slopes", {"null": "exact"}, "lrt: null 'exact' is for one variance component"),
        ("uncorr", "slopes", {"null": "exact"}, "lrt: null 'exact' is for a test of one variance component"),
        ("ri_ml", "uncorr_ml", {"null": "exact"}, "lrt: the exact null of an ML test needs a smaller model without"),
        ("ri", "slopes", {"null": "bayes"}, "null: must be one of 'chi2', 'mixture', 'exact', got 'bayes'"),
        ("ri", "slopes", {"nsim": 0}, "nsim: must be a positive integer, got 0"),
        ("ri", "slopes", {"seed": -2}, "seed: must be an integer from 0 to"),
    ],
)
def test_refusals(sleep_fits, smaller, larger, kwargs, message):
    with pytest.raises(WorkbenchError) as error:
        wb.lrt(sleep_fits[smaller], sleep_fits[larger], **kwargs)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_refuses_things_that_are_not_fits(sleep_fits):
    with pytest.raises(WorkbenchError, match="larger: expected a fit from workbench.fit, got dict"):
        wb.lrt(sleep_fits["ri"], {"objective": 1.0})


def test_fixed_effects_and_a_variance_by_ml_against_least_squares(sleep_fits):
    result = wb.lrt(sleep_fits["ols_ml"], sleep_fits["ri_ml"], null="mixture")
    assert result.df == 1 and result.method == "ML"
    dropped = wb.lrt(wb.fit("Reaction ~ 1", pd.read_csv(DATA / "sleepstudy.csv"), reml=False), sleep_fits["ri_ml"])
    assert dropped.df == 2
    mixture = wb.lrt(wb.fit("Reaction ~ 1", pd.read_csv(DATA / "sleepstudy.csv"), reml=False), sleep_fits["ri_ml"], null="mixture")
    expected = 0.5 * stats.chi2.sf(mixture.statistic, 1) + 0.5 * stats.chi2.sf(mixture.statistic, 2)
    assert mixture.p_value == pytest.approx(expected, rel=1e-12)


def test_printed_like_anova(sleep_fits):
    text = str(wb.lrt(sleep_fits["ri_ml"], sleep_fits["slopes_ml"]))
    for piece in ("Likelihood-ratio test of nested models fitted by ML", "npar", "deviance", "Chisq", "42.1393", "chi-square(2)"):
        assert piece in text
    greven = str(wb.lrt(sleep_fits["ri"], sleep_fits["uncorr"], null="exact", nsim=200))
    assert "Greven" in greven and "exact finite-sample null, 200 draws" in greven
