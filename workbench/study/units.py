"""Run a study: design points → layouts → designs → chunks of replicates → store → summary.

A *unit* of work is one chunk of replicates of one design point. Its data sets are drawn
from the replicates' own seeds (`SeedSequence(seed, spawn_key=(point, replicate))`), so a
unit's results do not depend on which units ran before it, where, or in which order.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from workbench.model.design import Design, build_design
from workbench.errors import DataError, FormulaError, StudyError
from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER
from workbench.fitting.problem import Problem
from workbench.kernels.montecarlo import run_chunk
from workbench.simulation.layout import make_layout
from workbench.simulation.simulate import SimulationInputs, draw_normals, simulation_inputs
from workbench.study.store import PER_FIT
from workbench.fitting.structure import front_starts
from workbench.study.spec import DesignPoint, Study
from workbench.model.truth import parameter_names, parameter_values, truth_to_parameters


@dataclass(frozen=True, eq=False)
class PointPlan:
    """Everything the replicates of one design point share, built once."""

    layout: pd.DataFrame
    beta: np.ndarray
    theta: np.ndarray
    sigma: float
    design: Design
    problem: Problem
    simulation: SimulationInputs
    params: tuple[str, ...]
    truth: np.ndarray  # parameter values, in `params` order


def layout_rng(seed: int, point: int) -> np.random.Generator:
    """The generator of a design point's layout (replicates use spawn keys (point, r))."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point,)))


def plan_point(study: Study, point: DesignPoint) -> PointPlan:
    """Build the layout, design and true parameters of one point; errors name the study key."""
    layout = make_layout(point.layout, layout_rng(study.seed, point.index), study.base_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            design = build_design(study.formula, layout, response_required=False)
    except (FormulaError, DataError) as exc:
        text = str(exc).removeprefix("formula: ").removeprefix("data: ").replace("the formula uses it", "in the layout")
        raise FormulaError(f"model.formula: {text}") from None
    except UserWarning as exc:  # missing values in a table layout
        raise DataError(f"layout: {exc} (a study needs complete rows)") from None
    beta, theta, sigma = truth_to_parameters(design, point.truth)
    return PointPlan(
        layout=layout,
        beta=beta,
        theta=theta,
        sigma=sigma,
        design=design,
        problem=Problem.build(design),
        simulation=simulation_inputs(design, beta, theta, sigma),
        params=tuple(parameter_names(design)),
        truth=parameter_values(design, beta, theta, sigma),
    )


_PLANS: dict[tuple[str, str, int], PointPlan] = {}


@functools.cache
def _blas() -> ThreadpoolController:
    """The BLAS libraries, found once: that costs a millisecond or two, limiting them then
    microseconds (a unit may take only ten milliseconds)."""
    return ThreadpoolController()


def _cached_plan(study: Study, index: int) -> PointPlan:
    """The plan of a point, kept while its units run (a study is identified by its text)."""
    key = (study.text, str(study.base_dir), index)
    if key not in _PLANS:
        _PLANS.clear()  # units run point by point: keep one plan, memory stays flat
        _PLANS[key] = plan_point(study, study.points()[index])
    return _PLANS[key]


def check_study(study: Study) -> tuple[str, ...]:
    """Build every design point once (before any output is written); return the parameter names."""
    names: list[tuple[str, ...]] = []
    study.check_points(lambda point: names.append(plan_point(study, point).params))
    if len(set(names)) > 1:
        raise StudyError("grid: the design points do not share the same parameters (a factor level missing?)")
    return names[0]


def compute_unit(
    study: Study, point: int, chunk: int, chunk_size: int, plan: PointPlan | None = None
) -> dict[str, np.ndarray]:
    """Simulate and fit replicates [chunk·size, (chunk+1)·size) of one point by every method.

    Returns arrays with a leading replicate axis, named as the store's variables. `plan` is
    the point's plan when the caller has built it (a cluster ships it to the workers, which
    then need none of the study's files); without it, the plan is built here.
    """
    if plan is None:
        plan = _cached_plan(study, point)
    first = chunk * chunk_size
    replicates = np.arange(first, min(first + chunk_size, study.replicates))
    normals = draw_normals(study.seed, point, replicates, plan.simulation.size)
    nrep, nmethods, nparams = len(replicates), len(study.methods), len(plan.params)
    out = (
        np.full((nrep, nmethods, nparams), np.nan),
        np.full((nrep, nmethods, nparams), np.nan),
        np.full((nrep, nmethods), np.nan),
        np.zeros((nrep, nmethods), np.bool_),
        np.zeros((nrep, nmethods), np.bool_),
        np.zeros((nrep, nmethods), np.int64),
        np.full((nrep, nmethods), -1, np.int8),
    )
    design, problem = plan.design, plan.problem
    reml = np.array([method == "REML" for method in study.methods])
    started = time.perf_counter()
    # replicates run in parallel already: BLAS threads inside each (large trailing blocks
    # call LAPACK) would only compete with them, several times slower
    with _blas().limit(limits=1, user_api="blas"):
        run_chunk(
            problem.structure,
            problem.products,
            plan.simulation,
            design.x,
            front_starts(problem.structure),
            normals,
            reml,
            design.theta_lower_bounds(),
            GRADIENT_TOL,
            MAX_ITER,
            out,
        )
    # per-fit cost: the chunk's wall time shared out over its fits and the threads that ran them
    seconds = (time.perf_counter() - started) * numba.get_num_threads() / (nrep * nmethods)
    names = ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status")
    results = {name: values.astype(PER_FIT[name][1]) for name, values in zip(names, out)}
    results["fit_seconds"] = np.full((nrep, nmethods), seconds)
    return results
