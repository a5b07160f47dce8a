"""Starting values for θ by the method of moments, from the cross-product blocks alone.

For each term, per-level least-squares effects b_j = (Z_j'Z_j)⁻¹Z_j'r of the OLS residuals r
have E[b_j b_j'] ≈ Σ_k + σ²(Z_j'Z_j)⁻¹ plus what the other terms' levels sharing j's rows add.
For scalar terms those additions are known linear functions of the variances (`_mixing`), and
the variances and σ² (from the residuals left after the first term's effects) solve a small
linear system: on balanced data that is the ANOVA estimator, nested or crossed. Terms with
several effects per level take mean outer product minus sampling term. It is a start, not an
estimate: it lands the optimiser near the optimum, where quasi-Newton steps converge fast.
"""

import numpy as np

from workbench.kernels.linalg import cholesky_lower, invert_lower
from workbench.kernels.options import jit, jit_inline

FLOOR = 0.05  # smallest relative SD of a start: away from the boundary, where progress is slow


@jit
def _nlevels(st, k):
    nterms = st.term_q.shape[0]
    end = st.term_row0[k + 1] if k + 1 < nterms else st.row_term.shape[0] - st.p - 1
    return (end - st.term_row0[k]) // st.term_q[k]


@jit
def _first_front(st, k):
    """The first front of term k (when it is eliminated as fronts): the levels of the terms before it."""
    first = 0
    for kk in range(k):
        first += _nlevels(st, kk)
    return first


@jit_inline
def _level_blocks(a_front, a_tt, block, first, front_ptr, front_acol_ptr, q, p, g, zx, zy):
    """A's blocks of one level: Z_j'Z_j into g (flat), Z_j'X into zx, Z_j'y into zy.

    The level is front `block` when its term is eliminated as fronts (`first` < 0), else the
    rows from `first` of the trailing block. It takes arrays, not the structure: with the
    whole structure by value, its calls cost several times its work.
    """
    if first < 0:
        s = front_ptr[block + 1] - front_ptr[block]
        col = front_acol_ptr[block]  # the front's s × q block, row-major
        for a in range(q):
            for b in range(q):
                g[a * q + b] = a_front[col + a * q + b]
            for c in range(p):
                zx[a, c] = a_front[col + (s - 1 - p + c) * q + a]
            zy[a] = a_front[col + (s - 1) * q + a]
    else:
        d = a_tt.shape[0]
        for a in range(q):
            for b in range(q):
                g[a * q + b] = a_tt[first + a, first + b]
            for c in range(p):
                zx[a, c] = a_tt[first + a, d - 1 - p + c]
            zy[a] = a_tt[first + a, d - 1]


@jit
def _level_rows(st, cp):
    """Per global row of a scalar level: Z_i'Z_i and Z_i'X (zeros on other rows)."""
    total = st.row_term.shape[0]
    p = st.p
    d = cp.a_tt.shape[0]
    counts = np.zeros(total)
    zx = np.zeros((total, p))
    for f in range(st.front_term.shape[0]):
        if st.term_q[st.front_term[f]] != 1:
            continue
        row = st.front_rows[st.front_ptr[f]]
        s = st.front_ptr[f + 1] - st.front_ptr[f]
        col = st.front_acol_ptr[f]
        counts[row] = cp.a_front[col]
        for c in range(p):
            zx[row, c] = cp.a_front[col + s - 1 - p + c]
    for i in range(d):
        k = st.row_term[st.t0 + i]
        if k >= 0 and st.term_q[k] == 1:
            counts[st.t0 + i] = cp.a_tt[i, i]
            for c in range(p):
                zx[st.t0 + i, c] = cp.a_tt[i, d - 1 - p + c]
    return counts, zx


@jit
def _mixing(st, cp, used):
    """The expected moments of the scalar terms, as linear functions of their variances and σ².

    With r the OLS residuals and b_j = Z_j'r / Z_j'Z_j, the mean of b_j² over the levels of
    term k has expectation Σ_l C[k, l] Var_l + samp[k] σ², where C[k, l] averages
    Σ_i (Z_j'Z_i − Z_j'X (X'X)⁻¹ X'Z_i)² / (Z_j'Z_j)² over the levels i of term l: a coarser
    level holds all of j, a finer one a share, a crossed one a little, and X's projection
    takes some of each. The residual sum of squares left after the first term's effects has
    expectation Σ_l e[l] Var_l + dof σ². Terms with several effects per level take no part
    (their rows and columns are zero). Returns (C, samp, e, dof).
    """
    nterms = st.term_q.shape[0]
    p = st.p
    d = cp.a_tt.shape[0]
    counts, zx = _level_rows(st, cp)
    xx = cp.a_tt[d - 1 - p : d - 1, d - 1 - p : d - 1].copy()
    w = zx @ np.linalg.inv(xx) if p > 0 else zx.copy()  # (X'X)⁻¹ X'Z_i per level
    wsum = np.zeros((nterms, p, p))  # Σ_i w_i w_i' over the levels of each term
    c = np.zeros((nterms, nterms))
    samp = np.zeros(nterms)
    e = np.zeros(nterms)
    dof = float(st.n - p)
    total = st.row_term.shape[0]
    for row in range(total):
        k = st.row_term[row]
        if k < 0 or counts[row] <= 0.0:
            continue
        for a in range(p):
            for b in range(p):
                wsum[k, a, b] += w[row, a] * w[row, b]
    for row in range(total):
        k = st.row_term[row]
        n_j = counts[row]
        if k < 0 or n_j <= 0.0:
            continue
        xw = 0.0
        for a in range(p):
            xw += zx[row, a] * w[row, a]
        samp[k] += (n_j - xw) / (n_j * n_j * used[k])
        e[k] += n_j - xw
        if k == 0:
            dof -= (n_j - xw) / n_j
        _pair(st, k, row, k, row, n_j, counts, zx, w, used, c, e)
        for l in range(nterms):
            quad = 0.0
            for a in range(p):
                for b in range(p):
                    quad += zx[row, a] * wsum[l, a, b] * zx[row, b]
            c[k, l] += quad / (n_j * n_j * used[k])
            if k == 0:
                e[l] -= quad / n_j
    # pairs of different levels that share rows: in the fronts' patterns, and in A_TT
    for f in range(st.front_term.shape[0]):
        lo = st.front_ptr[f]
        j = st.front_rows[lo]
        k = st.row_term[j]
        if st.term_q[k] != 1 or counts[j] <= 0.0:
            continue
        col = st.front_acol_ptr[f]
        for pos in range(1, st.front_ptr[f + 1] - lo):
            i = st.front_rows[lo + pos]
            l = st.row_term[i]
            if l < 0 or counts[i] <= 0.0:
                continue
            a = cp.a_front[col + pos]
            _pair(st, k, j, l, i, a, counts, zx, w, used, c, e)
            _pair(st, l, i, k, j, a, counts, zx, w, used, c, e)
    for ti in range(d):
        i = st.t0 + ti
        l = st.row_term[i]
        if l < 0 or counts[i] <= 0.0:
            continue
        for tj in range(ti):
            j = st.t0 + tj
            k = st.row_term[j]
            a = cp.a_tt[ti, tj]
            if k < 0 or counts[j] <= 0.0 or a == 0.0:
                continue
            _pair(st, k, j, l, i, a, counts, zx, w, used, c, e)
            _pair(st, l, i, k, j, a, counts, zx, w, used, c, e)
    return c, samp, e, dof


@jit
def _pair(st, k, j, l, i, a, counts, zx, w, used, c, e):
    """What level i (term l) adds through Z_j'Z_i = a to the moment of level j (term k), and to e."""
    n_j = counts[j]
    xw = 0.0
    for b in range(st.p):
        xw += zx[j, b] * w[i, b]
    v = a * a - 2.0 * a * xw
    c[k, l] += v / (n_j * n_j * used[k])
    if k == 0:
        e[l] -= v / n_j


@jit
def _solve_small(a, b):
    """x with a x = b by Gaussian elimination with partial pivoting; NaN when a is (nearly) singular."""
    size = b.shape[0]
    m = np.empty((size, size + 1))
    m[:, :size] = a
    m[:, size] = b
    for c in range(size):
        best = c
        for r in range(c + 1, size):
            if abs(m[r, c]) > abs(m[best, c]):
                best = r
        if not abs(m[best, c]) > 1e-6:
            return np.full(size, np.nan)
        for j in range(size + 1):
            m[c, j], m[best, j] = m[best, j], m[c, j]
        for r in range(c + 1, size):
            factor = m[r, c] / m[c, c]
            for j in range(c, size + 1):
                m[r, j] -= factor * m[c, j]
    x = np.empty(size)
    for r in range(size - 1, -1, -1):
        v = m[r, size]
        for j in range(r + 1, size):
            v -= m[r, j] * x[j]
        x[r] = v / m[r, r]
    return x


@jit
def _unmixed(st, cp, outers, samplings, levels_used, sigma2, rss0, covs):
    """Σ_k of every term into covs, and σ²: the scalar terms' variances and σ² solve the
    linear system of `_mixing` (its σ² row when the first term is scalar, so that `rss0`,
    the residual sum of squares after its effects, is known), the other terms take
    Σ_k = mean outer product − σ²·mean sampling term of their levels' effects.

    Falls back to that difference for every term, with the σ² given, when the system is
    (nearly) singular or its σ² is not positive. Returns σ².
    """
    nterms = st.term_q.shape[0]
    chain = np.array([k for k in range(nterms) if st.term_q[k] == 1 and levels_used[k] > 0], np.int64)
    size = chain.shape[0]
    if size > 0:
        mix, samp, spill, dof = _mixing(st, cp, levels_used)
        a = np.zeros((size + 1, size + 1))
        rhs = np.empty(size + 1)
        for r in range(size):
            for c in range(size):
                a[r, c] = mix[chain[r], chain[c]]
            a[r, size] = samp[chain[r]]
            rhs[r] = outers[chain[r], 0, 0]
        if chain[0] == 0 and dof > 0.0:
            for c in range(size):
                a[size, c] = spill[chain[c]]
            a[size, size] = dof
            rhs[size] = rss0
        else:
            a[size, size] = 1.0
            rhs[size] = sigma2
        x = _solve_small(a, rhs)
        if x[size] > 0.0 and np.isfinite(x).all():
            sigma2 = x[size]
            for r in range(size):
                covs[chain[r], 0, 0] = x[r]
        else:
            chain = chain[:0]
    for k in range(nterms):
        if k in chain:
            continue
        q = st.term_q[k]
        covs[k, :q, :q] = outers[k, :q, :q] - sigma2 * samplings[k, :q, :q]
    return sigma2


@jit
def moment_start(st, cp, lower):
    """θ from moment estimates of every term's covariance, relative to σ²."""
    d = cp.a_tt.shape[0]
    p = st.p
    n = st.n
    xx = cp.a_tt[d - 1 - p : d - 1, d - 1 - p : d - 1].copy()
    xy = cp.a_tt[d - 1, d - 1 - p : d - 1].copy()
    beta = np.linalg.solve(xx, xy) if p > 0 else np.zeros(0)
    rr = cp.a_tt[d - 1, d - 1]
    for c in range(p):
        rr -= beta[c] * xy[c]
    nterms = st.term_q.shape[0]
    qmax = 1
    for k in range(nterms):
        qmax = max(qmax, st.term_q[k])
    covs = np.zeros((nterms, qmax, qmax))
    outers = np.zeros((nterms, qmax, qmax))
    samplings = np.zeros((nterms, qmax, qmax))
    levels_used = np.zeros(nterms, np.int64)
    rss0 = 0.0
    sigma2 = rr / max(n - p, 1)
    for k in range(nterms):
        q = st.term_q[k]
        nlev = _nlevels(st, k)
        g = np.empty(q * q)
        ginv = np.empty(q * q)
        lower_inv = np.empty(q * q)
        zx = np.empty((q, p))
        zy = np.empty(q)
        zr = np.empty(q)
        b = np.empty(q)
        outer = np.zeros((q, q))
        sampling = np.zeros((q, q))
        explained = 0.0
        used = 0
        front0 = _first_front(st, k)
        for j in range(nlev):
            if k < st.nprefix:
                block, first = front0 + j, -1
            else:
                block, first = 0, st.term_row0[k] + j * q - st.t0
            _level_blocks(cp.a_front, cp.a_tt, block, first, st.front_ptr, st.front_acol_ptr, q, p, g, zx, zy)
            biggest = 0.0
            for a in range(q):
                biggest = max(biggest, g[a * q + a])
                v = zy[a]
                for c in range(p):
                    v -= zx[a, c] * beta[c]
                zr[a] = v
            # a level whose columns are (nearly) collinear says nothing about Σ_k
            if not cholesky_lower(g, 0, q, q):
                continue
            smallest = np.inf
            for a in range(q):
                smallest = min(smallest, g[a * q + a] ** 2)
            if smallest < 1e-8 * biggest:
                continue
            # (Z_j'Z_j)⁻¹ = L⁻ᵀL⁻¹, and b_j = (Z_j'Z_j)⁻¹ Z_j'r
            invert_lower(g, 0, q, q, lower_inv, q)
            for a in range(q):
                for c in range(q):
                    v = 0.0
                    for t in range(max(a, c), q):
                        v += lower_inv[t * q + a] * lower_inv[t * q + c]
                    ginv[a * q + c] = v
            for a in range(q):
                v = 0.0
                for c in range(q):
                    v += ginv[a * q + c] * zr[c]
                b[a] = v
            for a in range(q):
                explained += b[a] * zr[a]
                for c in range(q):
                    outer[a, c] += b[a] * b[c]
                    sampling[a, c] += ginv[a * q + c]
            used += 1
        if k == 0:
            rss0 = rr - explained
            if n - p - used * q > 0:
                sigma2 = max(rss0 / (n - p - used * q), 1e-12 * rr / max(n - p, 1))
        levels_used[k] = used
        if used > 0:
            outers[k, :q, :q] = outer / used
            samplings[k, :q, :q] = sampling / used
    sigma2 = _unmixed(st, cp, outers, samplings, levels_used, sigma2, rss0, covs)
    theta = np.empty(st.theta_term.shape[0])
    for k in range(nterms):
        q = st.term_q[k]
        rel = covs[k, :q, :q] / sigma2
        # keep it positive definite with every SD at least FLOOR·σ
        values, vectors = np.linalg.eigh(0.5 * (rel + rel.T))
        for a in range(q):
            values[a] = max(values[a], FLOOR**2)
        rel = (vectors * values) @ vectors.T
        lam = np.linalg.cholesky(rel)
        for i in range(theta.shape[0]):
            if st.theta_term[i] == k:
                theta[i] = lam[st.theta_row[i], st.theta_col[i]]
    for i in range(theta.shape[0]):
        theta[i] = max(theta[i], lower[i])
    return theta
