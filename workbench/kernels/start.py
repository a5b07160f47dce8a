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
def _nested_share(st, cp, k, covs):
    """Per level j of a scalar prefix term k: Σ over finer scalar terms l and their levels i
    under j of (Z_j'Z_i)² Var_l — what the finer levels add to the variance of b_j·Z_j'Z_j.

    Without it a coarse level's moment estimate also holds its finer levels' variances,
    and the start of a nested model is far from its optimum.
    """
    share = np.zeros(_nlevels(st, k))
    first = 0  # first front of term l
    front_k = _first_front(st, k)
    for l in range(k):
        count = _nlevels(st, l)
        if st.term_q[l] == 1:
            variance = max(covs[l, 0, 0], 0.0)
            for i in range(count):
                f = first + i
                ancestor = f
                for _ in range(k - l):
                    ancestor = st.front_parent[ancestor]
                j = ancestor - front_k
                target = st.term_row0[k] + j
                lo = st.front_ptr[f]
                pos = 1
                while st.front_rows[lo + pos] != target:
                    pos += 1
                value = cp.a_front[st.front_acol_ptr[f] + pos]
                share[j] += value * value * variance
        first += count
    return share


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
        nested = 0.0
        share = _nested_share(st, cp, k, covs) if 0 < k < st.nprefix and q == 1 else np.zeros(0)
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
            if share.shape[0] > 0:
                nested += share[j] * ginv[0] ** 2
            used += 1
        if k == 0 and n - p - used * q > 0:
            sigma2 = max((rr - explained) / (n - p - used * q), 1e-12 * rr / max(n - p, 1))
        if used > 0:
            covs[k, :q, :q] = outer / used
            covs[k, :q, :q] -= sigma2 * sampling / used
            covs[k, 0, 0] -= nested / used
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
