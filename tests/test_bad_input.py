"""Bad data gets one clear error naming the problem; missing values are dropped with a warning."""

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import DataError, FormulaError


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "y": rng.normal(size=60),
            "x": rng.normal(size=60),
            "g": np.repeat(np.arange(12), 5),
            "h": np.repeat(["a", "b", "c"], 20),
            "label": ["t"] * 60,
        }
    )


@pytest.mark.parametrize(
    "formula, edit, error, message",
    [
        ("y ~ x + (1 | nosuch)", None, DataError, "data: no column named 'nosuch'"),
        ("y ~ z + (1 | g)", None, DataError, "data: no column named 'z'"),
        ("label ~ x + (1 | g)", None, DataError, "data: the response 'label' must be numeric"),
        ("y ~ x + (1 | id)", "ids", DataError, "data: grouping factor 'id' has 60 levels for 60 observations"),
        ("y ~ x + (1 | g)", "empty", DataError, "data: the data set is empty"),
        ("y ~ x + (1 | g)", "inf", DataError, "data: column 'x' has infinite values"),
    ],
)
def test_bad_input(data, formula, edit, error, message):
    if edit == "ids":
        data["id"] = np.arange(60)
    elif edit == "empty":
        data = data.iloc[:0]
    elif edit == "inf":
        data.loc[3, "x"] = np.inf
    with pytest.raises(error) as err:
        wb.fit(formula, data)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_collinear_columns_are_dropped_with_a_warning(data):
    data["x2"] = 2 * data["x"]
    with pytest.warns(UserWarning, match=r"^fixed-effect model matrix is rank deficient so dropping 1 column / coefficient: x2 = combination of x$"):
        fit = wb.fit("y ~ x + x2 + (1 | g)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "x"]


def test_missing_values_are_dropped_with_a_warning(data):
    data.loc[[1, 7], "y"] = np.nan
    data.loc[9, "x"] = np.nan
    with pytest.warns(UserWarning, match="3 rows with missing values dropped"):
        fit = wb.fit("y ~ x + (1 | g)", data)
    assert fit.n_obs == 57


def test_string_and_categorical_grouping_columns_are_factors(data):
    data["gs"] = data["g"].astype(str)
    data["gc"] = data["g"].astype("category")
    fits = [wb.fit(f"y ~ x + (1 | {g})", data) for g in ("g", "gs", "gc")]
    assert fits[0].objective == pytest.approx(fits[1].objective, rel=1e-12)
    assert fits[0].objective == pytest.approx(fits[2].objective, rel=1e-12)


def test_categorical_fixed_effects_get_lme4_names(data):
    fit = wb.fit("y ~ x * h + (1 | g)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "x", "hb", "hc", "x:hb", "x:hc"]
