"""The designs of many data sets of one model, from one model-matrix build over their stacked rows.

Building a design costs about a millisecond of formula handling whatever the rows (formulaic
parses the formula and materialises the matrix), so a chunk of redrawn data sets is stacked,
its X and the terms' Z columns are built once, and each data set takes its rows. The level
codes of every term are then made per data set, exactly as `build_design` makes them (sorted
levels), and its terms are sorted by their own numbers of levels; so each design equals
`build_design` on the data set alone. Formulas with function calls (``center(x)``,
``poly(x, 2)``, ``C(g)``) may depend on all the rows they see and are built data set by data set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError
from workbench.model.design import Design, Term, build_design, check_fittable
from workbench.model.formula import parse_formula

__all__ = ["build_designs"]


def build_designs(
    formula: str, frames: list[pd.DataFrame], response_required: bool, fitted: bool
) -> list[Design | WorkbenchError]:
    """`build_design(formula, frame, response_required, fitted)` of every frame; an error is returned in its place."""
    parsed = parse_formula(formula)
    whole = len(frames) > 1 and "(" not in parsed.fixed and not any("(" in term.expr for term in parsed.random)
    if whole:
        try:
            stacked = build_design(parsed, pd.concat(frames, ignore_index=True), response_required, fitted=False)
        except WorkbenchError:
            whole = False  # some frame is at fault: let each say so
        else:
            whole = stacked.n_dropped == 0
    if not whole:
        return [_one(parsed, frame, response_required, fitted) for frame in frames]
    # build_design sorts the terms by their number of levels, stably: terms of one group (the same
    # factors, so the same number of levels) keep their formula order among themselves
    by_group: dict[str, list[Term]] = {}
    for term in stacked.terms:
        by_group.setdefault(term.group, []).append(term)
    seen: dict[str, int] = {}
    columns = []
    for term in parsed.random:
        columns.append(by_group[term.group][seen.get(term.group, 0)])
        seen[term.group] = seen.get(term.group, 0) + 1
    designs: list[Design | WorkbenchError] = []
    start = 0
    for frame in frames:
        rows = slice(start, start + len(frame))
        start += len(frame)
        terms = []
        for term, built in zip(parsed.random, columns):
            codes, levels = _level_codes(frame, term.factors)
            terms.append(Term(term.group, built.names, levels, codes, np.ascontiguousarray(built.z[rows])))
        order = sorted(range(len(terms)), key=lambda k: -terms[k].nlevels)
        design = Design(
            parsed,
            np.ascontiguousarray(stacked.x[rows]),
            stacked.fixef_names,
            stacked.y[rows].copy(),
            tuple(terms[k] for k in order),
            0,
        )
        try:
            if fitted:
                check_fittable(design)
        except WorkbenchError as exc:
            designs.append(exc)
            continue
        designs.append(design)
    return designs


def _one(parsed, frame: pd.DataFrame, response_required: bool, fitted: bool) -> Design | WorkbenchError:
    try:
        return build_design(parsed, frame, response_required, fitted)
    except WorkbenchError as exc:
        return exc


def _level_codes(frame: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Level codes and labels of a grouping factor, as `build_design` makes them."""
    if len(factors) == 1:
        codes, levels = pd.factorize(frame[factors[0]], sort=True)
        levels = np.asarray(levels).astype(str)
    else:
        labels = frame[factors[0]].astype(str)
        for factor in factors[1:]:
            labels = labels + ":" + frame[factor].astype(str)
        codes, levels = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), np.asarray(levels, dtype=object)
