"""The parametric bootstrap: responses drawn from a fitted model, each refitted with the same design.

Only the response row of the cross-products changes from one replicate to the next, so a
replicate costs one pass over the rows plus its fit; replicates run in parallel, each writing
its own row of the output.
"""

import numpy as np
from numba import prange

from workbench.kernels.montecarlo import _components, fit_theta
from workbench.kernels.objective import factorize, make_workspace, residual_dof, solve_effects
from workbench.kernels.options import jit, jit_parallel
from workbench.kernels.products import CrossProducts, refresh_response
from workbench.kernels.simulate import simulate_responses
from workbench.kernels.status import CONVERGED, FAILED


@jit
def parameter_estimates(st, cp, ws, reml, theta, out):
    """The estimates at θ in `workbench.model.truth.parameter_names` order, without standard errors.

    β̂, then the variance components σ̂²λλ' and σ̂², then the SDs and correlations and σ̂.
    False (and NaN estimates) where Ω(θ) is not positive definite.
    """
    if not factorize(theta, st, cp, ws):
        out[:] = np.nan
        return False
    p = st.p
    m = theta.shape[0]
    d = ws.tt.shape[0]
    r2 = ws.tt[d - 1, d - 1] ** 2
    sigma = np.sqrt(r2 / residual_dof(st, reml))
    solution = solve_effects(st, ws)
    nrandom = solution.shape[0] - p
    for a in range(p):
        out[a] = solution[nrandom + a]
    values = np.empty(2 * (m + 1))
    jac = np.empty((2 * (m + 1), m + 1))
    _components(st, theta, sigma, values, jac)
    out[p:] = values
    return True


@jit_parallel
def bootstrap_fits(st, base, sim, x, front0, normals, reml, lower, gtol, max_iter, estimates, status):
    """Simulate replicate r from `normals[r]`, refit it, and write its estimates to `estimates[r]`.

    `base` holds the cross-products of the design (any response); `sim` the arrays of
    `workbench.simulation.simulate.SimulationInputs` at the fitted parameters. `status[r]` gets
    the fit's code (`kernels.status`); a failed fit's estimates are NaN.
    """
    m = lower.shape[0]
    for r in prange(normals.shape[0]):
        y = np.empty((1, st.n))
        simulate_responses(
            sim.xbeta, sim.codes, sim.z, sim.term_q, sim.term_offset, sim.lam, sim.sigma, normals[r : r + 1], y
        )
        cp = CrossProducts(base.a_front.copy(), base.a_tt.copy())
        refresh_response(sim.codes, sim.z, x, y[0], st, front0, cp.a_front, cp.a_tt)
        ws = make_workspace(st)
        theta = np.zeros(m)
        code = CONVERGED
        value = 0.0
        if m > 0:
            value, _, _, code = fit_theta(st, cp, ws, reml, lower, gtol, max_iter, theta)
        if np.isfinite(value) and parameter_estimates(st, cp, ws, reml, theta, estimates[r]):
            status[r] = code
        else:
            estimates[r, :] = np.nan
            status[r] = FAILED
