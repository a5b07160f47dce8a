"""Fits, estimates and standard errors in nopython mode, and the parallel loop over replicates.

Estimates follow `workbench.model.truth.parameter_names`: β; per term the variances and covariances
σ²λλ'; σ²; then the same as SDs and correlations. β's SEs are σ̂²(R_X'R_X)⁻¹ (lme4's); the
variance components' come from the observed information of the criterion in φ = (θ, σ),
−2ℓ(θ, σ) = log|L_Z|² (+ log|R_X|² for REML) + ν log(2πσ²) + r²(θ)/σ², whose Hessian is taken by
central differences of its analytic gradient, then carried to each scale by the delta method.
"""

import numpy as np
from numba import prange

from workbench.kernels.objective import (
    deviance_and_gradient,
    factored_sigma_gradient,
    factorize,
    make_workspace,
    residual_dof,
    sigma_gradient,
    solve_effects,
)
from workbench.kernels.optimize import minimize
from workbench.kernels.scalar_fronts import all_scalar
from workbench.kernels.options import jit, jit_parallel
from workbench.kernels.simulate import simulate_responses
from workbench.kernels.start import FLOOR, moment_start
from workbench.kernels.status import CONVERGED, FAILED

SINGULAR_TOL = 1e-4  # lme4's isSingular tolerance on the diagonal of λ
SNAP = 0.05  # diagonals below this are tried at exactly 0, where d is flat and BFGS slow


@jit
def is_singular(theta, lower):
    for i in range(theta.shape[0]):
        if lower[i] == 0.0 and theta[i] < SINGULAR_TOL:
            return True
    return False


@jit
def canonical_theta(st, theta):
    """Flip the sign of every λ column whose diagonal is negative: ΛΛ' and d are unchanged."""
    m = theta.shape[0]
    for i in range(m):
        if st.theta_row[i] == st.theta_col[i] and theta[i] < 0.0:
            for j in range(m):
                if st.theta_term[j] == st.theta_term[i] and st.theta_col[j] == st.theta_col[i]:
                    theta[j] = -theta[j]


@jit
def _truncated(start, lower):
    """Which SDs of a start sit on the boundary or at the moment start's floor (estimates it truncated)."""
    m = start.shape[0]
    mask = np.zeros(m, np.bool_)
    for i in range(m):
        if lower[i] == 0.0 and (start[i] == 0.0 or abs(start[i] - FLOOR) <= 1e-9 * FLOOR):
            mask[i] = True
    return mask


@jit
def _face_inverse(hinv, snapped):
    """The inverse Hessian of d on the face θ_S = 0 (S = `snapped`) from the full one, `hinv`:
    the inverse of the Hessian's free block, zero on S's rows and columns. NaN-filled when
    `hinv` is unknown or not positive definite (the minimiser then starts from the identity).
    """
    m = hinv.shape[0]
    out = np.full((m, m), np.nan)
    if not np.isfinite(hinv).all():
        return out
    free = np.flatnonzero(~snapped)
    k = free.shape[0]
    if k == 0 or np.linalg.eigvalsh(0.5 * (hinv + hinv.T))[0] <= 0.0:
        return out
    hess = np.linalg.inv(hinv)
    block = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            block[a, b] = 0.5 * (hess[free[a], free[b]] + hess[free[b], free[a]])
    if np.linalg.eigvalsh(block)[0] <= 0.0:
        return out
    inverse = np.linalg.inv(block)
    out[:, :] = 0.0
    for a in range(k):
        for b in range(k):
            out[free[a], free[b]] = inverse[a, b]
    return out


@jit
def _snap_to_boundary(st, cp, ws, reml, lower, gtol, max_iter, theta, value, snapped, hinv):
    """Settle a near-singular θ: on the boundary if that is the optimum, else off it.

    Near θᵢ = 0 the criterion is flat (d ≈ d₀ + aθᵢ² + bθᵢ⁴), so an unbounded fit stops
    somewhere in that region. The `snapped` diagonals are set to 0 and the rest minimised
    with bounds (from `hinv` restricted to that face when it is known); then the
    second-order test: if the gradient at θᵢ = SINGULAR_TOL (lme4's singularity tolerance)
    points back to 0, the boundary is the optimum; if it points away (a < 0, 0 is a
    saddle), the optimum is interior and is refined from there. The settled θ replaces
    `theta` only if its criterion is not higher than `value`. Returns (replaced, criterion,
    evaluations, gradient norm).
    """
    m = theta.shape[0]
    if not snapped.any():
        return False, value, 0, np.inf
    trial = theta.copy()
    for i in range(m):
        if snapped[i]:
            trial[i] = 0.0
    settled = np.empty(m)
    new_value, evals, pg, code = minimize(
        trial, lower, st, cp, ws, reml, gtol, max_iter, settled, _face_inverse(hinv, snapped), np.nan, np.empty(0)
    )
    if code != CONVERGED:
        return False, value, evals, np.inf
    grad = np.empty(m)
    leave = False
    probe = settled.copy()
    for i in range(m):
        if snapped[i] and settled[i] == 0.0:
            probe[i] = SINGULAR_TOL
            deviance_and_gradient(probe, st, cp, ws, reml, grad)
            evals += 1
            if grad[i] < 0.0:
                leave = True
            else:
                probe[i] = 0.0
    if leave:
        # off the boundary along the directions that descend, from where θ was before it was
        # snapped (if that is further out: the crawl across the flat region is slow), then
        # bounded steps
        for i in range(m):
            if probe[i] > 0.0 and snapped[i]:
                probe[i] = max(theta[i], SINGULAR_TOL)
        new_value, more, pg, code = minimize(probe, lower, st, cp, ws, reml, gtol, max_iter, settled, hinv, np.nan, np.empty(0))
        evals += more
        if code != CONVERGED:
            return False, value, evals, np.inf
    if new_value <= value:
        theta[:] = settled
        return True, new_value, evals, pg
    return False, value, evals, np.inf


@jit
def _fit_from(start, hinv0, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta):
    """Minimisation from `start`, made canonical, then the boundary polish.

    A start whose SDs were truncated (the moment estimate at its floor, or a previous
    method's optimum on the boundary) is settled on that boundary directly: the unbounded
    fit would only crawl towards it first. Otherwise, and when that fails, the fit is
    unbounded and the SDs it leaves below SNAP are settled after.
    """
    m = theta.shape[0]
    evals = 0
    truncated = _truncated(start, lower)
    if truncated.any():
        theta[:] = start
        replaced, value, evals, pg = _snap_to_boundary(
            st, cp, ws, reml, lower, gtol, max_iter, theta, np.inf, truncated, hinv0
        )
        if replaced:
            return value, evals, pg, CONVERGED
        value0 = np.nan
    value, more, pg, code = minimize(
        start, np.full(m, -np.inf), st, cp, ws, reml, gtol, max_iter, theta, hinv0, value0, grad0
    )
    evals += more
    canonical_theta(st, theta)
    if code == CONVERGED:
        small = np.zeros(m, np.bool_)
        for i in range(m):
            small[i] = lower[i] == 0.0 and theta[i] < SNAP
        replaced, new_value, more, new_pg = _snap_to_boundary(
            st, cp, ws, reml, lower, gtol, max_iter, theta, value, small, hinv0
        )
        evals += more
        if replaced:
            value, pg = new_value, new_pg
    return value, evals, pg, code


@jit
def initial_guess(st, cp, ws, reml, lower):
    """The moment start and, where d is convex there, its inverse Hessian (else NaN).

    The Hessian comes from forward differences of the analytic gradient; with it the
    quasi-Newton steps are good from the first one. Returns (start, hinv, evaluations,
    d at the start, its gradient there), the last two for the minimiser's first step.
    """
    start = moment_start(st, cp, lower)
    m = start.shape[0]
    hinv = np.full((m, m), np.nan)
    base = np.empty(m)
    moved = np.empty(m)
    value = deviance_and_gradient(start, st, cp, ws, reml, base)
    if not np.isfinite(value):
        return start, hinv, 1, value, base
    hess = np.empty((m, m))
    for i in range(m):
        h = 1e-5 * max(abs(start[i]), 1.0)
        step = start.copy()
        step[i] += h
        if not np.isfinite(deviance_and_gradient(step, st, cp, ws, reml, moved)):
            return start, hinv, i + 2, value, base
        for j in range(m):
            hess[j, i] = (moved[j] - base[j]) / h
    hess = 0.5 * (hess + hess.T)
    if m > 0 and np.linalg.eigvalsh(hess)[0] > 0.0:
        hinv = np.ascontiguousarray(np.linalg.inv(hess))  # LAPACK returns Fortran order
    return start, hinv, m + 1, value, base


@jit
def fit_theta(st, cp, ws, reml, lower, gtol, max_iter, theta):
    """θ̂ from the initial guess (see `fit_theta_from`)."""
    start, hinv, guess_evals, value0, grad0 = initial_guess(st, cp, ws, reml, lower)
    value, evals, pg, code = fit_theta_from(start, hinv, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta)
    return value, evals + guess_evals, pg, code


@jit
def fit_theta_from(start, hinv0, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta):
    """θ̂ into `theta` from `start` (with inverse Hessian `hinv0`, or NaN for none; d there
    and its gradient as `value0` and `grad0` when known, else NaN).

    θ is optimised without bounds: d depends on ΛΛ' only, so it is even in each column of λ,
    and a bound at 0 would be a trap — the gradient vanishes there by symmetry even where 0
    is a saddle, not a minimum. The result is made canonical (non-negative diagonal), as
    lme4 reports it, and a singular one passes a second-order test on the boundary (a start
    whose SDs were truncated is settled there first, see `_fit_from`). When
    the optimiser does not converge, lme4's identity start is tried too and the lower
    criterion wins. Returns (criterion, evaluations, gradient norm, code).
    """
    m = theta.shape[0]
    value, evals, pg, code = _fit_from(start, hinv0, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta)
    if code == CONVERGED:
        return value, evals, pg, code
    identity = np.zeros(m)
    for i in range(m):
        if lower[i] == 0.0:
            identity[i] = 1.0
    other = np.empty(m)
    value2, evals2, pg2, code2 = _fit_from(identity, np.full((m, m), np.nan), np.nan, np.empty(0), st, cp, ws, reml, lower, gtol, max_iter, other)
    if value2 < value:
        theta[:] = other
        return value2, evals + evals2, pg2, code2
    return value, evals + evals2, pg, code


@jit
def _information_inverse(theta, sigma, st, cp, ws, reml):
    """vcov of φ = (θ, σ): 2 H⁻¹ with H the Hessian of −2ℓ; NaN when H is not positive definite.

    H's θ columns are forward differences of the analytic gradient around the optimum: m + 1
    gradients, and a relative accuracy of about 1e-5, ample for standard errors. Its σ column
    needs no step of its own: ∂²/∂σ∂θᵢ is the σ row of the θᵢ column (H is symmetric), and
    ∂²/∂σ² = −2ν/σ² + 6r²/σ⁴ exactly. `ws` holds the factor at θ (the first gradient is taken
    from it).
    """
    m = theta.shape[0]
    hess = np.empty((m + 1, m + 1))
    base = np.empty(m + 1)
    moved = np.empty(m + 1)
    d = ws.tt.shape[0]
    r2 = ws.tt[d - 1, d - 1] ** 2
    dof = residual_dof(st, reml)
    factored_sigma_gradient(sigma, st, cp, ws, reml, base)
    for i in range(m):
        h = 1e-5 * max(abs(theta[i]), 1.0)
        step = theta.copy()
        step[i] += h
        if not sigma_gradient(step, sigma, st, cp, ws, reml, moved):
            return np.full((m + 1, m + 1), np.nan)
        for j in range(m + 1):
            hess[j, i] = (moved[j] - base[j]) / h
    for j in range(m):
        hess[j, m] = hess[m, j]
    hess[m, m] = -2.0 * dof / sigma**2 + 6.0 * r2 / sigma**4
    hess = 0.5 * (hess + hess.T)
    values = np.linalg.eigvalsh(hess)
    if not values[0] > 0.0:
        return np.full((m + 1, m + 1), np.nan)
    return 2.0 * np.linalg.inv(hess)


@jit
def _components(st, theta, sigma, values, jac):
    """Variance-component values and their Jacobian in φ = (θ, σ), in parameter-name order."""
    m = theta.shape[0]
    nterms = st.term_q.shape[0]
    half = m + 1  # var/cov entries; the sd/corr entries follow
    jac[:, :] = 0.0
    row = 0
    for k in range(nterms):
        q = st.term_q[k]
        # λ from θ through the θ map (term, row, col) the structure carries
        lam = np.zeros((q, q))
        index = np.zeros((q, q), np.int64)
        for t in range(m):
            if st.theta_term[t] == k:
                lam[st.theta_row[t], st.theta_col[t]] = theta[t]
                index[st.theta_row[t], st.theta_col[t]] = t
        cov = sigma**2 * (lam @ lam.T)
        dcov = np.zeros((q, q, m + 1))
        for c in range(q):
            for r in range(c, q):
                p = index[r, c]
                for a in range(q):
                    for b in range(q):
                        v = 0.0
                        if a == r:
                            v += lam[b, c]
                        if b == r:
                            v += lam[a, c]
                        dcov[a, b, p] = sigma**2 * v
        for a in range(q):
            for b in range(q):
                dcov[a, b, m] = 2.0 * cov[a, b] / sigma
        # the entries of this term: variances, then pairs (a, b), a < b
        count = q * (q + 1) // 2
        pairs_a = np.empty(count, np.int64)
        pairs_b = np.empty(count, np.int64)
        e = 0
        for a in range(q):
            pairs_a[e] = a
            pairs_b[e] = a
            e += 1
        for a in range(q):
            for b in range(a + 1, q):
                pairs_a[e] = a
                pairs_b[e] = b
                e += 1
        for e in range(count):
            a, b = pairs_a[e], pairs_b[e]
            values[row + e] = cov[a, b]
            jac[row + e, :] = dcov[a, b, :]
            sd_a = np.sqrt(cov[a, a])
            sd_b = np.sqrt(cov[b, b])
            if a == b:
                values[half + row + e] = sd_a
                if sd_a > 0:
                    jac[half + row + e, :] = dcov[a, a, :] / (2.0 * sd_a)
                else:
                    jac[half + row + e, :] = np.nan
            elif sd_a > 0 and sd_b > 0:
                corr = cov[a, b] / (sd_a * sd_b)
                values[half + row + e] = min(1.0, max(-1.0, corr))
                jac[half + row + e, :] = dcov[a, b, :] / (sd_a * sd_b) - corr * (
                    dcov[a, a, :] / (2.0 * cov[a, a]) + dcov[b, b, :] / (2.0 * cov[b, b])
                )
            else:
                values[half + row + e] = np.nan
                jac[half + row + e, :] = np.nan
        row += count
    values[row] = sigma**2
    jac[row, m] = 2.0 * sigma
    values[half + row] = sigma
    jac[half + row, m] = 1.0


@jit
def estimates(st, cp, ws, reml, theta, est, se):
    """Parameter estimates and standard errors of a fit at θ̂ (parameter-name order).

    Returns the inverse Hessian of the profiled criterion in θ, (H⁻¹)_θθ (NaN if unknown).
    """
    m = theta.shape[0]
    if not factorize(theta, st, cp, ws):
        est[:] = np.nan
        se[:] = np.nan
        return np.full((m, m), np.nan)
    p = st.p
    m = theta.shape[0]
    d = ws.tt.shape[0]
    r2 = ws.tt[d - 1, d - 1] ** 2
    sigma2 = r2 / residual_dof(st, reml)
    sigma = np.sqrt(sigma2)
    solution = solve_effects(st, ws)
    nrandom = solution.shape[0] - p
    lxx = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            lxx[i, j] = ws.tt[d - 1 - p + i, d - 1 - p + j]
    inv = np.linalg.inv(lxx) if p > 0 else lxx
    for i in range(p):
        est[i] = solution[nrandom + i]
        acc = 0.0
        for k in range(p):
            acc += inv[k, i] ** 2
        se[i] = np.sqrt(sigma2 * acc)
    nvc = 2 * (m + 1)
    values = np.empty(nvc)
    jac = np.empty((nvc, m + 1))
    _components(st, theta, sigma, values, jac)
    vcov = _information_inverse(theta, sigma, st, cp, ws, reml)  # ws still holds the factor at θ
    for i in range(nvc):
        est[p + i] = values[i]
        acc = 0.0
        for a in range(m + 1):
            for b in range(m + 1):
                acc += jac[i, a] * vcov[a, b] * jac[i, b]
        se[p + i] = np.sqrt(acc) if acc >= 0 else np.nan
    # vcov = 2 H⁻¹, and the θθ block of H⁻¹ is the inverse Hessian of d = min_σ D
    return 0.5 * vcov[:m, :m]


@jit
def fit_replicate(start, hinv, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta, est, se):
    """Fit one data set by one method from `start` (and inverse Hessian `hinv`; d there and
    its gradient as `value0` and `grad0` when known, else NaN), θ̂ into `theta`.

    `hinv` is overwritten with the inverse Hessian at the optimum. Returns (criterion,
    evaluations, converged, singular, status) with the codes of `kernels.status`.
    """
    value, evals, pg, code = fit_theta_from(start, hinv, value0, grad0, st, cp, ws, reml, lower, gtol, max_iter, theta)
    if not np.isfinite(value):
        est[:] = np.nan
        se[:] = np.nan
        hinv[:, :] = np.nan
        return value, evals, False, False, FAILED
    hinv[:, :] = estimates(st, cp, ws, reml, theta, est, se)
    return value, evals, code == CONVERGED, is_singular(theta, lower), code


@jit
def _method_order(st, reml_flags):
    """The order in which to fit the methods: REML first when every term is scalar, else as given.

    The moment start of scalar terms is unbiased for their variances (ANOVA's estimate, on
    balanced data, which is REML's), so REML's optimum is the nearer one; the start of
    terms with several effects per level lies nearer ML's.
    """
    nmethods = reml_flags.shape[0]
    order = np.empty(nmethods, np.int64)
    count = 0
    if all_scalar(st):
        for first_reml in (True, False):
            for j in range(nmethods):
                if reml_flags[j] == first_reml:
                    order[count] = j
                    count += 1
    else:
        order[:] = np.arange(nmethods)
    return order


@jit
def fit_methods(st, cp, ws, reml_flags, lower, gtol, max_iter, i, out, thetas):
    """Fit data set `i` by every method; row i of out = (estimate (R, M, P), std_error (R, M, P),
    objective (R, M), converged, singular, n_evals, status), and θ̂ of method j in thetas[j].

    The first method fitted (see `_method_order`) starts from the moment estimates, the
    others from the previous optimum and its inverse Hessian: ML and REML optima of the same
    data set are close. The moment start's evaluations count towards the first one fitted.
    """
    estimate, std_error, objective, converged, singular, n_evals, status = out
    order = _method_order(st, reml_flags)
    nmethods = order.shape[0]
    start, hinv, guess_evals, value0, grad0 = initial_guess(st, cp, ws, reml_flags[order[0]], lower)
    theta = np.empty(lower.shape[0])
    for t in range(nmethods):
        j = order[t]
        value, evals, conv, sing, code = fit_replicate(
            start, hinv, value0, grad0, st, cp, ws, reml_flags[j], lower, gtol, max_iter, theta, estimate[i, j],
            std_error[i, j],
        )
        value0 = np.nan  # the next method's criterion differs: its start is evaluated afresh
        if code != FAILED:
            start = theta.copy()
        thetas[j] = theta
        objective[i, j] = value
        n_evals[i, j] = evals + (guess_evals if t == 0 else 0)
        converged[i, j] = conv
        singular[i, j] = sing
        status[i, j] = code


@jit_parallel
def simulate_chunk(sim, normals, out):
    """Responses of a chunk of replicates in parallel: `out[r]` from `normals[r]` (see `simulate_responses`).

    `sim` holds the arrays of `workbench.simulation.simulate.SimulationInputs`.
    """
    for r in prange(normals.shape[0]):
        simulate_responses(
            sim.xbeta, sim.codes, sim.z, sim.term_q, sim.term_offset, sim.lam, sim.sigma, normals[r : r + 1], out[r : r + 1]
        )
