"""The profiled ML deviance and REML criterion on lme4's scale, and their analytic gradient in θ.

Ω(θ) = Λ̃'AΛ̃ + diag(I, 0) = LL' (Λ̃ = blockdiag(Λ, I)) is factored front by front, then the
dense trailing block (see workbench.fitting.structure). With W the weights of log diag(L) in the
criterion, ∂d/∂θₚ = ⟨S, Ω̇ₚ⟩ with S = L⁻ᵀWL⁻¹; S is needed only on the fronts' patterns and on
the trailing block, and comes from the blocked Takahashi recurrence, parents before children.
"""

from typing import NamedTuple

import numpy as np

from workbench.kernels.lapack import LAPACK_MIN_SIZE, cholesky_lower_lapack, gram_lower_lapack, invert_lower_lapack
from workbench.kernels.linalg import U, cholesky_lower, invert_lower
from workbench.kernels.fronts import fronts_factor, fronts_gradient, lower_rows, scale_rows
from workbench.kernels.options import jit
from workbench.kernels.scalar_fronts import (
    all_scalar,
    scalar_fronts_factor,
    scalar_gradient,
    scalar_trailing,
    set_row_scales,
)


class Workspace(NamedTuple):
    """Scratch arrays of one evaluation; `lcol` and `tt` hold the factor L afterwards."""

    lam: np.ndarray  # (K, qmax, qmax)
    grad_blocks: np.ndarray  # (K, qmax, qmax)
    fronts: np.ndarray  # flat s×s: children's updates gathered in fronts that have children
    sfronts: np.ndarray  # flat s×s: S on the whole pattern of fronts that have children
    lcol: np.ndarray  # flat s×q: L's columns of every front
    scol: np.ndarray  # flat s×q: S's columns of every front
    tt: np.ndarray  # (D, D) trailing block, then its Cholesky factor (lower)
    stt: np.ndarray  # (D, D) S on the trailing block
    dense: np.ndarray  # (D, D) scratch
    col: np.ndarray  # (smax, qmax) scratch
    col2: np.ndarray  # (smax, qmax) scratch
    small: np.ndarray  # (2, qmax, qmax) scratch
    scale: np.ndarray  # (N,) Λ̃'s diagonal by global row, when every term is scalar


@jit
def make_workspace(st):
    """Allocate the scratch arrays for one structure."""
    nterms = st.term_q.shape[0]
    qmax = 1
    for k in range(nterms):
        qmax = max(qmax, st.term_q[k])
    smax = 1
    for f in range(st.front_term.shape[0]):
        smax = max(smax, st.front_ptr[f + 1] - st.front_ptr[f])
    d = st.row_term.shape[0] - st.t0
    nmat = st.front_mat_ptr[st.front_mat_ptr.shape[0] - 1]
    ncol = st.front_acol_ptr[st.front_acol_ptr.shape[0] - 1]
    return Workspace(
        np.zeros((nterms, qmax, qmax)),
        np.zeros((nterms, qmax, qmax)),
        np.zeros(nmat),
        np.zeros(nmat),
        np.zeros(ncol),
        np.zeros(ncol),
        np.zeros((d, d)),
        np.zeros((d, d)),
        np.zeros((d, d)),
        np.zeros((smax, qmax)),
        np.zeros((smax, qmax)),
        np.zeros((2, qmax, qmax)),
        np.ones(st.row_term.shape[0]),
    )


@jit
def _set_lambda(theta, st, lam):
    lam[:] = 0.0
    for i in range(theta.shape[0]):
        lam[st.theta_term[i], st.theta_row[i], st.theta_col[i]] = theta[i]


@jit
def _trailing_rows(st):
    d = st.row_term.shape[0] - st.t0
    return np.arange(st.t0, st.t0 + d)


@jit
def factorize(theta, st, cp, ws):
    """Form and factor Ω(θ) into ws.lcol and ws.tt; False when it is not positive definite."""
    lam = ws.lam
    _set_lambda(theta, st, lam)
    tt = ws.tt
    d = tt.shape[0]
    ttf = tt.reshape(-1)
    if all_scalar(st):
        set_row_scales(st, lam, ws.scale)
        scalar_trailing(st, cp, ws.scale, tt)
        if not scalar_fronts_factor(st, cp, ws):
            return False
        return _trailing_cholesky(tt)
    layout = (st.row_term, st.row_comp, st.term_q)
    trows = _trailing_rows(st)
    # Λ̃_T' A_TT Λ̃_T: scale the rows, transpose (A_TT is symmetric), scale the rows again
    scale_rows(cp.a_tt.reshape(-1), 0, d, trows, 0, d, layout, lam, ws.dense.reshape(-1), 0, d, d)
    ws.stt[:, :] = ws.dense.T
    scale_rows(ws.stt.reshape(-1), 0, d, trows, 0, d, layout, lam, ttf, 0, d, d)
    for i in range(d):
        if st.row_term[st.t0 + i] >= 0:
            tt[i, i] += 1.0
    if not fronts_factor(st, cp, ws):
        return False
    return _trailing_cholesky(tt)


@jit
def _trailing_cholesky(tt):
    d = tt.shape[0]
    if d >= LAPACK_MIN_SIZE:
        return cholesky_lower_lapack(tt)
    return cholesky_lower(tt.reshape(-1), 0, d, d)


@jit
def residual_dof(st, reml):
    """The residual degrees of freedom of the criterion: n − p for REML, n for ML."""
    return float(st.n - st.p) if reml else float(st.n)


@jit
def _weights(st, reml):
    """Weights of 2·log diag(L) on the fixed-effect rows and on the response row."""
    return (1.0 if reml else 0.0), residual_dof(st, reml)


_LARGE = 1e100


@jit
def criterion(st, ws, reml):
    """The deviance (ML) or REML criterion from the factor in `ws`."""
    # the fronts' pivots are ≥ 1: their product, logged whenever it grows large, costs one
    # logarithm per several hundred pivots rather than one each
    logdet = 0.0
    product = 1.0
    for f in range(st.front_term.shape[0]):
        q = st.term_q[st.front_term[f]]
        base = st.front_acol_ptr[f]
        for c in range(q):
            v = ws.lcol[base + c * q + c]
            if v > _LARGE or product > _LARGE:
                logdet += np.log(product)
                product = 1.0
            product *= v
    logdet = 2.0 * (logdet + np.log(product))
    tt = ws.tt
    d = tt.shape[0]
    for i in range(d - 1):
        if st.row_term[st.t0 + i] >= 0 or reml:
            logdet += 2.0 * np.log(tt[i, i])
    r2 = tt[d - 1, d - 1] ** 2
    dof = residual_dof(st, reml)
    return logdet + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))


@jit
def _trailing_inverse(st, ws, w_fixed, w_y):
    """ws.stt = L_T⁻ᵀ W_T L_T⁻¹, full symmetric."""
    tt, m, s = ws.tt, ws.dense, ws.stt
    d = tt.shape[0]
    w = np.ones(d)
    for i in range(d - 1):
        if st.row_term[st.t0 + i] < 0:
            w[i] = w_fixed
    w[d - 1] = w_y
    if d >= LAPACK_MIN_SIZE:
        # M'M by LAPACK, then the rank-(p+1) correction for the weights that are not 1
        for i in range(d):
            for j in range(i + 1):
                s[i, j] = tt[i, j]
        invert_lower_lapack(s)
        first = d - 1 - st.p
        rows = s[first:, :].copy()
        gram_lower_lapack(s)
        for i in range(d):
            for j in range(i + 1):
                acc = s[i, j]
                for r in range(d - first):
                    k = first + r
                    if k >= i:
                        acc += (w[k] - 1.0) * rows[r, i] * rows[r, j]
                s[i, j] = acc
                s[j, i] = acc
        return
    mf, sf = m.reshape(-1), s.reshape(-1)
    invert_lower(tt.reshape(-1), 0, d, d, mf, d)
    # S = M'WM, lower triangle, as rank-one updates row k by row k (for each entry in the
    # order of k, as its dot product would add them): axpys that vectorise
    s[:, :] = 0.0
    for k in range(d):
        mk = U(k * d)
        for i in range(k + 1):
            v = m[k, i] * w[k]
            si = U(i * d)
            for j in range(U(i + 1)):
                sf[si + j] += v * mf[mk + j]
    for i in range(d):
        for j in range(i):
            s[j, i] = s[i, j]


@jit
def gradient(st, cp, ws, reml, grad):
    """Fill `grad` with ∂d/∂θ from the factor in `ws` (call `factorize` first)."""
    w_fixed, w_y = _weights(st, reml)
    weighted_gradient(st, cp, ws, w_fixed, w_y, grad)


@jit
def weighted_gradient(st, cp, ws, w_fixed, w_y, grad):
    """∂/∂θ of Σⱼ wⱼ·2 log Lⱼⱼ: weight 1 on random-effect rows, w_fixed on X rows, w_y on y."""
    lam, g = ws.lam, ws.grad_blocks
    g[:] = 0.0
    _trailing_inverse(st, ws, w_fixed, w_y)
    if all_scalar(st):
        scalar_gradient(st, cp, ws)
        for i in range(grad.shape[0]):
            grad[i] = 2.0 * g[st.theta_term[i], 0, 0]
        return
    layout = (st.row_term, st.row_comp, st.term_q)
    stt = ws.stt
    d = stt.shape[0]
    sttf = stt.reshape(-1)
    trows = _trailing_rows(st)
    # B = Λ̃_T S_TT; trailing levels collect Σ_c A[(J,a), c] B[c, (J,b)].
    lower_rows(sttf, 0, d, trows, 0, d, layout, lam, ws.dense.reshape(-1), 0, d, d)
    bt = ws.dense
    for i in range(d):
        k = st.row_term[st.t0 + i]
        if k < 0:
            continue
        a = st.row_comp[st.t0 + i]
        base = i - a
        for b in range(st.term_q[k]):
            acc = 0.0
            for c in range(d):
                acc += cp.a_tt[i, c] * bt[c, base + b]
            g[k, a, b] += acc

    fronts_gradient(st, cp, ws)
    for i in range(grad.shape[0]):
        grad[i] = 2.0 * g[st.theta_term[i], st.theta_row[i], st.theta_col[i]]


@jit
def deviance(theta, st, cp, ws, reml):
    """d(θ), or +inf where Ω(θ) is not positive definite."""
    if not factorize(theta, st, cp, ws):
        return np.inf
    return criterion(st, ws, reml)


@jit
def deviance_and_gradient(theta, st, cp, ws, reml, grad):
    """d(θ) and ∂d/∂θ into `grad`."""
    if not factorize(theta, st, cp, ws):
        grad[:] = np.nan
        return np.inf
    value = criterion(st, ws, reml)
    gradient(st, cp, ws, reml, grad)
    return value


@jit
def solve_effects(st, ws):
    """[u; β] = L⁻ᵀ ℓ_y from the factor in `ws`: the trailing block, then the fronts in reverse."""
    tt = ws.tt
    d = tt.shape[0]
    total = st.row_term.shape[0]
    x = np.zeros(total - 1)
    for i in range(d - 2, -1, -1):
        acc = tt[d - 1, i]
        for j in range(i + 1, d - 1):
            acc -= tt[j, i] * x[st.t0 + j]
        x[st.t0 + i] = acc / tt[i, i]
    for f in range(st.front_term.shape[0] - 1, -1, -1):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        q = st.term_q[st.front_term[f]]
        rows = st.front_rows[lo : lo + s]
        lf = ws.lcol[st.front_acol_ptr[f] : st.front_acol_ptr[f + 1]]
        for c in range(q - 1, -1, -1):
            acc = lf[(s - 1) * q + c]
            for r in range(q, s - 1):
                acc -= lf[r * q + c] * x[rows[r]]
            for c2 in range(c + 1, q):
                acc -= lf[c2 * q + c] * x[rows[c2]]
            x[rows[c]] = acc / lf[c * q + c]
    return x


@jit
def sigma_gradient(theta, sigma, st, cp, ws, reml, out):
    """∂(−2ℓ)/∂(θ, σ) into out (length m+1); False where Ω is not positive definite."""
    if not factorize(theta, st, cp, ws):
        return False
    factored_sigma_gradient(sigma, st, cp, ws, reml, out)
    return True


@jit
def factored_sigma_gradient(sigma, st, cp, ws, reml, out):
    """`sigma_gradient` at the θ whose factor `ws` holds (after `factorize`)."""
    m = out.shape[0] - 1
    d = ws.tt.shape[0]
    r2 = ws.tt[d - 1, d - 1] ** 2
    dof = residual_dof(st, reml)
    weighted_gradient(st, cp, ws, 1.0 if reml else 0.0, r2 / sigma**2, out[:m])
    out[m] = 2.0 * dof / sigma - 2.0 * r2 / sigma**3
