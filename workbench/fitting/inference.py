"""Inference on the parameters of a fit: every estimate with its SE, and t tests of fixed effects.

`params` and `params_se` are what a Monte Carlo study stores for the same data set
(`kernels.montecarlo.estimates`). `coef_table` and `contrast_test` test L'β = 0 with the
denominator degrees of freedom of `ddf`:

- ``"asymptotic"``: z tests, df = ∞;
- ``"residual"``: t tests with n − p df;
- ``"satterthwaite"``: lmerTest's (Kuznetsova, Brockhoff & Christensen 2017), any fit;
- ``"kenward-roger"``: pbkrtest's (Halekoh & Højsgaard 2014), REML fits only, with the
  adjusted covariance Φ_A of β̂, so the SE is √(L'Φ_AL).

At a singular fit the Hessian of the criterion may have eigenvalues near 0; as lmerTest,
Satterthwaite's df then use its Moore–Penrose inverse (lmerTest also warns; this does not).
The formulas and their sources are in `workbench.kernels.ddf`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from workbench.fitting.tails import normal_sf, t_sf

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.kernels import ddf as kernels
from workbench.kernels.montecarlo import estimates
from workbench.kernels.objective import make_workspace
from workbench.model.parameters import parameter_names

if TYPE_CHECKING:
    from workbench.fitting.result import FitResult

DDF = ("asymptotic", "residual", "satterthwaite", "kenward-roger")
COLUMNS = ["estimate", "std_error", "df", "statistic", "p_value"]


def parameters(result: FitResult) -> tuple[pd.Series, pd.Series]:
    """(estimates, standard errors) of every parameter, named by `model.parameters.parameter_names`."""
    problem = result.problem
    names = parameter_names(problem.design)
    est, se = np.empty(len(names)), np.empty(len(names))
    ws = make_workspace(problem.structure)
    estimates(problem.structure, problem.products, ws, result.reml, result.theta, est, se)
    return pd.Series(est, index=names, dtype=float), pd.Series(se, index=names, dtype=float)


def _check_ddf(result: FitResult, ddf: Any) -> str:
    ddf = arguments.choice(ddf, "ddf", DDF)
    if ddf == "kenward-roger" and not result.reml:
        raise WorkbenchError("ddf: 'kenward-roger' is defined for REML fits only; refit with reml=True")
    return ddf


def _satterthwaite_pieces(result: FitResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    problem = result.problem
    m, p = len(result.theta), problem.design.p
    vcov, jac, varpar_cov = np.empty((p, p)), np.empty((m + 1, p, p)), np.empty((m + 1, m + 1))
    ws = make_workspace(problem.structure)
    status = kernels.satterthwaite(
        result.theta, result.sigma, problem.structure, problem.products, ws, result.reml, vcov, jac, varpar_cov
    )
    if status < 0:
        return np.full((p, p), np.nan), np.full((m + 1, p, p), np.nan), np.full((m + 1, m + 1), np.nan)
    return vcov, jac, varpar_cov


def kenward_roger(result: FitResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pbkrtest's pieces of a REML fit: Φ = vcov(β̂), the adjusted Φ_A, the P_r and W."""
    problem = result.problem
    m, p = len(result.theta), problem.design.p
    phi, phi_adjusted = np.empty((p, p)), np.empty((p, p))
    pmats, weights = np.empty((m + 1, p, p)), np.empty((m + 1, m + 1))
    st, cp = problem.structure, problem.products
    if not kernels.kenward_roger(result.theta, result.sigma, st, cp, phi, phi_adjusted, pmats, weights):
        phi[:], phi_adjusted[:], pmats[:], weights[:] = np.nan, np.nan, np.nan, np.nan
    return phi, phi_adjusted, pmats, weights


def _tests(contrasts: np.ndarray, result: FitResult, ddf: str) -> np.ndarray:
    """Rows (estimate, std_error, df, statistic, p_value), one per contrast (row of `contrasts`)."""
    beta = result.fixef.to_numpy()
    out = np.empty((contrasts.shape[0], 5))
    out[:, 0] = contrasts @ beta
    if ddf in ("asymptotic", "residual"):
        vcov = result.vcov.to_numpy()
        out[:, 1] = np.sqrt(np.einsum("ij,jk,ik->i", contrasts, vcov, contrasts))
        out[:, 2] = np.inf if ddf == "asymptotic" else result.n_obs - len(beta)
    elif ddf == "satterthwaite":
        vcov, jac, varpar_cov = _satterthwaite_pieces(result)
        for i, contrast in enumerate(contrasts):
            variance, df = kernels.satterthwaite_df(contrast, vcov, jac, varpar_cov)
            out[i, 1:3] = np.sqrt(variance), df
    else:
        phi, phi_adjusted, pmats, weights = kenward_roger(result)
        for i, contrast in enumerate(contrasts):
            out[i, 1] = np.sqrt(contrast @ phi_adjusted @ contrast)
            out[i, 2] = kernels.kenward_roger_df(contrast, phi, pmats, weights)
    out[:, 3] = out[:, 0] / out[:, 1]
    tail = np.abs(out[:, 3])
    if ddf == "asymptotic":
        out[:, 4] = 2.0 * normal_sf(tail)
    else:
        out[:, 4] = 2.0 * t_sf(tail, out[:, 2])
    return out


def coef_table(result: FitResult, ddf: Any = "asymptotic") -> pd.DataFrame:
    """Estimate, SE, df, t (or z) and two-sided p-value of every fixed effect."""
    ddf = _check_ddf(result, ddf)
    names = list(result.fixef.index)
    table = _tests(np.eye(len(names)), result, ddf) if names else np.zeros((0, 5))
    return pd.DataFrame(table, index=pd.Index(names, name="term"), columns=COLUMNS)


def _contrast(result: FitResult, contrast: Any) -> np.ndarray:
    """L as floats in the order of the fixed effects (a Series is matched by name)."""
    names = list(result.fixef.index)
    wanted = f"{len(names)} numbers, one per fixed effect ({', '.join(names)})"
    if isinstance(contrast, pd.Series):
        unknown = [str(k) for k in contrast.index if k not in names]
        if unknown:
            shown = ", ".join(map(repr, unknown))
            raise WorkbenchError(f"contrast: unknown fixed effect {shown} (the fit has: {', '.join(names)})")
        contrast = contrast.reindex(names, fill_value=0.0)
    try:
        vector = np.asarray(contrast, dtype=float)
    except (TypeError, ValueError):
        raise WorkbenchError(f"contrast: expected {wanted}, got {type(contrast).__name__}") from None
    if vector.shape != (len(names),):
        raise WorkbenchError(f"contrast: expected {wanted}, got an array of shape {vector.shape}")
    if not np.isfinite(vector).all():
        raise WorkbenchError("contrast: the weights must be finite numbers")
    if not vector.any():
        raise WorkbenchError("contrast: all weights are zero")
    return vector


def contrast_test(result: FitResult, contrast: Any, ddf: Any = "asymptotic") -> pd.Series:
    """The t (or z) test of L'β = 0 for one contrast vector L (one weight per fixed effect)."""
    ddf = _check_ddf(result, ddf)
    vector = _contrast(result, contrast)
    return pd.Series(_tests(vector[None, :], result, ddf)[0], index=COLUMNS, name="contrast")
