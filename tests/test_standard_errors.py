"""Standard errors of variance components against the dense likelihood's numerical Hessian."""

import numpy as np
import pandas as pd
import pytest

from twins import dense_lambda, dense_z
from workbench.model.design import build_design
from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER
from workbench.fitting.problem import Problem
from workbench.kernels.montecarlo import estimates, fit_theta
from workbench.kernels.objective import make_workspace
from workbench.model.parameters import parameter_names


def minus2_loglik(design, psi, reml):
    """−2ℓ in ψ = (each term's vech(Σ_k) as variances then covariances, σ²), β profiled out."""
    n, p = design.n, design.p
    sigma2 = psi[-1]
    theta, start = [], 0
    for term in design.terms:
        q = term.q
        cov = np.zeros((q, q))
        cov[np.diag_indices(q)] = psi[start : start + q]
        pairs = [(a, b) for a in range(q) for b in range(a + 1, q)]
        for e, (a, b) in enumerate(pairs):
            cov[a, b] = cov[b, a] = psi[start + q + e]
        start += q + len(pairs)
        lam = np.linalg.cholesky(cov / sigma2)
        theta.extend(lam[r, c] for c in range(q) for r in range(c, q))
    zl = dense_z(design) @ dense_lambda(design, np.array(theta))
    v = sigma2 * (np.eye(n) + zl @ zl.T)
    vinv = np.linalg.inv(v)
    x, y = design.x, design.y
    xvx = x.T @ vinv @ x
    beta = np.linalg.solve(xvx, x.T @ vinv @ y)
    resid = y - x @ beta
    value = np.linalg.slogdet(v)[1] + resid @ vinv @ resid
    if reml:
        return value + np.linalg.slogdet(xvx)[1] + (n - p) * np.log(2 * np.pi)
    return value + n * np.log(2 * np.pi)


def numerical_vcov(design, psi, reml):
    k = len(psi)
    hess = np.empty((k, k))
    steps = 1e-3 * np.abs(psi)
    for i in range(k):
        for j in range(k):
            def shifted(si, sj):
                moved = psi.copy()
                moved[i] += si * steps[i]
                moved[j] += sj * steps[j]
                return minus2_loglik(design, moved, reml)

            hess[i, j] = (shifted(1, 1) - shifted(1, -1) - shifted(-1, 1) + shifted(-1, -1)) / (4 * steps[i] * steps[j])
    return 2 * np.linalg.inv(hess)


DATA = {
    "slopes": ("y ~ 1 + x + (1 + x | g)", 0),
    "crossed": ("y ~ 1 + (1 | g) + (1 | h)", 1),
    "nested": ("y ~ 1 + x + (1 | g/h)", 2),
}


def data_set(seed):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(12), 8)
    h = np.tile(np.arange(4), 24)
    x = rng.normal(size=96)
    y = 2 + x + rng.normal(size=12)[g] * 1.5 + rng.normal(size=12)[g] * 0.8 * x + rng.normal(size=4)[h] + rng.normal(size=96)
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": h})


@pytest.mark.parametrize("family", sorted(DATA))
@pytest.mark.parametrize("reml", [True, False])
def test_variance_component_standard_errors(family, reml):
    formula, seed = DATA[family]
    design = build_design(formula, data_set(seed))
    problem = Problem.build(design)
    ws = make_workspace(problem.structure)
    theta = np.empty(design.ntheta)
    fit_theta(problem.structure, problem.products, ws, reml, design.theta_lower_bounds(), GRADIENT_TOL, MAX_ITER, theta)
    names = parameter_names(design)
    est, se = np.empty(len(names)), np.empty(len(names))
    estimates(problem.structure, problem.products, ws, reml, theta, est, se)
    # ψ: the var and cov entries then var[Residual], exactly the order of the names
    first = design.p
    count = design.ntheta + 1
    psi = est[first : first + count]
    expected = np.sqrt(np.diag(numerical_vcov(design, psi, reml)))
    assert all(n.startswith(("var[", "cov[")) for n in names[first : first + count])
    # both Hessians are differences: central (h = 1e-3, error ~1e-6) and forward (h = 1e-5, ~1e-5)
    np.testing.assert_allclose(se[first : first + count], expected, rtol=1e-4)
