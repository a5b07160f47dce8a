"""Design points whose data sets differ in their rows: layouts redrawn per replicate, dropout on the response.

Each data set is made alone, from the draw contract of `workbench.simulation.simulate`: its
layout from the replicate's layout stream ``(point, replicate, 1)`` (or the point's own layout
when only the dropout varies), its response from the data stream ``(point, replicate)``, then
the response-dependent dropout from the layout stream. So a replicate is the same whatever
the chunking, the threads or the machine, and `workbench.replicate_data` rebuilds it alone.

The random-effect structure (the factors, nested or crossed, and q per term) is the same in
every data set; X, Z's values and the group sizes are not. The designs and their
cross-products are built in Python: the model matrices of a chunk's data sets at once
(`workbench.study.stacked`), the level codes, structures and cross-products per data set; then
the fits of the chunk run in one parallel nopython loop (`kernels.varying.fit_data_sets`). A data set
whose analysis cannot be fitted (too few rows for its levels, collinear X, a level of a
categorical covariate missing) is a failed fit, recorded as such.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numba
import numpy as np
import pandas as pd
from numba import typed

from workbench.errors import DataError, WorkbenchError
from workbench.fitting.fit import GRADIENT_TOL, MAX_ITER
from workbench.fitting.problem import Problem
from workbench.kernels.status import FAILED
from workbench.kernels.varying import fit_data_sets
from workbench.model.design import Design, check_fittable
from workbench.model.parameters import parameter_names
from workbench.model.truth import truth_mechanism, truth_to_parameters
from workbench.simulation.layout import LayoutSpec
from workbench.simulation.simulate import draw_plan, layout_generator, simulate_design
from workbench.study.stacked import build_designs

if TYPE_CHECKING:
    from workbench.study.plan import PointPlan

__all__ = ["DataSet", "DataSource", "analysis_problems", "fit_varying"]


class DataSet(NamedTuple):
    """One data set: its observed rows with the response column, and the generating design with that
    response when it covers exactly those rows (no dropout; else None)."""

    frame: pd.DataFrame
    design: Design | None


@dataclass(frozen=True, eq=False)
class DataSource:
    """How the data sets of a point are made when their rows vary: the layout rule and the generating model."""

    seed: int
    point: int
    formula: str
    response: str
    truth: dict
    layout: LayoutSpec
    fixed: pd.DataFrame | None  # the point's layout when it is not redrawn

    def data_set(self, replicate: int) -> DataSet:
        """One replicate's data set; raises a `WorkbenchError` (naming the key) when it cannot be made."""
        (made,) = self.data_sets([replicate])
        if isinstance(made, WorkbenchError):
            raise made
        return made

    def data_sets(self, replicates) -> list[DataSet | WorkbenchError]:
        """The data sets of `replicates`, each as `data_set` makes it alone (an error in place of one that cannot be made)."""
        rngs = [layout_generator(self.seed, self.point, int(r)) for r in replicates]
        rows: list[pd.DataFrame | WorkbenchError] = []
        for rng in rngs:
            try:
                rows.append(self.layout.make(rng) if self.fixed is None else self.fixed)
            except WorkbenchError as exc:
                rows.append(exc)
        made = [frame for frame in rows if not isinstance(frame, WorkbenchError)]
        designs = iter(build_designs(self.formula, made, response_required=False, fitted=False))
        out: list[DataSet | WorkbenchError] = []
        for replicate, rng, frame in zip(replicates, rngs, rows):
            if isinstance(frame, WorkbenchError):
                out.append(frame)
                continue
            try:
                out.append(self._simulate(int(replicate), rng, frame, next(designs)))
            except WorkbenchError as exc:
                out.append(exc)
        return out

    def _simulate(self, replicate: int, rng, frame: pd.DataFrame, design: Design | WorkbenchError) -> DataSet:
        """The response of one data set from its data stream, then its dropout from the layout stream `rng`."""
        if isinstance(design, WorkbenchError):
            raise design
        if design.n_dropped:
            raise DataError("layout: a redrawn layout has missing values in the columns the model uses")
        beta, theta, sigma = truth_to_parameters(design, self.truth)
        mechanism = truth_mechanism(design, self.truth)
        plan = draw_plan(design, mechanism, mechanism.residuals.scale(frame, sigma))
        y = simulate_design(design, beta, theta, sigma, [replicate], self.seed, self.point, plan)[0]
        if self.layout.dropout is None:
            return DataSet(frame.assign(**{self.response: y}), dataclasses.replace(design, y=y))
        keep = self.layout.dropout.keep(frame, y, rng)
        observed = frame.loc[keep].reset_index(drop=True)
        return DataSet(observed.assign(**{self.response: y[keep]}), None)


def fit_varying(plan: PointPlan, replicates: np.ndarray, results: dict[str, np.ndarray]) -> None:
    """Make and fit the data sets of `replicates` by every analysis; write into `results` (compute_unit's arrays)."""
    source = plan.source
    data = source.data_sets(replicates)
    first = 0
    for analysis in plan.analyses:
        nmethods = len(analysis.reml)
        offset, first = first, first + nmethods
        fits = slice(offset, first)
        template = list(parameter_names(analysis.design))
        position = dict(zip(template, analysis.columns))
        problems, rows, columns = typed.List(), [], []
        for row, problem in enumerate(analysis_problems(analysis.analysis.formula, source, data, template)):
            if problem is None:
                results["status"][row, fits] = FAILED
                continue
            problems.append((problem.structure, problem.products, problem.design.theta_lower_bounds()))
            rows.append(row)
            columns.append(np.array([position[name] for name in parameter_names(problem.design)], dtype=np.int64))
        if not rows:
            continue
        count, ncolumns = len(rows), len(template)
        out = (
            np.full((count, nmethods, ncolumns), np.nan),
            np.full((count, nmethods, ncolumns), np.nan),
            np.full((count, nmethods), np.nan),
            np.zeros((count, nmethods), np.bool_),
            np.zeros((count, nmethods), np.bool_),
            np.zeros((count, nmethods), np.int64),
            np.full((count, nmethods), FAILED, np.int8),
        )
        started = time.perf_counter()
        fit_data_sets(problems, analysis.reml, GRADIENT_TOL, MAX_ITER, out)
        seconds = (time.perf_counter() - started) * numba.get_num_threads() / (count * nmethods)
        estimate, std_error, objective, converged, singular, n_evals, status = out
        for i, (row, where) in enumerate(zip(rows, columns)):
            for j in range(nmethods):
                results["estimate"][row, offset + j, where] = estimate[i, j]
                results["std_error"][row, offset + j, where] = std_error[i, j]
            results["objective"][row, fits] = objective[i]
            results["converged"][row, fits] = converged[i]
            results["singular"][row, fits] = singular[i]
            results["n_evals"][row, fits] = n_evals[i]
            results["status"][row, fits] = status[i]
            results["fit_seconds"][row, fits] = seconds


def analysis_problems(formula: str, source: DataSource, data: list, template: list[str]) -> list[Problem | None]:
    """The fit problem of one analysis on each data set, or None where it cannot be fitted."""
    designs: list[Design | WorkbenchError | None] = [None] * len(data)
    rebuild = []
    for i, made in enumerate(data):
        if isinstance(made, WorkbenchError):
            continue
        if made.design is not None and formula == source.formula:
            try:
                check_fittable(made.design)
                designs[i] = made.design
            except WorkbenchError:
                pass
        else:
            rebuild.append(i)
    built = build_designs(formula, [data[i].frame for i in rebuild], response_required=True, fitted=True)
    for i, design in zip(rebuild, built):
        designs[i] = design
    problems: list[Problem | None] = []
    for design in designs:
        usable = isinstance(design, Design) and not design.n_dropped
        if usable and sorted(parameter_names(design)) == sorted(template):
            problems.append(Problem.build(design))
        else:
            problems.append(None)
    return problems
