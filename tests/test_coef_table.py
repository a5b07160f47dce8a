"""Fixed-effect t tests against lmerTest 3.1-3 and pbkrtest 0.5.2, the ddf kernels against dense twins,
and `params` against what a study stores.

References: tests/data/inference_ddf.json, written by scripts/reference/inference_ddf.R.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from studies import slopes_study
from twins import dense_lambda, dense_z
from workbench.fitting.fit import optimize, summarize_fit
from workbench.fitting.problem import Problem
from workbench.kernels import ddf
from workbench.kernels.objective import make_workspace
from workbench.model.design import build_design
from workbench.study.plan import plan_point
from workbench.study.spec import parse_study
from workbench.study.units import compute_unit, unit_responses

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "inference_ddf.json").read_text())
CASES = REFERENCE["cases"]
COLUMNS = ["estimate", "std_error", "df", "statistic", "p_value"]


def case_id(case):
    return f"{case['case']}-{case['method']}"


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def case_and_fit(request):
    case = request.param
    data = pd.read_csv(DATA / case["data"])
    return case, wb.fit(case["formula"], data, reml=case["method"] == "REML")


def methods_of(case):
    return [ddf for ddf in ("asymptotic", "residual", "satterthwaite", "kenward-roger") if ddf in case]


def reference_df(value):
    return np.inf if value == "Inf" else value


# ---------------------------------------------------------------- against R, through the public API


def test_coef_table_matches_lmertest_and_pbkrtest(case_and_fit):
    case, fit = case_and_fit
    assert fit.converged and fit.singular == case["singular"]
    assert fit.objective == pytest.approx(case["objective"], rel=1e-7)
    for method in methods_of(case):
        table = fit.coef_table(ddf=method)
        theirs = case[method]
        assert list(table.columns) == COLUMNS
        assert list(table.index) == list(theirs["estimate"])
        for name in table.index:
            row = table.loc[name]
            se = theirs["std_error"][name]
            assert abs(row["estimate"] - theirs["estimate"][name]) <= 1e-4 * se
            # the contract: adjusted (and plain) SEs to 1e-4 relative, df to 1e-3, p to 1e-4
            assert row["std_error"] == pytest.approx(se, rel=1e-4), (method, name)
            assert row["df"] == pytest.approx(reference_df(theirs["df"][name]), rel=1e-3), (method, name)
            assert row["statistic"] == pytest.approx(theirs["statistic"][name], rel=1e-4)
            assert abs(row["p_value"] - theirs["p_value"][name]) <= 1e-4, (method, name)
            assert row["p_value"] == pytest.approx(theirs["p_value"][name], rel=1e-2)


def test_contrast_test_matches_contest1d(case_and_fit):
    case, fit = case_and_fit
    contrast = case["contrast"]
    for method in ("satterthwaite", "kenward-roger"):
        if method not in contrast:
            continue
        ours, theirs = fit.contrast_test(contrast["L"], ddf=method), contrast[method]
        assert list(ours.index) == COLUMNS
        assert ours["std_error"] == pytest.approx(theirs["std_error"], rel=1e-4)
        assert ours["df"] == pytest.approx(theirs["df"], rel=1e-3)
        assert ours["statistic"] == pytest.approx(theirs["statistic"], rel=1e-4)
        assert abs(ours["p_value"] - theirs["p_value"]) <= 1e-4


def test_kernels_at_lme4_optimum_match_lmertest_pieces(case_and_fit):
    """At lme4's (θ, σ) only the numerics differ: lmerTest's numDeriv against our differences."""
    case, fit = case_and_fit
    problem = fit.problem
    theta, sigma = np.array(case["theta"]), case["sigma"]
    m, p = len(theta), problem.design.p
    vcov, jac, varpar_cov = np.empty((p, p)), np.empty((m + 1, p, p)), np.empty((m + 1, m + 1))
    ws = make_workspace(problem.structure)
    reml = case["method"] == "REML"
    assert ddf.satterthwaite(theta, sigma, problem.structure, problem.products, ws, reml, vcov, jac, varpar_cov) == 0
    np.testing.assert_allclose(vcov, case["vcov"], rtol=1e-12)
    reference_cov = np.array(case["vcov_varpar"])
    # at θ = 0 numDeriv's Hessian is the less accurate one, by 1e-5 (see the boundary test below)
    atol = (2e-5 if case["singular"] else 1e-6) * np.abs(reference_cov).max()
    np.testing.assert_allclose(varpar_cov, reference_cov, rtol=0, atol=atol)
    for ours, theirs in zip(jac, np.array(case["jacobian"])):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * np.abs(theirs).max())
    names = list(fit.fixef.index)
    for j, name in enumerate(names):
        variance, df = ddf.satterthwaite_df(np.eye(p)[j], vcov, jac, varpar_cov)
        assert df == pytest.approx(case["satterthwaite"]["df"][name], rel=1e-6)
    if not reml:
        return
    phi, phi_adjusted = np.empty((p, p)), np.empty((p, p))
    pmats, weights = np.empty((m + 1, p, p)), np.empty((m + 1, m + 1))
    assert ddf.kenward_roger(theta, sigma, problem.structure, problem.products, phi, phi_adjusted, pmats, weights)
    np.testing.assert_allclose(phi_adjusted, case["vcov_adjusted"], rtol=1e-10)
    for j, name in enumerate(names):
        assert ddf.kenward_roger_df(np.eye(p)[j], phi, pmats, weights) == pytest.approx(
            case["kenward-roger"]["df"][name], rel=1e-10
        )


def test_kenward_roger_adjusts_unbalanced_designs_only():
    by_case = {case_id(c): c for c in CASES}
    for name, balanced in (("sleepstudy-REML", True), ("cluster16-REML", False), ("crossed12-REML", False)):
        case = by_case[name]
        plain, adjusted = np.diag(case["vcov"]), np.diag(case["vcov_adjusted"])
        assert np.allclose(plain, adjusted, rtol=1e-12) == balanced
    fit = wb.fit(by_case["cluster16-REML"]["formula"], pd.read_csv(DATA / "cluster16.csv"))
    assert (fit.coef_table("kenward-roger")["std_error"] > fit.fixef_se).all()


# ---------------------------------------------------------------- dense twins of the kernels

SMALL = {
    "slopes": "y ~ 1 + x + (1 + x | g)",
    "crossed": "y ~ 1 + x + (1 | g) + (1 | h)",
    "nested": "y ~ 1 + x + (1 | g/h)",
    "crossed-slopes": "y ~ 1 + x + (1 + x | g) + (1 | h)",
}


def small_data(seed):
    """12 groups g × 4 groups h (h nested in g for g/h), 2 or 3 rows per cell: unbalanced."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 8)
    h = np.tile(np.repeat(np.arange(4), 2), 12)
    keep = rng.random(96) > 0.15
    x = rng.normal(size=96)
    y = (
        2 + x + 1.5 * rng.normal(size=12)[g] + 0.8 * rng.normal(size=12)[g] * x
        + rng.normal(size=4)[h] + 0.7 * rng.normal(size=48)[g * 4 + h] + rng.normal(size=96)
    )
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": h})[keep].reset_index(drop=True)


@pytest.fixture(scope="module", params=sorted(SMALL))
def small_fit(request):
    return wb.fit(SMALL[request.param], small_data(sorted(SMALL).index(request.param)))


def marginal(design, theta, sigma):
    zl = dense_z(design) @ dense_lambda(design, theta)
    return sigma**2 * (np.eye(design.n) + zl @ zl.T)


def minus2_loglik(design, phi, reml):
    """−2ℓ(θ, σ), β profiled out (lmerTest's devfun_vp), from the dense N(Xβ, Σ)."""
    n, p = design.n, design.p
    sigma_matrix = marginal(design, phi[:-1], phi[-1])
    inverse = np.linalg.inv(sigma_matrix)
    x, y = design.x, design.y
    xsx = x.T @ inverse @ x
    resid = y - x @ np.linalg.solve(xsx, x.T @ inverse @ y)
    value = np.linalg.slogdet(sigma_matrix)[1] + resid @ inverse @ resid + n * np.log(2 * np.pi)
    if reml:
        value += np.linalg.slogdet(xsx)[1] - p * np.log(2 * np.pi)
    return value


def dense_hessian(design, phi, reml, step=1e-4):
    k = len(phi)
    h = step * np.maximum(np.abs(phi), 1.0)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            def at(si, sj):
                moved = phi.copy()
                moved[i] += si * h[i]
                moved[j] += sj * h[j]
                return minus2_loglik(design, moved, reml)

            hess[i, j] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * h[i] * h[j])
    return hess


def dense_vcov(design, phi):
    x = design.x
    return np.linalg.inv(x.T @ np.linalg.solve(marginal(design, phi[:-1], phi[-1]), x))


def dense_vcov_jacobian(design, phi, step=1e-5):
    out = []
    for i in range(len(phi)):
        h = step * max(abs(phi[i]), 1.0)
        up, down = phi.copy(), phi.copy()
        up[i] += h
        down[i] -= h
        out.append((dense_vcov(design, up) - dense_vcov(design, down)) / (2 * h))
    return np.array(out)


def test_satterthwaite_kernels_against_dense_twin(small_fit):
    design, problem = small_fit.problem.design, small_fit.problem
    phi = np.append(small_fit.theta, small_fit.sigma)
    m, p = len(small_fit.theta), design.p
    ws = make_workspace(problem.structure)
    hess = np.empty((m + 1, m + 1))
    assert ddf.varpar_hessian(small_fit.theta, small_fit.sigma, problem.structure, problem.products, ws, True, hess)
    expected = dense_hessian(design, phi, True)
    np.testing.assert_allclose(hess, expected, rtol=0, atol=1e-6 * np.abs(expected).max())
    vcov, jac = np.empty((p, p)), np.empty((m + 1, p, p))
    assert ddf.vcov_jacobian(small_fit.theta, small_fit.sigma, problem.structure, problem.products, ws, vcov, jac)
    np.testing.assert_allclose(vcov, dense_vcov(design, phi), rtol=1e-10)
    expected = dense_vcov_jacobian(design, phi)
    for ours, theirs in zip(jac, expected):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7 * np.abs(expected).max())
    # ν = 2 (L'CL)² / (g'(2H⁻¹)g) straight from the dense pieces
    inverse = 2 * np.linalg.inv(dense_hessian(design, phi, True))
    table = small_fit.coef_table("satterthwaite")
    for j in range(p):
        g = expected[:, j, j]
        expected_df = 2 * dense_vcov(design, phi)[j, j] ** 2 / (g @ inverse @ g)
        assert table["df"].iloc[j] == pytest.approx(expected_df, rel=1e-6)


def test_hessian_at_a_boundary_fit_against_dense_twin():
    """Dyestuff2's REML fit has θ̂ = 0, where d is even in θ: the dense criterion's differences converge to ours."""
    case = next(c for c in CASES if c["singular"])
    fit = wb.fit(case["formula"], pd.read_csv(DATA / case["data"]))
    assert fit.singular and fit.theta[0] == 0.0
    problem, phi = fit.problem, np.array([0.0, fit.sigma])
    hess = np.empty((2, 2))
    ws = make_workspace(problem.structure)
    assert ddf.varpar_hessian(fit.theta, fit.sigma, problem.structure, problem.products, ws, True, hess)
    dense = dense_hessian(problem.design, phi, True)
    np.testing.assert_allclose(hess, dense, rtol=1e-6, atol=1e-9)
    # Var(θ̂) = 2/H_θθ: ours and the dense twin's agree to 1e-7; lmerTest's (numDeriv) is 1.2e-5 off
    ours, twin, lmertest = 2 / hess[0, 0], 2 / dense[0, 0], case["vcov_varpar"][0][0]
    assert ours == pytest.approx(twin, rel=1e-7)
    assert ours == pytest.approx(lmertest, rel=2e-5) and ours != pytest.approx(lmertest, rel=5e-6)


def covariance_basis(design):
    """pbkrtest's G_r: Z_k (I ⊗ E) Z_k' per lower-triangle entry of each term, then I."""
    z = dense_z(design)
    out, column = [], 0
    for term in design.terms:
        zk = z[:, column : column + term.q * term.nlevels]
        for c in range(term.q):
            for r in range(c, term.q):
                e = np.zeros((term.q, term.q))
                e[r, c] = e[c, r] = 1.0
                out.append(zk @ np.kron(np.eye(term.nlevels), e) @ zk.T)
        column += term.q * term.nlevels
    return out + [np.eye(design.n)]


def dense_kenward_roger(design, theta, sigma):
    """pbkrtest 0.5.2's vcovAdj_internal, line for line, with dense n × n matrices."""
    x = design.x
    sigma_matrix = marginal(design, theta, sigma)
    inverse = np.linalg.inv(sigma_matrix)
    phi = np.linalg.inv(x.T @ inverse @ x)
    g = covariance_basis(design)
    h = [gr @ inverse for gr in g]
    o = [hr @ x for hr in h]
    pm = [-(orr.T @ inverse @ x) for orr in o]
    qm = {(r, s): o[r].T @ inverse @ o[s] for r in range(len(g)) for s in range(len(g))}
    k = len(g)
    ie2 = np.empty((k, k))
    for r in range(k):
        for s in range(k):
            ie2[r, s] = np.sum(h[r].T * h[s]) - 2 * np.sum(phi * qm[r, s]) + np.sum((phi @ pm[r]) * (pm[s] @ phi))
    w = 2 * np.linalg.inv(ie2)
    u = sum(w[r, s] * (qm[r, s] - pm[r] @ phi @ pm[s]) for r in range(k) for s in range(k))
    return phi, phi + 2 * phi @ u @ phi, np.array(pm), w


def dense_lb_ddf(contrast, v0, pm, w):
    """pbkrtest's Lb_ddf for one contrast, line for line."""
    lmat = contrast[None, :]
    theta = lmat.T @ np.linalg.solve(lmat @ v0 @ lmat.T, lmat)
    a1 = a2 = 0.0
    for i in range(len(pm)):
        for j in range(i, len(pm)):
            e = 1 if i == j else 2
            ui, uj = theta @ v0 @ pm[i] @ v0, theta @ v0 @ pm[j] @ v0
            a1 += e * w[i, j] * np.trace(ui) * np.trace(uj)
            a2 += e * w[i, j] * np.sum(ui * uj.T)
    q = 1
    b = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    c1, c2, c3 = (g / (3 * q + 2 * (1 - g)), (q - g) / (3 * q + 2 * (1 - g)), (q + 2 - g) / (3 * q + 2 * (1 - g)))
    rho = 1 / q * ((1 - a2 / q) / (1 - c2 * b)) ** 2 * (1 + c1 * b) / (1 - c3 * b)
    return 4 + (q + 2) / (q * rho - 1)


def test_kenward_roger_kernels_against_dense_twin(small_fit):
    design, problem = small_fit.problem.design, small_fit.problem
    m, p = len(small_fit.theta), design.p
    phi, phi_adjusted = np.empty((p, p)), np.empty((p, p))
    pmats, weights = np.empty((m + 1, p, p)), np.empty((m + 1, m + 1))
    st, cp = problem.structure, problem.products
    assert ddf.kenward_roger(small_fit.theta, small_fit.sigma, st, cp, phi, phi_adjusted, pmats, weights)
    expected = dense_kenward_roger(design, small_fit.theta, small_fit.sigma)
    for ours, theirs in zip((phi, phi_adjusted, pmats, weights), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12 * np.abs(theirs).max())
    assert not np.allclose(phi_adjusted, phi, rtol=1e-6)  # unbalanced: a real adjustment
    table = small_fit.coef_table("kenward-roger")
    for j in range(p):
        contrast = np.eye(p)[j]
        assert table["df"].iloc[j] == pytest.approx(dense_lb_ddf(contrast, *expected[:1], *expected[2:]), rel=1e-8)
        assert table["std_error"].iloc[j] == pytest.approx(np.sqrt(expected[1][j, j]), rel=1e-8)
    contrast = np.arange(1.0, p + 1)
    ours = small_fit.contrast_test(contrast, "kenward-roger")
    assert ours["df"] == pytest.approx(dense_lb_ddf(contrast, expected[0], expected[2], expected[3]), rel=1e-8)


def test_dense_cross_products_are_d_transpose_d(small_fit):
    design, problem = small_fit.problem.design, small_fit.problem
    d = np.hstack([dense_z(design), design.x])
    np.testing.assert_allclose(ddf.dense_cross_products(problem.structure, problem.products), d.T @ d, atol=1e-10)
    lam = ddf.dense_lambda(problem.structure, small_fit.theta)
    np.testing.assert_array_equal(lam, dense_lambda(design, small_fit.theta))


# ---------------------------------------------------------------- params are what a study stores


def test_params_are_what_a_study_stores(tmp_path):
    study = parse_study(slopes_study(replicates=3, chunk_size=3, grid='"layout.subjects" = [10]'), tmp_path)
    assert [method for _, method, _ in study.fits] == ["ML", "REML"]
    plan = plan_point(study, study.points()[0])
    stored = compute_unit(study, plan, 0, 0, 3)
    responses = unit_responses(study, plan, 0, np.arange(3))
    for replicate in range(3):
        data = plan.layout.assign(y=responses[replicate])
        # ML is the study's first method and starts where wb.fit does; a study stops before the
        # Newton polish of wb.fit, so the same θ̂ is optimize(polish=False)'s: equal to the last digits
        problem = Problem.build(build_design(study.formula, data))
        fit = summarize_fit(problem, optimize(problem, reml=False, polish=False), reml=False)
        assert list(fit.params.index) == list(plan.params) == list(fit.params_se.index)
        np.testing.assert_allclose(fit.params, stored["estimate"][replicate, 0], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(fit.params_se, stored["std_error"][replicate, 0], rtol=1e-10, atol=1e-13)
        # wb.fit (polished) and REML (a study starts it from ML's optimum): the same optimum, to the
        # optimiser's accuracy
        for method, reml in ((0, False), (1, True)):
            fit = wb.fit(study.formula, data, reml=reml)
            np.testing.assert_allclose(fit.params, stored["estimate"][replicate, method], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(fit.params_se, stored["std_error"][replicate, method], rtol=1e-3, atol=1e-5)


def test_params_agree_with_the_other_accessors():
    fit = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", pd.read_csv(DATA / "sleepstudy.csv"))
    params, se = fit.params, fit.params_se
    # fixef comes from the fit's scaled copy of the data, params from the data: equal to rounding
    assert params["beta[Days]"] == pytest.approx(fit.fixef["Days"], rel=1e-12)
    assert se["beta[Days]"] == pytest.approx(fit.fixef_se["Days"], rel=1e-12)
    assert params["sd[Residual]"] == pytest.approx(fit.sigma, rel=1e-12)
    assert params["var[Subject:Days]"] == pytest.approx(fit.varcorr["vcov"].iloc[1], rel=1e-12)
    assert (se > 0).all()


def test_no_fixed_effects_gives_an_empty_table():
    data = small_data(0)
    fit = wb.fit("y ~ 0 + (1 | g)", data)
    for method in ("asymptotic", "satterthwaite", "kenward-roger"):
        table = fit.coef_table(method)
        assert table.shape == (0, 5) and list(table.columns) == COLUMNS
    assert list(fit.params.index) == ["var[g:(Intercept)]", "var[Residual]", "sd[g:(Intercept)]", "sd[Residual]"]
    problem, nothing = fit.problem, np.empty(0)
    ws = make_workspace(problem.structure)
    ddf.satterthwaite_coefficients(fit.theta, fit.sigma, problem.structure, problem.products, ws, True, nothing)
    ddf.kenward_roger_coefficients(fit.theta, fit.sigma, problem.structure, problem.products, nothing, nothing)


# ---------------------------------------------------------------- argument errors


@pytest.fixture(scope="module")
def sleep_fits():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"
    return wb.fit(formula, data), wb.fit(formula, data, reml=False)


@pytest.mark.parametrize("value", ["Satterthwaite", "kr", "", None, 3, ["residual"]])
def test_unknown_ddf_is_one_line(sleep_fits, value):
    with pytest.raises(wb.WorkbenchError, match=r"^ddf: must be one of 'asymptotic', 'residual'") as error:
        sleep_fits[0].coef_table(ddf=value)
    assert "\n" not in str(error.value)
    with pytest.raises(wb.WorkbenchError, match=r"^ddf: "):
        sleep_fits[0].contrast_test([0, 1], ddf=value)


def test_kenward_roger_refuses_ml_fits(sleep_fits):
    with pytest.raises(wb.WorkbenchError, match=r"^ddf: 'kenward-roger' is defined for REML fits only"):
        sleep_fits[1].coef_table("kenward-roger")
    with pytest.raises(wb.WorkbenchError, match=r"^ddf: 'kenward-roger'"):
        sleep_fits[1].contrast_test([0, 1], "kenward-roger")
    assert np.isfinite(sleep_fits[1].coef_table("satterthwaite")["df"]).all()


@pytest.mark.parametrize(
    "contrast, message",
    [
        ([1.0], r"^contrast: expected 2 numbers, one per fixed effect \(\(Intercept\), Days\), got an array of shape"),
        ([[1.0, 0.0]], r"^contrast: expected 2 numbers.*shape \(1, 2\)"),
        ("Days", r"^contrast: expected 2 numbers.*got str"),
        ([1.0, np.inf], r"^contrast: the weights must be finite numbers"),
        ([0, 0], r"^contrast: all weights are zero"),
        (pd.Series({"day": 1.0}), r"^contrast: unknown fixed effect 'day' \(the fit has: \(Intercept\), Days\)"),
    ],
)
def test_bad_contrasts_are_one_line(sleep_fits, contrast, message):
    with pytest.raises(wb.WorkbenchError, match=message):
        sleep_fits[0].contrast_test(contrast, "satterthwaite")


def test_a_named_contrast_is_matched_by_name(sleep_fits):
    fit = sleep_fits[0]
    by_name = fit.contrast_test(pd.Series({"Days": 7.0, "(Intercept)": 1.0}), "satterthwaite")
    by_position = fit.contrast_test([1.0, 7.0], "satterthwaite")
    pd.testing.assert_series_equal(by_name, by_position)
    single = fit.contrast_test(pd.Series({"Days": 1.0}), "kenward-roger")
    pd.testing.assert_series_equal(single, fit.coef_table("kenward-roger").loc["Days"].rename("contrast"))


# ---------------------------------------------------------------- the kernels a study's loop would call


def test_coefficient_kernels_give_the_table(small_fit):
    problem = small_fit.problem
    p = problem.design.p
    ws = make_workspace(problem.structure)
    df, std_error = np.empty(p), np.empty(p)
    ddf.satterthwaite_coefficients(small_fit.theta, small_fit.sigma, problem.structure, problem.products, ws, True, df)
    np.testing.assert_allclose(df, small_fit.coef_table("satterthwaite")["df"], rtol=1e-12)
    ddf.kenward_roger_coefficients(small_fit.theta, small_fit.sigma, problem.structure, problem.products, std_error, df)
    table = small_fit.coef_table("kenward-roger")
    np.testing.assert_allclose(df, table["df"], rtol=1e-12)
    np.testing.assert_allclose(std_error, table["std_error"], rtol=1e-12)


def test_varpar_covariance_drops_small_eigenvalues_as_lmertest():
    vectors = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    hess = vectors @ np.diag([3.0, 1.0, 1e-12]) @ vectors.T
    cov = np.empty((3, 3))
    assert ddf.varpar_covariance(hess, cov) == 1
    np.testing.assert_allclose(cov, 2 * vectors @ np.diag([1 / 3, 1.0, 0.0]) @ vectors.T, atol=1e-14)
    hess = vectors @ np.diag([3.0, 1.0, 0.5]) @ vectors.T
    assert ddf.varpar_covariance(hess, cov) == 0
    np.testing.assert_allclose(cov, 2 * np.linalg.inv(hess), rtol=1e-12)


def test_generalised_inverse_is_moore_penrose():
    a = np.random.default_rng(4).normal(size=(4, 2))
    singular = a @ a.T  # rank 2
    np.testing.assert_allclose(ddf._generalised_inverse(singular), np.linalg.pinv(singular, rcond=1e-8), atol=1e-10)
