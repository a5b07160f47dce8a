"""The profiled criterion with one variance parameter held fixed and all others re-optimised.

With β profiled out, the ML deviance (REML: the REML criterion) in θ and σ is

    D(θ, σ) = log|L_Z|² (+ log|R_X|²) + ν log(2πσ²) + r²(θ)/σ²,   ν = n (ML) or n − p (REML).

A profile holds one parameter on the data scale — σ, the SD of an effect, or the correlation
of two effects of a term, as lme4's `profile` does — and minimises D over the others. The
others are searched in a vector ψ of θ's size, in which D is smooth through the boundary (as in
the fits, θ is unbounded: D depends on ΛΛ' only), with the constraint eliminated:

- σ = c (`SIGMA`): ψ = θ and D(θ, c).
- SD of effect i of term k = c > 0 (`SD`): ψ = θ and σ = c/‖λᵢ‖ (λᵢ the i-th row of λₖ).
- that SD = 0 (`SD_ZERO`): row i of λₖ is 0 whatever ψ holds; σ is profiled out, so the
  criterion is the fits' d(θ).
- correlation of effects i < j of term k = ρ, |ρ| < 1 (`CORR`): σ is profiled out; row j is
  x + κ‖x‖u with u = λᵢ/‖λᵢ‖, x = v − (v·u)u, κ = ρ/√(1 − ρ²), and ψ holds v in row j's place.
  Then λᵢ·λⱼ = κ‖x‖‖λᵢ‖ and ‖λⱼ‖ = ‖x‖/√(1 − ρ²): the correlation is ρ for every ψ.
- correlation = ±1 (`CORR_BOUND`): row j = ±|t|u, t in the diagonal slot of row j.

Entries of ψ the criterion does not read get a zero gradient and stay where they start. The
minimiser is a quasi-Newton (BFGS) search without bounds; the kernels here take arrays and
scalars only, so that a loop over parameters or profile points can run in nopython mode.
"""

import numpy as np

from workbench.kernels.montecarlo import SNAP, canonical_theta, fit_theta_from
from workbench.kernels.objective import criterion, factorize, residual_dof, weighted_gradient
from workbench.kernels.options import jit
from workbench.kernels.products import refresh_response
from workbench.kernels.status import CONVERGED, FAILED, ITERATION_LIMIT, STALLED

# Typed as the run-time values they stand for (a plain constant would be a literal type, and
# every kernel it reaches would be compiled once more for it).
SIGMA = np.int64(0)
SD = np.int64(1)
SD_ZERO = np.int64(2)
CORR = np.int64(3)
CORR_BOUND = np.int64(4)
ML = np.bool_(False)  # the reml flag of an ML fit


@jit
def theta_index(st, k, row, col):
    """Position in θ of λₖ[row, col], or −1 when it is not a θ entry."""
    for t in range(st.theta_term.shape[0]):
        if st.theta_term[t] == k and st.theta_row[t] == row and st.theta_col[t] == col:
            return t
    return -1


@jit
def _row(st, vector, k, row, q, out):
    """Row `row` of term k's λ-shaped entries of `vector` into out[:q] (zeros right of the diagonal)."""
    for c in range(q):
        t = theta_index(st, k, row, c) if c <= row else -1
        out[c] = vector[t] if t >= 0 else 0.0


@jit
def _set_row(st, vector, k, row, q, values):
    for c in range(row + 1):
        vector[theta_index(st, k, row, c)] = values[c]


@jit
def _direction(st, psi, k, i, q, u):
    """u = λᵢ/‖λᵢ‖ from ψ (row i of term k); returns ‖λᵢ‖ (0 when the row is zero)."""
    _row(st, psi, k, i, q, u)
    norm = np.sqrt((u * u).sum())
    if norm > 0.0:
        u /= norm
    return norm


@jit
def _corr_row(st, psi, k, i, j, q, rho, u, v, x):
    """Row j of λₖ for `CORR`; fills u, v, x and returns (row, ‖λᵢ‖, ‖x‖, κ)."""
    norm_i = _direction(st, psi, k, i, q, u)
    _row(st, psi, k, j, q, v)
    along = (v * u).sum()
    x[:] = v - along * u
    norm_x = np.sqrt((x * x).sum())
    kappa = rho / np.sqrt(1.0 - rho * rho)
    return x + kappa * norm_x * u, norm_i, norm_x, kappa


@jit
def theta_of(psi, mode, k, i, j, value, st, theta):
    """θ of the search vector ψ under a profile's constraint (see the module docstring)."""
    theta[:] = psi
    if mode == SIGMA or mode == SD:
        return
    q = st.term_q[k]
    if mode == SD_ZERO:
        _set_row(st, theta, k, i, q, np.zeros(q))
        return
    u = np.empty(q)
    if mode == CORR:
        row, _, _, _ = _corr_row(st, psi, k, i, j, q, value, u, np.empty(q), np.empty(q))
    else:
        _direction(st, psi, k, i, q, u)
        row = (1.0 if value > 0 else -1.0) * abs(psi[theta_index(st, k, j, j)]) * u
    _set_row(st, theta, k, j, q, row)


@jit
def profile_criterion(psi, mode, k, i, j, value, st, cp, ws, reml, theta, grad):
    """The criterion at ψ with the parameter held at `value`, and its gradient in ψ into `grad`.

    +inf (gradient NaN) where Ω is not positive definite or the constraint cannot hold
    (an SD held above 0 with its row of λ at 0, a correlation with the earlier effect's SD 0).
    """
    theta_of(psi, mode, k, i, j, value, st, theta)
    q = st.term_q[k] if st.term_q.shape[0] > 0 else 1
    u = np.empty(q)
    norm_i = 1.0
    if mode == SD or mode == CORR or mode == CORR_BOUND:
        norm_i = _direction(st, theta if mode == SD else psi, k, i, q, u)
    if norm_i == 0.0 or not factorize(theta, st, cp, ws):
        grad[:] = np.nan
        return np.inf
    d = ws.tt.shape[0]
    r2 = ws.tt[d - 1, d - 1] ** 2
    dof = residual_dof(st, reml)
    w_fixed = 1.0 if reml else 0.0
    profiled = criterion(st, ws, reml)
    if mode == SIGMA or mode == SD:
        # σ given (or fixed by the SD's constraint): D(θ, σ) = L0 + ν log(2πσ²) + r²/σ²
        sigma = value if mode == SIGMA else value / norm_i
        base = profiled - dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
        result = base + dof * np.log(2.0 * np.pi * sigma**2) + r2 / sigma**2
        weighted_gradient(st, cp, ws, w_fixed, r2 / sigma**2, grad)
        if mode == SD:
            # σ = c/‖λᵢ‖: ∂σ/∂λᵢ = −σλᵢ/‖λᵢ‖²
            d_sigma = 2.0 * dof / sigma - 2.0 * r2 / sigma**3
            for c in range(i + 1):
                t = theta_index(st, k, i, c)
                grad[t] -= d_sigma * sigma * theta[t] / norm_i**2
        return result
    weighted_gradient(st, cp, ws, w_fixed, dof, grad)
    if mode == SD_ZERO:
        for c in range(i + 1):
            grad[theta_index(st, k, i, c)] = 0.0
        return profiled
    g_i = np.empty(q)
    g_j = np.empty(q)
    _row(st, grad, k, i, q, g_i)
    _row(st, grad, k, j, q, g_j)
    along_g = (u * g_j).sum()
    grad_u = np.zeros(q)
    if mode == CORR:
        v = np.empty(q)
        x = np.empty(q)
        _, _, norm_x, kappa = _corr_row(st, psi, k, i, j, q, value, u, v, x)
        unit_x = x / norm_x if norm_x > 0.0 else np.zeros(q)
        along_v = (v * u).sum()
        # λⱼ = Pv + κ‖Pv‖u, P = I − uu': through v, and through u
        grad_v = g_j - along_g * u + kappa * along_g * unit_x
        grad_u = -along_g * v - along_v * g_j - kappa * along_v * along_g * unit_x + kappa * norm_x * g_j
        for c in range(q):
            if c > j:
                grad_v[c] = 0.0
    else:
        sign = 1.0 if value > 0 else -1.0
        t = theta_index(st, k, j, j)
        grad_v = np.zeros(q)
        grad_v[j] = sign * (1.0 if psi[t] >= 0 else -1.0) * along_g
        grad_u = sign * abs(psi[t]) * g_j
    # u = λᵢ/‖λᵢ‖: ∂u/∂λᵢ = (I − uu')/‖λᵢ‖ on row i's entries
    along_u = 0.0
    for c in range(i + 1):
        along_u += u[c] * grad_u[c]
    for c in range(i + 1):
        g_i[c] += (grad_u[c] - along_u * u[c]) / norm_i
    _set_row(st, grad, k, i, q, g_i)
    _set_row(st, grad, k, j, q, grad_v)
    return profiled


@jit
def minimize_profile(psi, mode, k, i, j, value, st, cp, ws, reml, gtol, max_iter):
    """Minimise the profile criterion over ψ (updated in place) by BFGS with backtracking.

    Converged when |gradient| < gtol·(1 + |criterion|), or when no step lowers it any more and
    the gradient is below 100 times that (the rounding floor of a difference of large sums,
    as in `kernels.optimize.minimize`). Returns (criterion, evaluations, code).
    """
    m = psi.shape[0]
    theta = np.empty(m)
    grad = np.empty(m)
    value_now = profile_criterion(psi, mode, k, i, j, value, st, cp, ws, reml, theta, grad)
    evals = 1
    if not np.isfinite(value_now):
        return value_now, evals, FAILED
    hinv = np.eye(m)
    scaled = False
    trial = np.empty(m)
    grad_new = np.empty(m)
    code = ITERATION_LIMIT
    for _ in range(max_iter):
        worst = 0.0
        for a in range(m):
            worst = max(worst, abs(grad[a]))
        if worst < gtol * (1.0 + abs(value_now)):
            code = CONVERGED
            break
        direction = -(hinv @ grad)
        slope = (direction * grad).sum()
        if not slope < 0.0:
            hinv[:, :] = np.eye(m)
            scaled = False
            direction = -grad
            slope = -(grad * grad).sum()
        step = 1.0
        if not scaled:
            big = np.abs(direction).max()
            step = min(1.0, 0.1 / big) if big > 0 else 1.0
        accepted = False
        new_value = value_now
        for _ls in range(40):
            trial[:] = psi + step * direction
            new_value = profile_criterion(trial, mode, k, i, j, value, st, cp, ws, reml, theta, grad_new)
            evals += 1
            if np.isfinite(new_value) and new_value <= value_now + 1e-4 * step * slope:
                accepted = True
                break
            denom = 2.0 * (new_value - value_now - step * slope)
            shrink = 0.5
            if np.isfinite(new_value) and denom > 0.0:
                shrink = min(0.5, max(0.1, -step * slope / denom))
            step *= shrink
        if not accepted:
            code = CONVERGED if worst < 100.0 * gtol * (1.0 + abs(value_now)) else STALLED
            break
        s = trial - psi
        yv = grad_new - grad
        sy = (s * yv).sum()
        psi[:] = trial
        grad[:] = grad_new
        previous = value_now
        value_now = new_value
        if sy > 1e-12 * np.sqrt((yv * yv).sum() * (s * s).sum()):
            if not scaled:
                hinv[:, :] = np.eye(m) * (sy / (yv * yv).sum())
                scaled = True
            hy = hinv @ yv
            yhy = (yv * hy).sum()
            for a in range(m):
                for b in range(m):
                    hinv[a, b] += ((sy + yhy) * s[a] * s[b]) / (sy * sy) - (hy[a] * s[b] + s[a] * hy[b]) / sy
        if previous - value_now <= 1e-15 * abs(value_now):
            worst = np.abs(grad).max() if m > 0 else 0.0
            code = CONVERGED if worst < 100.0 * gtol * (1.0 + abs(value_now)) else STALLED
            break
    return value_now, evals, code


@jit
def profile_point(psi, mode, k, i, j, value, st, cp, ws, reml, gtol, max_iter, theta):
    """The profiled criterion at one value of the parameter, from the start ψ (updated).

    A diagonal entry of λ that ends near 0 is tried again from `SNAP` (see the comment below),
    and the lower of the two minima kept.

    The θ of the optimum, made canonical (non-negative diagonal of λ), goes to `theta`.
    Returns (criterion, evaluations, code).
    """
    result, evals, code = minimize_profile(psi, mode, k, i, j, value, st, cp, ws, reml, gtol, max_iter)
    # D is even in each column of λ, so its gradient in a diagonal entry vanishes at 0 even where
    # 0 is a saddle (a singular start, such as a fit on the boundary): search again from off it
    trial = psi.copy()
    moved = False
    for t in range(psi.shape[0]):
        held = mode == SD_ZERO and st.theta_term[t] == k and st.theta_row[t] == i
        if st.theta_row[t] == st.theta_col[t] and abs(psi[t]) < SNAP and not held:
            trial[t] = SNAP
            moved = True
    if moved:
        other, more, other_code = minimize_profile(trial, mode, k, i, j, value, st, cp, ws, reml, gtol, max_iter)
        evals += more
        if other < result:
            psi[:] = trial
            result, code = other, other_code
    theta_of(psi, mode, k, i, j, value, st, theta)
    canonical_theta(st, theta)
    return result, evals, code


@jit
def fixed_effect_point(b, st, cp, codes, z, x, y, x_held, front0, ws, lower, gtol, max_iter, start, theta):
    """The ML deviance with one fixed effect held at b: an ML fit of y − b·x_held on the other columns.

    `st` and `cp` are the structure and cross-products of the design without that column
    (lme4's offset); only their response row is rewritten. θ̂ goes to `theta`. Returns
    (deviance, evaluations, code).
    """
    offset_y = y - b * x_held
    refresh_response(codes, z, x, offset_y, st, front0, cp.a_front, cp.a_tt)
    m = theta.shape[0]
    if m == 0:
        if not factorize(theta, st, cp, ws):
            return np.inf, 1, FAILED
        return criterion(st, ws, ML), 1, CONVERGED
    hinv = np.full((m, m), np.nan)
    value, evals, _, code = fit_theta_from(start, hinv, np.nan, np.empty(0), st, cp, ws, ML, lower, gtol, max_iter, theta)
    return value, evals, code
