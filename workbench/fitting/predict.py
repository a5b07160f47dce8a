"""Fitted values and predictions of a fitted model, on its own rows or on new data (lme4's `predict`).

New data are encoded as the fit's data were: a categorical covariate keeps the fit's levels and
contrasts (formulaic's model specification, rebuilt from the fit's rows), and a grouping factor's
level is matched by its label, as lme4 matches factor levels. A level the fit did not see
contributes no random effect (lme4's ``allow.new.levels = TRUE``); a row with a missing value in
a column the prediction needs is predicted as NaN (lme4's ``na.action = na.pass``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import formulaic
import numpy as np
import pandas as pd

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.model.design import Design, Term
from workbench.model.formula import RandomTerm

if TYPE_CHECKING:
    from workbench.fitting.result import FitResult

POPULATION = ("~0", "0")  # re_form values that leave every random effect out


def conditional(re_form) -> bool:
    """True when `re_form` asks for every random effect (None), False for none (``"~0"``)."""
    if re_form is None:
        return True
    if isinstance(re_form, str) and re_form.replace(" ", "") in POPULATION:
        return False
    shown = repr(re_form) if len(repr(re_form)) <= 60 else repr(re_form)[:57] + "..."
    raise WorkbenchError(f"re_form: must be None (every random effect) or '~0' (population level), got {shown}")


def term_effects(result: FitResult) -> list[np.ndarray]:
    """The conditional modes b (levels, q) of each term of the design, in design order."""
    return [result.ranef[t.group][list(t.names)].to_numpy(dtype=float) for t in result.problem.design.terms]


def random_part(effects: list[np.ndarray], codes: list[np.ndarray], z: list[np.ndarray]) -> np.ndarray:
    """Σₖ zₖ·bₖ[level] row by row; a row whose level code is −1 (a new level) gets nothing from that term."""
    out = np.zeros(len(codes[0]))
    for b, code, columns in zip(effects, codes, z):
        seen = code >= 0
        out[seen] += np.einsum("ij,ij->i", columns[seen], b[code[seen]])
    return out


def fitted_values(result: FitResult, re_form=None) -> np.ndarray:
    """Xβ̂ (+ Zb̂) on the rows the fit used."""
    design = result.problem.design
    values = design.x @ result.fixef.to_numpy(dtype=float) if design.p else np.zeros(design.n)
    if conditional(re_form):
        terms = design.terms
        values = values + random_part(term_effects(result), [t.codes for t in terms], [t.z for t in terms])
    return values


def predict(result: FitResult, newdata: pd.DataFrame | None = None, re_form=None) -> pd.Series:
    """Predictions on `newdata` (or on the fit's own rows), conditional on the random effects or not."""
    random = conditional(re_form)
    design = result.problem.design
    if newdata is None:
        return pd.Series(fitted_values(result, re_form), index=design.row_labels, name="predicted")
    arguments.frame(newdata, "newdata")
    formula = design.formula
    random_terms = _formula_terms(design)
    fixed = _variables(formula.fixed, design.frame)
    needed = list(fixed)
    if random:
        for spec in random_terms:
            needed += [*spec.factors, *_variables(spec.expr, design.frame)]
    needed = list(dict.fromkeys(needed))
    _check_columns(newdata, needed, design.frame)
    complete = ~newdata[needed].isna().any(axis=1).to_numpy()
    rows = newdata.loc[complete, needed].reset_index(drop=True)
    _check_levels(rows, fixed, design.frame)
    values = np.zeros(len(rows))
    if design.p:
        x = np.delete(_encode(formula.fixed, design.frame, rows, design.p + len(design.dropped)), design.dropped, axis=1)
        values += x @ result.fixef.to_numpy(dtype=float)
    if random and len(rows):
        codes, z = [], []
        for term, spec in zip(design.terms, random_terms):
            _check_levels(rows, _variables(spec.expr, design.frame), design.frame)
            z.append(_encode(spec.expr, design.frame, rows, term.q))
            codes.append(_level_codes(term, spec.factors, rows, design.frame))
        values += random_part(term_effects(result), codes, z)
    out = np.full(len(newdata), np.nan)
    out[complete] = values
    return pd.Series(out, index=newdata.index, name="predicted")


def _formula_terms(design: Design) -> list[RandomTerm]:
    """The formula's random terms in the design's order (terms sorted by levels, stably).

    The terms of one grouping factor keep their formula order, and each design term matches
    the next formula term of its group.
    """
    pending: dict[str, list[RandomTerm]] = {}
    for spec in design.formula.random:
        pending.setdefault(spec.group, []).append(spec)
    return [pending[t.group].pop(0) for t in design.terms]


def _variables(expr: str, frame: pd.DataFrame) -> list[str]:
    return sorted(v for v in formulaic.Formula(expr).required_variables if v in frame.columns)


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _check_columns(newdata: pd.DataFrame, needed: list[str], frame: pd.DataFrame) -> None:
    missing = [c for c in needed if c not in newdata.columns]
    if missing:
        raise WorkbenchError(f"newdata: no column named {', '.join(map(repr, missing))} (the model uses it)")
    for column in needed:
        fitted_numeric, new_numeric = _numeric(frame[column]), _numeric(newdata[column])
        if fitted_numeric != new_numeric:
            kinds = {True: "numeric", False: "categorical"}
            raise WorkbenchError(
                f"newdata: column {column!r} is {kinds[new_numeric]} ({newdata[column].dtype});"
                f" the fit used {kinds[fitted_numeric]} values"
            )


def _check_levels(rows: pd.DataFrame, columns: list[str], frame: pd.DataFrame) -> None:
    """A categorical covariate (not a grouping factor) may only take levels the fit saw."""
    for column in columns:
        if _numeric(frame[column]):
            continue
        new = ~rows[column].isin(pd.unique(frame[column]))
        if new.any():
            raise WorkbenchError(
                f"newdata: column {column!r} has the level {rows[column][new].iloc[0]!r}, which the fit did not see"
            )


def _encode(expr: str, frame: pd.DataFrame, rows: pd.DataFrame, width: int) -> np.ndarray:
    """The model matrix of `expr` on `rows`, encoded with the fit's levels, contrasts and transforms."""
    if not len(rows):
        return np.zeros((0, width))
    spec = formulaic.model_matrix(expr, frame, na_action="raise").model_spec
    try:
        matrix = np.asarray(spec.get_model_matrix(rows, na_action="raise"), dtype=float).reshape(len(rows), -1)
    except Exception as exc:  # formulaic's messages are long; keep the first line
        raise WorkbenchError(f"newdata: cannot encode {expr!r}: {str(exc).splitlines()[0]}") from None
    assert matrix.shape[1] == width, (expr, matrix.shape, width)
    return matrix


def _labels(rows: pd.DataFrame, factors: tuple[str, ...], frame: pd.DataFrame) -> pd.Series:
    """Level labels of a grouping factor on new rows, spelt as `build_design` spells the fit's."""
    parts = []
    for factor in factors:
        values = rows[factor]
        fitted = frame[factor]
        if _numeric(values) and values.dtype != fitted.dtype:
            # 308.0 is level "308" of an integer factor: compare in the fit's type when exact
            cast = values.astype(fitted.dtype)
            if np.array_equal(cast.to_numpy(dtype=float), values.to_numpy(dtype=float)):
                values = cast
        parts.append(values.astype(str))
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + ":" + part
    return labels


def _level_codes(term: Term, factors: tuple[str, ...], rows: pd.DataFrame, frame: pd.DataFrame) -> np.ndarray:
    """The fit's level index of each new row, −1 for a level the fit did not see."""
    labels = _labels(rows, factors, frame).to_numpy(dtype=object)
    return pd.Index(term.levels).get_indexer(labels).astype(np.int64)
