"""The per-replicate tests and intervals of a unit, from what its fits computed.

The fixed-effect statistics and df come from the replicate loop (`kernels.replicate_tests`);
here they get their p-values (two-sided, normal for z, t otherwise). A likelihood-ratio
statistic is the drop in criterion from the smaller to the larger fit of the same data set,
cut at 0 as `workbench.lrt`, and set to 0 below `ZERO_DROP`: a variance that the optimiser
left at 1e-8 instead of exactly 0, where the criterion is flat, lowers it by ~1e-12 only, and
such a fit is on the boundary (the statistic's point mass at 0 counts it). Its p-value is
under the χ²(df) null, the 50:50 χ̄² mixture (½χ²(df − 1) + ½χ²(df); ½χ²₀ + ½χ²₁ for
df = 1), or the exact null's draws. A Wald interval is estimate ± z·SE on each parameter's
own scale; profile limits come from the replicate loop (`kernels.profile_limits`). Values
that cannot be had are NaN with a reason code of `kernels.reasons`.
"""

from __future__ import annotations

import numpy as np
from workbench.fitting.tails import chi2_sf, normal_sf, t_sf
from scipy.special import ndtri

from workbench.kernels.reasons import COMPUTED, FIT_FAILED, NOT_COMPUTABLE, NOT_IN_MODEL, NOT_REQUESTED, NOT_RUN
from workbench.kernels.status import FAILED
from workbench.study.inference_plan import InferencePlan, LRTPlan

__all__ = ["ZERO_DROP", "add_intervals", "add_tests", "empty_inference", "scatter_fixed_tests"]

ZERO_DROP = 1e-8  # criterion drops below this are rounding at the boundary: statistic 0

def empty_inference(plan: InferencePlan, nrep: int, nfits: int, nparams: int) -> dict[str, np.ndarray]:
    """The unit's test and interval arrays, filled with NaN and `NOT_RUN`; none when none are asked for."""
    out: dict[str, np.ndarray] = {}
    if plan.ntests:
        shape = (nrep, plan.ntests)
        out.update(
            statistic=np.full(shape, np.nan),
            df=np.full(shape, np.nan),
            p_value=np.full(shape, np.nan),
            test_reason=np.full(shape, NOT_RUN, np.int8),
        )
    if plan.intervals:
        shape = (nrep, nfits, len(plan.intervals), nparams)
        out.update(lower=np.full(shape, np.nan), upper=np.full(shape, np.nan), interval_reason=np.full(shape, NOT_RUN, np.int8))
    return out


def scatter_fixed_tests(results: dict, slots: np.ndarray, tests: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Move one analysis's kernel outputs (R, methods, T) to their places on the test dimension."""
    statistic, df, reason = tests
    for j in range(slots.shape[0]):
        for t in range(slots.shape[1]):
            index = slots[j, t]
            if index >= 0:
                results["statistic"][:, index] = statistic[:, j, t]
                results["df"][:, index] = df[:, j, t]
                results["test_reason"][:, index] = reason[:, j, t]


def add_tests(plan: InferencePlan, results: dict) -> None:
    """p-values of the fixed-effect tests, and the likelihood-ratio tests from the fits' criteria."""
    if not plan.ntests:
        return
    fixed = np.array([label.kind == "fixed" for label in plan.labels])
    statistic, df = results["statistic"][:, fixed], results["df"][:, fixed]
    with np.errstate(invalid="ignore"):
        tail = np.abs(statistic)
        p = np.where(np.isinf(df), 2.0 * normal_sf(tail), 2.0 * t_sf(tail, np.where(np.isinf(df), 1.0, df)))
    results["p_value"][:, fixed] = np.where(np.isfinite(statistic), p, np.nan)
    for lrt in plan.lrts:
        _likelihood_ratio(lrt, results)


def _likelihood_ratio(lrt: LRTPlan, results: dict) -> None:
    objective = results["objective"]
    drop = objective[:, lrt.smaller_fit] - objective[:, lrt.larger_fit]
    failed = (results["status"][:, lrt.smaller_fit] == FAILED) | (results["status"][:, lrt.larger_fit] == FAILED)
    ok = np.isfinite(drop) & ~failed
    statistic = np.where(ok, np.where(drop < ZERO_DROP, 0.0, drop), np.nan)
    df = lrt.df
    with np.errstate(invalid="ignore"):
        if lrt.test.null == "chi2":
            p = chi2_sf(statistic, df)
        elif lrt.test.null == "mixture":
            lower = (statistic <= 0).astype(float) if df == 1 else chi2_sf(statistic, df - 1)
            p = 0.5 * lower + 0.5 * chi2_sf(statistic, df)
        else:
            draws = lrt.null_draws()
            at_or_above = len(draws) - np.searchsorted(draws, np.where(ok, statistic, 0.0), side="left")
            p = np.where(statistic > 0, at_or_above / len(draws), 1.0)
    index = lrt.index
    results["statistic"][:, index] = statistic
    results["df"][:, index] = df
    results["p_value"][:, index] = np.where(ok, p, np.nan)
    results["test_reason"][:, index] = np.where(ok, COMPUTED, FIT_FAILED)


def add_intervals(
    plan: InferencePlan, results: dict, columns: list[np.ndarray], level: float, profile: dict, bootstrap: dict
) -> None:
    """The intervals of the fits that ask for them; `columns[f]`: fit f's parameters; `profile`
    and `bootstrap`: the limits computed for the unit, (R, fits, P) ``lower``, ``upper`` and ``reason``."""
    if not plan.intervals:
        return
    z = float(ndtri((1 + level) / 2))
    estimate, std_error = results["estimate"], results["std_error"]
    failed = results["status"] == FAILED
    for f, present in enumerate(columns):
        for i, method in enumerate(plan.intervals):
            reason = results["interval_reason"][:, f, i]
            if not plan.interval_fits[f, i]:
                reason[:] = NOT_REQUESTED
                continue
            if method == "wald":
                est, se = estimate[:, f], std_error[:, f]
                finite = np.isfinite(est) & np.isfinite(se)
                results["lower"][:, f, i] = np.where(finite, est - z * se, np.nan)
                results["upper"][:, f, i] = np.where(finite, est + z * se, np.nan)
                code = np.where(finite, COMPUTED, NOT_COMPUTABLE).astype(np.int8)
            else:
                limits = profile if method == "profile" else bootstrap
                results["lower"][:, f, i] = limits["lower"][:, f]
                results["upper"][:, f, i] = limits["upper"][:, f]
                code = limits["reason"][:, f].copy()
            code[failed[:, f]] = FIT_FAILED
            code[:, ~present] = NOT_IN_MODEL
            reason[:] = code
