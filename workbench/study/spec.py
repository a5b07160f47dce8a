"""The study file: read and validate a study TOML, and expand its grid into design points.

A study file has the tables ``[study]`` (``name``, ``seed``, ``replicates``, ``methods``),
``[model]`` (``formula``: the data-generating model), ``[layout]`` (see
:mod:`workbench.simulation.layout`), ``[truth]`` (``beta``, ``sigma``, ``re.<group>.sd``,
``re.<group>.corr``, optionally ``re.<group>.distribution`` and ``residual``; see
:mod:`workbench.model.truth`) and optionally ``[[analysis]]`` (the fitted models: ``name``, ``formula``,
``methods``; without any, the generating model is fitted by ``[study] methods``), ``[grid]``
(quoted dotted paths to lists of values), ``[execution]`` and ``[summary]``. Any mistake is
reported as one `StudyError` line that starts with the key path.

Only structural checks happen here. Checks that need the formula (every random term has an
SD, the beta names match the fixed effects) belong to the caller, through
`Study.check_points`.
"""

import copy
import itertools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.arguments import MAX_SEED
from workbench.checks import Checker, key_path, show
from workbench.errors import StudyError, TruthError, WorkbenchError
from workbench.simulation.distributions import parse_distribution
from workbench.study.inference import (
    FixedTest,
    LikelihoodRatioTest,
    default_intervals,
    default_tests,
    parse_alpha,
    parse_bootstrap_nsim,
    parse_intervals,
    parse_lrts,
    parse_tests,
)
from workbench.simulation.layout import prepare_layout
from workbench.simulation.residuals import parse_residuals
from workbench.study.resources import (
    MAX_CHUNK_SIZE,
    MAX_NAME_LENGTH,
    MAX_POINTS,
    MAX_REPLICATES,
    MAX_TRUTH,
    check_rows,
)

__all__ = [
    "METHODS",
    "Analysis",
    "DesignPoint",
    "Execution",
    "Study",
    "load_study",
    "parse_study",
    "validate_truth",
]

METHODS = ("ML", "REML")
_TABLES_REQUIRED = ("study", "model", "layout", "truth")
_TABLES_OPTIONAL = ("analysis", "grid", "execution", "summary", "tests", "intervals", "lrt")
# Only the data-generating tables can vary between design points.
_GRID_ROOTS = ("layout", "truth")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# One key of a grid path: a TOML basic or literal string, or anything without dots and quotes.
_SEGMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"' + r"|'[^'\n]*'" + r"""|[^."']+""")
_DEFAULT_CHUNK_SIZE = 64
_DEFAULT_LEVEL = 0.95
# Correlation matrices may be singular (|corr| = 1); allow rounding below zero.
_EIGENVALUE_TOLERANCE = 1e-10

_check = Checker(StudyError)


@dataclass(frozen=True)
class Execution:
    """How a study runs: worker processes, replicates per chunk, optional dask scheduler."""

    workers: int
    chunk_size: int = _DEFAULT_CHUNK_SIZE
    scheduler: str | None = None


@dataclass(frozen=True)
class Analysis:
    """A fitted model: its name (empty for the generating model fitted without `[[analysis]]`),
    formula and estimators."""

    name: str
    formula: str
    methods: tuple[str, ...]
    tests: tuple[FixedTest, ...] = ()
    intervals: tuple[str, ...] = ()

    def labels(self) -> list[str]:
        """The ``analysis`` coordinate value of each method: ``"<name>:<method>"``, or the method alone."""
        return [f"{self.name}:{method}" if self.name else method for method in self.methods]


@dataclass(frozen=True)
class DesignPoint:
    """One design point: the grid values it takes and its layout and truth with them."""

    index: int
    factors: dict[str, Any]
    layout: dict[str, Any]
    truth: dict[str, Any]


@dataclass(frozen=True)
class Study:
    """A validated study file.

    ``grid`` maps each grid path, as written in the file, to its values; the design
    points are their full factorial, the first path varying slowest.
    """

    name: str
    seed: int
    replicates: int
    methods: tuple[str, ...]
    formula: str
    analyses: tuple[Analysis, ...]
    layout: dict[str, Any]
    truth: dict[str, Any]
    grid: dict[str, tuple[Any, ...]]
    execution: Execution
    level: float
    text: str
    base_dir: Path
    lrts: tuple[LikelihoodRatioTest, ...] = ()
    alpha: tuple[float, ...] = (0.05,)
    bootstrap_nsim: int = 200

    @property
    def fits(self) -> list[tuple[Analysis, str, str]]:
        """(analysis, method, coordinate value) of every fit of a data set, in store order."""
        return [
            (analysis, method, label)
            for analysis in self.analyses
            for method, label in zip(analysis.methods, analysis.labels())
        ]

    def points(self) -> list[DesignPoint]:
        """Return the design points; with no grid, one point with no factors."""
        paths = [_grid_segments(path) for path in self.grid]
        points = []
        for index, values in enumerate(itertools.product(*self.grid.values())):
            document = {"layout": copy.deepcopy(self.layout), "truth": copy.deepcopy(self.truth)}
            for segments, value in zip(paths, values):
                _set(document, segments, copy.deepcopy(value))
            factors = dict(zip(self.grid, copy.deepcopy(values)))
            points.append(DesignPoint(index, factors, document["layout"], document["truth"]))
        return points

    def check_points(self, check: Callable[[DesignPoint], None]) -> None:
        """Call ``check(point)`` for each point; a `WorkbenchError` becomes a `StudyError`.

        The message gains `` (grid point i)`` unless the file's own values, without the
        grid, fail the same way.
        """
        base = DesignPoint(0, {}, copy.deepcopy(self.layout), copy.deepcopy(self.truth))
        _check_each(self.points(), check, base, bool(self.grid))


def load_study(path: str | os.PathLike) -> Study:
    """Read and validate the study file at ``path``; raise `StudyError` for any mistake."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise StudyError(f"{file}: not a UTF-8 text file") from None
    except OSError as exc:
        raise StudyError(f"{file}: cannot read: {exc.strerror or exc}") from None
    return parse_study(text, file.resolve().parent, source=str(file))


def parse_study(text: str, base_dir: Path, source: str = "study file") -> Study:
    """Validate the study file ``text``; relative paths in it are relative to ``base_dir``.

    Parameters
    ----------
    text : str
        The TOML text.
    base_dir : Path
        The folder of the study file.
    source : str
        What to call the text in messages about the file as a whole, e.g. its path.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"{source}: not valid TOML: {' '.join(str(exc).split())}") from None
    if not document:
        raise StudyError(f"{source}: the file is empty")
    _check.keys(document, "", _TABLES_REQUIRED, _TABLES_OPTIONAL, noun="table")
    study = _check.table(document["study"], "study")
    _check.keys(study, "study", ("name", "seed", "replicates"), ("methods",))
    model = _check.table(document["model"], "model")
    _check.keys(model, "model", ("formula",))
    formula = model["formula"]
    if not (isinstance(formula, str) and "~" in formula):
        wanted = 'must be a formula such as "y ~ 1 + (1 | g)"'
        _check.fail("model.formula", f"{wanted}, got {show(formula)}")
    methods = _methods(study.get("methods", list(METHODS)), "study.methods")
    defaults = (default_tests(document), default_intervals(document))
    analyses = _analyses(document.get("analysis"), formula, methods, defaults)
    summary = _check.table(document.get("summary", {}), "summary")
    result = Study(
        name=_study_name(study["name"]),
        seed=_check.integer(study["seed"], "study.seed", 0, MAX_SEED),
        replicates=_at_most(_check.integer(study["replicates"], "study.replicates", 1), MAX_REPLICATES, "study.replicates"),
        methods=methods,
        formula=formula,
        analyses=analyses,
        layout=document["layout"],
        truth=document["truth"],
        grid=_grid(document),
        execution=_execution(document.get("execution", {})),
        level=_level(summary),
        text=text,
        base_dir=Path(base_dir),
        lrts=parse_lrts(document.get("lrt"), {a.name: a.methods for a in analyses}),
        alpha=parse_alpha(summary),
        bootstrap_nsim=parse_bootstrap_nsim(document),
    )
    base = DesignPoint(0, {}, result.layout, result.truth)
    checker = _structure_checker(result.base_dir, result.execution.chunk_size, result.replicates)
    _check_each(result.points(), checker, base, bool(result.grid))
    return result


def validate_truth(truth: Any, prefix: str = "truth") -> None:
    """Check the shape of a truth table (types and ranges); raise `TruthError` naming the key.

    ``re.<group>.distribution`` and ``residual`` are checked by the same functions as in
    `workbench.model.truth.truth_to_parameters`, so both give the same messages.
    """
    check = Checker(TruthError)
    truth = check.table(truth, prefix)
    check.keys(truth, prefix, ("beta", "sigma"), ("re", "residual"))
    beta_path = key_path(prefix, "beta")
    for name, value in check.table(truth["beta"], beta_path).items():
        _magnitude(check, check.number(value, key_path(beta_path, name)), key_path(beta_path, name))
    _magnitude(check, check.positive_number(truth["sigma"], key_path(prefix, "sigma")), key_path(prefix, "sigma"))
    re_path = key_path(prefix, "re")
    for group, term in check.table(truth.get("re", {}), re_path).items():
        _check_term(check, term, key_path(re_path, group))
    if "residual" in truth:
        parse_residuals(truth["residual"], key_path(prefix, "residual"))


def _magnitude(check: Checker, value: float, path: str) -> None:
    """A true value must be small enough that its square (a variance, a sum of squares) is finite."""
    if abs(value) > MAX_TRUTH:
        check.fail(path, f"must be at most {MAX_TRUTH:g} in magnitude, got {value:g}")


def _check_term(check: Checker, term: Any, path: str) -> None:
    """Check one grouping factor's SDs, correlations and distribution."""
    term = check.table(term, path)
    check.keys(term, path, ("sd",), ("corr", "distribution"))
    if "distribution" in term:
        parse_distribution(term["distribution"], key_path(path, "distribution"))
    sd_path, corr_path = key_path(path, "sd"), key_path(path, "corr")
    sd = check.table(term["sd"], sd_path)
    if not sd:
        check.fail(sd_path, "must give the SD of at least one term")
    for name, value in sd.items():
        _magnitude(check, check.non_negative_number(value, key_path(sd_path, name)), key_path(sd_path, name))
    names = list(sd)
    correlation = np.eye(len(names))
    given: set[frozenset[str]] = set()
    for key, value in check.table(term.get("corr", {}), corr_path).items():
        pair_path = key_path(corr_path, key)
        pair = _corr_pair(key, names)
        if pair is None:
            check.fail(pair_path, f'must name two different terms of {sd_path} as "a:b"')
        if frozenset(pair) in given:
            check.fail(pair_path, "repeats a correlation given before")
        given.add(frozenset(pair))
        i, j = names.index(pair[0]), names.index(pair[1])
        correlation[i, j] = correlation[j, i] = check.number_in(value, pair_path, (-1, 1))
    if np.linalg.eigvalsh(correlation).min() < -_EIGENVALUE_TOLERANCE:
        check.fail(corr_path, "is not a valid correlation matrix (not positive semi-definite)")


def _corr_pair(key: str, names: list[str]) -> tuple[str, str] | None:
    """Split "a:b" into two different SD names; None if no split (or more than one) fits."""
    splits = [
        (key[:i], key[i + 1 :])
        for i, char in enumerate(key)
        if char == ":" and key[:i] in names and key[i + 1 :] in names and key[:i] != key[i + 1 :]
    ]
    return splits[0] if len(splits) == 1 else None


def _at_most(value: int, largest: int, path: str) -> int:
    if value > largest:
        _check.fail(path, f"must be at most {largest:,}, got {value:,}")
    return value


def _study_name(name: Any) -> str:
    if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
        _check.fail("study.name", f"must be at most {MAX_NAME_LENGTH} characters (a folder name), got {len(name)}")
    if not (isinstance(name, str) and _NAME.fullmatch(name) and name.strip(".")):
        _check.fail(
            "study.name",
            f"must be a folder name of letters, digits, '_', '.' and '-', got {show(name)}",
        )
    return name


def _methods(methods: Any, path: str) -> tuple[str, ...]:
    if not (isinstance(methods, list) and methods and all(m in METHODS for m in methods)):
        wanted = 'must be a non-empty list of "ML" and "REML"'
        _check.fail(path, f"{wanted}, got {show(methods)}")
    for i, method in enumerate(methods):
        if method in methods[:i]:
            _check.fail(path, f"lists {show(method)} twice")
    return tuple(methods)


def _analyses(
    tables: Any, model_formula: str, methods: tuple[str, ...], defaults: tuple[tuple[FixedTest, ...], tuple[str, ...]]
) -> tuple[Analysis, ...]:
    """The fitted models: the `[[analysis]]` tables, or the generating model by `methods`.

    An analysis takes ``name`` (required, a word of letters, digits, '_', '.' and '-'),
    ``formula`` (default: the generating model's), ``methods`` (default: ``[study] methods``),
    ``tests`` and ``intervals`` (defaults: the ``[tests]`` and ``[intervals]`` tables; see
    `workbench.study.inference`).
    """
    if tables is None:
        if any(test.ddf == "kenward-roger" for test in defaults[0]) and "REML" not in methods:
            _check.fail("tests.ddf", '"kenward-roger" is defined for REML fits; study.methods has no REML')
        return (Analysis("", model_formula, methods, *defaults),)
    if not (isinstance(tables, list) and tables and all(isinstance(t, Mapping) for t in tables)):
        _check.fail("analysis", 'must be one or more [[analysis]] tables (name = "...", formula = "...")')
    analyses: list[Analysis] = []
    for index, table in enumerate(tables):
        where = f"analysis[{index}]"
        name = table.get("name")
        if isinstance(name, str) and _NAME.fullmatch(name) and ":" not in name:
            where = key_path("analysis", name)
        _check.keys(table, where, ("name",), ("formula", "methods", "tests", "intervals"))
        if not (isinstance(name, str) and _NAME.fullmatch(name)):
            _check.fail(key_path(where, "name"), f"must be a word of letters, digits, '_', '.' and '-', got {show(name)}")
        if any(other.name == name for other in analyses):
            _check.fail(key_path(where, "name"), f"{show(name)} names two analyses")
        formula = table.get("formula", model_formula)
        if not (isinstance(formula, str) and "~" in formula):
            _check.fail(key_path(where, "formula"), f'must be a formula such as "y ~ 1 + (1 | g)", got {show(formula)}')
        chosen = _methods(table["methods"], key_path(where, "methods")) if "methods" in table else methods
        tests = parse_tests(table["tests"], key_path(where, "tests")) if "tests" in table else defaults[0]
        intervals = parse_intervals(table["intervals"], key_path(where, "intervals")) if "intervals" in table else defaults[1]
        if any(test.ddf == "kenward-roger" for test in tests) and "REML" not in chosen:
            _check.fail(key_path(where, "tests"), '"kenward-roger" is defined for REML fits; the analysis has no REML method')
        analyses.append(Analysis(name, formula, chosen, tests, intervals))
    return tuple(analyses)


def _execution(table: Any) -> Execution:
    table = _check.table(table, "execution")
    _check.keys(table, "execution", (), ("workers", "chunk_size", "scheduler"))
    workers = _check.integer(table.get("workers", _cpu_count()), "execution.workers", 1)
    chunk_size = table.get("chunk_size", _DEFAULT_CHUNK_SIZE)
    chunk_size = _at_most(_check.integer(chunk_size, "execution.chunk_size", 1), MAX_CHUNK_SIZE, "execution.chunk_size")
    scheduler = table.get("scheduler")
    if scheduler is not None and not (
        isinstance(scheduler, str) and scheduler.startswith("tcp://") and len(scheduler) > 6
    ):
        wanted = 'must be an address like "tcp://host:8786"'
        _check.fail("execution.scheduler", f"{wanted}, got {show(scheduler)}")
    return Execution(workers, chunk_size, scheduler)


def _cpu_count() -> int:
    """The number of CPUs this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _level(table: Mapping) -> float:
    _check.keys(table, "summary", (), ("level", "alpha"))
    level = table.get("level", _DEFAULT_LEVEL)
    return float(_check.number_in(level, "summary.level", (0, 1), "neither"))


# --- grid -----------------------------------------------------------------------------


def _grid(document: Mapping) -> dict[str, tuple[Any, ...]]:
    """Check the grid table: paths to existing layout or truth keys, each with a list of values."""
    grid = _check.table(document.get("grid", {}), "grid")
    seen: dict[tuple[str, ...], str] = {}
    result = {}
    for path, values in grid.items():
        where = key_path("grid", path)
        if not (isinstance(values, list) and values):
            # An unquoted dotted key makes a table: the commonest mistake in a grid.
            hint = ' (quote dotted paths: "layout.subjects" = [...])'
            hint = hint if isinstance(values, Mapping) else ""
            _check.fail(where, f"must be a non-empty list of values, got {show(values)}{hint}")
        segments = _grid_segments(path)
        if segments is None:
            _check.fail(where, "is not a valid dotted key path")
        if not _exists(document, segments):
            _check.fail(where, "no such key in the study file")
        if segments[0] not in _GRID_ROOTS:
            _check.fail(where, "only keys under layout and truth can vary over the grid")
        for other, other_where in seen.items():
            shorter = min(len(other), len(segments))
            if other[:shorter] == segments[:shorter]:
                _check.fail(where, f"overlaps {other_where}")
        seen[segments] = where
        result[path] = tuple(values)
    points = int(np.prod([len(values) for values in result.values()], dtype=object))
    if points > MAX_POINTS:
        _check.fail("grid", f"makes {points:,} design points, more than {MAX_POINTS:,}")
    return result


def _grid_segments(path: str) -> tuple[str, ...] | None:
    """Split a grid path into keys at its dots; a key may be quoted as in TOML, e.g. 'a."b.c"'."""
    segments, position = [], 0
    while True:
        match = _SEGMENT.match(path, position)
        if match is None:
            return None
        token = match.group()
        if token[0] in "\"'":
            try:
                segments.append(tomllib.loads(f"key = {token}")["key"])
            except tomllib.TOMLDecodeError:
                return None
        elif token.strip():
            segments.append(token.strip())
        else:
            return None
        position = match.end()
        if position == len(path):
            return tuple(segments)
        if path[position] != ".":
            return None
        position += 1


def _exists(document: Mapping, segments: tuple[str, ...]) -> bool:
    for segment in segments:
        if not (isinstance(document, Mapping) and segment in document):
            return False
        document = document[segment]
    return True


def _set(document: dict, segments: tuple[str, ...], value: Any) -> None:
    for segment in segments[:-1]:
        document = document[segment]
    document[segments[-1]] = value


# --- checking every point -------------------------------------------------------------


def _structure_checker(base_dir: Path, chunk_size: int, replicates: int) -> Callable[[DesignPoint], None]:
    def check(point: DesignPoint) -> None:
        layout = prepare_layout(point.layout, base_dir, prefix="layout")
        check_rows(layout.plan.max_rows, chunk_size, replicates, "layout")
        validate_truth(point.truth, prefix="truth")

    return check


def _check_each(
    points: list[DesignPoint],
    check: Callable[[DesignPoint], None],
    base: DesignPoint,
    has_grid: bool,
) -> None:
    """Run ``check`` on each point; raise `StudyError` with the first failure's message.

    With a grid the message names the point, unless the file's own values (``base``) fail
    with the same message: then the mistake is in the file, not in a grid value.
    """
    checked: list[tuple[DesignPoint, WorkbenchError | None]] = []
    for point in points:
        # Points often share their layout or truth; check each distinct pair once.
        known = [e for p, e in checked if (p.layout, p.truth) == (point.layout, point.truth)]
        failure = known[0] if known else _failure(check, point)
        checked.append((point, failure))
        if failure is None:
            continue
        message = str(failure)
        if has_grid and _base_message(check, base) != message:
            message = f"{message} (grid point {point.index})"
        raise StudyError(message) from failure


def _failure(check: Callable[[DesignPoint], None], point: DesignPoint) -> WorkbenchError | None:
    try:
        check(point)
    except WorkbenchError as exc:
        return exc
    return None


def _base_message(check: Callable[[DesignPoint], None], base: DesignPoint) -> str | None:
    """The failure of the file's own values, which may be placeholders a check cannot handle."""
    try:
        failure = _failure(check, base)
    except Exception:  # noqa: BLE001 - any other failure differs from the point's message
        return None
    return None if failure is None else str(failure)
