"""A bound-constrained quasi-Newton minimiser of d(θ), in nopython mode.

Projected BFGS: variables at their lower bound with a gradient pointing outwards are held
fixed; the others take quasi-Newton steps along the projected path, with a backtracking
Armijo line search. The inverse-Hessian estimate restarts when the active set changes.
Convergence is judged on the projected gradient, which is exact here (analytic gradient),
relative to the size of d: d is a difference of large sums, so its rounding noise grows with
|d| and a smaller gradient could not lower it any further.
"""

import numpy as np

from workbench.kernels.objective import deviance_and_gradient
from workbench.kernels.options import jit
from workbench.kernels.status import CONVERGED, FAILED, ITERATION_LIMIT, STALLED


@jit
def _projected_gradient_norm(theta, grad, lower):
    """The largest projected-gradient entry, each relative to max(1, |θᵢ|).

    Relative entries make the test blind to the units of θ: where d behaves like log θᵢ
    (a variance ratio growing without bound, as when σ is tiny) the absolute gradient
    shrinks like 1/θᵢ and would pass any absolute test far from the optimum.
    """
    worst = 0.0
    for i in range(theta.shape[0]):
        step = theta[i] - max(theta[i] - grad[i], lower[i])
        worst = max(worst, abs(step) * max(1.0, abs(theta[i])))
    return worst


@jit
def minimize(theta0, lower, st, cp, ws, reml, gtol, max_iter, theta, hinv0, value0, grad0):
    """Minimise d over θ ≥ lower from theta0; the result goes to `theta`.

    `hinv0` is a starting inverse Hessian (e.g. from a fit of the same data by another
    method), or NaN-filled to start from the identity. `value0` is d at theta0 (which must
    then be within the bounds) with its gradient in `grad0`, when the caller has them
    already, else NaN (and `grad0` is not read).

    Converged when |projected gradient| < gtol·(1 + |d|), or when no step lowers d any more
    and it is below 100 times that. Returns (d, evaluations, projected-gradient norm, code).
    """
    m = theta0.shape[0]
    for i in range(m):
        theta[i] = max(theta0[i], lower[i])
    grad = np.empty(m)
    if np.isnan(value0):
        value = deviance_and_gradient(theta, st, cp, ws, reml, grad)
        evals = 1
    else:
        value = value0
        grad[:] = grad0
        evals = 0
    if not np.isfinite(value):
        return value, evals, np.inf, FAILED
    scaled = np.isfinite(hinv0).all()
    hinv = hinv0.copy() if scaled else np.eye(m)
    active = np.zeros(m, np.bool_)
    trial = np.empty(m)
    grad_new = np.empty(m)
    direction = np.empty(m)
    code = ITERATION_LIMIT
    pg = _projected_gradient_norm(theta, grad, lower)
    for _ in range(max_iter):
        if pg < gtol * (1.0 + abs(value)):
            code = CONVERGED
            break
        changed = False
        for i in range(m):
            now = theta[i] <= lower[i] and grad[i] > 0.0
            if now != active[i]:
                changed = True
            active[i] = now
        if changed:
            hinv[:, :] = np.eye(m)
            scaled = False
        slope = 0.0
        for i in range(m):
            acc = 0.0
            if not active[i]:
                for j in range(m):
                    if not active[j]:
                        acc -= hinv[i, j] * grad[j]
            direction[i] = acc
            slope += acc * grad[i]
        if not slope < 0.0:
            hinv[:, :] = np.eye(m)
            scaled = False
            slope = 0.0
            for i in range(m):
                direction[i] = 0.0 if active[i] else -grad[i]
                slope += direction[i] * grad[i]
        step = 1.0
        if not scaled:
            big = 0.0
            for i in range(m):
                big = max(big, abs(direction[i]))
            step = min(1.0, 1.0 / big) if big > 0 else 1.0
        accepted = False
        new_value = value
        for _ls in range(30):
            for i in range(m):
                trial[i] = max(theta[i] + step * direction[i], lower[i])
            new_value = deviance_and_gradient(trial, st, cp, ws, reml, grad_new)
            evals += 1
            decrease = 0.0
            for i in range(m):
                decrease += grad[i] * (trial[i] - theta[i])
            if np.isfinite(new_value) and new_value <= value + 1e-4 * decrease:
                accepted = True
                break
            # quadratic interpolation along the (projected) path, kept within [0.1, 0.5] of the step
            denom = 2.0 * (new_value - value - decrease)
            shrink = 0.5
            if np.isfinite(new_value) and denom > 0.0:
                shrink = min(0.5, max(0.1, -decrease / denom))
            step *= shrink
        if not accepted:
            code = CONVERGED if pg < 100.0 * gtol * (1.0 + abs(value)) else STALLED
            break
        s = trial - theta
        yv = grad_new - grad
        sy = 0.0
        yy = 0.0
        for i in range(m):
            sy += s[i] * yv[i]
            yy += yv[i] * yv[i]
        theta[:] = trial
        grad[:] = grad_new
        previous = value
        value = new_value
        pg = _projected_gradient_norm(theta, grad, lower)
        if sy > 1e-12 * np.sqrt(yy) * np.sqrt((s * s).sum()):
            if not scaled:
                hinv[:, :] = np.eye(m) * (sy / yy)
                scaled = True
            hy = hinv @ yv
            yhy = (yv * hy).sum()
            for i in range(m):
                for j in range(m):
                    hinv[i, j] += ((sy + yhy) * s[i] * s[j]) / (sy * sy) - (hy[i] * s[j] + s[i] * hy[j]) / sy
        if previous - value <= 1e-15 * abs(value):
            code = CONVERGED if pg < 100.0 * gtol * (1.0 + abs(value)) else STALLED
            break
    if code == ITERATION_LIMIT and pg < gtol * (1.0 + abs(value)):
        code = CONVERGED
    return value, evals, pg, code
