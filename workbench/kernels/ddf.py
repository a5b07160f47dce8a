"""Denominator degrees of freedom of t tests of fixed effects: Satterthwaite and Kenward–Roger.

Notation. y ~ N(Xβ, Σ), Σ = σ²V, V = I + ZΛΛ'Z'; C(θ, σ) = Var(β̂) = σ²(X'V⁻¹X)⁻¹ =
σ²(R_X'R_X)⁻¹; D = [Z X] and A = D'D (the cross-products of the fit, y left out).

**Satterthwaite** (Satterthwaite 1946, Biometrics Bulletin 2:110), as lmerTest 3.1-3 computes
it (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13), §3): in the variance parameters
φ = (θ, σ), for a contrast L,

    ν = 2 (L'CL)² / (g'Ag),   gᵢ = L' (∂C/∂φᵢ) L,   A = 2H⁺,

with H the Hessian of −2ℓ(θ, σ) = log|L_Z|² (+ log|R_X|² for REML) + ν₀ log(2πσ²) + r²(θ)/σ²
(ν₀ = n, or n − p for REML; lmerTest's `devfun_vp`) and H⁺ its Moore–Penrose inverse over the
eigenvalues above 1e-8 (lmerTest's). lmerTest takes H and ∂C/∂φ by numDeriv; here H comes from
central differences of the analytic gradient of −2ℓ (`objective.sigma_gradient`), and ∂C/∂φ
is analytic: with S = X'V⁻¹X, M_a = Z'V⁻¹X S⁻¹ and M_b = Λ'M_a,

    ∂C/∂θᵢ = σ² (M_a' Λ̇ᵢ M_b + M_b' Λ̇ᵢ' M_a),   ∂C/∂σ = 2C/σ,

from ∂S/∂θᵢ = −X'V⁻¹ Z(Λ̇ᵢΛ' + ΛΛ̇ᵢ')Z' V⁻¹X. Both come from the fit's blocked factor of Ω:
U = Ω⁻¹[0; I] (one back-substitution per fixed effect) gives M_b = −U_Z and M_a = (AΛ̃U)_Z.

**Kenward–Roger** (Kenward & Roger 1997, Biometrics 53:983), as pbkrtest 0.5.2 computes it
(Halekoh & Højsgaard 2014, JSS 59(9), §3–4): Σ = Σ_r γ_r G_r is linear in γ = (the lower
triangle of each term's covariance matrix, column-major; σ²), with G_r = Z E_r Z' (E_r = I ⊗
(eᵢeⱼ' + eⱼeᵢ'), or I ⊗ eᵢeᵢ') and G_σ² = I. With Φ = (X'Σ⁻¹X)⁻¹,

    P_r = −X'Σ⁻¹G_rΣ⁻¹X,   Q_rs = X'Σ⁻¹G_rΣ⁻¹G_sΣ⁻¹X,
    I_rs = ½ [tr(Σ⁻¹G_rΣ⁻¹G_s) − 2 tr(ΦQ_rs) + tr(ΦP_rΦP_s)]   (expected REML information),
    W = I⁻¹,   Φ_A = Φ + 2Φ [Σ_rs W_rs (Q_rs − P_rΦP_s)] Φ

(the second-derivative term R_rs of Kenward & Roger vanishes for Σ linear in γ). For one
contrast L (pbkrtest's `Lb_ddf` with q = 1), with Θ = LL'/(L'ΦL) and u_r = ΘΦP_rΦ,
A₁ = Σ_rs W_rs tr(u_r) tr(u_s), A₂ = Σ_rs W_rs tr(u_r u_s), and the moment matching of
Kenward & Roger (1997, §4) gives ν (= 2/A₂ in exact arithmetic, as q = 1); the F scale λ is 1
for q = 1, so t = L'β̂ / √(L'Φ_AL) has ν degrees of freedom.

pbkrtest works with n × n matrices. Here every quantity is written in the column space of D
instead, through K = ΛC̃⁻¹Λ' (C̃ = Λ'Z'ZΛ + I, so that V⁻¹ = I − ZKZ') and Fₖ = D'V⁻ᵏD:

    F₁ = A − A_·Z K A_Z·,   Fₖ₊₁ = Fₖ − A_·Z K (Fₖ)_Z·,   tr V⁻² = n − 2 tr(KA_ZZ) + tr((KA_ZZ)²),

so that X'Σ⁻¹G_rΣ⁻¹X = F₁_XZ E_r F₁_ZX / σ⁴, tr(Σ⁻¹G_rΣ⁻¹G_s) = tr(E_r F₁_ZZ E_s F₁_ZZ) / σ⁴,
and so on. This is dense in the random effects: O(q³) for q random effects, whatever n.
"""

import numpy as np

from workbench.kernels.objective import factorize, sigma_gradient
from workbench.kernels.options import jit

HESSIAN_STEP = 1e-5  # relative step of the central differences of the gradient
EIGEN_TOL = 1e-8  # lmerTest drops the eigenvalues of H at or below this
INFORMATION_TOL = 1e-10  # pbkrtest inverts I by a generalised inverse below this |eigenvalue|


# ---------------------------------------------------------------------------- Satterthwaite


@jit
def varpar_hessian(theta, sigma, st, cp, ws, reml, hess):
    """Hessian of −2ℓ(θ, σ) into `hess` ((m+1)²) by central differences of the analytic gradient.

    False where Ω is not positive definite at a step. Overwrites the factor in `ws`.
    """
    m = theta.shape[0]
    k = m + 1
    phi = np.empty(k)
    phi[:m] = theta
    phi[m] = sigma
    plus = np.empty(k)
    minus = np.empty(k)
    step = np.empty(k)
    for i in range(k):
        h = HESSIAN_STEP * (max(abs(phi[i]), 1.0) if i < m else sigma)
        step[:] = phi
        step[i] = phi[i] + h
        if not sigma_gradient(step[:m], step[m], st, cp, ws, reml, plus):
            return False
        step[i] = phi[i] - h
        if not sigma_gradient(step[:m], step[m], st, cp, ws, reml, minus):
            return False
        for j in range(k):
            hess[j, i] = (plus[j] - minus[j]) / (2.0 * h)
    for i in range(k):
        for j in range(i):
            v = 0.5 * (hess[i, j] + hess[j, i])
            hess[i, j] = v
            hess[j, i] = v
    return True


@jit
def varpar_covariance(hess, cov):
    """cov = 2H⁺ over the eigenvalues of H above EIGEN_TOL (lmerTest's vcov_varpar).

    Returns the number of eigenvalues dropped (lmerTest warns when there are any).
    """
    values, vectors = np.linalg.eigh(hess)
    k = values.shape[0]
    cov[:, :] = 0.0
    dropped = 0
    for e in range(k):
        if not values[e] > EIGEN_TOL:
            dropped += 1
            continue
        for i in range(k):
            for j in range(k):
                cov[i, j] += 2.0 * vectors[i, e] * vectors[j, e] / values[e]
    return dropped


@jit
def _nrandom(st):
    return st.row_term.shape[0] - st.p - 1


@jit
def _term_end(st, k):
    """One past the last global row of term k."""
    if k + 1 < st.term_q.shape[0]:
        return st.term_row0[k + 1]
    return _nrandom(st)


@jit
def _fixed_inverse(st, ws):
    """S⁻¹ = (R_X'R_X)⁻¹ = (X'V⁻¹X)⁻¹ from the factor in `ws`."""
    p = st.p
    tt = ws.tt
    d = tt.shape[0]
    lxx = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            lxx[i, j] = tt[d - 1 - p + i, d - 1 - p + j]
    inv = np.linalg.inv(lxx)
    return np.ascontiguousarray(inv.T) @ inv


@jit
def _solve_fixed_columns(st, ws, sinv):
    """U = Ω⁻¹[0; I] without the response row: (N, p), the last row 0.

    The right-hand sides vanish on the random rows, so the forward substitution leaves only
    L_XX⁻¹ on the fixed rows, and U_X = S⁻¹; the rest is L'U = (0, L_XX⁻¹) from the bottom up,
    the trailing block first, then the fronts in reverse (as `objective.solve_effects`).
    """
    p = st.p
    tt = ws.tt
    d = tt.shape[0]
    total = st.row_term.shape[0]
    u = np.zeros((total, p))
    first_fixed = d - 1 - p
    for i in range(p):
        for j in range(p):
            u[st.t0 + first_fixed + i, j] = sinv[i, j]
    for i in range(first_fixed - 1, -1, -1):
        for c in range(p):
            acc = 0.0
            for j in range(i + 1, d - 1):
                acc -= tt[j, i] * u[st.t0 + j, c]
            u[st.t0 + i, c] = acc / tt[i, i]
    for f in range(st.front_term.shape[0] - 1, -1, -1):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        q = st.term_q[st.front_term[f]]
        rows = st.front_rows[lo : lo + s]
        lf = ws.lcol[st.front_acol_ptr[f] : st.front_acol_ptr[f + 1]]
        for c in range(q - 1, -1, -1):
            for col in range(p):
                acc = 0.0
                for r in range(q, s):
                    acc -= lf[r * q + c] * u[rows[r], col]
                for c2 in range(c + 1, q):
                    acc -= lf[c2 * q + c] * u[rows[c2], col]
                u[rows[c], col] = acc / lf[c * q + c]
    return u


@jit
def _apply_lambda(st, lam, u):
    """Λ̃u: each level's λ applied to its rows; fixed rows copied."""
    total, ncol = u.shape
    out = u.copy()
    for r in range(_nrandom(st)):
        k = st.row_term[r]
        a = st.row_comp[r]
        base = r - a
        for col in range(ncol):
            acc = 0.0
            for c in range(a + 1):
                acc += lam[k, a, c] * u[base + c, col]
            out[r, col] = acc
    return out


@jit
def _cross_product_times(st, cp, v):
    """(Av) on the random rows (other rows incomplete), from the blocks of the fit.

    A front holds A[rows, own] for its own columns and every row they meet; the trailing
    block holds A_TT. Each entry off a front's own block stands for two entries of A.
    """
    total, ncol = v.shape
    w = np.zeros((total, ncol))
    for f in range(st.front_term.shape[0]):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        q = st.term_q[st.front_term[f]]
        rows = st.front_rows[lo : lo + s]
        acol = cp.a_front[st.front_acol_ptr[f] : st.front_acol_ptr[f + 1]]
        for r in range(s):
            for c in range(q):
                a = acol[r * q + c]
                for col in range(ncol):
                    w[rows[r], col] += a * v[rows[c], col]
                if r >= q:
                    for col in range(ncol):
                        w[rows[c], col] += a * v[rows[r], col]
    d = cp.a_tt.shape[0]
    for i in range(d):
        if st.row_term[st.t0 + i] < 0:
            continue
        for j in range(d):
            a = cp.a_tt[i, j]
            for col in range(ncol):
                w[st.t0 + i, col] += a * v[st.t0 + j, col]
    return w


@jit
def vcov_jacobian(theta, sigma, st, cp, ws, vcov, jac):
    """C = σ²(R_X'R_X)⁻¹ into `vcov` (p, p) and ∂C/∂φ into `jac` (m+1, p, p) at (θ, σ).

    False where Ω(θ) is not positive definite. Overwrites the factor in `ws`.
    """
    if not factorize(theta, st, cp, ws):
        return False
    m = theta.shape[0]
    p = st.p
    sinv = _fixed_inverse(st, ws)
    u = _solve_fixed_columns(st, ws, sinv)
    ma = _cross_product_times(st, cp, _apply_lambda(st, ws.lam, u))
    sigma2 = sigma * sigma
    for a in range(p):
        for b in range(p):
            vcov[a, b] = sigma2 * sinv[a, b]
            jac[m, a, b] = 2.0 * sigma * sinv[a, b]
    g = np.empty((p, p))
    for i in range(m):
        k = st.theta_term[i]
        q = st.term_q[k]
        g[:, :] = 0.0
        for base in range(st.term_row0[k], _term_end(st, k), q):
            row_a = base + st.theta_row[i]
            row_b = base + st.theta_col[i]
            for a in range(p):
                for b in range(p):
                    g[a, b] -= ma[row_a, a] * u[row_b, b]  # M_b = −U_Z
        for a in range(p):
            for b in range(p):
                jac[i, a, b] = sigma2 * (g[a, b] + g[b, a])
    return True


@jit
def _quadratic_form(contrast, matrix):
    """L'AL."""
    p = contrast.shape[0]
    value = 0.0
    for a in range(p):
        for b in range(p):
            value += contrast[a] * matrix[a, b] * contrast[b]
    return value


@jit
def satterthwaite_df(contrast, vcov, jac, varpar_cov):
    """(L'CL, ν) for the contrast L: ν = 2(L'CL)² / (g'Ag), gᵢ = L'(∂C/∂φᵢ)L."""
    k = jac.shape[0]
    variance = _quadratic_form(contrast, vcov)
    g = np.empty(k)
    for i in range(k):
        g[i] = _quadratic_form(contrast, jac[i])
    denominator = _quadratic_form(g, varpar_cov)
    return variance, 2.0 * variance * variance / denominator


@jit
def satterthwaite(theta, sigma, st, cp, ws, reml, vcov, jac, varpar_cov):
    """Everything Satterthwaite's ν needs at (θ, σ): C, ∂C/∂φ and A = 2H⁺.

    Returns the number of eigenvalues of H dropped, or −1 where Ω is not positive definite.
    """
    m = theta.shape[0]
    hess = np.empty((m + 1, m + 1))
    if not varpar_hessian(theta, sigma, st, cp, ws, reml, hess):
        return -1
    dropped = varpar_covariance(hess, varpar_cov)
    if not vcov_jacobian(theta, sigma, st, cp, ws, vcov, jac):
        return -1
    return dropped


@jit
def satterthwaite_coefficients(theta, sigma, st, cp, ws, reml, df):
    """Satterthwaite's ν of every coefficient into `df` (p,); NaN where it cannot be computed."""
    m = theta.shape[0]
    p = st.p
    if p == 0:
        return
    vcov = np.empty((p, p))
    jac = np.empty((m + 1, p, p))
    varpar_cov = np.empty((m + 1, m + 1))
    if satterthwaite(theta, sigma, st, cp, ws, reml, vcov, jac, varpar_cov) < 0:
        df[:] = np.nan
        return
    contrast = np.zeros(p)
    for j in range(p):
        contrast[:] = 0.0
        contrast[j] = 1.0
        df[j] = satterthwaite_df(contrast, vcov, jac, varpar_cov)[1]


# ---------------------------------------------------------------------------- Kenward–Roger


@jit
def dense_cross_products(st, cp):
    """A = D'D on the random-effect and fixed-effect rows, (N−1)², from the blocks of the fit."""
    total = st.row_term.shape[0]
    size = total - 1
    a = np.zeros((size, size))
    for f in range(st.front_term.shape[0]):
        lo = st.front_ptr[f]
        s = st.front_ptr[f + 1] - lo
        q = st.term_q[st.front_term[f]]
        rows = st.front_rows[lo : lo + s]
        acol = cp.a_front[st.front_acol_ptr[f] : st.front_acol_ptr[f + 1]]
        for r in range(s - 1):  # the last row is the response
            for c in range(q):
                a[rows[r], rows[c]] = acol[r * q + c]
                a[rows[c], rows[r]] = acol[r * q + c]
    d = cp.a_tt.shape[0]
    for i in range(d - 1):
        for j in range(d - 1):
            a[st.t0 + i, st.t0 + j] = cp.a_tt[i, j]
    return a


@jit
def dense_lambda(st, theta):
    """Λ (q × q over all random effects): each level's λ on its diagonal block."""
    nrandom = _nrandom(st)
    lam = np.zeros((nrandom, nrandom))
    for i in range(theta.shape[0]):
        k = st.theta_term[i]
        q = st.term_q[k]
        for base in range(st.term_row0[k], _term_end(st, k), q):
            lam[base + st.theta_row[i], base + st.theta_col[i]] = theta[i]
    return lam


@jit
def _pairs(st, r):
    """The entries (a, a') of E_r for the covariance parameter r (as θ's (term, row, col))."""
    k = st.theta_term[r]
    q = st.term_q[k]
    i, j = st.theta_row[r], st.theta_col[r]
    nlevels = (_term_end(st, k) - st.term_row0[k]) // q
    count = nlevels if i == j else 2 * nlevels
    first = np.empty(count, np.int64)
    second = np.empty(count, np.int64)
    e = 0
    for base in range(st.term_row0[k], _term_end(st, k), q):
        first[e] = base + i
        second[e] = base + j
        e += 1
        if i != j:
            first[e] = base + j
            second[e] = base + i
            e += 1
    return first, second


@jit
def _generalised_inverse(a):
    """Moore–Penrose inverse with MASS::ginv's tolerance (√ε times the largest singular value)."""
    u, s, vt = np.linalg.svd(a)
    tol = np.sqrt(np.finfo(np.float64).eps) * s[0]
    k = a.shape[0]
    out = np.zeros((k, k))
    for e in range(s.shape[0]):
        if s[e] > tol:
            for i in range(k):
                for j in range(k):
                    out[i, j] += vt[e, i] * u[j, e] / s[e]
    return out


@jit
def kenward_roger(theta, sigma, st, cp, phi, phi_adjusted, pmats, weights):
    """pbkrtest's vcovAdj at (θ, σ): Φ, Φ_A, the P_r (m+1, p, p) and W (m+1, m+1).

    Dense in the random effects (see the module docstring). False where C̃ is not positive
    definite.
    """
    n, p = st.n, st.p
    m = theta.shape[0]
    ng = m + 1
    nq = _nrandom(st)
    a = dense_cross_products(st, cp)
    lam = dense_lambda(st, theta)
    lam_t = np.ascontiguousarray(lam.T)
    a_zz = np.ascontiguousarray(a[:nq, :nq])
    if not (np.all(np.isfinite(theta)) and np.isfinite(sigma) and sigma > 0.0):
        return False
    c_tilde = lam_t @ a_zz @ lam  # + I: positive definite for every θ
    for i in range(nq):
        c_tilde[i, i] += 1.0
    kmat = lam @ np.linalg.solve(c_tilde, lam_t)
    a_z = np.ascontiguousarray(a[:, :nq])
    f1 = a - a_z @ (kmat @ np.ascontiguousarray(a[:nq, :]))
    f2 = f1 - a_z @ (kmat @ np.ascontiguousarray(f1[:nq, :]))
    f3_xx = f2[nq:, nq:] - np.ascontiguousarray(a_z[nq:, :]) @ (kmat @ np.ascontiguousarray(f2[:nq, nq:]))
    ka = kmat @ a_zz
    trace_v2 = float(n) - 2.0 * np.trace(ka) + np.sum(ka * ka.T)
    s2 = sigma * sigma

    f1_xz = np.ascontiguousarray(f1[nq:, :nq])
    f1_zx = np.ascontiguousarray(f1[:nq, nq:])
    f1_zz = np.ascontiguousarray(f1[:nq, :nq])
    f2_zx = np.ascontiguousarray(f2[:nq, nq:])
    phi[:, :] = s2 * np.linalg.inv(np.ascontiguousarray(f1[nq:, nq:]))
    # Y_r = F₁_XZ E_r (p × q) and its transpose, so that X'Σ⁻¹G_rΣ⁻¹X = Y_r F₁_ZX / σ⁴;
    # the residual's G is I
    y = np.zeros((m, p, nq))
    y_t = np.zeros((m, nq, p))
    for r in range(m):
        first, second = _pairs(st, r)
        for e in range(first.shape[0]):
            for x in range(p):
                y[r, x, second[e]] += f1_xz[x, first[e]]
                y_t[r, second[e], x] += f1_xz[x, first[e]]
    qmats = np.empty((ng, ng, p, p))
    ktrace = np.empty((ng, ng))
    for r in range(m):
        pmats[r] = -(y[r] @ f1_zx) / s2**2
        yn = y[r] @ f1_zz
        for s in range(m):
            qmats[r, s] = (yn @ y_t[s]) / s2**3
        qmats[r, m] = (y[r] @ f2_zx) / s2**3
        qmats[m, r] = np.ascontiguousarray(qmats[r, m].T)
    pmats[m] = -np.ascontiguousarray(f2[nq:, nq:]) / s2**2
    qmats[m, m] = f3_xx / s2**3
    for r in range(m):
        first_r, second_r = _pairs(st, r)
        for s in range(r, m):
            first_s, second_s = _pairs(st, s)
            acc = 0.0
            for e in range(first_r.shape[0]):
                for e2 in range(first_s.shape[0]):
                    acc += f1_zz[second_r[e], first_s[e2]] * f1_zz[second_s[e2], first_r[e]]
            ktrace[r, s] = acc / s2**2
            ktrace[s, r] = acc / s2**2
        acc = 0.0
        for e in range(first_r.shape[0]):
            acc += f2[second_r[e], first_r[e]]
        ktrace[r, m] = acc / s2**2
        ktrace[m, r] = acc / s2**2
    ktrace[m, m] = trace_v2 / s2**2

    info2 = np.empty((ng, ng))  # pbkrtest's IE2, twice the expected information
    phi_p = np.empty((ng, p, p))
    for r in range(ng):
        phi_p[r] = phi @ pmats[r]
    for r in range(ng):
        for s in range(r, ng):
            value = ktrace[r, s] - 2.0 * np.sum(phi * qmats[r, s]) + np.sum(phi_p[r] * phi_p[s].T)
            info2[r, s] = value
            info2[s, r] = value
    if np.min(np.abs(np.linalg.eigvalsh(info2))) > INFORMATION_TOL:
        weights[:, :] = 2.0 * np.linalg.inv(info2)
    else:
        weights[:, :] = 2.0 * _generalised_inverse(info2)
    for r in range(ng):
        for s in range(r):
            v = 0.5 * (weights[r, s] + weights[s, r])
            weights[r, s] = v
            weights[s, r] = v
    u = np.zeros((p, p))
    for r in range(ng):
        for s in range(ng):
            u += weights[r, s] * (qmats[r, s] - pmats[r] @ phi_p[s])
    phi_adjusted[:, :] = phi + 2.0 * (phi @ u @ phi)
    return True


@jit
def kenward_roger_df(contrast, phi, pmats, weights):
    """ν of the t test of one contrast L (pbkrtest's Lb_ddf, q = 1)."""
    ng = pmats.shape[0]
    p = contrast.shape[0]
    lphil = _quadratic_form(contrast, phi)
    theta_phi = np.outer(contrast, contrast) @ phi / lphil
    u = np.empty((ng, p, p))
    for r in range(ng):
        u[r] = theta_phi @ pmats[r] @ phi
    a1 = 0.0
    a2 = 0.0
    for r in range(ng):
        for s in range(r, ng):
            e = 1.0 if r == s else 2.0
            a1 += e * weights[r, s] * np.trace(u[r]) * np.trace(u[s])
            a2 += e * weights[r, s] * np.sum(u[r] * u[s].T)
    q = 1.0
    b = (a1 + 6.0 * a2) / (2.0 * q)
    g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
    denominator = 3.0 * q + 2.0 * (1.0 - g)
    c1 = g / denominator
    c2 = (q - g) / denominator
    c3 = (q + 2.0 - g) / denominator
    v0 = 1.0 + c1 * b
    v1 = 1.0 - c2 * b
    v2 = 1.0 - c3 * b
    if abs(v0) < 1e-10:
        v0 = 0.0
    x = 1.0 - a2 / q
    ratio = 1.0 if abs(x) < 1e-14 and abs(v1) < 1e-14 else x / v1  # pbkrtest's .divZero
    rho = ratio * ratio * v0 / (q * v2)
    return 4.0 + (q + 2.0) / (q * rho - 1.0)


@jit
def kenward_roger_coefficients(theta, sigma, st, cp, std_error, df):
    """Kenward–Roger's adjusted SE and ν of every coefficient; NaN where they cannot be computed."""
    m = theta.shape[0]
    p = st.p
    if p == 0:
        return
    phi = np.empty((p, p))
    phi_adjusted = np.empty((p, p))
    pmats = np.empty((m + 1, p, p))
    weights = np.empty((m + 1, m + 1))
    if not kenward_roger(theta, sigma, st, cp, phi, phi_adjusted, pmats, weights):
        std_error[:] = np.nan
        df[:] = np.nan
        return
    contrast = np.zeros(p)
    for j in range(p):
        contrast[:] = 0.0
        contrast[j] = 1.0
        std_error[j] = np.sqrt(phi_adjusted[j, j])
        df[j] = kenward_roger_df(contrast, phi, pmats, weights)
