"""lme4 formula syntax: random terms, nesting, uncorrelated effects, term names."""

import pytest

from workbench.errors import FormulaError
from workbench.model.formula import parse_formula


def terms(text):
    return [(t.expr, t.group, t.factors) for t in parse_formula(text).random]


def test_random_slopes():
    f = parse_formula("y ~ 1 + time + (1 + time | subject)")
    assert f.response == "y" and f.fixed == "1 + time"
    assert terms(f.text) == [("1 + time", "subject", ("subject",))]


def test_implicit_intercept_and_suppressed_intercept():
    assert terms("y ~ x + (x | g)") == [("1 + x", "g", ("g",))]
    assert terms("y ~ x + (0 + x | g)") == [("0 + x", "g", ("g",))]


def test_uncorrelated_double_bar_splits_columns():
    assert terms("y ~ x + (1 + x || g)") == [("1", "g", ("g",)), ("0 + x", "g", ("g",))]


def test_nesting_slash_expands_to_interactions():
    assert terms("y ~ 1 + (1 | state/city/hood)") == [
        ("1", "state", ("state",)),
        ("1", "state:city", ("state", "city")),
        ("1", "state:city:hood", ("state", "city", "hood")),
    ]


def test_interaction_group_and_crossed_terms():
    assert terms("y ~ 1 + (1 | a:b) + (1 | c)") == [("1", "a:b", ("a", "b")), ("1", "c", ("c",))]


def test_fixed_part_defaults_to_intercept():
    assert parse_formula("y ~ (1 | g)").fixed == "1"


@pytest.mark.parametrize(
    "text, message",
    [
        ("y + (1|g)", "formula: expected 'response ~ terms'"),
        ("y ~ x", "formula: no random-effect term such as (1 | group)"),
        ("y ~ x + (1 | g", "formula: unbalanced parentheses"),
        ("y ~ x + + (1 | g)", "formula: an empty term"),
        ("y ~ x + (1 | g) + (1 | g)", "formula: (Intercept) appears twice for group 'g'"),
        ("log(y) ~ x + (1 | g)", "formula: the response must be one column name"),
        ("y ~ x + ( | g)", "formula: cannot read the random term"),
    ],
)
def test_bad_formulas_say_what_is_wrong(text, message):
    with pytest.raises(FormulaError) as err:
        parse_formula(text)
    assert str(err.value).startswith(message)
