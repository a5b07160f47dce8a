"""Accumulate the blocks of A = [Z X y]'[Z X y] from level codes and columns, one row at a time."""

from typing import NamedTuple

import numpy as np

from workbench.kernels.options import jit


class CrossProducts(NamedTuple):
    """The numeric blocks of A = [Z X y]'[Z X y] that the kernels need."""

    a_front: np.ndarray  # flat, the s×q column blocks of every front
    a_tt: np.ndarray  # (D, D) the trailing block


@jit
def _find(sorted_rows, start, stop, row):
    """Position of `row` in the sorted sorted_rows[start:stop], from `start` (it is known to be there)."""
    lo, hi = start, stop - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_rows[mid] < row:
            lo = mid + 1
        else:
            hi = mid
    return lo - start


@jit
def refresh_response(codes, z, x, y, st, front0, a_front, a_tt):
    """Only the entries of A in the response row, for a new response `y`.

    Z_k'y level by level for each term, then X'y and y'y: each entry sums its rows in row
    order, as `fill_products` does, so the two agree bit for bit.
    """
    n = y.shape[0]
    p = x.shape[1]
    t0 = st.t0
    d = a_tt.shape[0]
    # a prefix term's level is a front; its response entries close its column block
    nfront = st.front_term.shape[0]
    ypos = np.empty(nfront, np.int64)
    for f in range(nfront):
        q = st.term_q[st.front_term[f]]
        ypos[f] = st.front_acol_ptr[f] + (st.front_ptr[f + 1] - st.front_ptr[f] - 1) * q
        for c in range(q):
            a_front[ypos[f] + c] = 0.0
    for j in range(d):
        a_tt[d - 1, j] = 0.0
    last = d - 1
    for k in range(codes.shape[0]):
        q = st.term_q[k]
        if k < st.nprefix:
            f0 = front0[k]
            for i in range(n):
                base = ypos[f0 + codes[k, i]]
                for c in range(q):
                    a_front[base + c] += y[i] * z[k, i, c]
        else:
            first = st.term_row0[k] - t0
            for i in range(n):
                row = first + codes[k, i] * q
                for c in range(q):
                    a_tt[last, row + c] += y[i] * z[k, i, c]
    for j in range(p):
        col = last - p + j
        for i in range(n):
            a_tt[last, col] += y[i] * x[i, j]
    for i in range(n):
        a_tt[last, last] += y[i] * y[i]
    for j in range(last):
        a_tt[j, last] = a_tt[last, j]


@jit
def fill_products(codes, z, x, y, st, front0, a_front, a_tt):
    """Every block of A from the data: each observation's outer product added into the front
    column blocks and the trailing block, one row at a time.

    codes (K, n) level of each row per term; z (K, n, qmax) the terms' columns; front0 (K,) the
    first front of each prefix term.
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
    a_front[:] = 0.0
    a_tt[:, :] = 0.0
    front_ptr, front_rows, acol_ptr, term_q, term_row0 = st.front_ptr, st.front_rows, st.front_acol_ptr, st.term_q, st.term_row0
    for i in range(n):
        e = 0
        for k in range(nterms):
            q = term_q[k]
            first = term_row0[k] + codes[k, i] * q
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
        # (offsets into the flat arrays: a slice per row would be a reference-counted view)
        e_own = 0
        for k in range(st.nprefix):
            q = term_q[k]
            f = front0[k] + codes[k, i]
            lo, hi = front_ptr[f], front_ptr[f + 1]
            block = acol_ptr[f]
            for c in range(q):
                zc = vals[e_own + c]
                for e2 in range(e_own, m):
                    pos = _find(front_rows, lo, hi, rows[e2])
                    a_front[block + pos * q + c] += vals[e2] * zc
            e_own += q
        # trailing block: pairs of entries that both fall in T (lower triangle, mirrored below)
        for e1 in range(e_own, m):
            r1 = rows[e1] - t0
            for e2 in range(e_own, e1 + 1):
                a_tt[r1, rows[e2] - t0] += vals[e1] * vals[e2]
    for r in range(d):
        for c in range(r):
            a_tt[c, r] = a_tt[r, c]
