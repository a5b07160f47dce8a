"""Rejection rates of the tests and coverage of the intervals of a study, each with its Monte Carlo SE.

Every measure is over **all** finished replicates of a design point (n = ``n_done``): a test
whose p-value could not be computed does not reject, an interval that could not be computed
does not cover, and both are counted (``n_p_missing``, ``interval_not_computed``), never
dropped. Beside them, the same measure among the computed ones only. For a share p of n
replicates the MCSE is sqrt(p (1 − p) / n) (Morris, White & Crowther 2019, Stat Med 38:2074,
Table 6). The bias-eliminated coverage (ibid., §5.2) is the share of computed intervals that
cover the mean of the estimates instead of the truth: what coverage would be without bias.
A rejection rate is the Type I error where the tested effect is truly null, the power elsewhere.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from workbench.kernels.reasons import NOT_IN_MODEL, NOT_REQUESTED, reason_codes_text

__all__ = ["inference_attrs", "inference_coordinates", "interval_measures", "test_measures"]

_MIN_REPLICATES = 2


def _share(count: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    enough = n >= _MIN_REPLICATES
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(enough, count / np.maximum(n, 1), np.nan)
        mcse = np.sqrt(share * (1 - share) / np.maximum(n, 1))
    return share, np.where(enough, mcse, np.nan)


def test_measures(raw: xr.Dataset, done: np.ndarray, alpha: tuple[float, ...]) -> dict:
    """Rejection rates (point, test, alpha) at each α, over all replicates and among computed p-values."""
    p = raw["p_value"].transpose("point", "test", "replicate").values
    finished = done[:, np.newaxis, :]
    computed = finished & np.isfinite(p)
    n_done = np.broadcast_to(done.sum(axis=-1)[:, np.newaxis], computed.shape[:2])
    n_computed = computed.sum(axis=-1)
    levels = np.asarray(alpha, dtype=float)
    with np.errstate(invalid="ignore"):
        rejected = (computed[..., np.newaxis] & (p[..., np.newaxis] < levels)).sum(axis=-2)
    rate, mcse = _share(rejected, n_done[..., np.newaxis])
    rate_computed, mcse_computed = _share(rejected, n_computed[..., np.newaxis])
    dims = ("point", "test", "alpha")
    return {
        "rejection": (dims, rate),
        "rejection_mcse": (dims, mcse),
        "rejection_computed": (dims, rate_computed),
        "rejection_computed_mcse": (dims, mcse_computed),
        "n_p_missing": (("point", "test"), n_done - n_computed),
        "nominal_band": (("point", "alpha"), 1.96 * np.sqrt(levels * (1 - levels) / np.maximum(n_done[:, :1], 1))),
    }


def interval_measures(raw: xr.Dataset, done: np.ndarray) -> dict:
    """Coverage, bias-eliminated coverage, width and the share not computed, (point, analysis, interval, param)."""
    order = ("point", "analysis", "interval", "param", "replicate")
    lower = raw["lower"].transpose(*order).values
    upper = raw["upper"].transpose(*order).values
    reason = raw["interval_reason"].transpose(*order).values
    estimate = raw["estimate"].transpose("point", "analysis", "param", "replicate").values[:, :, np.newaxis]
    truth = raw["truth"].transpose("point", "param").values[:, np.newaxis, np.newaxis, :, np.newaxis]
    finished = done[:, np.newaxis, np.newaxis, np.newaxis, :]
    computed = finished & np.isfinite(lower) & np.isfinite(upper)
    asked = ~np.isin(reason, (NOT_REQUESTED, NOT_IN_MODEL)) & finished
    n_asked = asked.sum(axis=-1)
    n_computed = computed.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        covers = computed & (lower <= truth) & (truth <= upper)
        mean_estimate = np.where(computed, estimate, 0.0).sum(axis=-1) / n_computed
        centre = mean_estimate[..., np.newaxis]
        covers_mean = computed & (lower <= centre) & (centre <= upper)
        width = np.where(computed, upper - lower, 0.0).sum(axis=-1) / n_computed
    known = np.isfinite(truth[..., 0])
    coverage, coverage_mcse = _share(covers.sum(axis=-1), n_asked)
    computed_cov, computed_mcse = _share(covers.sum(axis=-1), n_computed)
    be_cov, be_mcse = _share(covers_mean.sum(axis=-1), n_computed)
    missing, missing_mcse = _share(n_asked - n_computed, n_asked)
    dims = ("point", "analysis", "interval", "param")
    few = n_computed < _MIN_REPLICATES
    return {
        "interval_coverage": (dims, np.where(known, coverage, np.nan)),
        "interval_coverage_mcse": (dims, np.where(known, coverage_mcse, np.nan)),
        "interval_coverage_computed": (dims, np.where(known, computed_cov, np.nan)),
        "interval_coverage_computed_mcse": (dims, np.where(known, computed_mcse, np.nan)),
        "interval_be_coverage": (dims, be_cov),
        "interval_be_coverage_mcse": (dims, be_mcse),
        "interval_width": (dims, np.where(few, np.nan, width)),
        "interval_not_computed": (dims, missing),
        "interval_not_computed_mcse": (dims, missing_mcse),
        "interval_n": (dims, n_asked),
    }


def inference_coordinates(raw: xr.Dataset, alpha: tuple[float, ...]) -> dict:
    """The summary's coordinates of the tests and intervals (those the raw store has)."""
    coords: dict = {}
    if "p_value" in raw:
        coords["test"] = np.array([str(v) for v in raw["test"].values], dtype=object)
        for name in ("test_kind", "test_analysis", "test_effect", "test_null"):
            coords[name] = ("test", np.array([str(v) for v in raw[name].values], dtype=object))
        coords["alpha"] = np.asarray(alpha, dtype=float)
    if "lower" in raw:
        coords["interval"] = np.array([str(v) for v in raw["interval"].values], dtype=object)
    return coords


def inference_attrs(raw: xr.Dataset) -> dict:
    return {"reason_codes": reason_codes_text()} if ("p_value" in raw or "lower" in raw) else {}
