"""The front loops of the factor of Ω(θ) and of its gradient when every random-effect term is scalar.

With one effect per level (random intercepts: nested, crossed or both) Λ̃ is diagonal, its
entry on a row being the θ of the row's term (1 on the X and y rows), and every front has
q = 1. The loops below are `workbench.kernels.fronts`' for that case, with the same
arithmetic in the same order, so the results are equal bit for bit; they index the flat
buffers by offsets rather than slicing them, and scale rows by a vector rather than through
the row layout, because in the small fronts of nested models that bookkeeping costs several
times the arithmetic.
"""

import numpy as np

from workbench.kernels.linalg import U
from workbench.kernels.options import jit, jit_inline

# Offsets are unsigned (see linalg.U): in small fronts the wraparound checks of signed ones
# cost more than the arithmetic. Mixed with a signed integer an unsigned one becomes a float,
# hence the unsigned ONE.
ONE = U(1)
# fronts larger than this fuse the updates of four sibling leaves (smaller ones gain nothing)
FUSE = U(8)


@jit_inline
def _consecutive(relpos, lo, n):
    """Whether the n sorted positions from relpos[lo] are consecutive (and there are several)."""
    return n > ONE and U(relpos[lo + n - ONE]) - U(relpos[lo]) == n - ONE


@jit_inline
def _parent_block(parent, front_ptr, front_mat_ptr, fronts, trailing, d):
    """Where a front's update goes (and its S_RR comes from): (buffer, offset, row stride).

    Takes the structure's arrays rather than the structure: an inlined helper handed the
    structure counts references to its arrays on every call.
    """
    if parent >= 0:
        return fronts, U(front_mat_ptr[parent]), U(front_ptr[parent + 1] - front_ptr[parent])
    return trailing, U(0), U(d)


@jit_inline
def _siblings(f, step, parents, front_ptr, relpos):
    """Whether front f + step has front f's parent, size and consecutive pattern (front f's being consecutive)."""
    g = f + step
    if g < 0 or g >= parents.shape[0] or parents[g] != parents[f]:
        return False
    lo, lg = U(front_ptr[f]), U(front_ptr[g])
    s = U(front_ptr[f + 1]) - lo
    if U(front_ptr[g + 1]) - lg != s:
        return False
    return relpos[lg + ONE] == relpos[lo + ONE] and _consecutive(relpos, lg + ONE, s - ONE)


@jit
def all_scalar(st):
    """True when every random-effect term has one effect per level."""
    for k in range(st.term_q.shape[0]):
        if st.term_q[k] != 1:
            return False
    return True


@jit
def set_row_scales(st, lam, scale):
    """scale[row] = Λ̃'s diagonal entry of every global row."""
    for row in range(scale.shape[0]):
        k = st.row_term[row]
        scale[row] = lam[k, 0, 0] if k >= 0 else 1.0


@jit
def scalar_trailing(st, cp, scale, tt):
    """tt = Λ̃_T' A_TT Λ̃_T + diag(I, 0)."""
    d = tt.shape[0]
    a_tt = cp.a_tt
    t0 = st.t0
    for i in range(d):
        si = scale[t0 + i]
        for j in range(d):
            tt[i, j] = si * (scale[t0 + j] * a_tt[j, i])
        if st.row_term[t0 + i] >= 0:
            tt[i, i] += 1.0


@jit
def scalar_fronts_factor(st, cp, ws):
    """Factor the fronts and extend-add their updates into their parents and into ws.tt.

    `ws.scale` holds the row scales and ws.tt the scaled trailing block. False when Ω is not
    positive definite. Offsets are unsigned throughout (see `U`). Four large sibling leaves
    with the same consecutive pattern add their updates in one pass over the target, each
    entry taking the four in the order of the fronts, as one at a time would.
    """
    scale = ws.scale
    lcol = ws.lcol
    fronts = ws.fronts
    fronts[:] = 0.0
    ttf = ws.tt.reshape(-1)
    d = ws.tt.shape[0]
    a_front = cp.a_front
    rows = st.front_rows
    relpos = st.front_relpos
    front_ptr = st.front_ptr
    front_mat_ptr = st.front_mat_ptr
    front_acol_ptr = st.front_acol_ptr
    parents = st.front_parent
    done = -1
    for f in range(st.front_term.shape[0]):
        if f <= done:
            continue
        lo = U(front_ptr[f])
        s = U(front_ptr[f + 1]) - lo
        m0 = U(front_mat_ptr[f])
        gathered = U(front_mat_ptr[f + 1]) > m0
        c0 = U(front_acol_ptr[f])
        if not _column(rows, lo, s, c0, gathered, m0, scale, a_front, fronts, lcol):
            return False
        target, t0, stride = _parent_block(parents[f], front_ptr, front_mat_ptr, fronts, ttf, d)
        # the update −L_Rf L_Rf' (plus the children's), lower triangle
        rp = lo + ONE
        if _consecutive(relpos, rp, s - ONE):
            first = U(relpos[rp])
            if s > FUSE and not gathered and _four_leaves(f, parents, front_ptr, front_mat_ptr, relpos):
                for g in range(f + 1, f + 4):
                    if not _column(rows, U(front_ptr[g]), s, U(front_acol_ptr[g]), False, U(0), scale, a_front, fronts, lcol):
                        return False
                _four_updates(lcol, front_acol_ptr, f, s, target, t0, stride, first)
                done = f + 3
                continue
            # the rows go to consecutive rows of the target: a row of the update is an axpy
            for a in range(ONE, s):
                base = t0 + (first + a - ONE) * stride + first - ONE
                la = lcol[c0 + a]
                if gathered:
                    for b in range(ONE, a + ONE):
                        target[base + b] += fronts[m0 + a * s + b] - la * lcol[c0 + b]
                else:
                    for b in range(ONE, a + ONE):
                        target[base + b] -= la * lcol[c0 + b]
            continue
        for a in range(ONE, s):
            pa = t0 + U(relpos[rp + a - ONE]) * stride
            la = lcol[c0 + a]
            if gathered:
                for b in range(ONE, a + ONE):
                    target[pa + U(relpos[rp + b - ONE])] += fronts[m0 + a * s + b] - la * lcol[c0 + b]
            else:
                for b in range(ONE, a + ONE):
                    target[pa + U(relpos[rp + b - ONE])] -= la * lcol[c0 + b]
    return True


@jit_inline
def _four_leaves(f, parents, front_ptr, front_mat_ptr, relpos):
    """Whether fronts f + 1 … f + 3 are leaves like front f: its parent, size and consecutive pattern."""
    for step in range(1, 4):
        g = f + step
        if g < parents.shape[0] and front_mat_ptr[g + 1] > front_mat_ptr[g]:
            return False
        if not _siblings(f, step, parents, front_ptr, relpos):
            return False
    return True


@jit_inline
def _column(rows, lo, s, c0, gathered, m0, scale, a_front, fronts, lcol):
    """L's column of one front: Ã_{P,f} = Λ̃_P' A_{P,f} λ_f plus what its children passed up, factored."""
    own = scale[U(rows[lo])]
    for r in range(s):
        v = scale[U(rows[lo + r])] * (a_front[c0 + r] * own)
        if gathered:
            v += fronts[m0 + r * s]
        lcol[c0 + r] = v
    v = lcol[c0] + 1.0
    if not v > 0.0:
        return False
    diagonal = np.sqrt(v)
    lcol[c0] = diagonal
    for r in range(ONE, s):
        lcol[c0 + r] = lcol[c0 + r] / diagonal
    return True


@jit_inline
def _four_updates(lcol, front_acol_ptr, f, s, target, t0, stride, first):
    """−Σ L_Rg L_Rg' of leaves g = f … f + 3 into the target rows first…, entry by entry in the order of g."""
    c0 = U(front_acol_ptr[f])
    c1 = U(front_acol_ptr[f + 1])
    c2 = U(front_acol_ptr[f + 2])
    c3 = U(front_acol_ptr[f + 3])
    for a in range(ONE, s):
        base = t0 + (first + a - ONE) * stride + first - ONE
        l0 = lcol[c0 + a]
        l1 = lcol[c1 + a]
        l2 = lcol[c2 + a]
        l3 = lcol[c3 + a]
        for b in range(ONE, a + ONE):
            v = target[base + b]
            v -= l0 * lcol[c0 + b]
            v -= l1 * lcol[c1 + b]
            v -= l2 * lcol[c2 + b]
            v -= l3 * lcol[c3 + b]
            target[base + b] = v


@jit
def scalar_gradient(st, cp, ws):
    """Fill ws.grad_blocks[:, 0, 0] with the gradient terms of the trailing block and of every front.

    ws.stt must hold S on the trailing block (`objective._trailing_inverse`); S on the fronts
    goes to ws.scol, and on the patterns of fronts with children to ws.sfronts.
    """
    scale = ws.scale
    stt = ws.stt
    d = stt.shape[0]
    a_tt = cp.a_tt
    t0 = st.t0
    row_term = st.row_term
    g = np.zeros(ws.grad_blocks.shape[0])
    # trailing levels: Σ_c A[i, c] (Λ̃_T S_TT)[c, i], with S_TT[c, i] = S_TT[i, c]
    for i in range(d):
        k = row_term[t0 + i]
        if k < 0:
            continue
        acc = 0.0
        for c in range(d):
            acc += a_tt[i, c] * (scale[t0 + c] * stt[i, c])
        g[k] += acc
    sttf = stt.reshape(-1)
    lcol = ws.lcol
    scol = ws.scol
    sfronts = ws.sfronts
    a_front = cp.a_front
    rows = st.front_rows
    relpos = st.front_relpos
    front_ptr = st.front_ptr
    front_mat_ptr = st.front_mat_ptr
    front_acol_ptr = st.front_acol_ptr
    front_term = st.front_term
    parents = st.front_parent
    f = front_term.shape[0] - 1
    while f >= 0:
        lo = U(front_ptr[f])
        s = U(front_ptr[f + 1]) - lo
        rp = lo + ONE
        src, p0, stride = _parent_block(parents[f], front_ptr, front_mat_ptr, sfronts, sttf, d)
        # S_Rf = −S_RR L_Rf / l, with S_RR read from the parent (or S_TT). Siblings with the
        # same consecutive pattern share S_RR: up to four of them take it in one pass.
        group = 1
        if _consecutive(relpos, rp, s - ONE):
            while group < 4 and _siblings(f, -group, parents, front_ptr, relpos):
                group += 1
            first = U(relpos[rp])
            if group == 4:
                _four_columns(src, p0, stride, first, s, lcol, scol, front_acol_ptr, f)
            else:
                for j in range(group):
                    _one_column(src, p0, stride, first, s, lcol, scol, U(front_acol_ptr[f - j]))
        else:
            c0 = U(front_acol_ptr[f])
            diagonal = lcol[c0]
            for a in range(ONE, s):
                pa = p0 + U(relpos[rp + a - ONE]) * stride
                v = 0.0
                for b in range(ONE, s):
                    v += src[pa + U(relpos[rp + b - ONE])] * lcol[c0 + b]
                scol[c0 + a] = -v / diagonal
        for j in range(group):
            fj = f - j
            c0 = U(front_acol_ptr[fj])
            lo = U(front_ptr[fj])
            rp = lo + ONE
            # S_ff = (1/l − L_Rf'S_Rf)/l
            diagonal = lcol[c0]
            v = 1.0 / diagonal
            for a in range(ONE, s):
                v -= lcol[c0 + a] * scol[c0 + a]
            scol[c0] = v / diagonal
            # a front with children keeps S on its whole pattern for them to read
            m0 = U(front_mat_ptr[fj])
            if U(front_mat_ptr[fj + 1]) > m0:
                for a in range(ONE, s):
                    pa = p0 + U(relpos[rp + a - ONE]) * stride
                    for b in range(ONE, s):
                        sfronts[m0 + a * s + b] = src[pa + U(relpos[rp + b - ONE])]
                for a in range(s):
                    sfronts[m0 + a * s] = scol[c0 + a]
                    sfronts[m0 + a] = scol[c0 + a]
            # own level: Σ_r A[r, f](Λ̃S)[r, f]; each later random row r: A[r, f] λ_f S[r, f]
            lam_f = scale[U(rows[lo])]
            own = 0.0
            for r in range(s):
                row = U(rows[lo + r])
                kr = row_term[row]
                sr = scol[c0 + r]
                if kr < 0:
                    own += a_front[c0 + r] * sr
                    continue
                own += a_front[c0 + r] * (scale[row] * sr)
                if r >= ONE:
                    g[kr] += a_front[c0 + r] * lam_f * sr
            g[front_term[fj]] += own
        f -= group
    for k in range(g.shape[0]):
        ws.grad_blocks[k, 0, 0] = g[k]


@jit_inline
def _one_column(src, p0, stride, first, s, lcol, scol, c0):
    """S_Rf = −S_RR L_Rf / l of one front whose pattern is rows first… of its parent.

    S_RR is symmetric, so S_Rf accumulates column by column: axpys, in the order of a dot product.
    """
    for a in range(ONE, s):
        scol[c0 + a] = 0.0
    for b in range(ONE, s):
        lb = lcol[c0 + b]
        base = p0 + (first + b - ONE) * stride + first - ONE
        for a in range(ONE, s):
            scol[c0 + a] += src[base + a] * lb
    diagonal = lcol[c0]
    for a in range(ONE, s):
        scol[c0 + a] = -scol[c0 + a] / diagonal


@jit_inline
def _four_columns(src, p0, stride, first, s, lcol, scol, front_acol_ptr, f):
    """`_one_column` for fronts f, f − 1, f − 2 and f − 3 at once: each row of S_RR is read once for the four."""
    c0 = U(front_acol_ptr[f])
    c1 = U(front_acol_ptr[f - 1])
    c2 = U(front_acol_ptr[f - 2])
    c3 = U(front_acol_ptr[f - 3])
    for a in range(ONE, s):
        scol[c0 + a] = 0.0
        scol[c1 + a] = 0.0
        scol[c2 + a] = 0.0
        scol[c3 + a] = 0.0
    for b in range(ONE, s):
        l0 = lcol[c0 + b]
        l1 = lcol[c1 + b]
        l2 = lcol[c2 + b]
        l3 = lcol[c3 + b]
        base = p0 + (first + b - ONE) * stride + first - ONE
        for a in range(ONE, s):
            v = src[base + a]
            scol[c0 + a] += v * l0
            scol[c1 + a] += v * l1
            scol[c2 + a] += v * l2
            scol[c3 + a] += v * l3
    for c in (c0, c1, c2, c3):
        diagonal = lcol[c]
        for a in range(ONE, s):
            scol[c + a] = -scol[c + a] / diagonal
