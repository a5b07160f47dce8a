"""Starting values for θ by the method of moments, from the cross-product blocks alone.

For each term, per-level least-squares effects b_j = (Z_j'Z_j)⁻¹Z_j'r of the OLS residuals r
have E[b_j b_j'] ≈ Σ_k + σ²(Z_j'Z_j)⁻¹; averaging over levels gives Σ_k, and σ² comes from
the residuals left after the effects of the term with most levels. Crossed terms borrow each
other's variance, so this is a start, not an estimate: it lands the optimiser in the basin of
the optimum, where quasi-Newton steps converge fast.
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
def _own_count(st, cp, row):
    """Z_i'Z_i of the scalar level at global `row`: its front's first entry, or its diagonal of A_TT."""
    if row < st.t0:
        front = 0
        k = st.row_term[row]
        front = _first_front(st, k) + row - st.term_row0[k]
        return cp.a_front[st.front_acol_ptr[front]]
    return cp.a_tt[row - st.t0, row - st.t0]


@jit
def _mixing(st, cp):
    """What the scalar terms' moments hold of each other's variances, and σ² of theirs.

    A level j's effect b_j also holds Σ_i (Z_j'Z_i / Z_j'Z_j)² Var_l over the levels i of
    another term l that share its rows: all of a coarser level it lies in, a share of each
    finer level inside it, a little of each crossed level. Averaged over the levels of term k
    that is C[k, l] (C[k, k] = 1). The residuals that σ² comes from (after the first term's
    effects) hold Var_l·Σ_i (Z_i'Z_i − Σ_j (Z_j'Z_i)²/Z_j'Z_j) of every other term l, with j
    over the first term's levels: e[l] before the division by the residual degrees of freedom.
    Without them the finest level of a nested model takes in every coarser variance, and σ²
    of a crossed model every other term's.
    """
    nterms = st.term_q.shape[0]
    c = np.eye(nterms)
    e = np.zeros(nterms)
    nlev = np.empty(nterms)
    for k in range(nterms):
        nlev[k] = _nlevels(st, k)
    for row in range(st.row_term.shape[0]):
        k = st.row_term[row]
        if k > 0 and st.term_q[k] == 1:
            e[k] += _own_count(st, cp, row)
    # pairs (front level, later level in its pattern)
    for f in range(st.front_term.shape[0]):
        k = st.front_term[f]
        if st.term_q[k] != 1:
            continue
        lo = st.front_ptr[f]
        col = st.front_acol_ptr[f]
        n_f = cp.a_front[col]
        if not n_f > 0.0:
            continue
        for pos in range(1, st.front_ptr[f + 1] - lo):
            row = st.front_rows[lo + pos]
            l = st.row_term[row]
            if l < 0 or st.term_q[l] != 1:
                continue
            v = cp.a_front[col + pos]
            n_i = _own_count(st, cp, row)
            c[k, l] += v * v / (n_f * n_f * nlev[k])
            if n_i > 0.0:
                c[l, k] += v * v / (n_i * n_i * nlev[l])
            if k == 0:
                e[l] -= v * v / n_f
    # pairs of trailing levels
    d = cp.a_tt.shape[0]
    for i in range(d):
        k = st.row_term[st.t0 + i]
        if k < 0 or st.term_q[k] != 1:
            continue
        for j in range(i):
            l = st.row_term[st.t0 + j]
            if l < 0 or l == k or st.term_q[l] != 1:
                continue
            v = cp.a_tt[i, j]
            if v == 0.0:
                continue
            c[k, l] += v * v / (cp.a_tt[i, i] ** 2 * nlev[k])
            c[l, k] += v * v / (cp.a_tt[j, j] ** 2 * nlev[l])
    return c, e


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
def _unmixed(st, cp, outers, samplings, levels_used, sigma2, dof0, covs):
    """Σ_k of every term into covs from the mean outer products and sampling terms of its
    levels' effects, and σ²: the scalar terms' variances and σ² solve the linear system of
    `_mixing` (σ²'s row when dof0 > 0), the other terms take Σ_k = outer − σ²·sampling.

    Falls back to that difference for every term, with the σ² given, when the system is
    (nearly) singular or its σ² is not positive. Returns σ².
    """
    nterms = st.term_q.shape[0]
    chain = np.array([k for k in range(nterms) if st.term_q[k] == 1 and levels_used[k] > 0], np.int64)
    size = chain.shape[0]
    if size > 0:
        mix, spill = _mixing(st, cp)
        a = np.zeros((size + 1, size + 1))
        rhs = np.empty(size + 1)
        for r in range(size):
            for c in range(size):
                a[r, c] = mix[chain[r], chain[c]]
            a[r, size] = samplings[chain[r], 0, 0]
            rhs[r] = outers[chain[r], 0, 0]
        a[size, size] = 1.0
        rhs[size] = sigma2
        if dof0 > 0.0:
            for c in range(size):
                a[size, c] = spill[chain[c]] / dof0
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
    dof0 = 0.0
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
        if k == 0 and n - p - used * q > 0:
            dof0 = n - p - used * q
            sigma2 = max((rr - explained) / dof0, 1e-12 * rr / max(n - p, 1))
        levels_used[k] = used
        if used > 0:
            outers[k, :q, :q] = outer / used
            samplings[k, :q, :q] = sampling / used
    sigma2 = _unmixed(st, cp, outers, samplings, levels_used, sigma2, dof0, covs)
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
