"""The plan of a design point: its layout, the generating model, the fitted models and the truth.

The generating model (``[model]``) draws every data set; each analysis (``[[analysis]]``, or
the generating model itself without any) is fitted to the same data sets. The parameters of a
study are the union of the analyses' parameters, in order of first appearance.

**Estimands.** A parameter of an analysis has as its truth the value of the same parameter
of the generating model (same name: the same fixed effect; the same variance component of
the same grouping factor and effects). A parameter the generating model lacks is a part of
the model that is absent from the truth: a fixed effect or a variance, SD or covariance the
generating model lacks has truth 0; a correlation is undefined when either true SD is 0 (or
the generating model lacks the pair), so its truth is NaN and it is summarised without bias
or coverage. The residual variance keeps its generating value in every analysis: what an
analysis that omits a random term puts into its residual shows as bias.

**Varying rows.** When the layout is redrawn for every replicate (``[layout] redraw = true``)
or a dropout depends on the response, the data sets differ in their rows
(`workbench.study.varying`). The plan is then built on a template data set, the first of
replicates 0, 1, … (at most `TEMPLATE_TRIES`) that every analysis can fit: its designs give
the parameters and the truth of the point, which the true (β, θ, σ) fix for every
replicate. A point none of whose first data sets can be fitted is refused before any output.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.errors import DataError, FormulaError, LayoutError, StudyError
from workbench.fitting.fit import least_squares_structure
from workbench.fitting.problem import Problem
from workbench.kernels.products import CrossProducts
from workbench.model.formula import parse_formula
from workbench.fitting.structure import front_starts
from workbench.model.design import Design, build_design, term_arrays
from workbench.model.parameters import ParameterLabel, parameter_labels, parameter_values
from workbench.model.truth import truth_mechanism, truth_to_parameters
from workbench.simulation.layout import prepare_layout
from workbench.simulation.simulate import DrawPlan, SimulationInputs, draw_plan, layout_generator, simulation_inputs
from workbench.study.inference_plan import InferencePlan, TestLabel, plan_inference
from workbench.study.spec import Analysis, DesignPoint, Study
from workbench.study.varying import DataSource

__all__ = ["AnalysisPlan", "PointPlan", "StudyOutline", "check_study", "layout_rng", "plan_point", "truth_of"]

#: How many data sets of a point with varying rows are tried for a template that can be fitted.
TEMPLATE_TRIES = 10


@dataclass(frozen=True, eq=False)
class AnalysisPlan:
    """One fitted model at one design point: its design and the arrays its fits need."""

    analysis: Analysis
    design: Design
    problem: Problem
    codes: np.ndarray  # (K, n) level codes of its terms
    z: np.ndarray  # (K, n, qmax) its terms' columns
    front0: np.ndarray
    reml: np.ndarray  # (methods,) bool
    columns: np.ndarray  # (its parameters,) position of each in the study's parameters


@dataclass(frozen=True, eq=False)
class PointPlan:
    """Everything the replicates of one design point share, built once per point."""

    layout: pd.DataFrame
    beta: np.ndarray
    theta: np.ndarray
    sigma: float
    design: Design  # the generating model's
    simulation: SimulationInputs
    draws: DrawPlan  # the families and residual scale of a replicate's draws
    analyses: tuple[AnalysisPlan, ...]
    labels: tuple[ParameterLabel, ...]  # the study's parameters
    truth: np.ndarray  # their true values, in `labels` order
    source: DataSource | None = None  # how each data set is made when their rows vary (else None)
    inference: InferencePlan | None = None  # the tests and intervals of the point

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def varying(self) -> bool:
        """Whether the data sets differ in their rows (a redrawn layout or a response-dependent dropout)."""
        return self.source is not None


@dataclass(frozen=True, eq=False)
class StudyOutline:
    """What the store needs before any unit runs: the parameters and the truth at every point."""

    labels: tuple[ParameterLabel, ...]
    truth: np.ndarray  # (point, param)
    tests: tuple[TestLabel, ...] = ()
    intervals: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)


def layout_rng(seed: int, point: int) -> np.random.Generator:
    """The generator of a design point's layout (replicates use spawn keys (point, r))."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(point,)))


def plan_point(study: Study, point: DesignPoint) -> PointPlan:
    """Build the layout, the designs and the true parameters of one point; errors name the study key."""
    spec = prepare_layout(point.layout, study.base_dir)
    if not (spec.redraw or spec.dropout is not None):
        return _plan(study, point, spec.make(layout_rng(study.seed, point.index)), None)
    fixed = None if spec.redraw else spec.make(layout_rng(study.seed, point.index))
    tries = min(TEMPLATE_TRIES, study.replicates)
    first_failure = None
    for replicate in range(tries):
        try:
            rows = fixed if fixed is not None else spec.make(layout_generator(study.seed, point.index, replicate))
            # the model checked against the layout first, so that its mistakes name their key
            response = _design(study.formula, rows, "model.formula", fitted=False).formula.response
            source = DataSource(study.seed, point.index, study.formula, response, point.truth, spec, fixed)
            return _plan(study, point, source.data_set(replicate).frame.drop(columns=response), source)
        except (DataError, FormulaError, LayoutError) as exc:  # a data set too small or too sparse to fit
            first_failure = first_failure or exc
    raise type(first_failure)(f"{first_failure} (in each of the first {tries} data sets)") from first_failure


def _plan(study: Study, point: DesignPoint, layout: pd.DataFrame, source: DataSource | None) -> PointPlan:
    """The plan of a point over `layout` (the point's, or a template data set's when rows vary)."""
    fitted_as_is = any(analysis.formula == study.formula for analysis in study.analyses)
    design = _design(study.formula, layout, "model.formula", fitted=fitted_as_is)
    beta, theta, sigma = truth_to_parameters(design, point.truth)
    mechanism = truth_mechanism(design, point.truth)
    designs = []
    for analysis in study.analyses:
        where = f"analysis.{analysis.name}.formula" if analysis.name else "model.formula"
        fitted = design if analysis.formula == study.formula else _design(analysis.formula, layout, where, fitted=True, random_required=False)
        if fitted.formula.response != design.formula.response:
            raise StudyError(
                f"{where}: the response must be {design.formula.response!r}, the generating model's"
                f" (got {fitted.formula.response!r})"
            )
        designs.append(fitted)
    labels: dict[str, ParameterLabel] = {}
    for fitted in designs:
        for label in parameter_labels(fitted):
            labels.setdefault(label.name, label)
    position = {name: i for i, name in enumerate(labels)}
    analyses = tuple(_analysis_plan(analysis, fitted, position) for analysis, fitted in zip(study.analyses, designs))
    generating = dict(zip((label.name for label in parameter_labels(design)), parameter_values(design, beta, theta, sigma)))
    return PointPlan(
        layout=layout,
        beta=beta,
        theta=theta,
        sigma=sigma,
        design=design,
        simulation=simulation_inputs(design, beta, theta, sigma),
        draws=draw_plan(design, mechanism, mechanism.residuals.scale(layout, sigma)),
        analyses=analyses,
        labels=tuple(labels.values()),
        truth=np.array([truth_of(label, generating) for label in labels.values()], dtype=float),
        source=source,
        inference=plan_inference(study, point.index, designs),
    )


def truth_of(label: ParameterLabel, generating: dict[str, float]) -> float:
    """The true value of an analysis parameter, given the generating model's values by name (module docstring)."""
    if label.name in generating:
        return float(generating[label.name])
    if label.kind == "corr":
        return math.nan
    return 0.0


def check_study(study: Study) -> StudyOutline:
    """Build every design point once (before any output is written); return the parameters and the truth."""
    plans: list[PointPlan] = []
    study.check_points(lambda point: plans.append(plan_point(study, point)))
    names = {plan.params for plan in plans}
    if len(names) > 1:
        raise StudyError("grid: the design points do not share the same parameters (a factor level missing?)")
    if len({plan.inference.labels for plan in plans}) > 1:
        raise StudyError("grid: the design points do not share the same tests (a fixed effect missing?)")
    inference = plans[0].inference
    return StudyOutline(plans[0].labels, np.array([plan.truth for plan in plans]), inference.labels, inference.intervals)


def _design(formula: str, layout: pd.DataFrame, where: str, fitted: bool, random_required: bool = True) -> Design:
    """The design of a model over the layout (with the fit-only checks if it is `fitted`); errors name `where`.

    An analysis may have no random-effect term (a linear model, the null of a variance-component test).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            parsed = parse_formula(formula, random_required=random_required)
            return build_design(parsed, layout, response_required=False, fitted=fitted)
    except (FormulaError, DataError) as exc:
        text = str(exc).removeprefix("formula: ").removeprefix("data: ").replace("the formula uses it", "in the layout")
        raise FormulaError(f"{where}: {text}") from None
    except UserWarning as exc:  # missing values in a table layout
        raise DataError(f"layout: {exc} (a study needs complete rows)") from None


def _analysis_plan(analysis: Analysis, design: Design, position: dict[str, int]) -> AnalysisPlan:
    if design.terms:
        problem = Problem.build(design)
        codes, z = term_arrays(design)
    else:
        # the response-free cross-products of a linear model: X'X, the response row filled per data set
        x = design.x
        products = np.zeros((design.p + 1, design.p + 1))
        products[: design.p, : design.p] = x.T @ x
        problem = Problem(design, least_squares_structure(design.n, design.p), CrossProducts(np.zeros(0), products))
        codes, z = np.zeros((0, design.n), np.int64), np.zeros((0, design.n, 1))
    return AnalysisPlan(
        analysis=analysis,
        design=design,
        problem=problem,
        codes=codes,
        z=z,
        front0=front_starts(problem.structure),
        reml=np.array([method == "REML" for method in analysis.methods]),
        columns=np.array([position[label.name] for label in parameter_labels(design)], dtype=np.int64),
    )
