"""The front loops of the factor of Ω(θ) and of its gradient when every random-effect term is scalar.

With one effect per level (random intercepts: nested, crossed or both) Λ̃ is diagonal, its
entry on a row being the θ of the row's term (1 on the X and y rows), and every front has
q = 1. The loops below are `workbench.kernels.objective`'s for that case, with the same
arithmetic in the same order, so the results are equal bit for bit; they index the flat
buffers by offsets rather than slicing them, and scale rows by a vector rather than through
the row layout, because in the small fronts of nested models that bookkeeping costs several
times the arithmetic.
"""

import numpy as np

from workbench.kernels.options import jit, jit_inline

U = np.uint64  # unsigned offsets: no negative-index wraparound, so long loops vectorise


@jit_inline
def scalar_front_update(s, lf, acc, gathered, target, stride, relpos):
    """Extend-add the update −L_Rf L_Rf' (plus the children's) of a front with one effect per level."""
    for a in range(1, s):
        pa = relpos[a - 1] * stride
        la = lf[a]
        if gathered:
            for b in range(1, a + 1):
                target[pa + relpos[b - 1]] += acc[a * s + b] - la * lf[b]
        else:
            for b in range(1, a + 1):
                target[pa + relpos[b - 1]] -= la * lf[b]


@jit_inline
def scalar_front_inverse(s, lf, sm, src, stride, relpos):
    """S on a front with one effect per level: S_Rf = −S_RR L_Rf / l, S_ff = (1/l − L_Rf'S_Rf)/l."""
    diagonal = lf[0]
    for a in range(1, s):
        pa = relpos[a - 1] * stride
        v = 0.0
        for b in range(1, s):
            v += src[pa + relpos[b - 1]] * lf[b]
        sm[a] = -v / diagonal
    v = 1.0 / diagonal
    for a in range(1, s):
        v -= lf[a] * sm[a]
    sm[0] = v / diagonal


@jit_inline
def _consecutive(relpos, lo, n):
    """Whether the n sorted positions from relpos[lo] are consecutive (and there are several)."""
    return n > 1 and relpos[lo + n - 1] - relpos[lo] == n - 1


@jit_inline
def _parent_block(st, f, fronts, trailing, d):
    """Where front f's update goes (and its S_RR comes from): (buffer, offset, row stride)."""
    parent = st.front_parent[f]
    if parent >= 0:
        return fronts, st.front_mat_ptr[parent], st.front_ptr[parent + 1] - st.front_ptr[parent]
    return trailing, 0, d


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
    positive definite.
    """
    scale = ws.scale
    lcol = ws.lcol
    fronts = ws.fronts
    fronts[:] = 0.0
    ttf = ws.tt.reshape(-1)
    d = ws.tt.shape[0]
    for f in range(st.front_term.shape[0]):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        m0 = st.front_mat_ptr[f]
        gathered = st.front_mat_ptr[f + 1] > m0
        c0 = st.front_acol_ptr[f]
        own = scale[st.front_rows[lo]]
        # Ã_{P,f} = Λ̃_P' A_{P,f} λ_f, plus what the children passed up
        for r in range(s):
            v = scale[st.front_rows[lo + r]] * (cp.a_front[c0 + r] * own)
            if gathered:
                v += fronts[m0 + r * s]
            lcol[c0 + r] = v
        v = lcol[c0] + 1.0
        if not v > 0.0:
            return False
        diagonal = np.sqrt(v)
        lcol[c0] = diagonal
        for r in range(1, s):
            lcol[c0 + r] = lcol[c0 + r] / diagonal
        target, t0, stride = _parent_block(st, f, fronts, ttf, d)
        # the update −L_Rf L_Rf' (plus the children's), lower triangle
        rp = lo + 1
        if _consecutive(st.front_relpos, rp, s - 1):
            # the rows go to consecutive rows of the target: a row of the update is an axpy
            first = st.front_relpos[rp]
            for a in range(1, s):
                base = U(t0 + (first + a - 1) * stride + first - 1)
                la = lcol[c0 + a]
                if gathered:
                    for b in range(U(1), U(a + 1)):
                        target[base + b] += fronts[U(m0 + a * s) + b] - la * lcol[U(c0) + b]
                else:
                    for b in range(U(1), U(a + 1)):
                        target[base + b] -= la * lcol[U(c0) + b]
            continue
        for a in range(1, s):
            pa = t0 + st.front_relpos[rp + a - 1] * stride
            la = lcol[c0 + a]
            if gathered:
                for b in range(1, a + 1):
                    target[pa + st.front_relpos[rp + b - 1]] += fronts[m0 + a * s + b] - la * lcol[c0 + b]
            else:
                for b in range(1, a + 1):
                    target[pa + st.front_relpos[rp + b - 1]] -= la * lcol[c0 + b]
    return True


@jit
def scalar_gradient(st, cp, ws):
    """Add the gradient terms of the trailing block and of every front to ws.grad_blocks[:, 0, 0].

    ws.stt must hold S on the trailing block (`objective._trailing_inverse`); S on the fronts
    goes to ws.scol, and on the patterns of fronts with children to ws.sfronts.
    """
    g = ws.grad_blocks
    scale = ws.scale
    stt = ws.stt
    d = stt.shape[0]
    a_tt = cp.a_tt
    t0 = st.t0
    # trailing levels: Σ_c A[i, c] (Λ̃_T S_TT)[c, i], with S_TT[c, i] = S_TT[i, c]
    for i in range(d):
        k = st.row_term[t0 + i]
        if k < 0:
            continue
        acc = 0.0
        for c in range(d):
            acc += a_tt[i, c] * (scale[t0 + c] * stt[i, c])
        g[k, 0, 0] += acc
    sttf = stt.reshape(-1)
    lcol = ws.lcol
    scol = ws.scol
    sfronts = ws.sfronts
    for f in range(st.front_term.shape[0] - 1, -1, -1):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        c0 = st.front_acol_ptr[f]
        src, p0, stride = _parent_block(st, f, sfronts, sttf, d)
        rp = lo + 1
        # S_Rf = −S_RR L_Rf / l, S_ff = (1/l − L_Rf'S_Rf)/l, S_RR read from the parent (or S_TT)
        diagonal = lcol[c0]
        if _consecutive(st.front_relpos, rp, s - 1):
            # S_RR is symmetric, so S_Rf accumulates column by column: axpys, same sums
            first = st.front_relpos[rp]
            for a in range(U(1), U(s)):
                scol[U(c0) + a] = 0.0
            for b in range(1, s):
                lb = lcol[c0 + b]
                base = U(p0 + (first + b - 1) * stride + first - 1)
                for a in range(U(1), U(s)):
                    scol[U(c0) + a] += src[base + a] * lb
            for a in range(1, s):
                scol[c0 + a] = -scol[c0 + a] / diagonal
        else:
            for a in range(1, s):
                pa = p0 + st.front_relpos[rp + a - 1] * stride
                v = 0.0
                for b in range(1, s):
                    v += src[pa + st.front_relpos[rp + b - 1]] * lcol[c0 + b]
                scol[c0 + a] = -v / diagonal
        v = 1.0 / diagonal
        for a in range(1, s):
            v -= lcol[c0 + a] * scol[c0 + a]
        scol[c0] = v / diagonal
        # a front with children keeps S on its whole pattern for them to read
        m0 = st.front_mat_ptr[f]
        if st.front_mat_ptr[f + 1] > m0:
            for a in range(1, s):
                pa = p0 + st.front_relpos[rp + a - 1] * stride
                for b in range(1, s):
                    sfronts[m0 + a * s + b] = src[pa + st.front_relpos[rp + b - 1]]
            for a in range(s):
                sfronts[m0 + a * s] = scol[c0 + a]
                sfronts[m0 + a] = scol[c0 + a]
        # own level: Σ_r A[r, f](Λ̃S)[r, f]; each later random row r: A[r, f] λ_f S[r, f]
        k = st.front_term[f]
        lam_f = scale[st.front_rows[lo]]
        own = 0.0
        for r in range(s):
            row = st.front_rows[lo + r]
            kr = st.row_term[row]
            sr = scol[c0 + r]
            if kr < 0:
                own += cp.a_front[c0 + r] * sr
                continue
            own += cp.a_front[c0 + r] * (scale[row] * sr)
            if r > 0:
                g[kr, 0, 0] += cp.a_front[c0 + r] * lam_f * sr
        g[k, 0, 0] += own
