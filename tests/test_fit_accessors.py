"""The accessors of `wb.fit` results against lme4 1.1-31 (tests/data/lme4_accessors.json).

The references come from scripts/reference/lme4_accessors.R, which fits with optimiser
tolerances far below lme4's defaults, so that they are the optimum's values to the 15 digits it
prints. Each accessor must agree to 1e-6 relative: a number to 1e-6 of itself, a vector or an
array entry to 1e-6 of the largest magnitude in it (an entry of a vector of residuals or of a
covariance matrix can be zero).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.model.parameters import term_lambdas

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "lme4_accessors.json").read_text())
CASES = REFERENCE["cases"]
REL = 1e-6


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name)


def fit_quietly(formula: str, data: pd.DataFrame, reml: bool):
    """A fit of data with missing values, whose dropped rows warn by design."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"\d+ rows with missing values dropped", category=UserWarning)
        return wb.fit(formula, data, reml=reml)


def values(v) -> np.ndarray:
    """A JSON number or list (null for NA) as a float array."""
    return np.array([np.nan if x is None else x for x in np.atleast_1d(np.asarray(v, dtype=object))], dtype=float)


def assert_close(ours, theirs, rel=REL):
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rel * scale, (np.abs(ours - theirs).max() / scale)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c['case']}-{c['method']}")
def case_and_fit(request):
    case = request.param
    return case, fit_quietly(case["formula"], read(case["data"]), reml=case["method"] == "REML")


def test_the_reference_is_lme4_1_1_31():
    assert REFERENCE["lme4_version"] == "1.1.31"


def test_information_criteria(case_and_fit):
    case, fit = case_and_fit
    assert fit.aic == pytest.approx(case["aic"], rel=REL)
    assert fit.bic == pytest.approx(case["bic"], rel=REL)
    assert fit.loglik == pytest.approx(case["loglik"], rel=REL)
    # for a REML fit: the ML deviance at the REML estimates (lme4's deviance(fit, REML = FALSE))
    assert fit.deviance == pytest.approx(case["deviance"], rel=REL)
    assert fit.df_resid == case["df_resid"] and fit.nobs == case["nobs"]
    if case["method"] == "ML":
        assert fit.deviance == pytest.approx(fit.objective, rel=1e-12)


def test_fitted_values_and_residuals_carry_the_rows_used(case_and_fit):
    case, fit = case_and_fit
    labels = np.array(case["fitted"]["labels"]) - 1  # R's row names are 1-based
    assert isinstance(fit.fitted, pd.Series) and isinstance(fit.resid, pd.Series)
    assert fit.fitted.index.tolist() == labels.tolist()
    assert fit.resid.index.tolist() == (np.array(case["resid"]["labels"]) - 1).tolist()
    assert_close(fit.fitted, values(case["fitted"]["values"]))
    assert_close(fit.resid, values(case["resid"]["values"]))
    data = read(case["data"])
    response = case["formula"].split("~")[0].strip()
    np.testing.assert_allclose(fit.fitted + fit.resid, data.loc[labels, response], rtol=1e-13)


def test_predictions_on_the_fitted_rows(case_and_fit):
    case, fit = case_and_fit
    pd.testing.assert_series_equal(fit.predict(), fit.fitted, check_names=False)
    population = fit.predict(re_form="~0")
    assert population.index.tolist() == (np.array(case["population"]["labels"]) - 1).tolist()
    assert_close(population, values(case["population"]["values"]))
    assert_close(fit.predict(re_form="0"), population)
    # the data themselves as new data: encoded again, the same values on the rows used
    again = fit.predict(read(case["data"]))
    assert_close(again.loc[fit.fitted.index], fit.fitted, rel=1e-12)


def test_predictions_on_new_data(case_and_fit):
    """New levels contribute nothing; the fit's categorical coding; NaN where a value is missing."""
    case, fit = case_and_fit
    newdata = pd.DataFrame(case["newdata"])
    newdata.index = [f"new{i}" for i in range(len(newdata))]
    for re_form, key in ((None, "predict"), ("~0", "predict_population")):
        ours = fit.predict(newdata, re_form=re_form)
        theirs = values(case[key])
        assert ours.index.tolist() == newdata.index.tolist()
        assert np.array_equal(np.isnan(ours.to_numpy()), np.isnan(theirs))
        ok = ~np.isnan(theirs)
        assert_close(ours.to_numpy()[ok], theirs[ok])


def test_conditional_covariances_are_lme4s_postvar(case_and_fit):
    case, fit = case_and_fit
    assert set(fit.ranef_condvar) == set(fit.ranef) == set(case["postvar"])
    for group, reference in case["postvar"].items():
        ours = fit.ranef_condvar[group]
        ranef = fit.ranef[group]
        assert ours.shape == (len(ranef), ranef.shape[1], ranef.shape[1])
        order = pd.Index(ranef.index).get_indexer(np.atleast_1d(reference["levels"]))
        assert (order >= 0).all()
        # lme4 gives one array per term of the factor; they are the diagonal blocks here
        start = 0
        for blocks in reference["blocks"]:
            theirs = np.array([np.atleast_2d(b) for b in blocks])
            q = theirs.shape[1]
            assert_close(ours[order, start : start + q, start : start + q], theirs)
            start += q
        assert start == ranef.shape[1]


def test_conditional_covariances_jointly_as_the_dense_formula_in_r(case_and_fit):
    """σ²Λ(Λ'Z'ZΛ + I)⁻¹Λ' from lme4's own Λ and Z, including the blocks between terms of a factor."""
    case, fit = case_and_fit
    for group, reference in case["condvar"].items():
        assert list(fit.ranef[group].columns) == list(np.atleast_1d(reference["names"]))
        order = pd.Index(fit.ranef[group].index).get_indexer(np.atleast_1d(reference["levels"]))
        q = fit.ranef[group].shape[1]
        theirs = np.array([np.asarray(b, dtype=float).reshape(q, q) for b in reference["blocks"]])
        assert_close(fit.ranef_condvar[group][order], theirs)
    if case["case"] == "generated_independent":
        # a priori independent, the intercept and slope of a subject are correlated given the data
        assert np.abs(fit.ranef_condvar["subject"][:, 0, 1]).min() > 1e-3


def test_refit_is_lmer_on_the_new_response(case_and_fit):
    case, fit = case_and_fit
    again = fit.refit(np.array(case["fresh"]["y"]))
    fresh = case["fresh"]
    assert again.objective == pytest.approx(fresh["objective"], rel=REL)
    assert_close(again.theta, values(fresh["theta"]))
    assert_close(again.fixef[list(fresh["fixef"])], list(fresh["fixef"].values()))
    assert again.sigma == pytest.approx(fresh["sigma"], rel=REL)
    assert again.aic == pytest.approx(fresh["aic"], rel=REL)
    assert again.reml == fit.reml and again.converged
    # lme4's own refit agrees where it rebuilds the REML criterion right (ML, or one fixed effect);
    # it drops the tight tolerances of the fit, so only its criterion is good to 1e-6, not its θ̂
    if case["refit"]["reml_p"] == fresh["reml_p"]:
        assert again.objective == pytest.approx(case["refit"]["objective"], rel=REL)
    else:
        assert again.objective < case["refit"]["objective"] - 1.0  # lme4's n − 1 for n − p


def test_refit_keeps_the_design_and_matches_a_fresh_fit():
    data = read("generated_intercept.csv")
    fit = fit_quietly("y ~ 1 + x + kind + (1 | g)", data, reml=True)
    y = fit.simulate(1, seed=5)[0]
    again = fit.refit(y)
    assert again.problem.structure is fit.problem.structure
    assert again.problem.design.x is fit.problem.design.x
    replaced = data.copy()
    replaced.loc[fit.fitted.index, "y"] = y
    fresh = fit_quietly("y ~ 1 + x + kind + (1 | g)", replaced, reml=True)
    assert again.objective == pytest.approx(fresh.objective, rel=1e-12)
    np.testing.assert_allclose(again.theta, fresh.theta, rtol=1e-9)
    np.testing.assert_allclose(again.problem.products.a_tt, fresh.problem.products.a_tt, rtol=1e-12)
    np.testing.assert_allclose(again.problem.products.a_front, fresh.problem.products.a_front, rtol=1e-12)
    assert again.fitted.index.equals(fit.fitted.index)
    np.testing.assert_allclose(again.resid + again.fitted, y, rtol=1e-13)
    # the original is untouched
    assert fit.objective == fit_quietly("y ~ 1 + x + kind + (1 | g)", data, reml=True).objective


def _dense_twin(fit):
    """X, Z (by design term, level-major) and blockdiag(λ) of a fit as dense NumPy arrays."""
    design = fit.problem.design
    blocks_z, blocks_lam = [], []
    for term, lam in zip(design.terms, term_lambdas(design, fit.theta)):
        z = np.zeros((design.n, term.nlevels * term.q))
        for c in range(term.q):
            z[np.arange(design.n), term.codes * term.q + c] = term.z[:, c]
        blocks_z.append(z)
        blocks_lam.append(np.kron(np.eye(term.nlevels), lam))
    size = sum(b.shape[0] for b in blocks_lam)
    lam = np.zeros((size, size))
    start = 0
    for b in blocks_lam:
        lam[start : start + b.shape[0], start : start + b.shape[0]] = b
        start += b.shape[0]
    return design.x, np.hstack(blocks_z), lam


def test_simulate_follows_the_draw_contract():
    """Replicate r is Xβ̂ + σ̂(ZΛ̂u + ε) with [u, ε] from SeedSequence(seed, spawn_key=(0, r))."""
    fit = wb.fit("strength ~ 1 + (1 | batch) + (1 | batch:cask)", read("Pastes.csv"), reml=True)
    x, z, lam = _dense_twin(fit)
    sims = fit.simulate(nsim=3, seed=99)
    assert sims.shape == (3, fit.nobs)
    for r in range(3):
        normals = np.random.default_rng(np.random.SeedSequence(99, spawn_key=(0, r))).standard_normal(z.shape[1] + fit.nobs)
        u, e = normals[: z.shape[1]], normals[z.shape[1] :]
        twin = x @ fit.fixef.to_numpy() + fit.sigma * (z @ lam @ u + e)
        np.testing.assert_allclose(sims[r], twin, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(fit.simulate(nsim=2, seed=99), sims[:2])
    assert not np.allclose(fit.simulate(nsim=1, seed=100)[0], sims[0])


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ 1 + x + (1 | a) + (1 + x || b)",  # a crossed factor with two terms in the trailing block
        "y ~ 1 + x + (1 | g) + (1 | h) + (0 + x | g)",  # one factor's terms split between a front and T
        "y ~ 1 + x + (1 + x | h) + (1 | h:k)",  # nested, q = 2 in the parent
    ],
)
def test_conditional_covariances_match_a_dense_twin(formula):
    rng = np.random.default_rng(3)
    n = 240
    data = pd.DataFrame(
        {
            "a": rng.integers(0, 12, n).astype(str),
            "b": rng.integers(0, 7, n).astype(str),
            "g": rng.integers(0, 8, n).astype(str),
            "h": np.repeat([f"h{i}" for i in range(8)], n // 8),
            "k": np.tile(["k0", "k1", "k2"], n // 3),
            "x": rng.normal(size=n),
        }
    )
    data["y"] = rng.normal(size=n) + data["x"] * rng.normal(size=8)[data["g"].astype(int)] + rng.normal(size=12)[
        data["a"].astype(int)
    ]
    fit = wb.fit(formula, data, reml=False)
    _, z, lam = _dense_twin(fit)
    inverse = np.linalg.inv(lam.T @ z.T @ z @ lam + np.eye(lam.shape[0]))
    dense = fit.sigma**2 * lam @ inverse @ lam.T
    design = fit.problem.design
    offsets = np.cumsum([0] + [t.nlevels * t.q for t in design.terms])
    for group in fit.ranef:
        ks = [k for k, t in enumerate(design.terms) if t.group == group]
        for level in range(len(fit.ranef[group])):
            rows = np.concatenate(
                [offsets[k] + level * design.terms[k].q + np.arange(design.terms[k].q) for k in ks]
            )
            np.testing.assert_allclose(
                fit.ranef_condvar[group][level], dense[np.ix_(rows, rows)], rtol=1e-9, atol=1e-12 * dense.max()
            )


def test_row_labels_of_any_index_and_numeric_group_labels():
    data = read("sleepstudy.csv")
    data.index = [f"row{i}" for i in range(len(data))]
    data.loc["row3", "Days"] = np.nan
    fit = fit_quietly("Reaction ~ 1 + Days + (1 + Days | Subject)", data, reml=True)
    assert fit.fitted.index.tolist() == [label for label in data.index if label != "row3"]
    assert fit.resid.index.equals(fit.fitted.index)
    # an integer grouping factor's level 308 is 308.0 in a float column too
    ints = pd.DataFrame({"Days": [1.0, 2.0], "Subject": [308, 351]})
    floats = ints.astype({"Subject": float})
    pd.testing.assert_series_equal(fit.predict(ints), fit.predict(floats))
    assert fit.predict(ints).iloc[0] != fit.predict(ints, re_form="~0").iloc[0]


def test_summary_is_the_printed_text_with_lme4s_criteria():
    fit = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", read("sleepstudy.csv"), reml=False)
    text = fit.summary()
    assert text == str(fit)
    # lme4: AIC 1763.939, BIC 1783.097, logLik -875.9697, deviance 1751.939, df.resid 174
    header, numbers = next((line, following) for line, following in zip(text.splitlines(), text.splitlines()[1:])
                           if line.split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"])
    assert numbers.split() == ["1763.9393", "1783.0971", "-875.9697", "1751.9393", "174"]
    reml = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", read("sleepstudy.csv"), reml=True).summary()
    assert "1755.6283" in reml and "1774.7860" in reml and "REML criterion at convergence: 1743.6283" in reml


@pytest.fixture(scope="module")
def kinds_fit():
    return fit_quietly("y ~ 1 + x + kind + (1 | g)", read("generated_intercept.csv"), reml=True)


def one_line_error(call, starts: str) -> str:
    with pytest.raises(wb.WorkbenchError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(starts), message
    return message


@pytest.mark.parametrize("nsim", [0, -1, 1.5, True, "3", None])
def test_bad_nsim(kinds_fit, nsim):
    one_line_error(lambda: kinds_fit.simulate(nsim, seed=1), "nsim:")


@pytest.mark.parametrize("seed", [-1, 2**64, 1.0, "1", None, False])
def test_bad_seed(kinds_fit, seed):
    one_line_error(lambda: kinds_fit.simulate(2, seed=seed), "seed:")


@pytest.mark.parametrize("re_form", ["~(1 | g)", "~1", 0, "", np.nan])
def test_bad_re_form(kinds_fit, re_form):
    one_line_error(lambda: kinds_fit.predict(re_form=re_form), "re_form:")


def test_bad_newdata(kinds_fit):
    good = pd.DataFrame({"x": [0.5], "kind": ["b"], "g": ["g01"]})
    one_line_error(lambda: kinds_fit.predict({"x": [1.0]}), "newdata: expected a pandas DataFrame")
    assert "'kind'" in one_line_error(lambda: kinds_fit.predict(good.drop(columns="kind")), "newdata: no column")
    # the grouping factor is not needed at population level
    assert np.isfinite(kinds_fit.predict(good.drop(columns="g"), re_form="~0").iloc[0])
    one_line_error(lambda: kinds_fit.predict(good.drop(columns="g")), "newdata: no column named 'g'")
    assert "'x'" in one_line_error(lambda: kinds_fit.predict(good.assign(x=["0.5"])), "newdata: column 'x' is categorical")
    one_line_error(lambda: kinds_fit.predict(good.assign(kind=[2])), "newdata: column 'kind' is numeric")
    one_line_error(lambda: kinds_fit.predict(good.assign(kind=["d"])), "newdata: column 'kind' has the level 'd'")


@pytest.mark.parametrize(
    "y, starts",
    [
        (np.ones(5), "y: must have one value per observation of the fit (171), got 5"),
        (np.ones((171, 1)), "y: expected a one-dimensional array"),
        (np.array(["a"] * 171), "y: expected a one-dimensional array"),
        (np.r_[np.ones(170), np.nan], "y: must be finite; y[170] is nan"),
        (np.r_[np.inf, np.ones(170)], "y: must be finite; y[0] is inf"),
        (None, "y: expected a one-dimensional array"),
    ],
)
def test_bad_response(kinds_fit, y, starts):
    one_line_error(lambda: kinds_fit.refit(y), starts)


def test_response_may_be_a_list_or_series(kinds_fit):
    y = kinds_fit.simulate(1, seed=2)[0]
    base = kinds_fit.refit(y).objective
    assert kinds_fit.refit(list(y)).objective == base
    assert kinds_fit.refit(pd.Series(y, index=kinds_fit.fitted.index)).objective == base


@pytest.mark.parametrize(
    "name, formula, reml",
    [
        ("sleepstudy.csv", "Reaction ~ 1 + Days + (1 + Days | Subject)", True),
        ("Penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)", False),
        ("generated_independent.csv", "y ~ 1 + time + (1 + time || subject)", True),
        ("Dyestuff2.csv", "Yield ~ 1 + (1 | Batch)", True),  # singular: θ̂ = 0 stays on its bound
    ],
)
def test_polish_reaches_the_stationary_point(name, formula, reml):
    """From the quasi-Newton stop, the Newton polish drives the (analytic) gradient to rounding level."""
    from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER
    from workbench.kernels.montecarlo import fit_theta
    from workbench.kernels.objective import deviance_and_gradient, make_workspace
    from workbench.kernels.polish import NOISE, polish_theta

    problem = wb.fit(formula, read(name), reml=reml).problem
    st, cp = problem.structure, problem.products
    ws = make_workspace(st)
    lower = problem.design.theta_lower_bounds()
    theta = np.empty(problem.design.ntheta)
    value, *_ = fit_theta(st, cp, ws, reml, lower, GRADIENT_TOL, MAX_ITER, theta)
    before = theta.copy()
    polished, evals, worst = polish_theta(st, cp, ws, reml, lower, 3, theta)
    grad = np.empty(len(theta))
    assert deviance_and_gradient(theta.copy(), st, cp, ws, reml, grad) == pytest.approx(polished, abs=1e-12 * polished)
    free = ~((lower == 0) & (theta <= 0))
    assert np.abs(grad[free]).max(initial=0.0) == pytest.approx(worst, rel=1e-9, abs=1e-300)
    assert worst <= 1e-9 * (1 + abs(value))
    assert polished <= value + NOISE * (1 + abs(value))
    np.testing.assert_allclose(theta, before, rtol=1e-4, atol=1e-6)  # a polish, not a new optimum
    if name == "Dyestuff2.csv":
        assert theta[0] == 0.0 and before[0] == 0.0 and evals == 1
