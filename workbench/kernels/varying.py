"""Fits of data sets with different designs in one parallel nopython loop.

When a study's layout is redrawn for every replicate, each data set has its own structure
and cross-products (same random-effect terms, other group sizes, X and Z). `fit_data_sets`
takes them as a typed list and fits each by every method, as `replicate_loop.fit_chunk` fits
the data sets of one design: the first method from the moment start, the others from its
optimum and inverse Hessian.
"""

import numpy as np
from numba import prange

from workbench.kernels.montecarlo import fit_replicate, initial_guess
from workbench.kernels.objective import make_workspace
from workbench.kernels.options import jit_parallel
from workbench.kernels.status import FAILED


@jit_parallel
def fit_data_sets(problems, reml_flags, gtol, max_iter, out):
    """Fit every `(structure, cross-products, θ lower bounds)` of `problems` by every method, in parallel.

    The cross-products are complete (response included) and only read. Item i writes row i
    of out = (estimate (R, M, P), std_error (R, M, P), objective (R, M), converged,
    singular, n_evals, status).
    """
    estimate, std_error, objective, converged, singular, n_evals, status = out
    for i in prange(len(problems)):
        st, cp, lower = problems[np.int64(i)]
        ws = make_workspace(st)
        start, hinv, guess_evals = initial_guess(st, cp, ws, reml_flags[0], lower)
        theta = np.empty(lower.shape[0])
        for j in range(reml_flags.shape[0]):
            value, evals, conv, sing, code = fit_replicate(
                start, hinv, st, cp, ws, reml_flags[j], lower, gtol, max_iter, theta, estimate[i, j], std_error[i, j]
            )
            if code != FAILED:
                start = theta.copy()
            objective[i, j] = value
            n_evals[i, j] = evals + (guess_evals if j == 0 else 0)
            converged[i, j] = conv
            singular[i, j] = sing
            status[i, j] = code
