"""The design of a mixed model: X, the random-effect terms, the θ map and the data checks.

Built once from (formula, data); everything downstream (the symbolic structure of the
Cholesky factor, the cross-product blocks, simulation) reads from it.
"""

from __future__ import annotations

import dataclasses
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
    dropped: tuple[int, ...] = ()  # columns of the formula's fixed-effect matrix left out (linearly dependent)

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
    formula: str | Formula,
    data: pd.DataFrame,
    response_required: bool = True,
    fitted: bool = True,
    drop_unused: bool = False,
) -> Design:
    """Check `data` against `formula` and build the design.

    Rows with a missing value in a used column are dropped with a warning (lme4's default);
    infinite values (in the data or in a column the formula computes), unknown or duplicated
    columns and a non-numeric response are errors. A response that also appears as a fixed
    term is dropped from the right-hand side with a warning (as lme4). With `drop_unused` (a
    one-off fit, as lme4 makes it), unused levels of categorical columns are dropped silently
    and fixed-effect columns that are linear combinations of earlier ones with a warning
    naming them (lme4's rank-deficiency message); without (a study: every data set keeps the
    same columns), `check_fittable` refuses dependent columns. With `fitted` (a model to be
    fitted, not only simulated), the checks of `check_fittable` apply.
    """
    parsed = formula if isinstance(formula, Formula) else parse_formula(formula)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data: expected a pandas DataFrame, got {type(data).__name__}")
    if len(data) == 0:
        raise DataError("data: the data set is empty")
    if response_required:
        parsed = _without_response_term(parsed)
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
    if not data.columns.is_unique:
        repeated = set(data.columns[data.columns.duplicated()])
        for column in needed:
            if column in repeated:
                count = int(np.sum(data.columns == column))
                raise DataError(f"data: {count} columns are named {column!r}; the formula uses it, so the name must be unique")
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
        if isinstance(values.dtype, pd.CategoricalDtype):
            if drop_unused:
                frame[column] = values.cat.remove_unused_categories()
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
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
    _check_finite(x, fixef_names, "fixed-effect", row_labels)
    dropped: tuple[int, ...] = ()
    if drop_unused:
        x, fixef_names, dropped = _drop_unused(x, fixef_names)
    terms = [_random_term(term.expr, term.group, term.factors, frame) for term in parsed.random]
    for term in terms:
        _check_finite(term.z, term.names, f"random-effect ({term.group})", row_labels)
    order = sorted(range(len(terms)), key=lambda k: -terms[k].nlevels)
    design = Design(
        parsed, x, fixef_names, y, tuple(terms[k] for k in order), int(na.sum()), row_labels, frame, dropped
    )
    if fitted:
        check_fittable(design, rank=not drop_unused)  # dropping left X of full rank
    return design


def check_fittable(design: Design, rank: bool = True) -> None:
    """Refuse a design whose model cannot be fitted (lme4's checks); simulation needs none of them.

    A grouping factor needs at least two levels and fewer levels than observations, a term's
    random effects must be fewer than the observations, and (with `rank`) X must have full
    column rank (`dependent_columns`).
    """
    n = design.n
    for term in design.terms:
        if term.nlevels < 2:
            raise DataError(
                f"data: grouping factor {term.group!r} has {term.nlevels} level; a fitted model needs at least 2"
                " (grouping factors must have > 1 sampled level)"
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
    dependent = dependent_columns(design.x) if rank else []
    if dependent:
        raise DataError(
            "data: the fixed-effect model matrix is rank deficient: "
            + "; ".join(_describe_dependent(design.x, design.fixef_names, dependent))
        )


RANK_TOL = 1e-7  # lme4's tolerance (rankMatrix, QR): a column whose residual is below this share of its norm


def dependent_columns(x: np.ndarray) -> list[int]:
    """Columns of `x` (in order) that are, to `RANK_TOL`, linear combinations of the columns kept before them.

    lme4 finds the same columns by a QR decomposition that keeps the column order and moves
    each dependent column to the end; an all-zero column is always dependent.
    """
    norms = np.linalg.norm(x, axis=0)
    if 0 < x.shape[1] <= x.shape[0]:
        # full rank, the common case, in one QR: |R_jj| is what column j adds to those before it
        if np.all(np.abs(np.diag(np.linalg.qr(x, mode="r"))) > RANK_TOL * norms):
            return []
    dependent, basis = [], np.zeros((x.shape[0], 0))
    for j in range(x.shape[1]):
        column = x[:, j]
        residual = column - basis @ (basis.T @ column)
        residual -= basis @ (basis.T @ residual)  # a second pass keeps the basis orthogonal to rounding
        size = np.linalg.norm(residual)
        if norms[j] == 0.0 or size <= RANK_TOL * norms[j]:
            dependent.append(j)
        else:
            basis = np.column_stack([basis, residual / size])
    return dependent


def _describe_dependent(x: np.ndarray, names: tuple[str, ...], dependent: list[int]) -> list[str]:
    """'name = combination of a, b' or 'name is zero' for each dependent column."""
    kept = [j for j in range(x.shape[1]) if j not in dependent]
    out = []
    for j in dependent:
        earlier = [k for k in kept if k < j]
        if not np.any(x[:, j]):
            out.append(f"{names[j]} is zero")
            continue
        coef = np.linalg.lstsq(x[:, earlier], x[:, j], rcond=None)[0] if earlier else np.zeros(0)
        scale = np.abs(coef) * np.linalg.norm(x[:, earlier], axis=0) if earlier else coef
        partners = [names[earlier[i]] for i in np.flatnonzero(scale > RANK_TOL * np.linalg.norm(x[:, j]))]
        out.append(f"{names[j]} = combination of {', '.join(partners)}" if partners else f"{names[j]} is zero")
    return out


def _drop_unused(x: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...], tuple[int, ...]]:
    """X without its dependent columns, with lme4's warning naming them."""
    dependent = dependent_columns(x)
    if not dependent:
        return x, names, ()
    count = len(dependent)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {count} column{'s' if count > 1 else ''}"
        f" / coefficient{'s' if count > 1 else ''}: " + "; ".join(_describe_dependent(x, names, dependent)),
        UserWarning,
        stacklevel=4,
    )
    keep = [j for j in range(x.shape[1]) if j not in dependent]
    return np.ascontiguousarray(x[:, keep]), tuple(names[j] for j in keep), tuple(dependent)


def _check_finite(columns: np.ndarray, names: tuple[str, ...], kind: str, row_labels: pd.Index) -> None:
    """One line naming a model-matrix column with a non-finite value (e.g. log of a zero)."""
    bad = ~np.isfinite(columns)
    if bad.any():
        row, j = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"data: the {kind} column {names[j]!r} is {columns[row, j]} at row {row_labels[row]!r}"
            f" ({int(bad[:, j].sum())} non-finite values); it must be finite"
        )


def _without_response_term(parsed: Formula) -> Formula:
    """The formula without a fixed term that is the response itself, with lme4's warning."""
    parts = [part.strip() for part in parsed.fixed.split("+")]
    if parsed.response not in parts:
        return parsed
    warnings.warn(
        f"the response {parsed.response!r} appeared on the right-hand side and was dropped", UserWarning, stacklevel=4
    )
    rest = [part for part in parts if part != parsed.response]
    return dataclasses.replace(parsed, fixed=" + ".join(rest) or "1")


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
        with np.errstate(all="ignore"):  # log(0) and the like: `_check_finite` names the column
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
