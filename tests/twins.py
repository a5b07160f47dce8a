"""Plain-NumPy twins of the kernels: dense matrices straight from the definitions."""

import numpy as np
from scipy.linalg import block_diag

from workbench.model.design import Design
from workbench.model.parameters import term_lambdas


def dense_z(design: Design) -> np.ndarray:
    """Z with one column per (term, level, effect), level-major within a term."""
    blocks = []
    for term in design.terms:
        z = np.zeros((design.n, term.nlevels * term.q))
        for a in range(term.q):
            z[np.arange(design.n), term.codes * term.q + a] = term.z[:, a]
        blocks.append(z)
    return np.hstack(blocks)


def dense_lambda(design: Design, theta: np.ndarray) -> np.ndarray:
    return block_diag(*[np.kron(np.eye(t.nlevels), lam) for t, lam in zip(design.terms, term_lambdas(design, theta))])


def dense_criterion(design: Design, theta: np.ndarray, reml: bool) -> float:
    """Profiled deviance / REML criterion from the marginal model N(Xβ, σ²(I + ZΛΛ'Z'))."""
    n, p = design.n, design.p
    zl = dense_z(design) @ dense_lambda(design, theta)
    v = np.eye(n) + zl @ zl.T
    vinv = np.linalg.inv(v)
    x, y = design.x, design.y
    beta = np.linalg.solve(x.T @ vinv @ x, x.T @ vinv @ y)
    resid = y - x @ beta
    quad = resid @ vinv @ resid
    logdet = np.linalg.slogdet(v)[1]
    if reml:
        return logdet + np.linalg.slogdet(x.T @ vinv @ x)[1] + (n - p) * (1 + np.log(2 * np.pi * quad / (n - p)))
    return logdet + n * (1 + np.log(2 * np.pi * quad / n))
