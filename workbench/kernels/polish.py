"""Newton steps on the analytic gradient of d(θ) from a converged θ̂, in nopython mode.

The quasi-Newton search stops once d's rounding noise hides further decreases, with the
gradient up to its tolerance times 1 + |d|: θ̂ is then good to about 1e-5, enough for the
criterion (flat at the optimum) but not for what moves with θ̂ to first order — fitted values,
the ML deviance at the REML estimates, conditional covariances of the random effects. The
gradient itself is exact, so Newton steps on it, with the Hessian from forward differences of
the gradient, reach the stationary point without reading d's noise.
"""

import numpy as np

from workbench.kernels.objective import deviance_and_gradient, factorize
from workbench.kernels.options import jit

NOISE = 1e-9  # a step may raise d by this much relative to 1 + |d|: its rounding noise, no more
SETTLED = 1e-11  # a gradient this small relative to 1 + |d| leaves θ̂ off by far less than 1e-8


@jit
def polish_theta(st, cp, ws, reml, lower, steps, theta):
    """Up to `steps` Newton steps from `theta` (in place) on the free coordinates.

    A diagonal entry on its bound (a singular fit) stays there. A step is kept only when the
    largest gradient entry shrinks and d does not rise beyond its noise; the first step that
    fails, or a gradient below SETTLED·(1 + |d|), ends the polish. The factor in `ws` is left at the final θ. Returns (d, evaluations,
    largest free gradient entry).
    """
    m = theta.shape[0]
    free = np.zeros(m, np.int64)
    nfree = 0
    for i in range(m):
        if not (lower[i] == 0.0 and theta[i] <= 0.0):
            free[nfree] = i
            nfree += 1
    grad = np.empty(m)
    moved = np.empty(m)
    value = deviance_and_gradient(theta, st, cp, ws, reml, grad)
    evals = 1
    worst = 0.0
    for a in range(nfree):
        worst = max(worst, abs(grad[free[a]]))
    if nfree == 0 or not np.isfinite(value):
        return value, evals, worst
    noise = NOISE * (1.0 + abs(value))
    settled = SETTLED * (1.0 + abs(value))
    hess = np.empty((nfree, nfree))
    rhs = np.empty(nfree)
    trial = np.empty(m)
    for _ in range(steps):
        if worst <= settled:
            break
        for b in range(nfree):
            i = free[b]
            h = 1e-6 * max(abs(theta[i]), 1.0)
            trial[:] = theta
            trial[i] += h
            deviance_and_gradient(trial, st, cp, ws, reml, moved)
            evals += 1
            for a in range(nfree):
                hess[a, b] = (moved[free[a]] - grad[free[a]]) / h
        hess = 0.5 * (hess + hess.T)
        if not np.isfinite(hess).all() or not np.linalg.eigvalsh(hess)[0] > 0.0:
            break
        for a in range(nfree):
            rhs[a] = grad[free[a]]
        step = np.linalg.solve(hess, rhs)
        trial[:] = theta
        inside = True
        for a in range(nfree):
            trial[free[a]] -= step[a]
            if trial[free[a]] < lower[free[a]]:
                inside = False
        if not inside:
            break
        trial_value = deviance_and_gradient(trial, st, cp, ws, reml, moved)
        evals += 1
        trial_worst = 0.0
        for a in range(nfree):
            trial_worst = max(trial_worst, abs(moved[free[a]]))
        if not (trial_worst < worst and trial_value <= value + noise):
            break
        theta[:] = trial
        grad[:] = moved
        value, worst = trial_value, trial_worst
    factorize(theta, st, cp, ws)
    return value, evals, worst
