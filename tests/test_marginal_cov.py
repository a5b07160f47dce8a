"""The marginal covariance σ²(I + ZΛΛ'Z'): closed forms, a dense brute force, invariances, the log-likelihood."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import multivariate_normal
from strategies import crossed_layouts, design_or_reject, longitudinal_layouts, models, nested_layouts, truths

from workbench.model.design import Design, build_design
from workbench.errors import WorkbenchError
from workbench.fitting.fit import loglik
from workbench.kernels.simulate import marginal_covariance
from workbench.simulation.simulate import marginal_cov, marginal_cov_design, simulate_design, simulation_inputs
from workbench.model.parameters import term_covariances
from workbench.model.truth import truth_to_parameters


def assert_close(actual, expected):
    """Equal up to rounding relative to the largest entry."""
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())


def brute_force(design: Design, theta, sigma) -> np.ndarray:
    """ZGZ' + σ²I with a dense Z built from indicator matrices, level-major, effect-minor."""
    blocks, covs = [], []
    for term, cov in zip(design.terms, term_covariances(design, theta, sigma)):
        indicator = np.eye(term.nlevels)[term.codes]  # (n, levels)
        blocks.append((indicator[:, :, None] * term.z[:, None, :]).reshape(design.n, -1))
        covs.append(np.kron(np.eye(term.nlevels), cov))
    z = np.hstack(blocks)
    g = np.zeros((z.shape[1], z.shape[1]))
    start = 0
    for cov in covs:
        g[start : start + cov.shape[0], start : start + cov.shape[0]] = cov
        start += cov.shape[0]
    return z @ g @ z.T + sigma**2 * np.eye(design.n)


def kernel_twin(design: Design, theta, sigma) -> np.ndarray:
    """NumPy twin of the kernel: per term, rows sharing a level contribute zᵢ' cov zⱼ."""
    out = sigma**2 * np.eye(design.n)
    for term, cov in zip(design.terms, term_covariances(design, theta, sigma)):
        same = term.codes[:, None] == term.codes[None, :]
        out += same * (term.z @ cov @ term.z.T)
    return out


def parameters(model):
    return truth_to_parameters(model.design, model.truth)


@given(models())
def test_kernel_matches_numpy_twin(model):
    design = model.design
    beta, theta, sigma = parameters(model)
    inputs = simulation_inputs(design, beta, theta, sigma)
    qmax = inputs.z.shape[2]
    cov = np.zeros((len(design.terms), qmax, qmax))
    for k, cov_k in enumerate(term_covariances(design, theta, sigma)):
        cov[k, : cov_k.shape[0], : cov_k.shape[0]] = cov_k
    out = np.empty((design.n, design.n))
    marginal_covariance(inputs.codes, inputs.z, inputs.term_q, cov, sigma**2, out)
    assert_close(out, kernel_twin(design, theta, sigma))
    np.testing.assert_array_equal(marginal_cov_design(design, theta, sigma), out)


@given(models())
def test_equals_dense_brute_force(model):
    _, theta, sigma = parameters(model)
    assert_close(marginal_cov(model.formula, model.layout, model.truth), brute_force(model.design, theta, sigma))


@given(models())
def test_symmetric_positive_definite(model):
    """Exactly symmetric; every eigenvalue at least σ² since ZGZ' is positive semi-definite."""
    cov = marginal_cov(model.formula, model.layout, model.truth)
    sigma = model.truth["sigma"]
    np.testing.assert_array_equal(cov, cov.T)
    np.linalg.cholesky(cov)
    assert np.linalg.eigvalsh(cov).min() >= sigma**2 - 1e-12 * np.abs(cov).max()


@given(models(), st.data())
def test_permuting_rows_permutes_it(model, data):
    order = np.array(data.draw(st.permutations(range(len(model.layout)))))
    cov = marginal_cov(model.formula, model.layout, model.truth)
    permuted = marginal_cov(model.formula, model.layout.iloc[order], model.truth)
    assert_close(permuted, cov[np.ix_(order, order)])


@given(models(), st.data())
def test_relabelling_levels_leaves_it_unchanged(model, data):
    """Any one-to-one renaming of each grouping column's labels, whatever their new sort order."""
    layout = model.layout.copy()
    for column in ("subject", "state", "city", "hood", "sender", "receiver"):
        if column in layout:
            labels = sorted(layout[column].unique(), key=str)
            new = data.draw(st.permutations(range(len(labels))))
            layout[column] = layout[column].map({old: f"L{k}" for old, k in zip(labels, new)})
    expected = marginal_cov(model.formula, model.layout, model.truth)
    assert_close(marginal_cov(model.formula, layout, model.truth), expected)


def _design_and_truth(data, formula, layout_strategy):
    layout = data.draw(layout_strategy)
    design = design_or_reject(formula, layout)
    return layout, design, data.draw(truths(design))


@given(st.data())
def test_random_slopes_closed_form(data):
    """Times −1, 0, 1: Var Y(t) = v_a + v_b t² + 2c_ab t + s², Cov(Y(s), Y(t)) = v_a + c_ab(s+t) + v_b s t."""
    formula = "y ~ 1 + time + (1 + time | subject)"
    layout, _, truth = _design_and_truth(data, formula, longitudinal_layouts(times=(-1.0, 0.0, 1.0)))
    entry = truth["re"]["subject"]
    sd_a, sd_b = entry["sd"]["(Intercept)"], entry["sd"]["time"]
    v_a, v_b, c_ab = sd_a**2, sd_b**2, entry["corr"]["(Intercept):time"] * sd_a * sd_b
    s2 = truth["sigma"] ** 2
    subject, time = layout["subject"].to_numpy(), layout["time"].to_numpy()
    n = len(layout)
    expected = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if subject[i] == subject[j]:
                s, t = time[i], time[j]
                expected[i, j] = v_a + c_ab * (s + t) + v_b * s * t
        expected[i, i] += s2
    for i in range(n):
        t = time[i]
        assert expected[i, i] == pytest.approx(v_a + v_b * t**2 + 2 * c_ab * t + s2, rel=1e-14)
    assert_close(marginal_cov(formula, layout, truth), expected)


@given(st.data(), st.sampled_from(("state", "state/city", "state/city/hood")))
def test_nested_closed_form(data, nesting):
    """Cov is the sum of the variances of the levels two observations share; 0 across states."""
    formula = f"y ~ 1 + (1 | {nesting})"
    layout, _, truth = _design_and_truth(data, formula, nested_layouts())
    columns = nesting.split("/")
    n = len(layout)
    expected = truth["sigma"] ** 2 * np.eye(n)
    for depth in range(1, len(columns) + 1):
        group = ":".join(columns[:depth])
        keys = layout[columns[:depth]].astype(str).agg("/".join, axis=1).to_numpy()
        expected += (keys[:, None] == keys[None, :]) * truth["re"][group]["sd"]["(Intercept)"] ** 2
    assert_close(marginal_cov(formula, layout, truth), expected)


@given(st.data())
def test_crossed_closed_form(data):
    """Same sender → v_a, same receiver → v_b, both → v_a + v_b, neither → 0 (plus s² on the diagonal)."""
    formula = "y ~ 1 + (1 | sender) + (1 | receiver)"
    layout, _, truth = _design_and_truth(data, formula, crossed_layouts())
    v_a = truth["re"]["sender"]["sd"]["(Intercept)"] ** 2
    v_b = truth["re"]["receiver"]["sd"]["(Intercept)"] ** 2
    sender, receiver = layout["sender"].to_numpy(), layout["receiver"].to_numpy()
    same_sender = sender[:, None] == sender[None, :]
    same_receiver = receiver[:, None] == receiver[None, :]
    expected = np.select(
        [same_sender & same_receiver, same_sender, same_receiver], [v_a + v_b, v_a, v_b], default=0.0
    ) + truth["sigma"] ** 2 * np.eye(len(layout))
    assert_close(marginal_cov(formula, layout, truth), expected)


def test_refused_above_max_rows():
    layout = pd.DataFrame({"g": np.repeat(np.arange(10), 3)})
    truth = {"beta": {"(Intercept)": 0.0}, "sigma": 1.0, "re": {"g": {"sd": {"(Intercept)": 1.0}}}}
    assert marginal_cov("y ~ 1 + (1 | g)", layout, truth, max_rows=30).shape == (30, 30)
    with pytest.raises(WorkbenchError) as info:
        marginal_cov("y ~ 1 + (1 | g)", layout, truth, max_rows=29)
    assert str(info.value) == (
        "marginal_cov: the layout has 30 rows; the dense 30×30 covariance is built for at most max_rows = 29 rows"
    )


@given(models(), st.integers(0, 2**32 - 1), st.data())
def test_loglik_is_the_dense_normal_log_density(model, seed, data):
    """fit.loglik(design, β, θ, σ) = log N(y; Xβ, σ²(I + ZΛΛ'Z')) at any parameters, not only the truth."""
    design = model.design
    beta, theta, sigma = parameters(model)
    y = simulate_design(design, beta, theta, sigma, [0], seed=seed)[0]
    with_y = build_design(model.formula, model.layout.assign(y=y))
    # evaluate away from the parameters that generated y as well
    shift = data.draw(st.floats(-1.0, 1.0))
    beta_eval = beta + shift
    sigma_eval = sigma * np.exp(shift / 2)
    theta_eval = theta * (1 + shift / 3)
    cov = marginal_cov_design(with_y, theta_eval, sigma_eval)
    expected = multivariate_normal(with_y.x @ beta_eval, cov).logpdf(y)
    # loglik works from the cross-products y'y, X'y, …, as lme4 does: its rounding error
    # grows like ε‖y‖²/σ² (large means, small σ), which the dense density does not share.
    rounding = 100 * np.finfo(float).eps * (y @ y) / sigma_eval**2
    assert loglik(with_y, beta_eval, theta_eval, sigma_eval) == pytest.approx(expected, rel=1e-9, abs=1e-9 + rounding)
