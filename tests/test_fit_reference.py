"""`workbench.fitting.fit` reproduces lme4 1.1-31 on the classic data sets (tests/data/lme4_reference.json)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "lme4_reference.json").read_text())


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c['case']}-{c['method']}")
def case_and_fit(request):
    case = request.param
    data = pd.read_csv(DATA / case["data"])
    return case, wb.fit(case["formula"], data, reml=case["method"] == "REML")


def test_objective_and_loglik(case_and_fit):
    case, fit = case_and_fit
    assert fit.objective == pytest.approx(case["objective"], rel=1e-7)
    assert fit.loglik == pytest.approx(case["loglik"], rel=1e-7)
    assert fit.converged


def test_fixed_effects_within_a_ten_thousandth_of_their_se(case_and_fit):
    case, fit = case_and_fit
    for name, value in case["fixef"].items():
        assert abs(fit.fixef[name] - value) <= 1e-4 * case["fixef_se"][name]
        assert fit.fixef_se[name] == pytest.approx(case["fixef_se"][name], rel=1e-3)


def test_variance_components(case_and_fit):
    case, fit = case_and_fit
    ours = fit.varcorr.fillna({"var2": ""}).to_dict("records")
    assert [(r["grp"], r["var1"], r["var2"]) for r in ours] == [
        (r["grp"], r["var1"], r["var2"]) for r in case["varcorr"]
    ]
    for mine, theirs in zip(ours, case["varcorr"]):
        if theirs["vcov"] == 0:
            assert abs(mine["vcov"]) < 1e-8
        else:
            assert mine["vcov"] == pytest.approx(theirs["vcov"], rel=1e-3)
    assert fit.sigma == pytest.approx(case["sigma"], rel=1e-3)


def test_singular_flag(case_and_fit):
    case, fit = case_and_fit
    assert fit.singular == case["singular"]


def test_ranef_are_conditional_modes():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    fit = wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", data)
    ranef = fit.ranef["Subject"]
    assert list(ranef.columns) == ["(Intercept)", "Days"] and len(ranef) == 18
    # lme4: ranef(fm1)$Subject["308", ] = 2.258551, 9.198976
    assert ranef.loc["308"].to_numpy() == pytest.approx([2.258551, 9.198976], abs=2e-3)
    # BLUPs average to zero over balanced subjects
    assert np.abs(ranef.mean().to_numpy()).max() < 1e-6


def test_printed_summary_names_the_pieces():
    data = pd.read_csv(DATA / "sleepstudy.csv")
    text = str(wb.fit("Reaction ~ 1 + Days + (1 + Days | Subject)", data))
    for piece in ("REML criterion at convergence: 1743.6", "Subject", "Residual", "(Intercept)", "Days", "0.066"):
        assert piece in text
