"""Profile-likelihood limits of the SDs and of σ of one fit, in nopython mode, for the replicate loop.

As `workbench.fitting.intervals` (lme4's `confint(method = "profile")`): ζ(x) = sign(x − x̂)·
√(D(x) − D̂) on the ML deviance, every other parameter re-optimised (`kernels.profile`), and the
limits where ζ = ∓z. A REML fit is profiled through its ML refit, as lme4 1.1-31 does. From the
estimate the search steps out (z·SE, doubling) until ζ passes ±z, then the root is refined by
the Illinois variant of regula falsi; an SD whose ζ stays above −z down to 0 gets the lower
limit 0, and a limit ζ never reaches is ±inf. Each evaluation starts from the optimum of the
one before it on the same side. A variance's limits are its SD's squared (and σ²'s σ's), as the
profile is invariant under the monotone map. Fixed effects, covariances and correlations get
`NOT_IMPLEMENTED`.
"""

import numpy as np

from workbench.kernels.montecarlo import fit_theta_from
from workbench.kernels.objective import criterion, factorize
from workbench.kernels.options import jit
from workbench.kernels.profile import ML, SD, SD_ZERO, SIGMA, profile_point, theta_index
from workbench.kernels.reasons import COMPUTED, NOT_COMPUTABLE, NOT_IMPLEMENTED
from workbench.kernels.status import CONVERGED

PROFILE_GTOL = 1e-9  # as `fitting.intervals`: ζ near z needs D to ~1e-8
BRACKET_STEPS = 60
ROOT_STEPS = 100
# directions and the unused indices, typed as run-time integers (see kernels.profile)
DOWN, UP, NONE = np.int64(-1), np.int64(1), np.int64(0)


@jit
def _zeta(psi, mode, k, i, value, estimate, base, st, cp, ws, max_iter):
    """ζ at `value` from the start ψ (updated to the optimum); NaN if the profile fails."""
    theta = np.empty(psi.shape[0])
    use = mode
    if mode == SD and value == 0.0:
        use = SD_ZERO
    crit, _, code = profile_point(psi, use, k, i, NONE, value, st, cp, ws, ML, PROFILE_GTOL, max_iter, theta)
    if not np.isfinite(crit):
        return np.nan
    return np.sign(value - estimate) * np.sqrt(max(crit - base, 0.0))


@jit
def _limit(theta_ml, mode, k, i, estimate, se, sigma, base, side, z, st, cp, ws, max_iter):
    """The value where ζ = side·z on one side of the estimate (see the module docstring); NaN if it fails."""
    bound = 0.0 if side < 0 else np.inf
    if estimate == bound:
        return bound
    step = z * se if np.isfinite(se) and se > 0 else 0.25 * max(abs(estimate), 0.1 * sigma)
    psi = theta_ml.copy()
    if mode == SD:
        # an SD estimated as 0 held above 0 needs its row of λ off 0 to start from
        empty = True
        for c in range(i + 1):
            if psi[theta_index(st, k, i, c)] != 0.0:
                empty = False
        if empty:
            psi[theta_index(st, k, i, i)] = (estimate + side * step) / sigma
    previous, zeta_previous = estimate, 0.0
    value, current = estimate, 0.0
    found = False
    for _ in range(BRACKET_STEPS):
        value = estimate + side * step
        if side * (value - bound) >= 0:
            value = previous / 4 if mode == SIGMA else bound
        current = _zeta(psi, mode, k, i, value, estimate, base, st, cp, ws, max_iter)
        if not np.isfinite(current):
            return np.nan
        if side * current >= z:
            found = True
            break
        if value == bound:
            return bound
        previous, zeta_previous = value, current
        step *= 2.0
    if not found:
        return side * np.inf
    # Illinois regula falsi on f(t) = ζ(t) − side·z between previous (f < 0 side) and value
    a, fa = previous, zeta_previous - side * z
    b, fb = value, current - side * z
    scale = max(abs(estimate), abs(b - a), 1e-12)
    for _ in range(ROOT_STEPS):
        t = b - fb * (b - a) / (fb - fa)
        ft = _zeta(psi, mode, k, i, t, estimate, base, st, cp, ws, max_iter)
        if not np.isfinite(ft):
            return np.nan
        ft -= side * z
        if ft == 0.0 or abs(b - a) < 1e-10 * scale:
            return t
        if ft * fb < 0:
            a, fa = b, fb
        else:
            fa *= 0.5  # Illinois: the end kept twice has its value halved
        b, fb = t, ft
        if abs(b - a) < 1e-10 * scale:
            return b
    return b


@jit
def profile_limits(st, cp, ws, reml, lower_bounds, gtol, max_iter, theta, est, se, z, lower, upper, reason):
    """Profile limits of every SD (and its variance) and of σ (and σ²) of the fit at θ̂, in parameter order.

    `est`, `se`: the fit's estimates and SEs; `lower`, `upper`, `reason` (P,) are written.
    """
    p = st.p
    m = theta.shape[0]
    half = m + 1
    lower[:] = np.nan
    upper[:] = np.nan
    reason[:] = NOT_IMPLEMENTED
    theta_ml = theta.copy()
    if reml:
        # lme4 profiles a REML fit through its ML refit
        value, _, _, code = fit_theta_from(
            theta.copy(), np.full((m, m), np.nan), np.nan, np.empty(0), st, cp, ws, ML, lower_bounds, gtol, max_iter, theta_ml
        )
        if code != CONVERGED or not np.isfinite(value):
            reason[:] = NOT_COMPUTABLE
            return
    if not factorize(theta_ml, st, cp, ws):
        reason[:] = NOT_COMPUTABLE
        return
    base = criterion(st, ws, ML)
    d = ws.tt.shape[0]
    sigma = np.sqrt(ws.tt[d - 1, d - 1] ** 2 / float(st.n))
    # the ML estimates and (for the first step) their SEs: the fit's own for an ML fit, the
    # REML fit's SEs otherwise (only the step length depends on them)
    row = 0
    for k in range(st.term_q.shape[0]):
        q = st.term_q[k]
        for a in range(q):
            norm = 0.0
            for c in range(a + 1):
                norm += theta_ml[theta_index(st, k, a, c)] ** 2
            estimate = sigma * np.sqrt(norm)
            position = p + half + row + a
            low = _limit(theta_ml, SD, k, a, estimate, se[position], sigma, base, DOWN, z, st, cp, ws, max_iter)
            high = _limit(theta_ml, SD, k, a, estimate, se[position], sigma, base, UP, z, st, cp, ws, max_iter)
            _store(position, p + row + a, low, high, lower, upper, reason)
        row += q * (q + 1) // 2
    position = p + half + row
    low = _limit(theta_ml, SIGMA, NONE, NONE, sigma, se[position], sigma, base, DOWN, z, st, cp, ws, max_iter)
    high = _limit(theta_ml, SIGMA, NONE, NONE, sigma, se[position], sigma, base, UP, z, st, cp, ws, max_iter)
    _store(position, p + row, low, high, lower, upper, reason)


@jit
def _store(sd_position, var_position, low, high, lower, upper, reason):
    if np.isfinite(low) and not np.isnan(high):
        lower[sd_position], upper[sd_position] = low, high
        lower[var_position], upper[var_position] = low * low, high * high
        reason[sd_position] = COMPUTED
        reason[var_position] = COMPUTED
    else:
        reason[sd_position] = NOT_COMPUTABLE
        reason[var_position] = NOT_COMPUTABLE
