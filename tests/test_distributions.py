"""Families of random effects and residuals, heteroscedastic residuals: closed forms, moments, draw contract.

The families' skewness and kurtosis are checked against scipy.stats (or, for the families
scipy lacks, against numerical integration and exact enumeration); draws, and data simulated
with them, against those closed forms. Sample moments are compared with their known values
within a multiple of their standard error estimated from the same sample (central limit
theorem); bounds are Bonferroni-corrected over the checks of a test.
"""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats
from strategies import models

import workbench as wb
from workbench.errors import StudyError, TruthError
from workbench.model.design import build_design
from workbench.model.parameters import term_lambdas
from workbench.model.truth import truth_mechanism, truth_to_parameters
from workbench.simulation.distributions import FAMILIES, parse_distribution
from workbench.simulation.simulate import draw_normals, draw_plan, draw_standardised, replicate_generator
from workbench.study.plan import check_study, plan_point
from workbench.study.spec import parse_study, validate_truth

# |sample mean − truth| ≤ BOUND standard errors; with at most 100 checks per test run, the
# chance that any correct check fails is below 100 · P(|N(0,1)| > 5) ≈ 6e-5.
BOUND = 5.0

EXAMPLES = {
    "normal": {"family": "normal"},
    "t": {"family": "t", "df": 9.0},
    "laplace": {"family": "laplace"},
    "uniform": {"family": "uniform"},
    "chisq": {"family": "chisq", "df": 1.0},
    "skew_normal": {"family": "skew_normal", "shape": 4.0},
    "mixture": {"family": "mixture", "weights": [0.8, 0.2], "separation": 3.0},
    "two_point": {"family": "two_point", "p": 0.3},
}


def family(spec):
    return parse_distribution(spec, "d")


def assert_mean(values, expected, label=""):
    """The sample mean of `values` is within BOUND estimated standard errors of `expected`."""
    values = np.asarray(values, dtype=float)
    se = values.std() / math.sqrt(values.size)
    assert abs(values.mean() - expected) <= BOUND * se, f"{label}: {values.mean()} vs {expected} (SE {se})"


# --- closed forms ---------------------------------------------------------------------


def test_every_family_has_an_example():
    assert set(EXAMPLES) == set(FAMILIES)


@pytest.mark.parametrize(
    ("spec", "scipy_distribution"),
    [
        ({"family": "normal"}, stats.norm()),
        ({"family": "t", "df": 5.0}, stats.t(5.0)),
        ({"family": "t", "df": 30.0}, stats.t(30.0)),
        ({"family": "laplace"}, stats.laplace()),
        ({"family": "uniform"}, stats.uniform()),
        ({"family": "chisq", "df": 1.0}, stats.chi2(1.0)),
        ({"family": "chisq", "df": 7.5}, stats.chi2(7.5)),
        ({"family": "skew_normal", "shape": 4.0}, stats.skewnorm(4.0)),
        ({"family": "skew_normal", "shape": -0.7}, stats.skewnorm(-0.7)),
        ({"family": "two_point", "p": 0.3}, stats.bernoulli(0.3)),
        ({"family": "two_point"}, stats.bernoulli(0.5)),
    ],
)
def test_skewness_and_kurtosis_agree_with_scipy(spec, scipy_distribution):
    skewness, kurtosis = (float(v) for v in scipy_distribution.stats(moments="sk"))
    assert family(spec).skewness() == pytest.approx(skewness, rel=1e-12, abs=1e-12)
    assert family(spec).excess_kurtosis() == pytest.approx(kurtosis, rel=1e-12, abs=1e-12)


def test_t_moments_that_do_not_exist():
    assert math.isnan(family({"family": "t", "df": 3.0}).skewness())
    assert family({"family": "t", "df": 4.0}).excess_kurtosis() == math.inf


@pytest.mark.parametrize(("weights", "separation"), [([0.8, 0.2], 3.0), ([0.5, 0.5], 2.0), ([0.05, 0.95], 4.0), ([0.3, 0.7], 0.0)])
def test_mixture_moments_agree_with_numerical_integration(weights, separation):
    """The density w₁φ(x + d·w₂) + w₂φ(x − d·w₁), scaled to unit variance, integrated numerically."""
    w1, w2 = weights
    scale = math.sqrt(1 + separation**2 * w1 * w2)

    def density(x):
        x = x * scale
        return scale * (w1 * stats.norm.pdf(x + separation * w2) + w2 * stats.norm.pdf(x - separation * w1))

    moment = [integrate.quad(lambda x, k=k: x**k * density(x), -np.inf, np.inf, epsabs=1e-13)[0] for k in range(5)]
    mixture = family({"family": "mixture", "weights": weights, "separation": separation})
    np.testing.assert_allclose(moment[:3], [1.0, 0.0, 1.0], atol=1e-9)
    assert mixture.skewness() == pytest.approx(moment[3], abs=1e-9)
    assert mixture.excess_kurtosis() == pytest.approx(moment[4] - 3.0, abs=1e-9)


# --- standardised draws ---------------------------------------------------------------

# Parameter ranges where z⁴ has a finite variance whose sample estimate is regular enough
# for a normal approximation at 200,000 draws (the t needs df > 16: E z¹⁶ finite).
_family_specs = st.one_of(
    st.just({"family": "normal"}),
    st.floats(17.0, 200.0).map(lambda df: {"family": "t", "df": df}),
    st.just({"family": "laplace"}),
    st.just({"family": "uniform"}),
    st.floats(2.0, 60.0).map(lambda df: {"family": "chisq", "df": df}),
    st.floats(-20.0, 20.0).map(lambda shape: {"family": "skew_normal", "shape": shape}),
    st.tuples(st.floats(0.05, 0.95), st.floats(0.0, 5.0)).map(
        lambda a: {"family": "mixture", "weights": [1.0 - a[0], a[0]], "separation": a[1]}
    ),
    st.floats(0.05, 0.95).map(lambda p: {"family": "two_point", "p": p}),
)


@given(_family_specs, st.integers(0, 2**32 - 1))
def test_draws_have_the_stated_mean_variance_skewness_and_kurtosis(spec, seed):
    chosen = family(spec)
    z = chosen.draw(np.random.default_rng(seed), 200_000)
    assert_mean(z, 0.0, "mean")
    assert_mean(z**2, 1.0, "variance")
    assert_mean(z**3, chosen.skewness(), "skewness")
    assert_mean(z**4, 3.0 + chosen.excess_kurtosis(), "kurtosis")


def test_heavy_tailed_t_has_unit_variance():
    """t(5): E z⁸ is infinite, so the SE of the mean of z² comes from the closed form Var z² = E z⁴ − 1."""
    chosen = family({"family": "t", "df": 5.0})
    z = chosen.draw(np.random.default_rng(3), 1_000_000)
    se = math.sqrt((chosen.excess_kurtosis() + 2.0) / z.size)
    assert abs((z**2).mean() - 1.0) <= BOUND * se
    assert abs(z.mean()) <= BOUND / math.sqrt(z.size)


# --- simulated data -------------------------------------------------------------------

ONE_FACTOR = "y ~ 1 + x + (1 | g)"


def one_factor_layout(levels: int, size: int) -> pd.DataFrame:
    return pd.DataFrame({"g": np.repeat(np.arange(levels), size), "x": np.tile(np.linspace(-1, 1, size), levels)})


def one_factor_truth(sd=1.5, sigma=0.8, effects=None, residual=None) -> dict:
    truth = {"beta": {"(Intercept)": 2.0, "x": -1.0}, "sigma": sigma, "re": {"g": {"sd": {"(Intercept)": sd}}}}
    if effects is not None:
        truth["re"]["g"]["distribution"] = effects
    if residual is not None:
        truth["residual"] = residual
    return truth


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_group_effects_have_the_family_skewness_and_kurtosis(name):
    """60,000 groups of two with normal residuals: the group means ȳ − μ = b + ε̄ have the third and
    fourth cumulants of b (a normal ε̄ adds none): κ₃ = skewness·sd³, κ₄ = excess kurtosis·sd⁴."""
    levels, size, sd, sigma = 60_000, 2, 1.5, 0.8
    layout = one_factor_layout(levels, size)
    truth = one_factor_truth(sd, sigma, effects=EXAMPLES[name])
    y = wb.simulate(ONE_FACTOR, layout, truth, seed=17)[0]
    mu = 2.0 - layout["x"].to_numpy()
    means = (y - mu).reshape(levels, size).mean(axis=1)
    chosen = family(EXAMPLES[name])
    variance = sd**2 + sigma**2 / size
    assert_mean(means, 0.0, "mean")
    assert_mean(means**2, variance, "variance")
    assert_mean(means**3, chosen.skewness() * sd**3, "third cumulant")
    assert_mean(means**4, chosen.excess_kurtosis() * sd**4 + 3 * variance**2, "fourth moment")


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_residuals_have_the_family_moments(name):
    """With the group SD 0, (y − μ)/σ are the standardised residuals themselves."""
    layout = one_factor_layout(2_000, 50)
    truth = one_factor_truth(sd=0.0, sigma=0.8, residual={"distribution": EXAMPLES[name]})
    z = (wb.simulate(ONE_FACTOR, layout, truth, seed=5)[0] - (2.0 - layout["x"].to_numpy())) / 0.8
    chosen = family(EXAMPLES[name])
    assert_mean(z, 0.0, "mean")
    assert_mean(z**2, 1.0, "variance")
    assert_mean(z**3, chosen.skewness(), "skewness")
    assert_mean(z**4, 3.0 + chosen.excess_kurtosis(), "kurtosis")


def test_correlated_effects_are_linear_mixtures_of_the_family():
    """b = L z with z centred χ²(2): at times 0 and 1, with normal residuals, the third moments
    E[y₀³] = L₀₀³κ₃, E[y₁³] = ((L₀₀+L₁₀)³ + L₁₁³)κ₃ and E[y₀²y₁] = L₀₀²(L₀₀+L₁₀)κ₃."""
    subjects, sigma = 80_000, 0.5
    layout = pd.DataFrame({"s": np.repeat(np.arange(subjects), 2), "t": np.tile([0.0, 1.0], subjects)})
    formula = "y ~ 1 + t + (1 + t | s)"
    spec = {"family": "chisq", "df": 2.0}
    truth = {
        "beta": {"(Intercept)": 0.0, "t": 0.0},
        "sigma": sigma,
        "re": {"s": {"sd": {"(Intercept)": 1.0, "t": 0.7}, "corr": {"(Intercept):t": -0.6}, "distribution": spec}},
    }
    design = build_design(formula, layout, response_required=False, fitted=False)
    _, theta, _ = truth_to_parameters(design, truth)
    lower = term_lambdas(design, theta)[0] * sigma  # L with LL' = Var(b)
    kappa3 = family(spec).skewness()
    y = wb.simulate(formula, layout, truth, seed=8)[0].reshape(subjects, 2)
    y0, y1 = y[:, 0], y[:, 1]
    (l00, _), (l10, l11) = lower
    assert_mean(y0**3, l00**3 * kappa3, "E y0^3")
    assert_mean(y1**3, ((l00 + l10) ** 3 + l11**3) * kappa3, "E y1^3")
    assert_mean(y0**2 * y1, l00**2 * (l00 + l10) * kappa3, "E y0^2 y1")
    assert_mean(y0 * y1, l00 * (l00 + l10), "E y0 y1")


# --- heteroscedastic residuals --------------------------------------------------------

HETERO_LAYOUT = pd.DataFrame(
    {
        "g": np.repeat([1, 2, 3], 4),
        "treat": np.tile([0, 1], 6),
        "x": np.linspace(-2.0, 2.5, 12),
    }
)
HETERO_FORMULA = "y ~ 1 + x + (1 + x | g)"
HETERO_TRUTH = {
    "beta": {"(Intercept)": 1.0, "x": 0.5},
    "sigma": 1.2,
    "re": {"g": {"sd": {"(Intercept)": 0.9, "x": 0.4}, "corr": {"(Intercept):x": 0.3}}},
}
RESIDUALS = {
    "sd_by": ({"sd_by": {"column": "treat", "sd": {"0": 0.5, "1": 2.0}}}, np.tile([0.5, 2.0], 6)),
    "sd_power": ({"sd_power": {"column": "x", "power": 0.75}}, 1.2 * np.abs(np.linspace(-2.0, 2.5, 12)) ** 0.75),
}


def brute_force(design, theta, sigma, residual_sd):
    """Z G Z' + diag(residual SDs²) with a dense Z of indicator columns, level-major, effect-minor."""
    (term,) = design.terms
    lam = term_lambdas(design, theta)[0]
    indicator = np.eye(term.nlevels)[term.codes]
    z = (indicator[:, :, None] * term.z[:, None, :]).reshape(design.n, -1)
    g = np.kron(np.eye(term.nlevels), sigma**2 * lam @ lam.T)
    return z @ g @ z.T + np.diag(residual_sd**2)


@pytest.mark.parametrize("kind", list(RESIDUALS))
def test_marginal_cov_is_exact_for_heteroscedastic_residuals(kind):
    residual, residual_sd = RESIDUALS[kind]
    truth = {**HETERO_TRUTH, "residual": residual}
    design = build_design(HETERO_FORMULA, HETERO_LAYOUT, response_required=False)
    _, theta, sigma = truth_to_parameters(design, truth)
    cov = wb.marginal_cov(HETERO_FORMULA, HETERO_LAYOUT, truth)
    expected = brute_force(design, theta, sigma, residual_sd)
    np.testing.assert_allclose(cov, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    homoscedastic = wb.marginal_cov(HETERO_FORMULA, HETERO_LAYOUT, HETERO_TRUTH)
    np.testing.assert_allclose(cov - homoscedastic, np.diag(residual_sd**2 - sigma**2), atol=1e-12)


@pytest.mark.parametrize("kind", list(RESIDUALS))
@pytest.mark.parametrize("effects", ["normal", "laplace"])
def test_simulated_covariance_converges_to_marginal_cov(kind, effects):
    """50,000 replicates with Laplace residuals: every mean and covariance entry within the bound
    of its estimated SE (the mean μ is known, so (y−μ)ᵢ(y−μ)ⱼ averages to Vᵢⱼ)."""
    residual, _ = RESIDUALS[kind]
    truth = {**HETERO_TRUTH, "residual": {**residual, "distribution": {"family": "laplace"}}}
    truth["re"] = {"g": {**HETERO_TRUTH["re"]["g"], "distribution": EXAMPLES[effects]}}
    nsim = 50_000
    y = wb.simulate(HETERO_FORMULA, HETERO_LAYOUT, truth, nsim=nsim, seed=31)
    centred = y - (1.0 + 0.5 * HETERO_LAYOUT["x"].to_numpy())
    cov = wb.marginal_cov(HETERO_FORMULA, HETERO_LAYOUT, truth)
    bound = stats.norm.isf(1e-6 / (2 * (12 + 78)))  # all 12 means and 78 covariances together
    se_mean = centred.std(axis=0) / math.sqrt(nsim)
    assert np.all(np.abs(centred.mean(axis=0)) <= bound * se_mean)
    products = centred[:, :, None] * centred[:, None, :]
    se = products.std(axis=0) / math.sqrt(nsim)
    assert np.all(np.abs(products.mean(axis=0) - cov) <= bound * se)


def test_residual_sd_columns_must_exist_and_cover_every_level():
    truth = {**HETERO_TRUTH, "residual": {"sd_by": {"column": "arm", "sd": {"0": 1.0}}}}
    with pytest.raises(TruthError, match=r'^truth\.residual\.sd_by\.column: no column "arm" in the layout'):
        wb.simulate(HETERO_FORMULA, HETERO_LAYOUT, truth)
    truth = {**HETERO_TRUTH, "residual": {"sd_by": {"column": "treat", "sd": {"0": 1.0, "2": 3.0}}}}
    with pytest.raises(TruthError, match=r'^truth\.residual\.sd_by\.sd: no SD for level "1" of column "treat"$'):
        wb.marginal_cov(HETERO_FORMULA, HETERO_LAYOUT, truth)
    layout = HETERO_LAYOUT.assign(x=np.arange(12.0))
    truth = {**HETERO_TRUTH, "residual": {"sd_power": {"column": "x", "power": -1.0}}}
    with pytest.raises(TruthError, match=r"^truth\.residual\.sd_power\.power: gives a non-finite SD"):
        wb.simulate(HETERO_FORMULA, layout, truth)


def test_heteroscedastic_scale_follows_the_rows_the_design_keeps():
    """A row dropped for a missing covariate takes its residual SD with it."""
    layout = HETERO_LAYOUT.assign(x=HETERO_LAYOUT["x"].where(np.arange(12) != 3))
    truth = {**HETERO_TRUTH, "residual": RESIDUALS["sd_by"][0]}
    with pytest.warns(UserWarning, match="1 rows with missing values dropped"):
        cov = wb.marginal_cov(HETERO_FORMULA, layout, truth)
    np.testing.assert_allclose(np.diag(cov) - np.diag(wb.marginal_cov(HETERO_FORMULA, layout.dropna(), HETERO_TRUTH)),
                               np.delete(np.tile([0.25, 4.0], 6), 3) - 1.44, atol=1e-12)


# --- the draw contract ----------------------------------------------------------------


def test_a_non_normal_replicate_by_hand():
    """Data stream (point, replicate): each term's z by its family in design order, then the residuals."""
    layout = one_factor_layout(5, 3)
    effects = {"family": "mixture", "weights": [0.7, 0.3], "separation": 2.0}
    truth = one_factor_truth(1.5, 0.8, effects=effects, residual={"distribution": {"family": "uniform"},
                             "sd_by": {"column": "g", "sd": {str(g): 0.5 + g for g in range(5)}}})
    seed, point = 99, 4
    y = wb.simulate(ONE_FACTOR, layout, truth, nsim=3, seed=seed, point=point)
    codes = layout["g"].to_numpy()
    for r in range(3):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point, r)))
        high = rng.random(5) < 0.3
        z = (2.0 * (high - 0.3) + rng.standard_normal(5)) / math.sqrt(1 + 4.0 * 0.21)
        eps = rng.uniform(-math.sqrt(3), math.sqrt(3), 15)
        expected = 2.0 - layout["x"].to_numpy() + 1.5 * z[codes] + (0.5 + codes) * eps
        np.testing.assert_allclose(y[r], expected, rtol=1e-13, atol=1e-13)


def test_normal_families_keep_the_original_draws():
    """Naming the normal family, or homoscedastic defaults, changes no bit of the draws."""
    layout = one_factor_layout(7, 4)
    plain = wb.simulate(ONE_FACTOR, layout, one_factor_truth(), nsim=4, seed=12, point=2)
    named = one_factor_truth(effects={"family": "normal"}, residual={"distribution": {"family": "normal"}})
    np.testing.assert_array_equal(wb.simulate(ONE_FACTOR, layout, named, nsim=4, seed=12, point=2), plain)
    design = build_design(ONE_FACTOR, layout, response_required=False)
    plan = draw_plan(design, truth_mechanism(design, named))
    assert plan.normal
    np.testing.assert_array_equal(draw_standardised(12, 2, [0, 3], plan), draw_normals(12, 2, [0, 3], plan.size))


@given(st.sampled_from(sorted(EXAMPLES)), st.integers(0, 2**63), st.lists(st.integers(0, 40), min_size=1, max_size=5))
def test_non_normal_replicates_do_not_depend_on_the_batch(name, seed, replicates):
    layout = one_factor_layout(4, 3)
    truth = one_factor_truth(effects=EXAMPLES[name], residual={"distribution": EXAMPLES[name]})
    design = build_design(ONE_FACTOR, layout, response_required=False)
    plan = draw_plan(design, truth_mechanism(design, truth))
    batch = draw_standardised(seed, 1, replicates, plan)
    for row, replicate in zip(batch, replicates):
        np.testing.assert_array_equal(row, draw_standardised(seed, 1, [replicate], plan)[0])
    rng = replicate_generator(seed, 1, replicates[0])
    np.testing.assert_array_equal(batch[0, :4], family(EXAMPLES[name]).draw(rng, 4))


# --- validation -----------------------------------------------------------------------

BAD = [
    ({"re": {"distribution": 3}}, "truth.re.g.distribution: must be a table, got 3"),
    ({"re": {"distribution": {}}}, "truth.re.g.distribution.family: required key is missing (one of: normal, t, laplace, uniform, chisq, skew_normal, mixture, two_point)"),
    ({"re": {"distribution": {"family": "cauchy"}}}, 'truth.re.g.distribution.family: must be one of normal | t | laplace | uniform | chisq | skew_normal | mixture | two_point, got "cauchy"'),
    ({"re": {"distribution": {"family": "t"}}}, "truth.re.g.distribution.df: required key is missing"),
    ({"re": {"distribution": {"family": "t", "df": 2}}}, "truth.re.g.distribution.df: must be a number greater than 2, got 2"),
    ({"re": {"distribution": {"family": "chisq", "df": 0}}}, "truth.re.g.distribution.df: must be a number greater than 0, got 0"),
    ({"re": {"distribution": {"family": "normal", "sd": 1}}}, "truth.re.g.distribution.sd: unknown key (expected one of: family)"),
    ({"re": {"distribution": {"family": "skew_normal", "shape": "big"}}}, 'truth.re.g.distribution.shape: must be a finite number, got "big"'),
    ({"re": {"distribution": {"family": "mixture", "weights": [0.5, 0.6], "separation": 1}}}, "truth.re.g.distribution.weights: must be two non-negative numbers summing to 1, got [0.5, 0.6]"),
    ({"re": {"distribution": {"family": "mixture", "weights": [1.0], "separation": 1}}}, "truth.re.g.distribution.weights: must be two non-negative numbers summing to 1, got [1.0]"),
    ({"re": {"distribution": {"family": "mixture", "weights": [0.5, 0.5], "separation": -1}}}, "truth.re.g.distribution.separation: must be a non-negative number, got -1"),
    ({"re": {"distribution": {"family": "two_point", "p": 1}}}, "truth.re.g.distribution.p: must be a number in (0, 1), got 1"),
    ({"residual": 2}, "truth.residual: must be a table, got 2"),
    ({"residual": {"sd": 2}}, "truth.residual.sd: unknown key (expected one of: distribution, sd_by, sd_power)"),
    ({"residual": {"distribution": {"family": "t", "df": 1}}}, "truth.residual.distribution.df: must be a number greater than 2, got 1"),
    ({"residual": {"sd_by": {"column": "treat"}}}, "truth.residual.sd_by.sd: required key is missing"),
    ({"residual": {"sd_by": {"column": "", "sd": {"0": 1}}}}, 'truth.residual.sd_by.column: must be a non-empty string, got ""'),
    ({"residual": {"sd_by": {"column": "treat", "sd": {}}}}, 'truth.residual.sd_by.sd: must give the residual SD of at least one level, like {"0" = 1.0, "1" = 2.0}'),
    ({"residual": {"sd_by": {"column": "treat", "sd": {"0": 0}}}}, "truth.residual.sd_by.sd.0: must be a positive number, got 0"),
    ({"residual": {"sd_power": {"column": "x"}}}, "truth.residual.sd_power.power: required key is missing"),
    ({"residual": {"sd_power": {"column": "x", "power": "1"}}}, 'truth.residual.sd_power.power: must be a finite number, got "1"'),
    ({"residual": {"sd_power": {"column": "x", "power": 1}, "sd_by": {"column": "treat", "sd": {"0": 1}}}}, "truth.residual.sd_power: cannot be combined with truth.residual.sd_by"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_bad_mechanisms_get_the_same_message_from_both_checks(change, message):
    truth = one_factor_truth()
    if "re" in change:
        truth["re"]["g"].update(change["re"])
    else:
        truth.update(change)
    layout = one_factor_layout(3, 2)
    design = build_design(ONE_FACTOR, layout, response_required=False)
    for check in (lambda: truth_to_parameters(design, truth), lambda: validate_truth(truth),
                  lambda: wb.simulate(ONE_FACTOR, layout, truth)):
        with pytest.raises(TruthError) as info:
            check()
        assert str(info.value) == message


def test_good_mechanisms_pass_both_checks():
    for spec in EXAMPLES.values():
        truth = one_factor_truth(effects=spec, residual={"distribution": spec, "sd_power": {"column": "x", "power": 0.5}})
        validate_truth(truth)
        design = build_design(ONE_FACTOR, one_factor_layout(3, 2), response_required=False)
        mechanism = truth_mechanism(design, truth)
        assert mechanism.families[0] == family(spec) and mechanism.residuals.family == family(spec)
        assert not mechanism.normal


GRID_STUDY = """
[study]
name = "families"
seed = 1
replicates = 2

[model]
formula = "y ~ 1 + (1 | g)"

[layout]
kind = "nested"
levels = { g = 6 }
size = 4

[truth]
beta = { "(Intercept)" = 0.0 }
sigma = 1.0
[truth.re.g]
sd = { "(Intercept)" = 1.0 }
distribution = { family = "t", df = 5 }
[truth.residual]
distribution = { family = "normal" }

[grid]
"truth.re.g.distribution.df" = [3, 8]
"truth.residual.distribution" = [{ family = "normal" }, { family = "skew_normal", shape = 3 }]
"""


def test_family_parameters_and_families_can_be_grid_factors(tmp_path):
    study = parse_study(GRID_STUDY, tmp_path)
    check_study(study)
    drawn = []
    for point in study.points():
        plan = plan_point(study, point)
        (effects, _), (residuals, _) = plan.draws.blocks
        drawn.append((effects.params["df"], residuals.name))
    assert drawn == [(3.0, "normal"), (3.0, "skew_normal"), (8.0, "normal"), (8.0, "skew_normal")]
    bad = GRID_STUDY.replace("[3, 8]", "[3, 2]")
    with pytest.raises(StudyError, match=r"^truth\.re\.g\.distribution\.df: must be a number greater than 2, got 2 \(grid point 2\)$"):
        parse_study(bad, tmp_path)


@pytest.mark.slow
@given(models(), st.data(), st.integers(0, 2**32 - 1))
def test_simulated_moments_converge_for_random_models_and_families(model, data, seed):
    """Random models with a random family per group and for the residuals, residual SDs σ·|x|^power:
    20,000 replicates, every mean and covariance entry within a Bonferroni bound (all entries of one
    example pass together with probability 1 − 10⁻⁶) of its SE estimated from the replicates."""
    # t with 30 df: the SEs of the covariances need the eighth moment of the draws to be finite
    families = st.sampled_from([{"family": "t", "df": 30.0} if name == "t" else spec for name, spec in EXAMPLES.items()])
    truth = copy.deepcopy(model.truth)
    for group in truth["re"]:
        truth["re"][group]["distribution"] = data.draw(families)
    truth["residual"] = {"distribution": data.draw(families), "sd_power": {"column": "x", "power": data.draw(st.floats(-0.5, 1.0))}}
    layout = model.layout.assign(x=model.layout["x"].where(model.layout["x"].abs() > 0.05, 0.05))
    nsim = 20_000
    y = wb.simulate(model.formula, layout, truth, nsim=nsim, seed=seed)
    design = build_design(model.formula, layout, response_required=False)
    centred = y - design.x @ truth_to_parameters(design, truth)[0]
    cov = wb.marginal_cov(model.formula, layout, truth)
    checks = design.n + design.n * (design.n + 1) // 2
    bound = float(stats.norm.isf(1e-6 / (2 * checks)))
    assert np.all(np.abs(centred.mean(axis=0)) <= bound * centred.std(axis=0) / math.sqrt(nsim))
    products = centred[:, :, None] * centred[:, None, :]
    assert np.all(np.abs(products.mean(axis=0) - cov) <= bound * products.std(axis=0) / math.sqrt(nsim))
