"""t (or z) tests of fixed effects of one fit inside the replicate loop, from the blocks the fit already has.

A request is a row (ddf code, coefficient) with the codes of `DDF_CODES`; a row with code −1
is padding. The statistic is β̂ⱼ / SE with SE the fit's (σ̂²(R_X'R_X)⁻¹)ⱼⱼ^½, or for
Kenward–Roger the adjusted √Φ_A,jj; df is ∞ (asymptotic), n − p (residual), or the
Satterthwaite / Kenward–Roger ν of `workbench.kernels.ddf`, each computed once per fit for all
coefficients. p-values follow in Python from statistic and df.
"""

import numpy as np

from workbench.kernels.ddf import kenward_roger_coefficients, satterthwaite_coefficients
from workbench.kernels.objective import factorize, residual_dof
from workbench.kernels.options import jit
from workbench.kernels.reasons import COMPUTED, NOT_COMPUTABLE

ASYMPTOTIC, RESIDUAL, SATTERTHWAITE, KENWARD_ROGER = 0, 1, 2, 3
DDF_CODES = {"asymptotic": ASYMPTOTIC, "residual": RESIDUAL, "satterthwaite": SATTERTHWAITE, "kenward-roger": KENWARD_ROGER}


@jit
def fixed_effect_tests(st, cp, ws, reml, theta, est, se, requests, statistic, df, reason):
    """The statistic, df and reason code of each request (rows of `requests`) for the fit at θ̂.

    `est` and `se` are the fit's estimates and SEs (β first); `theta` is not changed.
    """
    p = st.p
    nreq = requests.shape[0]
    wanted = np.zeros(4, np.bool_)
    for t in range(nreq):
        if requests[t, 0] >= 0:
            wanted[requests[t, 0]] = True
    satt_df = np.full(p, np.nan)
    kr_se = np.full(p, np.nan)
    kr_df = np.full(p, np.nan)
    if (wanted[SATTERTHWAITE] or wanted[KENWARD_ROGER]) and factorize(theta, st, cp, ws):
        d = ws.tt.shape[0]
        r2 = ws.tt[d - 1, d - 1] ** 2
        sigma = np.sqrt(r2 / residual_dof(st, reml))
        if wanted[SATTERTHWAITE]:
            satterthwaite_coefficients(theta.copy(), sigma, st, cp, ws, reml, satt_df)
        if wanted[KENWARD_ROGER]:
            kenward_roger_coefficients(theta.copy(), sigma, st, cp, kr_se, kr_df)
    for t in range(nreq):
        code, j = requests[t, 0], requests[t, 1]
        if code < 0:
            continue
        error = se[j]
        if code == ASYMPTOTIC:
            nu = np.inf
        elif code == RESIDUAL:
            nu = float(st.n - p)
        elif code == SATTERTHWAITE:
            nu = satt_df[j]
        else:
            nu, error = kr_df[j], kr_se[j]
        value = est[j] / error
        if np.isfinite(value) and nu > 0.0:
            statistic[t], df[t], reason[t] = value, nu, COMPUTED
        else:
            statistic[t], df[t], reason[t] = np.nan, np.nan, NOT_COMPUTABLE
