"""The replicate loop of a study: every data set of a chunk fitted by every method, in parallel, and what follows each fit.

`fit_chunk` fits; `fit_chunk_inference` also computes, after the fits of each data set, the
fixed-effect tests (`kernels.replicate_tests`) and the profile limits
(`kernels.profile_limits`) the study asks for, so that a replicate's inference runs where its
fits do, in nopython mode under `prange`. They are two kernels so that a study without tests
or profile intervals compiles none of that machinery.
"""

import numpy as np
from numba import prange

from workbench.kernels.montecarlo import fit_methods
from workbench.kernels.objective import make_workspace
from workbench.kernels.options import jit, jit_parallel
from workbench.kernels.products import CrossProducts, refresh_response
from workbench.kernels.profile_limits import profile_limits
from workbench.kernels.reasons import FIT_FAILED
from workbench.kernels.replicate_tests import fixed_effect_tests
from workbench.kernels.status import FAILED


@jit
def _data_set(st, base, codes, z, x, front0, y):
    """The cross-products of one data set: a copy of the response-free `base` with y's row refreshed."""
    cp = CrossProducts(base.a_front.copy(), base.a_tt.copy())
    refresh_response(codes, z, x, y, st, front0, cp.a_front, cp.a_tt)
    return cp


@jit_parallel
def fit_chunk(st, base, codes, z, x, front0, ys, reml_flags, lower, gtol, max_iter, out):
    """Fit a chunk of data sets (rows of `ys`) by every method in parallel; each writes its own row of `out`.

    `base` holds the response-free cross-products of the design (`codes`, `z`, `x`).
    out = (estimate (R, M, P), std_error (R, M, P), objective (R, M), converged, singular,
    n_evals, status), as `kernels.montecarlo.fit_methods` writes them.
    """
    for r in prange(ys.shape[0]):
        cp = _data_set(st, base, codes, z, x, front0, ys[r])
        thetas = np.empty((reml_flags.shape[0], lower.shape[0]))
        fit_methods(st, cp, make_workspace(st), reml_flags, lower, gtol, max_iter, np.int64(r), out, thetas)


@jit_parallel
def fit_chunk_inference(
    st, base, codes, z, x, front0, ys, reml_flags, lower, gtol, max_iter, out, requests, tests, profile_z, limits
):
    """`fit_chunk`, then for each fit the fixed-effect tests `requests[j]` (M, T, 2) of method j
    into tests = (statistic, df, reason), each (R, M, T) (see `kernels.replicate_tests`), and
    where profile_z[j] > 0 the profile limits at that z into limits = (lower, upper, reason),
    each (R, M, P) (see `kernels.profile_limits`).
    """
    estimate, std_error, status = out[0], out[1], out[6]
    test_statistic, test_df, test_reason = tests
    limits_lower, limits_upper, limits_reason = limits
    for r in prange(ys.shape[0]):
        cp = _data_set(st, base, codes, z, x, front0, ys[r])
        ws = make_workspace(st)
        thetas = np.empty((reml_flags.shape[0], lower.shape[0]))
        fit_methods(st, cp, ws, reml_flags, lower, gtol, max_iter, np.int64(r), out, thetas)
        for j in range(reml_flags.shape[0]):
            if status[r, j] == FAILED:
                test_reason[r, j, :] = FIT_FAILED
                continue
            fixed_effect_tests(
                st, cp, ws, reml_flags[j], thetas[j], estimate[r, j], std_error[r, j], requests[j],
                test_statistic[r, j], test_df[r, j], test_reason[r, j],
            )
            if profile_z[j] > 0.0:
                profile_limits(
                    st, cp, ws, reml_flags[j], lower, gtol, max_iter, thetas[j], estimate[r, j], std_error[r, j],
                    profile_z[j], limits_lower[r, j], limits_upper[r, j], limits_reason[r, j],
                )
