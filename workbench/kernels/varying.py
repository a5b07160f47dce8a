"""Fits of data sets with different designs in one parallel nopython loop.

When a study's layout is redrawn for every replicate, each data set has its own structure
and cross-products (same random-effect terms, other group sizes, X and Z). `fit_data_sets`
takes them as a typed list and fits each by every method, as `replicate_loop.fit_chunk` fits
the data sets of one design: the first method from the moment start, the others from its
optimum and inverse Hessian.
"""

import numpy as np
from numba import prange

from workbench.kernels.montecarlo import fit_methods
from workbench.kernels.objective import make_workspace
from workbench.kernels.options import jit_parallel


@jit_parallel
def fit_data_sets(problems, reml_flags, gtol, max_iter, out):
    """Fit every `(structure, cross-products, θ lower bounds)` of `problems` by every method, in parallel.

    The cross-products are complete (response included) and only read. Item i writes row i
    of out = (estimate (R, M, P), std_error (R, M, P), objective (R, M), converged,
    singular, n_evals, status).
    """
    for i in prange(len(problems)):
        st, cp, lower = problems[np.int64(i)]
        thetas = np.empty((reml_flags.shape[0], lower.shape[0]))
        fit_methods(st, cp, make_workspace(st), reml_flags, lower, gtol, max_iter, np.int64(i), out, thetas)
