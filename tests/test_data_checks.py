"""Fit-time data checks as lme4 makes them: refusals with one line, drops with a warning, same fits.

Reference behaviour from scripts/reference/lme4_data_checks.R (tests/data/lme4_data_checks.json).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import DataError, WorkbenchError
from workbench.model.design import build_design, check_fittable, dependent_columns
from workbench.model.formula import parse_formula

DATA = Path(__file__).parent / "data"
LME4 = json.loads((DATA / "lme4_data_checks.json").read_text())["cases"]


def said(case: str) -> list[str]:
    value = LME4[case]["said"]
    return [value] if isinstance(value, str) else list(value)


@pytest.fixture
def sleep() -> pd.DataFrame:
    data = pd.read_csv(DATA / "sleepstudy.csv", dtype={"Subject": str})
    data["Days2"] = data["Days"] + pd.read_csv(DATA / "sleepstudy_noise.csv")["noise"]
    data["zero"] = 0.0
    data["level"] = pd.Categorical(np.where(data["Days"] < 5, "high", "low"), categories=["high", "low", "unused"])
    data["y0"] = 0.0
    return data


def assert_same_fit(fit, case: str) -> None:
    reference = LME4[case]
    assert fit.objective == pytest.approx(reference["objective"], rel=1e-9)
    assert fit.sigma == pytest.approx(reference["sigma"], rel=1e-6)
    assert list(fit.fixef.index) == list(reference["fixef"])
    for name, value in reference["fixef"].items():
        assert fit.fixef[name] == pytest.approx(value, rel=1e-6, abs=1e-9)


def test_one_level_is_refused(sleep):
    assert "error" in LME4["one_level"]
    sleep["Subject"] = "a"
    with pytest.raises(DataError, match=r"grouping factor 'Subject' has 1 level.*> 1 sampled level"):
        wb.fit("Reaction ~ 1 + Days + (1 | Subject)", sleep)


def test_as_many_levels_as_observations_is_refused_for_fitting_not_simulation(sleep):
    assert "must be < number of observations" in LME4["levels_equal_observations"]["error"]
    rows = sleep.iloc[::10].reset_index(drop=True)
    with pytest.raises(DataError, match=r"'Subject' has 18 levels for 18 observations"):
        wb.fit("Reaction ~ 1 + (1 | Subject)", rows)
    design = build_design("Reaction ~ 1 + (1 | Subject)", rows, fitted=False)
    assert design.terms[0].nlevels == design.n == 18


@pytest.mark.parametrize(
    "case, formula, named",
    [
        ("near_duplicate", "Reaction ~ 1 + Days + Days2 + (1 | Subject)", "Days2 = combination of Days"),
        ("zero_column", "Reaction ~ 1 + Days + zero + (1 | Subject)", "zero is zero"),
    ],
)
def test_dependent_columns_are_dropped_with_lme4s_warning(sleep, case, formula, named):
    message = said(case)[0]
    with pytest.warns(UserWarning, match=rf"^{message}: {named}$"):
        fit = wb.fit(formula, sleep)
    assert_same_fit(fit, case)
    # predictions on new data encode the full formula, then leave the dropped column out
    np.testing.assert_allclose(fit.predict(sleep), fit.fitted.to_numpy(), rtol=1e-12)


def test_dependent_columns_are_refused_in_a_study_design(sleep):
    design = build_design("Reaction ~ 1 + Days + Days2 + (1 | Subject)", sleep, fitted=False)
    with pytest.raises(DataError, match=r"^data: the fixed-effect model matrix is rank deficient: Days2 = combination of Days$"):
        check_fittable(design)


def test_dependent_columns_keep_the_order_and_lme4s_tolerance():
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal(50), rng.standard_normal(50), rng.standard_normal(50)
    x = np.column_stack([np.ones(50), a, 2 * a - 1, b, a + 1e-9 * c, np.zeros(50), a + 1e-6 * c])
    assert dependent_columns(x) == [2, 4, 5]


def test_unused_levels_are_dropped_silently(sleep):
    assert said("unused_level") == []
    fit = wb.fit("Reaction ~ 1 + level + (1 | Subject)", sleep)
    assert_same_fit(fit, "unused_level")


def test_the_response_on_the_right_is_dropped_with_a_warning(sleep):
    assert said("response_on_right")[0] == "the response appeared on the right-hand side and was dropped"
    with pytest.warns(UserWarning, match=r"^the response 'Days' appeared on the right-hand side and was dropped$"):
        fit = wb.fit("Days ~ 1 + Days + (1 | Subject)", sleep)
    assert fit.objective == pytest.approx(LME4["response_on_right"]["objective"], rel=1e-9)
    assert fit.fixef["(Intercept)"] == pytest.approx(4.5)


def test_a_response_the_fixed_effects_fit_exactly_is_one_line(sleep):
    assert LME4["zero_response"]["objective"] == "-Inf"  # lme4 "fits" it, at σ = 0
    with pytest.raises(DataError, match=r"^data: the fixed effects fit the response 'y0' exactly \(residual SD 0\)"):
        wb.fit("y0 ~ 1 + Days + (1 | Subject)", sleep)
    sleep["line"] = 3.0 + 0.25 * sleep["Days"]
    with pytest.raises(DataError, match="fit the response 'line' exactly"):
        wb.fit("line ~ 1 + Days + (1 | Subject)", sleep)


def test_non_finite_values_the_formula_computes_are_named(sleep):
    with pytest.raises(DataError, match=r"^data: the fixed-effect column 'np.log\(Days\)' is -inf at row 0 \(18 non-finite values\)"):
        wb.fit("Reaction ~ 1 + np.log(Days) + (1 | Subject)", sleep)
    with pytest.raises(DataError, match=r"'I\(1 / Days\)' is inf at row 0 \(18 non-finite values\)"):
        wb.fit("Reaction ~ 1 + I(1 / Days) + (1 | Subject)", sleep)


def test_a_duplicated_column_name_is_one_line(sleep):
    data = pd.concat([sleep, sleep[["Days"]]], axis=1)
    with pytest.raises(DataError, match=r"^data: 2 columns are named 'Days'"):
        wb.fit("Reaction ~ 1 + Days + (1 | Subject)", data)


def test_rescaled_predictor_does_not_raise(sleep):
    """Days × 1e8 raised NumPy's LinAlgError; it is now the plain fit with Days' coefficient / 1e8."""
    plain = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", sleep)
    sleep["Days"] = sleep["Days"] * 1e8
    fit = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", sleep)
    assert fit.sigma == pytest.approx(plain.sigma, rel=1e-6)
    assert fit.fixef["Days"] == pytest.approx(plain.fixef["Days"] / 1e8, rel=1e-6)


def test_numerical_failures_inside_a_fit_are_one_line(sleep, monkeypatch):
    import workbench.fitting.fit as fitting

    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(fitting, "optimize", broken)
    with pytest.raises(WorkbenchError, match=r"^fit: the model cannot be fitted to these data \(LinAlgError: Singular matrix\)$"):
        wb.fit("Reaction ~ 1 + Days + (1 | Subject)", sleep)


def test_huge_fixed_effect_scale_is_one_line_or_a_fit(sleep):
    sleep["Reaction"] = sleep["Reaction"] * 1e300
    try:
        fit = wb.fit("Reaction ~ 1 + Days + (1 | Subject)", sleep)
    except WorkbenchError as exc:
        assert "\n" not in str(exc)
    else:
        assert np.isfinite(fit.objective) and fit.sigma > 1e300


def test_study_style_design_needs_no_fittable_checks():
    parsed = parse_formula("y ~ 1 + (1 | g)")
    layout = pd.DataFrame({"g": ["a"] * 5})
    design = build_design(parsed, layout, response_required=False, fitted=False)
    assert design.terms[0].nlevels == 1


STUDY = """
[study]
name = "checks"
seed = 5
replicates = 2
methods = ["REML"]

[model]
formula = "y ~ 1 + time + (1 | subject)"

[layout]
kind = "longitudinal"
subjects = 20
times = [0, 1, 2, 3]

[truth]
beta = { "(Intercept)" = 250.0, time = 10.0 }
sigma = 1.0
[truth.re.subject]
sd = { "(Intercept)" = 1.0 }
"""


@pytest.mark.parametrize(
    "edits, message",
    [
        ({"subjects = 20": "subjects = 1"}, "grouping factor 'subject' has 1 level"),
        (
            {"1 + time + (1": "1 + time + I(2 * time) + (1", "time = 10.0 }": 'time = 10.0, "I(2 * time)" = 1.0 }'},
            "the fixed-effect model matrix is rank deficient: I(2 * time) = combination of time",
        ),
    ],
)
def test_a_study_that_cannot_be_fitted_is_one_line_and_writes_nothing(tmp_path, capsys, edits, message):
    from workbench.run import main

    text = STUDY
    for old, new in edits.items():
        text = text.replace(old, new)
    path = tmp_path / "study.toml"
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
