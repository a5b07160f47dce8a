"""The front loops of the factor of Ω(θ) and of its gradient, for terms with any number of effects per level.

A front f of s rows holds its level's q effects first, then the ancestors' effects and the
trailing rows it touches (see workbench.fitting.structure). Its columns of A, of L and of S
live at the same offset of the flat buffers `cp.a_front`, `ws.lcol` and `ws.scol` (s × q,
row-major); the s × s update gathered from its children, and S on its whole pattern, at its
offset of `ws.fronts` and `ws.sfronts`. The loops index those buffers by offset rather than
slicing them: in the small fronts of longitudinal and nested models, a slice costs more than
the arithmetic it gives access to.
"""

from workbench.kernels.linalg import cholesky_lower, invert_lower
from workbench.kernels.options import jit, jit_inline


@jit_inline
def scale_rows(src, s0, src_stride, rows, r0, nrows, layout, lam, dst, d0, dst_stride, ncol):
    """dst[r, :ncol] = (Λ̃' src)[r, :ncol] over the global rows rows[r0 : r0 + nrows].

    src and dst are flat, from offsets s0 and d0. `layout` is (row_term, row_comp, term_q).
    """
    row_term, row_comp, term_q = layout
    for r in range(nrows):
        row = rows[r0 + r]
        k = row_term[row]
        if k < 0:
            for c in range(ncol):
                dst[d0 + r * dst_stride + c] = src[s0 + r * src_stride + c]
            continue
        comp = row_comp[row]
        base = r - comp
        for c in range(ncol):
            acc = 0.0
            for c2 in range(comp, term_q[k]):
                acc += lam[k, c2, comp] * src[s0 + (base + c2) * src_stride + c]
            dst[d0 + r * dst_stride + c] = acc


@jit_inline
def lower_rows(src, s0, src_stride, rows, r0, nrows, layout, lam, dst, d0, dst_stride, ncol):
    """dst[r, :ncol] = (Λ̃ src)[r, :ncol]: λ applied from the left, untransposed (as `scale_rows`)."""
    row_term, row_comp, _ = layout
    for r in range(nrows):
        row = rows[r0 + r]
        k = row_term[row]
        if k < 0:
            for c in range(ncol):
                dst[d0 + r * dst_stride + c] = src[s0 + r * src_stride + c]
            continue
        comp = row_comp[row]
        base = r - comp
        for c in range(ncol):
            acc = 0.0
            for c2 in range(comp + 1):
                acc += lam[k, comp, c2] * src[s0 + (base + c2) * src_stride + c]
            dst[d0 + r * dst_stride + c] = acc


@jit_inline
def _parent_block(st, f, fronts, trailing, d):
    """Where front f's update goes (and its S_RR comes from): (buffer, offset, row stride)."""
    parent = st.front_parent[f]
    if parent >= 0:
        return fronts, st.front_mat_ptr[parent], st.front_ptr[parent + 1] - st.front_ptr[parent]
    return trailing, 0, d


@jit
def fronts_factor(st, cp, ws):
    """Factor the fronts and extend-add their updates into their parents and into ws.tt.

    ws.lam holds Λ and ws.tt the scaled trailing block; False when Ω is not positive definite.
    """
    layout = (st.row_term, st.row_comp, st.term_q)
    lam, lcol, fronts, a_front = ws.lam, ws.lcol, ws.fronts, cp.a_front
    fronts[:] = 0.0
    ttf = ws.tt.reshape(-1)
    d = ws.tt.shape[0]
    for f in range(st.front_term.shape[0]):
        q = st.term_q[st.front_term[f]]
        # a literal q lets the compiler unroll the loops over a level's effects
        if q == 1:
            ok = _factor_front(st, f, 1, layout, lam, lcol, fronts, a_front, ttf, d)
        elif q == 2:
            ok = _factor_front(st, f, 2, layout, lam, lcol, fronts, a_front, ttf, d)
        else:
            ok = _factor_front(st, f, q, layout, lam, lcol, fronts, a_front, ttf, d)
        if not ok:
            return False
    return True


@jit_inline
def _factor_front(st, f, q, layout, lam, lcol, fronts, a_front, ttf, d):
    """Factor front f (q effects per level); False when its block is not positive definite."""
    relpos = st.front_relpos
    lo = st.front_ptr[f]
    s = st.front_ptr[f + 1] - lo
    k = st.front_term[f]
    m0 = st.front_mat_ptr[f]
    gathered = st.front_mat_ptr[f + 1] > m0
    c0 = st.front_acol_ptr[f]
    # Ã_{P,f} = Λ̃_P' A_{P,f} λ_f, plus what the children passed up: first A_{P,f} λ_f, then
    # λ' on the rows of random levels (the front's own, then others'; the X and y rows last)
    for r in range(s):
        for c in range(q):
            v = 0.0
            for c2 in range(c, q):
                v += a_front[c0 + r * q + c2] * lam[k, c2, c]
            lcol[c0 + r * q + c] = v
    _own_rows_scaled(lcol, c0, q, k, lam)
    _other_rows_scaled(lcol, c0, q, s, st.front_rows, lo, layout, lam)
    if gathered:
        for r in range(s):
            for c in range(q):
                lcol[c0 + r * q + c] += fronts[m0 + r * s + c]
    for c in range(q):
        lcol[c0 + c * q + c] += 1.0
    if not cholesky_lower(lcol, c0, q, q):
        return False
    for r in range(q, s):
        for c in range(q):
            v = lcol[c0 + r * q + c]
            for c2 in range(c):
                v -= lcol[c0 + r * q + c2] * lcol[c0 + c * q + c2]
            lcol[c0 + r * q + c] = v / lcol[c0 + c * q + c]
    # the update −L_Rf L_Rf' (plus the children's), lower triangle
    target, t0, stride = _parent_block(st, f, fronts, ttf, d)
    for a in range(q, s):
        pa = t0 + relpos[lo + a] * stride
        for b in range(q, a + 1):
            v = fronts[m0 + a * s + b] if gathered else 0.0
            for c in range(q):
                v -= lcol[c0 + a * q + c] * lcol[c0 + b * q + c]
            target[pa + relpos[lo + b]] += v
    return True


@jit_inline
def _own_rows_scaled(m, m0, q, k, lam):
    """The lower triangle of the front's own q rows of `m` (q columns, from m0) times λ_k' on the left, in place."""
    for r in range(q):
        for c in range(r + 1):
            v = 0.0
            for c2 in range(r, q):
                v += lam[k, c2, r] * m[m0 + c2 * q + c]
            m[m0 + r * q + c] = v


@jit_inline
def _other_rows_scaled(m, m0, q, s, rows, lo, layout, lam):
    """Rows q… of a front's s × q block `m` times λ' of their levels, in place, up to the first X or y row."""
    row_term, _, term_q = layout
    r = q
    while r < s:
        kr = row_term[rows[lo + r]]
        if kr < 0:
            return
        qr = term_q[kr]
        for a in range(qr):
            for c in range(q):
                v = 0.0
                for c2 in range(a, qr):
                    v += lam[kr, c2, a] * m[m0 + (r + c2) * q + c]
                m[m0 + (r + a) * q + c] = v
        r += qr


@jit
def fronts_gradient(st, cp, ws):
    """Add every front's gradient terms to ws.grad_blocks, children after parents.

    ws.stt must hold S on the trailing block; S on the fronts goes to ws.scol, and on the
    patterns of fronts with children to ws.sfronts.
    """
    layout = (st.row_term, st.row_comp, st.term_q)
    lam, g = ws.lam, ws.grad_blocks
    lcol, scol, sfronts, a_front = ws.lcol, ws.scol, ws.sfronts, cp.a_front
    sttf = ws.stt.reshape(-1)
    d = ws.stt.shape[0]
    rows, relpos, row_term = st.front_rows, st.front_relpos, st.row_term
    y = ws.col.reshape(-1)
    bcol = ws.col2.reshape(-1)
    minv = ws.small[0].reshape(-1)
    z = ws.small[1].reshape(-1)
    for f in range(st.front_term.shape[0] - 1, -1, -1):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        k = st.front_term[f]
        q = st.term_q[k]
        c0 = st.front_acol_ptr[f]
        src, p0, stride = _parent_block(st, f, sfronts, sttf, d)
        if q == 1:
            # S_Rf = −S_RR L_Rf / l, S_ff = (1/l − L_Rf'S_Rf)/l
            diagonal = lcol[c0]
            for a in range(1, s):
                pa = p0 + relpos[lo + a] * stride
                v = 0.0
                for b in range(1, s):
                    v += src[pa + relpos[lo + b]] * lcol[c0 + b]
                scol[c0 + a] = -v / diagonal
            v = 1.0 / diagonal
            for a in range(1, s):
                v -= lcol[c0 + a] * scol[c0 + a]
            scol[c0] = v / diagonal
        else:
            # S_Rf = −S_RR L_Rf L_ff⁻¹, with S_RR read from the parent's S (or S_TT)
            for a in range(q, s):
                pa = p0 + relpos[lo + a] * stride
                for c in range(q):
                    v = 0.0
                    for b in range(q, s):
                        v += src[pa + relpos[lo + b]] * lcol[c0 + b * q + c]
                    y[(a - q) * q + c] = v
            for a in range(q, s):
                for c in range(q - 1, -1, -1):
                    v = -y[(a - q) * q + c]
                    for c2 in range(c + 1, q):
                        v -= scol[c0 + a * q + c2] * lcol[c0 + c2 * q + c]
                    scol[c0 + a * q + c] = v / lcol[c0 + c * q + c]
            # S_ff = L_ff⁻ᵀ (L_ff⁻¹ − L_Rf' S_Rf)
            invert_lower(lcol, c0, q, q, minv, q)
            for c1 in range(q):
                for c2 in range(q):
                    v = minv[c1 * q + c2]
                    for a in range(q, s):
                        v -= lcol[c0 + a * q + c1] * scol[c0 + a * q + c2]
                    z[c1 * q + c2] = v
            for c1 in range(q):
                for c2 in range(q):
                    v = 0.0
                    for kk in range(q):
                        v += minv[kk * q + c1] * z[kk * q + c2]
                    scol[c0 + c1 * q + c2] = v
            for c1 in range(q):
                for c2 in range(c1):
                    v = 0.5 * (scol[c0 + c1 * q + c2] + scol[c0 + c2 * q + c1])
                    scol[c0 + c1 * q + c2] = v
                    scol[c0 + c2 * q + c1] = v
        # a front with children keeps S on its whole pattern for them to read
        m0 = st.front_mat_ptr[f]
        if st.front_mat_ptr[f + 1] > m0:
            for a in range(q, s):
                pa = p0 + relpos[lo + a] * stride
                for b in range(q, s):
                    sfronts[m0 + a * s + b] = src[pa + relpos[lo + b]]
            for a in range(s):
                for c in range(q):
                    sfronts[m0 + a * s + c] = scol[c0 + a * q + c]
                    sfronts[m0 + c * s + a] = scol[c0 + a * q + c]
        if q == 1:
            _scalar_level_terms(k, s, rows, lo, layout, lam, a_front, scol, c0, g)
            continue
        # The front's own level: Σ_r A[r, (f,a)] (Λ̃S)[r, (f,b)].
        lower_rows(scol, c0, q, rows, lo, s, layout, lam, bcol, 0, q, q)
        for a in range(q):
            for b in range(q):
                v = 0.0
                for r in range(s):
                    v += a_front[c0 + r * q + a] * bcol[r * q + b]
                g[k, a, b] += v
        # Later random levels J in the front: Σ_{c∈f} A[(J,a), c] (λ_f S_{f,J})[c, b].
        r = q
        while r < s:
            kj = row_term[rows[lo + r]]
            if kj < 0:
                break
            qj = st.term_q[kj]
            for a in range(qj):
                for b in range(qj):
                    v = 0.0
                    for c in range(q):
                        ls = 0.0
                        for c2 in range(c + 1):
                            ls += lam[k, c, c2] * scol[c0 + (r + b) * q + c2]
                        v += a_front[c0 + (r + a) * q + c] * ls
                    g[kj, a, b] += v
            r += qj


@jit_inline
def _scalar_level_terms(k, s, rows, lo, layout, lam, a_front, scol, c0, g):
    """The gradient terms of a front with one effect per level, in one pass over its rows.

    The same sums as the general loops (own level: Σ_r A[r, f](Λ̃S)[r, f]; each later random
    row (J, a): A[(J, a), f] λ_f S[(J, b), f]), without their scratch column and unit loops.
    """
    row_term, row_comp, term_q = layout
    lam_f = lam[k, 0, 0]
    own = 0.0
    for r in range(s):
        row = rows[lo + r]
        kr = row_term[row]
        if kr < 0:
            own += a_front[c0 + r] * scol[c0 + r]
            continue
        comp = row_comp[row]
        base = r - comp
        v = 0.0
        for c2 in range(comp + 1):
            v += lam[kr, comp, c2] * scol[c0 + base + c2]
        own += a_front[c0 + r] * v
        if r > 0:
            for b in range(term_q[kr]):
                g[kr, comp, b] += a_front[c0 + r] * lam_f * scol[c0 + base + b]
    g[k, 0, 0] += own
