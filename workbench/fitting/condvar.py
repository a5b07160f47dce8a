"""Conditional covariances of the random effects given the data (lme4's ``postVar``).

Var(b | y) = σ²Λ(Λ'Z'ZΛ + I)⁻¹Λ' at the estimates, with β at β̂ (lme4's ``condVar``, statsmodels'
``random_effects_cov``). (Λ'Z'ZΛ + I)⁻¹ is the random-effect block of S = L⁻ᵀWL⁻¹ with weight 1
on the random-effect rows and 0 on X and y, which the gradient's Takahashi recurrence already
computes on the pattern of L — and each level's own block lies on that pattern, as do the blocks
between the terms of one grouping factor at one level, so nothing dense is formed.
"""

from __future__ import annotations

import numpy as np

from workbench.fitting.problem import Problem
from workbench.fitting.structure import front_starts
from workbench.kernels.objective import factorize, make_workspace, weighted_gradient
from workbench.model.parameters import term_lambdas


def conditional_covariances(problem: Problem, theta: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    """{group: (levels, q, q)} the covariance of each level's effects given the data.

    A grouping factor with several terms (``(1 + x || g)``) gets its effects side by side, in
    the columns of ``ranef[group]``, with the conditional covariances between its terms (the
    effects are independent a priori, not given the data); lme4 returns one array per term
    instead, and those are the diagonal blocks here.
    """
    design, st = problem.design, problem.structure
    ws = make_workspace(st)
    if not factorize(np.asarray(theta, dtype=float), st, problem.products, ws):
        raise ArithmeticError("Ω(θ̂) is not positive definite")  # cannot happen at a fitted θ̂
    weighted_gradient(st, problem.products, ws, 0.0, 0.0, np.empty(len(theta)))
    lambdas = term_lambdas(design, theta)
    first_front = front_starts(st)
    groups: dict[str, list[int]] = {}
    for k, term in enumerate(design.terms):
        groups.setdefault(term.group, []).append(k)
    out = {}
    for group, ks in groups.items():
        nlevels = design.terms[ks[0]].nlevels
        offsets = np.cumsum([0] + [design.terms[k].q for k in ks])
        lam = np.zeros((offsets[-1], offsets[-1]))
        for k, start, stop in zip(ks, offsets[:-1], offsets[1:]):
            lam[start:stop, start:stop] = lambdas[k]
        inverse = np.empty((nlevels, offsets[-1], offsets[-1]))
        for level in range(nlevels):
            rows = np.concatenate(
                [st.term_row0[k] + level * design.terms[k].q + np.arange(design.terms[k].q) for k in ks]
            )
            inverse[level] = _block(st, ws, first_front, rows)
        cov = sigma**2 * np.einsum("ab,lbc,dc->lad", lam, inverse, lam)
        cov.setflags(write=False)
        out[group] = cov
    return out


def _block(st, ws, first_front: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """S[rows, rows] from the factor's S: trailing rows from S_TT, front rows from their columns."""
    size = len(rows)
    out = np.empty((size, size))
    for a in range(size):
        for b in range(a, size):
            out[a, b] = out[b, a] = _entry(st, ws, first_front, rows[a], rows[b])
    return out


def _entry(st, ws, first_front: np.ndarray, row: int, other: int) -> float:
    """S[row, other] for row ≤ other; a front stores S between its own rows and its whole pattern."""
    if row >= st.t0:
        return ws.stt[row - st.t0, other - st.t0]
    k = st.row_term[row]
    q = st.term_q[k]
    level = (row - st.term_row0[k]) // q
    front = first_front[k] + level
    lo, hi = st.front_ptr[front], st.front_ptr[front + 1]
    pattern = st.front_rows[lo:hi]
    position = int(np.searchsorted(pattern, other))
    assert pattern[position] == other, "a level's rows lie on the pattern of its front"
    return ws.scol[st.front_acol_ptr[front] + position * q + st.row_comp[row]]
