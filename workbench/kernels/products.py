"""Accumulate the blocks of A = [Z X y]'[Z X y] from level codes and columns, one row at a time."""

from typing import NamedTuple

import numpy as np

from workbench.kernels.options import jit


class CrossProducts(NamedTuple):
    """The numeric blocks of A = [Z X y]'[Z X y] that the kernels need."""

    a_front: np.ndarray  # flat, the s×q column blocks of every front
    a_tt: np.ndarray  # (D, D) the trailing block


@jit
def _find(sorted_rows, row):
    """Position of `row` in a sorted array (it is known to be there)."""
    lo, hi = 0, sorted_rows.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_rows[mid] < row:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit
def fill_products(codes, z, x, y, st, front0, a_front, a_tt, y_only):
    """Add every observation's outer product into the front column blocks and the trailing block.

    codes (K, n) level of each row per term; z (K, n, qmax) the terms' columns; front0 (K,) the
    first front of each prefix term. With `y_only`, only entries in the response row are
    written (they are zeroed first), so a new response costs one pass over the rows.
    """
    nterms = codes.shape[0]
    n = y.shape[0]
    p = x.shape[1]
    t0 = st.t0
    d = a_tt.shape[0]
    m = 0
    for k in range(nterms):
        m += st.term_q[k]
    m += p + 1
    rows = np.empty(m, np.int64)
    vals = np.empty(m)
    nfront = st.front_term.shape[0]
    if y_only:
        for f in range(nfront):
            lo, hi = st.front_ptr[f], st.front_ptr[f + 1]
            q = st.term_q[st.front_term[f]]
            base = st.front_acol_ptr[f] + (hi - lo - 1) * q
            for c in range(q):
                a_front[base + c] = 0.0
        for j in range(d):
            a_tt[d - 1, j] = 0.0
            a_tt[j, d - 1] = 0.0
    else:
        a_front[:] = 0.0
        a_tt[:, :] = 0.0
    last = m - 1
    for i in range(n):
        e = 0
        for k in range(nterms):
            q = st.term_q[k]
            first = st.term_row0[k] + codes[k, i] * q
            for c in range(q):
                rows[e] = first + c
                vals[e] = z[k, i, c]
                e += 1
        for j in range(p):
            rows[e] = t0 + d - 1 - p + j
            vals[e] = x[i, j]
            e += 1
        rows[e] = t0 + d - 1
        vals[e] = y[i]
        # fronts: each prefix term's level collects the entries of this row from its own rows on
        e_own = 0
        for k in range(st.nprefix):
            q = st.term_q[k]
            f = front0[k] + codes[k, i]
            lo, hi = st.front_ptr[f], st.front_ptr[f + 1]
            frows = st.front_rows[lo:hi]
            block = a_front[st.front_acol_ptr[f] : st.front_acol_ptr[f + 1]]
            for c in range(q):
                zc = vals[e_own + c]
                if y_only:
                    block[(hi - lo - 1) * q + c] += vals[last] * zc
                    continue
                for e2 in range(e_own, m):
                    pos = _find(frows, rows[e2])
                    block[pos * q + c] += vals[e2] * zc
            e_own += q
        # trailing block: pairs of entries that both fall in T (lower triangle, mirrored below)
        for e1 in range(e_own, m):
            r1 = rows[e1] - t0
            if y_only:
                a_tt[d - 1, r1] += vals[last] * vals[e1]
                continue
            for e2 in range(e_own, e1 + 1):
                a_tt[r1, rows[e2] - t0] += vals[e1] * vals[e2]
    if y_only:
        for j in range(d - 1):
            a_tt[j, d - 1] = a_tt[d - 1, j]
    else:
        for r in range(d):
            for c in range(r):
                a_tt[c, r] = a_tt[r, c]
