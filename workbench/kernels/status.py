"""The status of a fit: one set of codes for the optimiser, `wb.fit` and the studies' store.

Kept as plain integers so that nopython code can return them; `workbench.fitting.status.FitStatus`
names them for Python.
"""

CONVERGED = 0  # the projected gradient is below tolerance
STALLED = 1  # no step lowers the criterion, yet the gradient is not small
ITERATION_LIMIT = 2  # the iteration limit was reached first
FAILED = 3  # the criterion is not finite at the start (no estimates)
NOT_RUN = -1  # a store's fill value: the replicate has not been computed
