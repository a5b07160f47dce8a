"""Model formulas in lme4 syntax: a fixed part for formulaic and a list of random-effect terms."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.errors import FormulaError

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term `(expr | group)`: correlated effects of `expr` per level of `group`.

    `group` is the grouping factor as written (`"state:city"`); `factors` are the data columns
    whose combination defines it; `expr` is the term's model-matrix formula (`"1 + Days"`).
    """

    expr: str
    group: str
    factors: tuple[str, ...]


@dataclass(frozen=True)
class Formula:
    """A parsed mixed-model formula."""

    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the random part and the response need (the fixed part's come from formulaic)."""
        names = [self.response]
        for term in self.random:
            names.extend(term.factors)
            names.extend(_expr_variables(term.expr))
        return tuple(dict.fromkeys(names))


def parse_formula(text: str, random_required: bool = True) -> Formula:
    """Parse `y ~ fixed + (expr | group) + ...` into its response, fixed part and random terms.

    Without `random_required`, a formula with no random-effect term is accepted (a linear
    model, fitted by least squares); simulation and studies keep the requirement.
    """
    if not isinstance(text, str) or "~" not in text:
        raise FormulaError(f"formula: expected 'response ~ terms', got {text!r}")
    lhs, rhs = text.split("~", 1)
    response = lhs.strip()
    if not _NAME.match(response):
        raise FormulaError(f"formula: the response must be one column name, got {response!r}")
    random: list[RandomTerm] = []
    fixed_parts: list[str] = []
    for piece in _split_top_level(rhs, text):
        stripped = piece.strip()
        if stripped.startswith("(") and stripped.endswith(")") and "|" in stripped:
            random.extend(_parse_random(stripped[1:-1], text))
        elif stripped:
            fixed_parts.append(stripped)
    if not random and random_required:
        raise FormulaError(f"formula: no random-effect term such as (1 | group) in {text!r}")
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    if "|" in fixed:
        raise FormulaError(f"formula: a random-effect term must be in parentheses, in {text!r}")
    seen = set()
    for term in random:
        for name in _term_columns(term):
            key = (term.group, name)
            if key in seen:
                raise FormulaError(f"formula: {name} appears twice for group {term.group!r}")
            seen.add(key)
    return Formula(text=text, response=response, fixed=fixed, random=tuple(random))


def _split_top_level(rhs: str, text: str) -> list[str]:
    """Split the right-hand side at '+' signs that are not inside parentheses."""
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(rhs):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"formula: unbalanced parentheses in {text!r}")
        elif char == "+" and depth == 0:
            pieces.append(rhs[start:i])
            start = i + 1
    if depth != 0:
        raise FormulaError(f"formula: unbalanced parentheses in {text!r}")
    pieces.append(rhs[start:])
    if any(not p.strip() for p in pieces):
        raise FormulaError(f"formula: an empty term in {text!r}")
    return pieces


def _parse_random(inner: str, text: str) -> list[RandomTerm]:
    """Expand `expr | group` or `expr || group`, with `a/b` nesting, into terms."""
    uncorrelated = "||" in inner
    expr, group = inner.split("||" if uncorrelated else "|", 1)
    expr, group = expr.strip(), group.strip()
    if not expr or not group or "|" in group:
        raise FormulaError(f"formula: cannot read the random term ({inner}) in {text!r}")
    groups = _expand_nesting(group, text)
    terms = []
    for factors in groups:
        name = ":".join(factors)
        if uncorrelated:
            columns = _uncorrelated_columns(expr, text)
            terms.extend(RandomTerm(column, name, factors) for column in columns)
        else:
            terms.append(RandomTerm(_normalise_expr(expr), name, factors))
    return terms


def _expand_nesting(group: str, text: str) -> list[tuple[str, ...]]:
    """`a/b/c` → [(a,), (a, b), (a, b, c)]; `a:b` → [(a, b)]."""
    if "/" in group:
        parts = [p.strip() for p in group.split("/")]
        chains = [tuple(_factor_names(p, text)) for p in parts]
        out, prefix = [], ()
        for chain in chains:
            prefix = prefix + chain
            out.append(prefix)
        return out
    return [tuple(_factor_names(group, text))]


def _factor_names(group: str, text: str) -> list[str]:
    names = [g.strip() for g in group.split(":")]
    for name in names:
        if not _NAME.match(name):
            raise FormulaError(f"formula: bad grouping factor {group!r} in {text!r}")
    return names


def _normalise_expr(expr: str) -> str:
    """An expression without an explicit 0 or -1 has an intercept, as in R."""
    terms = [t.strip() for t in expr.replace("-", "+-").split("+") if t.strip()]
    if "0" in terms or "-1" in terms:
        return " + ".join(["0"] + [t for t in terms if t not in ("0", "-1", "1")])
    return " + ".join(["1"] + [t for t in terms if t != "1"])


def _uncorrelated_columns(expr: str, text: str) -> list[str]:
    """`1 + x + z` → ['1', '0 + x', '0 + z'], one term per column (lme4's `||`)."""
    normal = _normalise_expr(expr)
    terms = [t.strip() for t in normal.split("+")]
    columns = []
    if terms[0] == "1":
        columns.append("1")
    for term in terms[1:]:
        columns.append(f"0 + {term}")
    if not columns:
        raise FormulaError(f"formula: the random term ({expr} || ...) has no columns in {text!r}")
    return columns


def _term_columns(term: RandomTerm) -> list[str]:
    parts = [t.strip() for t in term.expr.split("+")]
    return ["(Intercept)" if p == "1" else p for p in parts if p != "0"]


def _expr_variables(expr: str) -> list[str]:
    return [name for name in re.findall(r"[A-Za-z_.][A-Za-z0-9_.]*", expr)]
