"""A unit of work: one chunk of replicates of one design point, simulated once and fitted by every analysis.

A unit's data sets are drawn from the replicates' own seeds (`SeedSequence(seed,
spawn_key=(point, replicate))`, and ``(point, replicate, 1)`` for a layout redrawn per
replicate), so its results do not depend on which units ran before it, where, or in which
order; every analysis and method sees the same data sets. Data sets whose rows vary are made
and fitted by `workbench.study.varying`.
"""

from __future__ import annotations

import functools
import time

import numba
import numpy as np
from scipy.special import ndtri
from threadpoolctl import ThreadpoolController

from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER
from workbench.kernels.montecarlo import simulate_chunk
from workbench.kernels.replicate_loop import fit_chunk, fit_chunk_inference
from workbench.kernels.reasons import VARYING_ROWS
from workbench.kernels.status import NOT_RUN
from workbench.simulation.simulate import draw_standardised
from workbench.study.plan import PointPlan
from workbench.study.spec import Study
from workbench.study.bootstrap_intervals import bootstrap_limits, bootstrap_seed
from workbench.study.inference_values import add_intervals, add_tests, empty_inference, scatter_fixed_tests
from workbench.study.store import VARIABLES
from workbench.study.varying import fit_varying

__all__ = ["compute_unit", "unit_replicates", "unit_responses"]

_NAMES = ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status")


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries, found once: that costs a millisecond or two, limiting them then
    microseconds (a unit may take only ten milliseconds)."""
    return ThreadpoolController()


def unit_replicates(study: Study, chunk: int, chunk_size: int) -> np.ndarray:
    """The replicate indices of one chunk."""
    first = chunk * chunk_size
    return np.arange(first, min(first + chunk_size, study.replicates))


def unit_responses(study: Study, plan: PointPlan, point: int, replicates: np.ndarray) -> np.ndarray:
    """The simulated responses (len(replicates), n) of the given replicates of a point whose layout is fixed."""
    normals = draw_standardised(study.seed, point, replicates, plan.draws)
    ys = np.empty((len(replicates), plan.design.n))
    simulate_chunk(plan.simulation, normals, ys)
    return ys


def compute_unit(study: Study, plan: PointPlan, point: int, chunk: int, chunk_size: int) -> dict[str, np.ndarray]:
    """Simulate replicates [chunk·size, (chunk+1)·size) of one point and fit them by every analysis and method.

    Returns arrays with a leading replicate axis, named as the store's variables, over the
    study's fits (`Study.fits`) and parameters (`plan.params`; NaN where an analysis lacks one).
    """
    replicates = unit_replicates(study, chunk, chunk_size)
    nrep, nfits, nparams = len(replicates), len(study.fits), len(plan.labels)
    results = {
        "estimate": np.full((nrep, nfits, nparams), np.nan),
        "std_error": np.full((nrep, nfits, nparams), np.nan),
        "objective": np.full((nrep, nfits), np.nan),
        "converged": np.zeros((nrep, nfits), np.bool_),
        "singular": np.zeros((nrep, nfits), np.bool_),
        "n_evals": np.zeros((nrep, nfits), np.int64),
        "status": np.full((nrep, nfits), NOT_RUN, np.int8),
        "fit_seconds": np.full((nrep, nfits), np.nan),
    }
    inference = plan.inference
    results.update(empty_inference(inference, nrep, nfits, nparams))
    columns = []
    for analysis in plan.analyses:
        present = np.zeros(nparams, bool)
        present[analysis.columns] = True
        columns.extend([present] * len(analysis.reml))
    profile = {
        "lower": np.full((nrep, nfits, nparams), np.nan),
        "upper": np.full((nrep, nfits, nparams), np.nan),
        "reason": np.full((nrep, nfits, nparams), VARYING_ROWS if plan.varying else NOT_RUN, np.int8),
    }
    bootstrap = {name: values.copy() for name, values in profile.items()}
    profile_z = _profile_z(study, inference)
    # replicates run in parallel already: BLAS threads inside each (large trailing blocks
    # call LAPACK) would only compete with them, several times slower
    with _blas().limit(limits=1, user_api="blas"):
        if plan.varying:
            fit_varying(plan, replicates, results)
            for slots in inference.slots:
                # t tests are computed in the loop over data sets that share their rows only
                for index in slots[slots >= 0]:
                    results["test_reason"][:, index] = VARYING_ROWS
            return _finish(study, inference, results, columns, profile, bootstrap)
        ys = unit_responses(study, plan, point, replicates)
        first = 0
        for analysis, requests, slots in zip(plan.analyses, inference.requests, inference.slots):
            nmethods, ncolumns = len(analysis.reml), len(analysis.columns)
            out = (
                np.full((nrep, nmethods, ncolumns), np.nan),
                np.full((nrep, nmethods, ncolumns), np.nan),
                np.full((nrep, nmethods), np.nan),
                np.zeros((nrep, nmethods), np.bool_),
                np.zeros((nrep, nmethods), np.bool_),
                np.zeros((nrep, nmethods), np.int64),
                np.full((nrep, nmethods), NOT_RUN, np.int8),
            )
            tests = (
                np.full((nrep,) + slots.shape, np.nan),
                np.full((nrep,) + slots.shape, np.nan),
                np.full((nrep,) + slots.shape, NOT_RUN, np.int8),
            )
            limits = (
                np.full((nrep, nmethods, ncolumns), np.nan),
                np.full((nrep, nmethods, ncolumns), np.nan),
                np.full((nrep, nmethods, ncolumns), NOT_RUN, np.int8),
            )
            design, problem = analysis.design, analysis.problem
            started = time.perf_counter()
            fits_of = (problem.structure, problem.products, analysis.codes, analysis.z, design.x, analysis.front0, ys)
            fits_of += (analysis.reml, design.theta_lower_bounds(), GRADIENT_TOL, MAX_ITER, out)
            z_of = profile_z[first : first + nmethods]
            if (requests[..., 0] >= 0).any() or (z_of > 0).any():
                fit_chunk_inference(*fits_of, requests, tests, z_of, limits)
            else:  # the kernel without tests and profiles: a study that asks for none never compiles them
                fit_chunk(*fits_of)
            # per-fit cost: the wall time shared out over the fits and the threads that ran them
            seconds = (time.perf_counter() - started) * numba.get_num_threads() / (nrep * nmethods)
            fits = slice(first, first + nmethods)
            for name, values in zip(_NAMES, out):
                if values.ndim == 3:
                    results[name][:, fits][:, :, analysis.columns] = values
                else:
                    results[name][:, fits] = values
            results["fit_seconds"][:, fits] = seconds
            if inference.ntests:
                scatter_fixed_tests(results, slots, tests)
            for name, values in zip(("lower", "upper", "reason"), limits):
                profile[name][:, fits][:, :, analysis.columns] = values
            _add_bootstrap(study, inference, analysis, point, replicates, first, results, bootstrap)
            first += nmethods
    return _finish(study, inference, results, columns, profile, bootstrap)


def _add_bootstrap(study: Study, inference, analysis, point: int, replicates, first: int, results, bootstrap) -> None:
    """The parametric-bootstrap limits of the analysis's fits that ask for them."""
    if "bootstrap" not in inference.intervals:
        return
    column = inference.intervals.index("bootstrap")
    for k, reml in enumerate(analysis.reml):
        f = first + k
        if not inference.interval_fits[f, column]:
            continue
        estimates = results["estimate"][:, f][:, analysis.columns]
        seeds = [bootstrap_seed(study.seed, point, int(r), f) for r in replicates]
        limits = bootstrap_limits(analysis, reml, estimates, seeds, study.bootstrap_nsim, study.level)
        for name, values in zip(("lower", "upper", "reason"), limits):
            bootstrap[name][:, f][:, analysis.columns] = values


def _profile_z(study: Study, inference) -> np.ndarray:
    """Per fit, the z of its profile limits, or 0 where it asks for none."""
    if "profile" not in inference.intervals:
        return np.zeros(len(study.fits))
    z = float(ndtri((1 + study.level) / 2))
    return np.where(inference.interval_fits[:, inference.intervals.index("profile")], z, 0.0)


def _finish(
    study: Study, inference, results: dict[str, np.ndarray], columns: list[np.ndarray], profile: dict, bootstrap: dict
) -> dict[str, np.ndarray]:
    """Add the p-values, likelihood-ratio tests and intervals; cast every array to its store type."""
    add_tests(inference, results)
    add_intervals(inference, results, columns, study.level, profile, bootstrap)
    return {name: values.astype(VARIABLES[name][1]) for name, values in results.items()}
