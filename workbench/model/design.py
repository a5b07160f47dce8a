"""The design of a mixed model: X, the random-effect terms, the θ map and the data checks.

Built once from (formula, data); everything downstream (the symbolic structure of the
Cholesky factor, the cross-product blocks, simulation) reads from it.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import formulaic
import numpy as np
import pandas as pd

from workbench.errors import DataError, FormulaError
from workbench.model.formula import Formula, parse_formula


@dataclass(frozen=True, eq=False)
class Term:
    """A random-effect term: `q` effects (`names`) for each of the `levels` of `group`."""

    group: str
    names: tuple[str, ...]
    levels: np.ndarray
    codes: np.ndarray  # (n,) level index of each row
    z: np.ndarray  # (n, q) the term's model-matrix columns

    @property
    def q(self) -> int:
        return len(self.names)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def ntheta(self) -> int:
        return self.q * (self.q + 1) // 2


@dataclass(frozen=True, eq=False)
class Design:
    """Fixed-effect matrix, response and random-effect terms of one data set.

    Terms are sorted by number of levels, largest first (lme4's order, and the order of θ).
    """

    formula: Formula
    x: np.ndarray  # (n, p)
    fixef_names: tuple[str, ...]
    y: np.ndarray  # (n,)
    terms: tuple[Term, ...]
    n_dropped: int
    row_labels: pd.Index | None = None  # the data's index labels of the rows used, in order
    frame: pd.DataFrame | None = None  # the columns the formula uses, on those rows: encodes new data alike

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.x.shape[1]

    @property
    def ntheta(self) -> int:
        return sum(t.ntheta for t in self.terms)

    def theta_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term, row, col) of every θ entry: lower triangle of each λ, column-major, term by term."""
        term, row, col = [], [], []
        for k, t in enumerate(self.terms):
            for c in range(t.q):
                for r in range(c, t.q):
                    term.append(k)
                    row.append(r)
                    col.append(c)
        return (np.array(term, np.int64), np.array(row, np.int64), np.array(col, np.int64))

    def theta_lower_bounds(self) -> np.ndarray:
        """0 for diagonal entries of λ, -inf elsewhere (lme4's bounds)."""
        _, row, col = self.theta_map()
        return np.where(row == col, 0.0, -np.inf)


def build_design(
    formula: str | Formula, data: pd.DataFrame, response_required: bool = True, fitted: bool = True
) -> Design:
    """Check `data` against `formula` and build the design.

    Rows with a missing value in a used column are dropped with a warning (lme4's default);
    infinite values, unknown columns and a non-numeric response are errors. With `fitted`
    (a model to be fitted, not only simulated), so are the checks of `check_fittable`.
    """
    parsed = formula if isinstance(formula, Formula) else parse_formula(formula)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise DataError("data: the data set is empty")
    try:
        fixed_vars = formulaic.Formula(parsed.fixed).required_variables
    except Exception as exc:  # formulaic's parse errors are long; keep the first line
        raise FormulaError(f"formula: cannot read the fixed part {parsed.fixed!r}: {str(exc).splitlines()[0]}") from None
    needed = list(dict.fromkeys([*parsed.columns, *sorted(fixed_vars)]))
    if not response_required:
        needed = [c for c in needed if c != parsed.response]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise DataError(f"data: no column named {', '.join(map(repr, missing))} (the formula uses it)")
    frame = data[needed]
    na = frame.isna().any(axis=1).to_numpy()
    if na.all():
        raise DataError("data: every row has a missing value in the columns the formula uses")
    if na.any():
        warnings.warn(f"{int(na.sum())} rows with missing values dropped", UserWarning, stacklevel=3)
        frame = frame.loc[~na]
    row_labels = frame.index
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if not np.isfinite(values.to_numpy(dtype=float)).all():
                raise DataError(f"data: column {column!r} has infinite values")

    if response_required:
        response = frame[parsed.response]
        if not pd.api.types.is_numeric_dtype(response) or pd.api.types.is_bool_dtype(response):
            raise DataError(f"data: the response {parsed.response!r} must be numeric, got {response.dtype}")
        y = np.array(response.to_numpy(dtype=float))  # a writable copy: kernels take one array type
    else:
        y = np.zeros(len(frame))

    x, fixef_names = _fixed_matrix(parsed.fixed, frame)
    terms = [_random_term(term.expr, term.group, term.factors, frame) for term in parsed.random]
    order = sorted(range(len(terms)), key=lambda k: -terms[k].nlevels)
    design = Design(parsed, x, fixef_names, y, tuple(terms[k] for k in order), int(na.sum()), row_labels, frame)
    if fitted:
        check_fittable(design)
    return design


def check_fittable(design: Design) -> None:
    """Refuse a design whose model cannot be fitted (lme4's checks); simulation needs none of them.

    A grouping factor needs at least two levels and fewer levels than observations, a term's
    random effects must be fewer than the observations, and X must have full column rank.
    """
    n = design.n
    for term in design.terms:
        if term.nlevels < 2:
            raise DataError(
                f"data: grouping factor {term.group!r} has {term.nlevels} level; a fitted model needs at least 2"
            )
        if term.nlevels >= n:
            raise DataError(
                f"data: grouping factor {term.group!r} has {term.nlevels} levels for {n} observations;"
                " it must have fewer levels than observations"
            )
        if term.nlevels * term.q >= n and term.q > 1:
            raise DataError(
                f"data: term ({' + '.join(term.names)} | {term.group}) has {term.nlevels * term.q} random effects"
                f" for {n} observations; the variance components would not be identifiable"
            )
    if design.p and np.linalg.matrix_rank(design.x) < design.p:
        raise DataError(
            f"data: the fixed-effect columns are collinear: {', '.join(_collinear(design.x, design.fixef_names))}"
        )


def _lme4_name(name: str) -> str:
    """formulaic's column names in lme4's spelling: `Intercept` → `(Intercept)`, `g[T.b]` → `gb`."""
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"\[T\.([^\]]*)\]", r"\1", name)


def _model_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    direct = _plain_columns(expr, frame)
    if direct is not None:
        return direct
    try:
        matrix = formulaic.model_matrix(expr, frame, na_action="raise")
    except Exception as exc:
        raise FormulaError(f"formula: cannot build {expr!r}: {str(exc).splitlines()[0]}") from None
    names = tuple(_lme4_name(str(c)) for c in matrix.columns)
    return np.array(matrix, dtype=float).reshape(len(frame), -1), names


def _plain_columns(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """The model matrix of `1 + a + b` (numeric columns only) without formulaic, else None.

    Most mixed-model formulas are of this form, and formulaic's generality costs
    milliseconds per call, more than a small fit.
    """
    parts = [part.strip() for part in expr.split("+")]
    intercept = "0" not in parts and "-1" not in parts
    names = [part for part in parts if part not in ("0", "1", "-1")]
    for name in names:
        if name not in frame.columns:
            return None
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            return None
    if len(set(names)) != len(names):
        return None
    columns = [np.ones(len(frame))] if intercept else []
    columns += [frame[name].to_numpy(dtype=float) for name in names]
    matrix = np.column_stack(columns) if columns else np.zeros((len(frame), 0))
    return matrix, (("(Intercept)",) if intercept else ()) + tuple(names)


def _fixed_matrix(expr: str, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    x, names = _model_matrix(expr, frame)
    if x.shape[1] == 0:
        return np.zeros((len(frame), 0)), ()
    return np.ascontiguousarray(x), names


def _collinear(x: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """Columns that are linear combinations of the columns before them, with those they depend on."""
    out, kept = [], []
    for j in range(x.shape[1]):
        candidate = kept + [j]
        if np.linalg.matrix_rank(x[:, candidate]) < len(candidate):
            coef, *_ = np.linalg.lstsq(x[:, kept], x[:, j], rcond=None) if kept else (np.zeros(0),)
            partners = [names[kept[i]] for i in np.flatnonzero(np.abs(coef) > 1e-8)]
            out.append(f"{names[j]} = combination of {', '.join(partners)}" if partners else f"{names[j]} is zero")
        else:
            kept.append(j)
    return out


def _random_term(expr: str, group: str, factors: tuple[str, ...], frame: pd.DataFrame) -> Term:
    z, names = _model_matrix(expr, frame)
    if z.shape[1] == 0:
        raise FormulaError(f"formula: the random term ({expr} | {group}) has no columns")
    if len(factors) == 1:
        codes, levels = pd.factorize(frame[factors[0]], sort=True)
        levels = np.asarray(levels).astype(str)
    else:
        labels = frame[factors[0]].astype(str)
        for factor in factors[1:]:
            labels = labels + ":" + frame[factor].astype(str)
        codes, levels = pd.factorize(labels, sort=True)
    return Term(group, names, np.asarray(levels, dtype=object), codes.astype(np.int64), np.ascontiguousarray(z))


def term_arrays(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Level codes (K, n) and columns (K, n, qmax) of all terms, for the kernels."""
    qmax = max(t.q for t in design.terms)
    codes = np.stack([t.codes for t in design.terms]).astype(np.int64)
    z = np.zeros((len(design.terms), design.n, qmax))
    for k, t in enumerate(design.terms):
        z[k, :, : t.q] = t.z
    return codes, z
