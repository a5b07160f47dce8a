"""Fits of shifted and rescaled data: at the exact optimum, never below lme4's by more than rounding.

Reference values from scripts/reference/lme4_scale.R (tests/data/lme4_scale.json). The exact
optimum of a shifted or rescaled sleepstudy follows from the plain fit: y + a changes neither
criterion, Days × c leaves the ML deviance and σ unchanged and adds 2·log c to the REML
criterion (log|R_X|²), and scales the Days coefficient by 1/c (`workbench.fitting.scaling`).
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.fitting.status import FitStatus
from workbench.fitting.scaling import power_of_two, scale_design
from workbench.model.design import build_design
from workbench.model.formula import parse_formula

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "lme4_scale.json").read_text())["cases"]
SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"
RELATIVE = 1e-8  # criterion: rounding of a sum of ~180 terms of order 10
RELATIVE_1E12 = 1e-7  # Reaction + 1e12 holds only ~4 digits of each reaction time after the point


def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(DATA / "sleepstudy.csv", dtype={"Subject": str})


def shifted(kind: str, value: float) -> pd.DataFrame:
    data = sleepstudy()
    if kind == "offset":
        data["Reaction"] = data["Reaction"] + value
    else:
        data["Days"] = data["Days"] * value
    return data


@pytest.fixture(scope="module")
def plain():
    return {reml: wb.fit(SLEEP, sleepstudy(), reml=reml) for reml in (True, False)}


SLEEP_CASES = [name for name, case in CASES.items() if case["kind"] in ("offset", "scale")]


@pytest.mark.parametrize("name", SLEEP_CASES)
def test_shifted_or_rescaled_sleepstudy_reaches_the_exact_optimum(name, plain):
    case = CASES[name]
    reml = case["reml"]
    base = plain[reml]
    fit = wb.fit(SLEEP, shifted(case["kind"], case["value"]), reml=reml)
    assert fit.converged
    exact = base.objective
    days = base.fixef["Days"]
    if case["kind"] == "scale":
        exact += 2 * math.log(case["value"]) if reml else 0.0
        days /= case["value"]
    tolerance = RELATIVE_1E12 if case["value"] == 1e12 else RELATIVE
    assert fit.objective == pytest.approx(exact, rel=tolerance)
    assert fit.sigma == pytest.approx(base.sigma, rel=1e-6)
    assert fit.fixef["Days"] == pytest.approx(days, rel=1e-6)
    assert fit.fixef_se["Days"] == pytest.approx(base.fixef_se["Days"] * days / base.fixef["Days"], rel=1e-5)
    if case["kind"] == "offset":
        assert fit.fixef["(Intercept)"] == pytest.approx(base.fixef["(Intercept)"] + case["value"], rel=1e-9)
    if "objective" in case:  # lme4 fitted it: never above lme4's criterion
        assert fit.objective <= case["objective"] + tolerance * abs(case["objective"])


@pytest.mark.parametrize("name", [n for n in SLEEP_CASES if "error" not in CASES[n] and abs(math.log10(CASES[n]["value"] or 1)) <= 2])
def test_where_lme4_is_at_the_optimum_sigma_and_fixed_effects_equal_its(name):
    case = CASES[name]
    fit = wb.fit(SLEEP, shifted(case["kind"], case["value"]), reml=case["reml"])
    assert fit.objective == pytest.approx(case["objective"], rel=RELATIVE)
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-5)
    for term, value in case["fixef"].items():
        assert fit.fixef[term] == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize("reml", [True, False])
def test_tiny_residual_sd_goes_below_lme4_and_is_not_claimed_converged(reml):
    """Group SD 1e3, σ = 1e-6: d falls like log θ towards θ ≈ 1e9, beyond what double precision
    resolves in A = [Z X y]'[Z X y]; the fit goes below lme4's criterion and says it stopped short."""
    case = CASES[f"tiny_sigma-{'REML' if reml else 'ML'}"]
    data = pd.read_csv(DATA / "tiny_sigma.csv", dtype={"subject": str})
    fit = wb.fit("y ~ 1 + time + (1 | subject)", data, reml=reml)
    assert fit.objective < case["objective"]
    assert not fit.converged
    assert fit.return_code == FitStatus.STALLED
    assert "Optimiser: did not converge (stalled)" in fit.summary()
    assert fit.sigma < case["sigma"]


def test_scaled_design_maps_back_to_the_data():
    design = build_design(parse_formula(SLEEP), shifted("scale", 1e-8))
    scaled, scaling = scale_design(design)
    np.testing.assert_array_equal(scaled.x * scaling.x_scale, design.x)  # powers of two: exact
    np.testing.assert_allclose(
        scaled.y * scaling.y_scale + scaled.x @ scaling.shift, design.y, rtol=1e-13
    )
    np.testing.assert_array_equal(scaled.terms[0].z * scaling.z_scale[0], design.terms[0].z)
    assert np.all(np.abs(np.log2(np.sqrt(np.mean(scaled.x**2, axis=0)))) <= 0.5)


def test_power_of_two():
    np.testing.assert_array_equal(power_of_two(np.array([1.0, 3.0, 1e-8, 0.0, np.inf])), [1.0, 4.0, 2.0**-27, 1.0, 1.0])


TINY_SIGMA_STUDY = """
[study]
name = "tiny-sigma"
seed = 5
replicates = 4
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + time + (1 | subject)"

[layout]
kind = "longitudinal"
subjects = 20
times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

[truth]
beta = { "(Intercept)" = 250.0, time = 10.0 }
sigma = 1e-6
[truth.re.subject]
sd = { "(Intercept)" = 1e3 }
"""


def test_a_study_of_tiny_residual_sd_flags_every_fit(tmp_path):
    """The same case in a study: no fit is recorded as converged (they were all status 0 before)."""
    from workbench.run import main
    from workbench.study.store import ReplicateStore

    path = tmp_path / "study.toml"
    path.write_text(TINY_SIGMA_STUDY)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 0
    data = ReplicateStore(tmp_path / "out").open().load()
    assert (data.status == FitStatus.STALLED).all()
    assert not data.converged.any()
