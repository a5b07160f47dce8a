"""The moment start of scalar terms against the closed-form ANOVA estimators of balanced designs.

On balanced data the moment equations the start solves are those of the ANOVA mean squares,
so it must equal the textbook estimates (as relative SDs θ = sqrt(V / σ²)) where they are positive.
"""

import numpy as np
import pandas as pd
import pytest

from workbench.fitting.problem import Problem
from workbench.kernels.start import moment_start
from workbench.model.design import build_design


def start(formula, data):
    problem = Problem.build(build_design(formula, data))
    return moment_start(problem.structure, problem.products, np.zeros(len(problem.design.terms)))


@pytest.mark.parametrize("seed", range(4))
def test_balanced_crossed_start_is_the_two_way_anova_estimate(seed):
    rng = np.random.default_rng(seed)
    a, b = 12, 9
    effects_a, effects_b = rng.normal(0, 0.8, a), rng.normal(0, 0.5, b)
    table = 3.0 + effects_a[:, None] + effects_b[None, :] + rng.normal(0, 1.0, (a, b))
    data = pd.DataFrame({"f": np.repeat(np.arange(a), b).astype(str), "g": np.tile(np.arange(b), a).astype(str), "y": table.ravel()})
    residual = table - table.mean(1, keepdims=True) - table.mean(0, keepdims=True) + table.mean()
    ms_e = (residual**2).sum() / ((a - 1) * (b - 1))
    ms_a = b * table.mean(1).var(ddof=1)
    ms_b = a * table.mean(0).var(ddof=1)
    var_a, var_b = (ms_a - ms_e) / b, (ms_b - ms_e) / a
    assert var_a > 0 and var_b > 0
    theta = start("y ~ 1 + (1 | f) + (1 | g)", data)
    np.testing.assert_allclose(theta, np.sqrt([var_a / ms_e, var_b / ms_e]), rtol=1e-10)


@pytest.mark.parametrize("seed", range(4))
def test_balanced_nested_start_is_the_nested_anova_estimate(seed):
    rng = np.random.default_rng(100 + seed)
    s, c, h, n = 8, 4, 3, 5
    y = (
        rng.normal(0, 0.9, (s, 1, 1, 1))
        + rng.normal(0, 0.7, (s, c, 1, 1))
        + rng.normal(0, 0.6, (s, c, h, 1))
        + rng.normal(0, 1.0, (s, c, h, n))
    )
    index = np.indices((s, c, h, n)).reshape(4, -1)
    data = pd.DataFrame({"state": index[0].astype(str), "city": index[1].astype(str), "hood": index[2].astype(str), "y": y.ravel()})
    m_h = y.mean(3)
    m_c = m_h.mean(2)
    m_s = m_c.mean(1)
    ms_e = ((y - m_h[..., None]) ** 2).sum() / (s * c * h * (n - 1))
    ms_h = n * ((m_h - m_c[..., None]) ** 2).sum() / (s * c * (h - 1))
    ms_c = n * h * ((m_c - m_s[:, None]) ** 2).sum() / (s * (c - 1))
    ms_s = n * h * c * ((m_s - m_s.mean()) ** 2).sum() / (s - 1)
    var = np.array([(ms_h - ms_e) / n, (ms_c - ms_h) / (n * h), (ms_s - ms_c) / (n * h * c)])
    assert (var > 0).all()
    theta = start("y ~ 1 + (1 | state/city/hood)", data)
    np.testing.assert_allclose(theta, np.sqrt(var / ms_e), rtol=1e-10)
