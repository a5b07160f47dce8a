"""The replicate loop of a study: every data set of a chunk fitted by every method, in parallel, and what follows each fit.

After each fit come the fixed-effect tests (`kernels.replicate_tests`) and the profile limits
(`kernels.profile_limits`) the study asks for, so that a replicate's inference runs where its
fit does, in nopython mode under `prange`.
"""

import numpy as np
from numba import prange

from workbench.kernels.montecarlo import fit_replicate, initial_guess
from workbench.kernels.objective import make_workspace
from workbench.kernels.options import jit_parallel
from workbench.kernels.products import CrossProducts, refresh_response
from workbench.kernels.profile_limits import profile_limits
from workbench.kernels.reasons import FIT_FAILED
from workbench.kernels.replicate_tests import fixed_effect_tests
from workbench.kernels.status import FAILED


@jit_parallel
def fit_chunk(st, base, codes, z, x, front0, ys, reml_flags, lower, gtol, max_iter, out, requests, tests, profile_z, limits):
    """Fit a chunk of data sets (rows of `ys`) by every method in parallel; each writes its own slice of `out`.

    `base` holds the response-free cross-products of the design (`codes`, `z`, `x`); each data
    set copies them and refreshes only the response row. out = (estimate (R, M, P),
    std_error (R, M, P), objective (R, M), converged, singular, n_evals, status). After each
    fit, the fixed-effect tests `requests[j]` (M, T, 2) of method j are computed into
    tests = (statistic, df, reason), each (R, M, T) (see `kernels.replicate_tests`), and where
    profile_z[j] > 0 the profile limits at that z into limits = (lower, upper, reason), each
    (R, M, P) (see `kernels.profile_limits`).
    """
    estimate, std_error, objective, converged, singular, n_evals, status = out
    test_statistic, test_df, test_reason = tests
    limits_lower, limits_upper, limits_reason = limits
    nrep = ys.shape[0]
    for r in prange(nrep):
        cp = CrossProducts(base.a_front.copy(), base.a_tt.copy())
        refresh_response(codes, z, x, ys[r], st, front0, cp.a_front, cp.a_tt)
        ws = make_workspace(st)
        # the first method starts from the moment estimates, the others from its optimum and
        # its inverse Hessian: ML and REML optima of the same data set are close
        m = lower.shape[0]
        start, hinv, guess_evals = initial_guess(st, cp, ws, reml_flags[0], lower)
        theta = np.empty(m)
        for j in range(reml_flags.shape[0]):
            value, evals, conv, sing, code = fit_replicate(
                start, hinv, st, cp, ws, reml_flags[j], lower, gtol, max_iter, theta, estimate[r, j], std_error[r, j]
            )
            if code != FAILED:
                start = theta.copy()
                fixed_effect_tests(
                    st, cp, ws, reml_flags[j], theta, estimate[r, j], std_error[r, j], requests[j],
                    test_statistic[r, j], test_df[r, j], test_reason[r, j],
                )
                if profile_z[j] > 0.0:
                    profile_limits(
                        st, cp, ws, reml_flags[j], lower, gtol, max_iter, theta, estimate[r, j], std_error[r, j],
                        profile_z[j], limits_lower[r, j], limits_upper[r, j], limits_reason[r, j],
                    )
            else:
                test_reason[r, j, :] = FIT_FAILED
            objective[r, j] = value
            n_evals[r, j] = evals + (guess_evals if j == 0 else 0)
            converged[r, j] = conv
            singular[r, j] = sing
            status[r, j] = code
