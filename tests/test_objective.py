"""The objective kernel against its dense twin, and its gradient against finite differences."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twins import dense_criterion
from workbench.model.design import build_design
from workbench.fitting.problem import Problem
from workbench.fitting.structure import CrossProducts, build_structure, cross_products, front_starts, term_arrays
from workbench.kernels.objective import deviance, deviance_and_gradient, make_workspace
from workbench.kernels.products import fill_products, refresh_response

FORMULAS = {
    "slopes": "y ~ 1 + x + (1 + x | g)",
    "uncorrelated": "y ~ 1 + x + (1 + x || g)",
    "three-effects": "y ~ 1 + x + (1 + x + w | g)",
    "nested": "y ~ 1 + x + (1 | a/b)",
    "nested-slopes": "y ~ 1 + (1 + x | a) + (1 | a:b)",
    "crossed": "y ~ 1 + x + (1 | a) + (1 | g)",
    "crossed-slopes": "y ~ 1 + (1 + x | g) + (1 | a)",
    "nested-and-crossed": "y ~ 1 + (1 | a/b) + (1 | g)",
}


def random_data(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, n)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n) * 3 + rng.normal(size=4)[a],
            "x": rng.normal(size=n),
            "w": rng.uniform(size=n),
            "g": rng.integers(0, 6, n),
            "a": a,
            "b": rng.integers(0, 3, n),
        }
    )


def random_theta(design, rng):
    identity = np.where(design.theta_lower_bounds() == 0, 1.0, 0.0)
    theta = identity + 0.6 * rng.standard_normal(design.ntheta)
    return np.where(design.theta_lower_bounds() == 0, np.abs(theta), theta)


@pytest.mark.parametrize("family", sorted(FORMULAS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(40, 90), reml=st.booleans())
def test_objective_matches_dense_twin(family, seed, n, reml):
    design = build_design(FORMULAS[family], random_data(seed, n))
    problem = Problem.build(design)
    ws = make_workspace(problem.structure)
    theta = random_theta(design, np.random.default_rng(seed))
    value = deviance(theta, problem.structure, problem.products, ws, reml)
    assert value == pytest.approx(dense_criterion(design, theta, reml), rel=1e-10)


@pytest.mark.parametrize("family", sorted(FORMULAS))
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(40, 90), reml=st.booleans())
def test_gradient_matches_central_differences(family, seed, n, reml):
    design = build_design(FORMULAS[family], random_data(seed, n))
    problem = Problem.build(design)
    ws = make_workspace(problem.structure)
    theta = random_theta(design, np.random.default_rng(seed)) + 0.05
    grad = np.empty(design.ntheta)
    deviance_and_gradient(theta, problem.structure, problem.products, ws, reml, grad)
    h = 1e-5
    numeric = np.array(
        [
            (
                deviance(theta + h * e, problem.structure, problem.products, ws, reml)
                - deviance(theta - h * e, problem.structure, problem.products, ws, reml)
            )
            / (2 * h)
            for e in np.eye(design.ntheta)
        ]
    )
    # central differences are accurate to O(h²·d''') plus rounding of d/h
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-5 * (1 + np.abs(numeric).max()))


def test_structure_chooses_fronts_for_nested_and_a_dense_block_for_crossed():
    data = random_data(0, 80)
    nested = Problem.build(build_design(FORMULAS["nested"], data)).structure
    assert nested.nprefix == 2 and len(nested.row_term) - nested.t0 == 3  # X (2 columns) and y
    crossed = Problem.build(build_design(FORMULAS["crossed"], data)).structure
    assert crossed.nprefix == 1 and len(crossed.row_term) - crossed.t0 == 4 + 3


@pytest.mark.parametrize("family", sorted(FORMULAS))
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(40, 90))
def test_refresh_response_equals_filling_every_block(family, seed, n):
    """A new response's row of A, refreshed on the old products, is bit for bit the one of a full fill."""
    design = build_design(FORMULAS[family], random_data(seed, n))
    structure = build_structure(design)
    codes, z = term_arrays(design)
    front0 = front_starts(structure)
    old = cross_products(design, structure)
    y = np.random.default_rng(seed).normal(size=design.n) * 5.0
    refreshed = CrossProducts(old.a_front.copy(), old.a_tt.copy())
    refresh_response(codes, z, design.x, y, structure, front0, *refreshed)
    filled = CrossProducts(np.zeros_like(old.a_front), np.zeros_like(old.a_tt))
    fill_products(codes, z, design.x, y, structure, front0, *filled)
    assert np.array_equal(refreshed.a_front, filled.a_front)
    assert np.array_equal(refreshed.a_tt, filled.a_tt)
