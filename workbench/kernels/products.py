"""Accumulate the blocks of A = [Z X y]'[Z X y] from level codes and columns, one row at a time."""

from typing import NamedTuple

import numpy as np

from workbench.kernels.options import jit, jit_inline


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
def fill_products(codes, z, x, y, st, front0, a_front, a_tt):
    """Every block of A from the data: see `_accumulate`."""
    _accumulate(codes, z, x, y, st, front0, a_front, a_tt, False)


@jit
def refresh_response(codes, z, x, y, st, front0, a_front, a_tt):
    """Only the entries of A in the response row, for a new response `y`: one pass over the rows."""
    _accumulate(codes, z, x, y, st, front0, a_front, a_tt, True)


@jit_inline
def _accumulate(codes, z, x, y, st, front0, a_front, a_tt, y_only):
    """Add every observation's outer product into the front column blocks and the trailing block.

    codes (K, n) level of each row per term; z (K, n, qmax) the terms' columns; front0 (K,) the
    first front of each prefix term. With `y_only`, only entries in the response row are
    written (they are zeroed first). Two entry points, so each is compiled once.
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
                if y_only:
                    a_front[block + (hi - lo - 1) * q + c] += vals[last] * zc
                    continue
                for e2 in range(e_own, m):
                    pos = _find(front_rows, lo, hi, rows[e2])
                    a_front[block + pos * q + c] += vals[e2] * zc
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
