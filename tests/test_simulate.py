"""Simulation: the kernel against its NumPy twin, the draw contract, reproducibility and moments."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm
from strategies import models

from workbench.model.design import Design, build_design
from workbench.errors import WorkbenchError
from workbench.kernels.simulate import simulate_responses
from workbench.simulation.simulate import (
    draw_normals,
    marginal_cov,
    replicate_generator,
    simulate,
    simulate_design,
    simulation_inputs,
)
from workbench.model.parameters import term_lambdas
from workbench.model.truth import truth_to_parameters

SLOPES = "y ~ 1 + time + (1 + time | subject)"


def simulate_twin(design: Design, beta, theta, sigma, normals) -> np.ndarray:
    """NumPy twin of the kernel: u level-major, effect-minor per term in design order, then ε."""
    n = design.n
    out = np.empty((normals.shape[0], n))
    for r, draw in enumerate(normals):
        noise = draw[draw.shape[0] - n :].copy()
        offset = 0
        for term, lam in zip(design.terms, term_lambdas(design, theta)):
            size = term.nlevels * term.q
            b = draw[offset : offset + size].reshape(term.nlevels, term.q) @ lam.T
            noise += np.sum(term.z * b[term.codes], axis=1)
            offset += size
        out[r] = design.x @ beta + sigma * noise
    return out


def run_kernel(inputs, normals) -> np.ndarray:
    out = np.empty((normals.shape[0], inputs.xbeta.shape[0]))
    simulate_responses(
        inputs.xbeta, inputs.codes, inputs.z, inputs.term_q, inputs.term_offset, inputs.lam, inputs.sigma, normals, out
    )
    return out


@given(models(), st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_kernel_matches_numpy_twin(model, seed, nsim):
    design = model.design
    beta, theta, sigma = truth_to_parameters(design, model.truth)
    inputs = simulation_inputs(design, beta, theta, sigma)
    assert inputs.size == sum(t.q * t.nlevels for t in design.terms) + design.n
    normals = np.random.default_rng(seed).standard_normal((nsim, inputs.size))
    expected = simulate_twin(design, beta, theta, sigma, normals)
    scale = np.abs(expected).max() + sigma
    np.testing.assert_allclose(run_kernel(inputs, normals), expected, rtol=1e-13, atol=1e-13 * scale)


def slopes_layout(subjects=4, times=(0.0, 1.0, 2.0, 3.0)) -> pd.DataFrame:
    return pd.DataFrame({"subject": np.repeat(np.arange(subjects), len(times)), "time": np.tile(times, subjects)})


def slopes_truth(sd_time=0.8, corr=-0.3) -> dict:
    return {
        "beta": {"(Intercept)": 5.0, "time": -2.0},
        "sigma": 1.5,
        "re": {"subject": {"sd": {"(Intercept)": 2.0, "time": sd_time}, "corr": {"(Intercept):time": corr}}},
    }


def test_draw_contract_by_hand():
    """Replicate r of point p: one standard_normal(q_total + n) call, u (level-major, effect-minor) then ε."""
    layout = slopes_layout()
    seed, point = 20261125, 3
    y = simulate(SLOPES, layout, slopes_truth(), nsim=3, seed=seed, point=point)
    design = build_design(SLOPES, layout, response_required=False)
    _, theta, _ = truth_to_parameters(design, slopes_truth())
    lam = term_lambdas(design, theta)[0]
    time = layout["time"].to_numpy()
    for r in range(3):
        draw = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point, r))).standard_normal(8 + 16)
        b = draw[:8].reshape(4, 2) @ lam.T
        codes = layout["subject"].to_numpy()
        expected = 5.0 - 2.0 * time + 1.5 * (b[codes, 0] + b[codes, 1] * time + draw[8:])
        np.testing.assert_allclose(y[r], expected, rtol=1e-14, atol=1e-13)


def test_terms_draw_in_design_order_most_levels_first():
    """Crossed: the factor with more levels comes first in u, whatever the formula's order."""
    layout = pd.DataFrame({"sender": np.repeat(["a", "b"], 3), "receiver": np.tile(["x", "y", "z"], 2)})
    formula = "y ~ 1 + (1 | sender) + (1 | receiver)"
    re = {"sender": {"sd": {"(Intercept)": 0.0}}, "receiver": {"sd": {"(Intercept)": 1.0}}}
    truth = {"beta": {"(Intercept)": 0.0}, "sigma": 1.0, "re": re}
    draw = replicate_generator(7, 0, 0).standard_normal(3 + 2 + 6)
    codes = np.tile([0, 1, 2], 2)
    np.testing.assert_allclose(simulate(formula, layout, truth, seed=7)[0], draw[codes] + draw[5:], rtol=1e-15)


def test_zero_sds_leave_only_the_residuals():
    layout = slopes_layout()
    truth = slopes_truth()
    truth["re"]["subject"]["sd"] = {"(Intercept)": 0.0, "time": 0.0}
    y = simulate(SLOPES, layout, truth, nsim=2, seed=1)
    normals = draw_normals(1, 0, [0, 1], 8 + 16)
    np.testing.assert_allclose(y, 5.0 - 2.0 * layout["time"].to_numpy() + 1.5 * normals[:, 8:], rtol=1e-15)


def test_same_seed_same_draws_and_other_seeds_or_points_differ():
    layout, truth = slopes_layout(), slopes_truth()
    first = simulate(SLOPES, layout, truth, nsim=5, seed=11, point=2)
    np.testing.assert_array_equal(first, simulate(SLOPES, layout, truth, nsim=5, seed=11, point=2))
    for other in (dict(seed=12, point=2), dict(seed=11, point=3)):
        again = simulate(SLOPES, layout, truth, nsim=5, **other)
        assert not np.any(again == first)
    rows = first.round(12)
    assert len({tuple(row) for row in rows}) == 5


@given(st.integers(0, 2**63), st.integers(0, 1000), st.lists(st.integers(0, 50), min_size=1, max_size=6))
def test_replicate_draws_do_not_depend_on_the_batch(seed, point, replicates):
    """A replicate's normals are the same alone, in any batch, in any order."""
    batch = draw_normals(seed, point, replicates, 7)
    for row, replicate in zip(batch, replicates):
        np.testing.assert_array_equal(row, draw_normals(seed, point, [replicate], 7)[0])
        np.testing.assert_array_equal(row, replicate_generator(seed, point, replicate).standard_normal(7))


def test_replicate_responses_do_not_depend_on_the_batch():
    layout, truth = slopes_layout(), slopes_truth()
    design = build_design(SLOPES, layout, response_required=False)
    parameters = truth_to_parameters(design, truth)
    batch = simulate(SLOPES, layout, truth, nsim=10, seed=5, point=1)
    np.testing.assert_array_equal(simulate(SLOPES, layout, truth, nsim=4, seed=5, point=1), batch[:4])
    for replicates in ([7], [9, 2, 4]):
        alone = simulate_design(design, *parameters, replicates, seed=5, point=1)
        np.testing.assert_array_equal(alone, batch[replicates])


def test_layout_may_carry_the_response_or_not():
    layout = slopes_layout()
    with_y = layout.assign(y=np.arange(len(layout), dtype=float))
    np.testing.assert_array_equal(simulate(SLOPES, layout, slopes_truth()), simulate(SLOPES, with_y, slopes_truth()))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(nsim=0), "nsim: must be a positive integer, got 0"),
        (dict(nsim=2.0), "nsim: must be a positive integer, got 2.0"),
        (dict(seed=-1), "seed: must be an integer from 0 to 18446744073709551615, got -1"),
        (dict(point=True), "point: must be a non-negative integer, got True"),
    ],
)
def test_bad_arguments(arguments, message):
    with pytest.raises(WorkbenchError) as info:
        simulate(SLOPES, slopes_layout(), slopes_truth(), **arguments)
    assert str(info.value) == message


MOMENT_CASES = {
    "longitudinal": (SLOPES, slopes_layout(3, (-1.0, 0.0, 1.0)), slopes_truth(corr=0.4)),
    "nested": (
        "y ~ 1 + x + (1 | state/city)",
        pd.DataFrame({"state": np.repeat([1, 2], 4), "city": np.tile([1, 1, 2, 2], 2), "x": np.linspace(-1, 1, 8)}),
        {
            "beta": {"(Intercept)": 1.0, "x": 3.0},
            "sigma": 0.8,
            "re": {"state": {"sd": {"(Intercept)": 1.5}}, "state:city": {"sd": {"(Intercept)": 1.0}}},
        },
    ),
    "crossed": (
        "y ~ 1 + (1 | sender) + (1 | receiver)",
        pd.DataFrame({"sender": np.repeat(["a", "b", "c"], 3), "receiver": np.tile(["x", "y", "z"], 3)}),
        {
            "beta": {"(Intercept)": -4.0},
            "sigma": 1.0,
            "re": {"sender": {"sd": {"(Intercept)": 1.2}}, "receiver": {"sd": {"(Intercept)": 0.7}}},
        },
    ),
}


@pytest.mark.parametrize("family", list(MOMENT_CASES))
def test_simulated_moments_converge_to_the_model(family):
    """20,000 replicates: each mean within 5 SE of Xβ, each covariance within 5 SE of marginal_cov.

    With the mean μ known, S = (Y−μ)'(Y−μ)/N is unbiased for V and, for normal data,
    Var(S_ij) = (V_ij² + V_ii V_jj)/N exactly; Var(ȳ_i) = V_ii/N.
    """
    formula, layout, truth = MOMENT_CASES[family]
    nsim = 20_000
    y = simulate(formula, layout, truth, nsim=nsim, seed=2026)
    design = build_design(formula, layout, response_required=False)
    mu = design.x @ truth_to_parameters(design, truth)[0]
    cov = marginal_cov(formula, layout, truth)
    variance = np.diag(cov)
    assert np.all(np.abs(y.mean(axis=0) - mu) <= 5 * np.sqrt(variance / nsim))
    centred = y - mu
    sample = centred.T @ centred / nsim
    se = np.sqrt((cov**2 + np.outer(variance, variance)) / nsim)
    assert np.all(np.abs(sample - cov) <= 5 * se)


@pytest.mark.slow
@given(models(), st.integers(0, 2**32 - 1))
def test_simulated_moments_converge_for_random_models(model, seed):
    """As above for random models with 10,000 replicates; the bound is Bonferroni-corrected so that
    all the mean and covariance entries of one example pass together with probability 1 − 10⁻⁶."""
    nsim = 10_000
    design = model.design
    beta, theta, sigma = truth_to_parameters(design, model.truth)
    y = simulate_design(design, beta, theta, sigma, np.arange(nsim), seed=seed)
    mu = design.x @ beta
    cov = marginal_cov(model.formula, model.layout, model.truth)
    variance = np.diag(cov)
    checks = design.n + design.n * (design.n + 1) // 2
    bound = float(norm.isf(1e-6 / (2 * checks)))
    assert np.all(np.abs(y.mean(axis=0) - mu) <= bound * np.sqrt(variance / nsim))
    centred = y - mu
    se = np.sqrt((cov**2 + np.outer(variance, variance)) / nsim)
    assert np.all(np.abs(centred.T @ centred / nsim - cov) <= bound * se)
