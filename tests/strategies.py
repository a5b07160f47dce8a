"""Hypothesis strategies shared by the tests: small layouts of the three families, truths, models."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from hypothesis import reject
from hypothesis import strategies as st

from workbench.model.design import Design, build_design
from workbench.errors import DataError

FORMULAS = {
    "longitudinal": (
        "y ~ 1 + time + (1 + time | subject)",
        "y ~ 1 + time + (1 | subject) + (0 + time | subject)",
        "y ~ 1 + time + x + (1 + time || subject)",
        "y ~ 1 + x + (1 + time + x | subject)",
    ),
    "nested": (
        "y ~ 1 + (1 | state/city)",
        "y ~ 1 + x + (1 | state/city/hood)",
        "y ~ 1 + x + (1 + x | state) + (1 | state:city)",
    ),
    "crossed": (
        "y ~ 1 + (1 | sender) + (1 | receiver)",
        "y ~ 1 + x + (1 + x | sender) + (1 | receiver)",
    ),
}
FAMILIES = tuple(FORMULAS)

_seeds = st.integers(0, 2**32 - 1)
_unit = st.floats(-1.0, 1.0, allow_subnormal=False)


class Model(NamedTuple):
    """A formula, a layout (no response column), its design and a truth for it."""

    family: str
    formula: str
    layout: pd.DataFrame
    design: Design
    truth: dict


def _finish(draw, rows: dict) -> pd.DataFrame:
    """A frame of `rows` with a continuous covariate x and the rows in a random order."""
    frame = pd.DataFrame(rows)
    frame["x"] = np.random.default_rng(draw(_seeds)).normal(size=len(frame))
    order = draw(st.permutations(range(len(frame))))
    return frame.iloc[list(order)].reset_index(drop=True)


@st.composite
def longitudinal_layouts(draw, times: tuple[float, ...] | None = None) -> pd.DataFrame:
    """Subjects measured at distinct times from a pool: at least 4 each (2 for a given pool), the first at all."""
    pool = list(times) if times is not None else draw(st.lists(st.integers(-3, 8), min_size=6, max_size=8, unique=True))
    low = 2 if times is not None else 4
    subjects = draw(st.integers(2, 5))
    labels = draw(st.permutations(range(10, 10 + subjects)))
    rows: dict[str, list] = {"subject": [], "time": []}
    for i, label in enumerate(labels):
        count = len(pool) if i == 0 else draw(st.integers(low, len(pool)))
        chosen = draw(st.permutations(pool))[:count]
        rows["subject"].extend([label] * count)
        rows["time"].extend(float(t) for t in chosen)
    return _finish(draw, rows)


@st.composite
def nested_layouts(draw) -> pd.DataFrame:
    """States ⊃ cities ⊃ hoods, labels restarting within each parent, 2–3 observations per hood."""
    rows: dict[str, list] = {"state": [], "city": [], "hood": []}
    first = True
    for state in range(1, draw(st.integers(2, 4)) + 1):
        for city in range(1, draw(st.integers(1, 3)) + 1):
            for hood in range(1, draw(st.integers(1, 3)) + 1):
                # one unit of 3 keeps every factor's levels fewer than half the rows
                count = 3 if first else draw(st.integers(2, 3))
                first = False
                rows["state"].extend([f"s{state}"] * count)
                rows["city"].extend([city] * count)
                rows["hood"].extend([hood] * count)
    return _finish(draw, rows)


@st.composite
def crossed_layouts(draw) -> pd.DataFrame:
    """Senders × receivers with 0–2 observations per cell."""
    senders, receivers = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    rows: dict[str, list] = {"sender": [], "receiver": []}
    for s in range(senders):
        for r in range(receivers):
            count = draw(st.sampled_from((0, 1, 1, 2)))
            rows["sender"].extend([f"a{s}"] * count)
            rows["receiver"].extend([f"b{r}"] * count)
    if len(rows["sender"]) < 4:
        reject()
    return _finish(draw, rows)


LAYOUTS = {"longitudinal": longitudinal_layouts, "nested": nested_layouts, "crossed": crossed_layouts}


@st.composite
def correlation_matrices(draw, q: int) -> np.ndarray:
    """A q×q positive definite correlation matrix LL' from unit rows of a lower triangle L."""
    chol = np.zeros((q, q))
    chol[0, 0] = 1.0
    for i in range(1, q):
        row = np.array([draw(_unit) for _ in range(i)] + [draw(st.floats(0.3, 1.0))])
        chol[i, : i + 1] = row / np.linalg.norm(row)
    corr = chol @ chol.T
    np.fill_diagonal(corr, 1.0)
    return corr


@st.composite
def truths(draw, design: Design, zero_sd: bool = True) -> dict:
    """A truth for the design: β, σ, SDs (some 0 when `zero_sd`) and PD within-term correlations."""
    sds = st.one_of(st.just(0.0), st.floats(0.05, 5.0)) if zero_sd else st.floats(0.05, 5.0)
    beta = {name: draw(st.floats(-100.0, 100.0, allow_subnormal=False)) for name in design.fixef_names}
    sigma = draw(st.floats(0.1, 10.0))
    re: dict[str, dict] = {}
    for term in design.terms:
        entry = re.setdefault(term.group, {"sd": {}})
        entry["sd"].update({name: draw(sds) for name in term.names})
        if term.q > 1:
            corr = draw(correlation_matrices(term.q))
            table = entry.setdefault("corr", {})
            for a in range(term.q):
                for b in range(a + 1, term.q):
                    table[f"{term.names[a]}:{term.names[b]}"] = float(corr[b, a])
    return {"beta": beta, "sigma": sigma, "re": re}


def design_or_reject(formula: str, layout: pd.DataFrame) -> Design:
    """The design of a layout, or a rejected example when the layout cannot carry the model."""
    try:
        return build_design(formula, layout, response_required=False)
    except DataError:
        reject()


@st.composite
def models(draw, families: tuple[str, ...] = FAMILIES, zero_sd: bool = True) -> Model:
    """A random model of one of `families`: formula, layout, design and truth."""
    family = draw(st.sampled_from(families))
    formula = draw(st.sampled_from(FORMULAS[family]))
    layout = draw(LAYOUTS[family]())
    design = design_or_reject(formula, layout)
    return Model(family, formula, layout, design, draw(truths(design, zero_sd=zero_sd)))
