"""Why a test or an interval of a replicate has no value: one set of codes for the kernels, the store and the summary.

Plain integers, so that nopython code can write them; `REASONS` names them for Python.
"""

COMPUTED = 0  # the value is there
NOT_REQUESTED = 1  # the study did not ask for it on this fit
FIT_FAILED = 2  # the fit has no estimates
NOT_COMPUTABLE = 3  # the fit is there but the quantity is not (a Hessian not positive definite, an SE not finite)
VARYING_ROWS = 4  # computed in the replicate loop only for data sets that share their rows
NOT_IN_MODEL = 5  # the analysis has no such parameter
NOT_IMPLEMENTED = 6  # the method does not give this parameter (profile limits of β, covariances, correlations)
NOT_RUN = -1  # a store's fill value: the replicate has not been computed

REASONS = {
    COMPUTED: "computed",
    NOT_REQUESTED: "not_requested",
    FIT_FAILED: "fit_failed",
    NOT_COMPUTABLE: "not_computable",
    VARYING_ROWS: "varying_rows",
    NOT_IN_MODEL: "not_in_model",
    NOT_IMPLEMENTED: "not_implemented",
    NOT_RUN: "not_run",
}


def reason_codes_text() -> str:
    """The codes as one attribute string, ``"0 computed, 1 not_requested, ..."``."""
    return ", ".join(f"{code} {name}" for code, name in REASONS.items())
