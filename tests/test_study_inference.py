"""Tests, p-values and intervals stored by a study, checked against `wb.fit` and `wb.lrt` of the same data sets."""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import workbench as wb
from workbench.kernels.reasons import COMPUTED, NOT_IMPLEMENTED, NOT_REQUESTED, VARYING_ROWS
from workbench.run import main
from workbench.study.execute import read_summary
from workbench.study.spec import parse_study
from workbench.study.store import ReplicateStore

STUDY = """
[study]
name = "inference-small"
seed = 11
replicates = 6

[model]
formula = "y ~ 1 + time + (1 + time | subject)"

[layout]
kind = "longitudinal"
subjects = 9
times = [0, 1, 2, 3]

[truth]
beta = { "(Intercept)" = 1.0, time = 0.0 }
sigma = 1.0
[truth.re.subject]
sd = { "(Intercept)" = 1.0, time = 0.4 }
corr = { "(Intercept):time" = 0.3 }

[[analysis]]
name = "slopes"
methods = ["ML", "REML"]
tests = ["asymptotic", "residual", "satterthwaite", { ddf = "kenward-roger", effects = ["time"] }]
intervals = ["wald", "profile"]

[[analysis]]
name = "intercepts"
formula = "y ~ 1 + time + (1 | subject)"
methods = ["REML"]

[[analysis]]
name = "flat"
formula = "y ~ 1 + (1 + time | subject)"
methods = ["ML"]

[[lrt]]
smaller = "flat"
larger = "slopes"
method = "ML"

[[lrt]]
smaller = "intercepts"
larger = "slopes"
method = "REML"
null = "mixture"

[summary]
alpha = [0.05, 0.5]
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inference")
    path = folder / "study.toml"
    path.write_text(STUDY)
    assert main([str(path), "--out", str(folder / "out"), "--quiet", "--no-report"]) == 0
    return path, ReplicateStore(folder / "out").open().load()


def test_the_test_dimension_names_every_test(run):
    _, raw = run
    fixed = [
        f"slopes:{method}:{ddf}:{effect}"
        for method in ("ML", "REML")
        for ddf in ("asymptotic", "residual", "satterthwaite", "kenward-roger")
        for effect in ("(Intercept)", "time")
        if not (ddf == "kenward-roger" and (method == "ML" or effect != "time"))
    ]
    lrts = ["lrt:flat<slopes:ML:chi2", "lrt:intercepts<slopes:REML:mixture"]
    assert list(raw["test"].values) == fixed + lrts
    assert list(raw["test_kind"].values) == ["fixed"] * len(fixed) + ["lrt"] * 2
    assert list(raw["test_effect"].values[-2:]) == ["beta[time]", "sd[subject:time],corr[subject:(Intercept),time]"]
    assert (raw["test_reason"].values == COMPUTED).all()


@pytest.mark.parametrize("replicate", [0, 4])
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_fixed_effect_tests_match_coef_table_of_the_same_data_set(run, method, replicate):
    path, raw = run
    data = wb.replicate_data(path, point=0, replicate=replicate)
    fit = wb.fit("y ~ 1 + time + (1 + time | subject)", data, reml=method == "REML")
    cell = raw.isel(point=0, replicate=replicate)
    for ddf in ("asymptotic", "residual", "satterthwaite", "kenward-roger"):
        if ddf == "kenward-roger" and method == "ML":
            continue
        table = fit.coef_table(ddf=ddf)
        for effect in ("(Intercept)", "time") if ddf != "kenward-roger" else ("time",):
            stored = cell.sel(test=f"slopes:{method}:{ddf}:{effect}")
            row = table.loc[effect]
            assert float(stored["statistic"]) == pytest.approx(row["statistic"], rel=1e-5)
            assert float(stored["df"]) == pytest.approx(row["df"], rel=1e-4)
            assert float(stored["p_value"]) == pytest.approx(row["p_value"], rel=1e-4, abs=1e-8)


def test_likelihood_ratio_tests_match_wb_lrt(run):
    path, raw = run
    for replicate in range(3):
        data = wb.replicate_data(path, point=0, replicate=replicate)
        cell = raw.isel(point=0, replicate=replicate)
        full_ml = wb.fit("y ~ 1 + time + (1 + time | subject)", data, reml=False)
        flat = wb.fit("y ~ 1 + (1 + time | subject)", data, reml=False)
        expected = wb.lrt(flat, full_ml, null="chi2")
        stored = cell.sel(test="lrt:flat<slopes:ML:chi2")
        assert float(stored["statistic"]) == pytest.approx(expected.statistic, rel=1e-5, abs=1e-6)
        assert float(stored["df"]) == expected.df == 1
        assert float(stored["p_value"]) == pytest.approx(expected.p_value, rel=1e-4, abs=1e-6)
        full_reml = wb.fit("y ~ 1 + time + (1 + time | subject)", data, reml=True)
        intercepts = wb.fit("y ~ 1 + time + (1 | subject)", data, reml=True)
        expected = wb.lrt(intercepts, full_reml, null="mixture")
        stored = cell.sel(test="lrt:intercepts<slopes:REML:mixture")
        assert float(stored["statistic"]) == pytest.approx(expected.statistic, rel=1e-5, abs=1e-6)
        assert float(stored["df"]) == expected.df == 2
        assert float(stored["p_value"]) == pytest.approx(expected.p_value, rel=1e-4, abs=1e-6)


def test_wald_intervals_are_estimate_plus_minus_z_se_with_reasons(run):
    _, raw = run
    z = stats.norm.ppf(0.975)
    wald = raw.sel(interval="wald")
    slopes = wald.sel(analysis="slopes:REML")
    np.testing.assert_allclose(slopes["lower"], slopes["estimate"] - z * slopes["std_error"], rtol=1e-12)
    np.testing.assert_allclose(slopes["upper"], slopes["estimate"] + z * slopes["std_error"], rtol=1e-12)
    assert (slopes["interval_reason"].values == COMPUTED).all()
    assert list(raw["interval"].values) == ["wald", "profile"]
    # an analysis that did not ask, and a parameter an analysis lacks
    assert (wald.sel(analysis="intercepts:REML")["interval_reason"].values == NOT_REQUESTED).all()
    assert np.isnan(wald.sel(analysis="intercepts:REML")["lower"].values).all()
    assert "reason_codes" in raw.attrs


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_profile_limits_of_sds_match_confint_profile_of_the_same_data_set(run, method):
    path, raw = run
    for replicate in (0, 1, 5):
        data = wb.replicate_data(path, point=0, replicate=replicate)
        fit = wb.fit("y ~ 1 + time + (1 + time | subject)", data, reml=method == "REML")
        expected = fit.confint(method="profile")
        cell = raw.sel(analysis=f"slopes:{method}", interval="profile").isel(point=0, replicate=replicate)
        for param in ("sd[subject:(Intercept)]", "sd[subject:time]", "sd[Residual]"):
            for side in ("lower", "upper"):
                assert float(cell[side].sel(param=param)) == pytest.approx(expected.loc[param, side], rel=1e-6, abs=1e-9)
        # a variance's limits are its SD's squared
        low = float(cell["lower"].sel(param="var[subject:time]"))
        assert low == pytest.approx(float(cell["lower"].sel(param="sd[subject:time]")) ** 2, rel=1e-12)
        reasons = dict(zip(cell["param"].values, cell["interval_reason"].values))
        assert reasons["sd[subject:time]"] == COMPUTED and reasons["var[Residual]"] == COMPUTED
        assert reasons["beta[time]"] == NOT_IMPLEMENTED and reasons["corr[subject:(Intercept),time]"] == NOT_IMPLEMENTED


def test_summary_rejection_rates_and_coverage(run):
    path, raw = run
    summary = read_summary(path.parent / "out" / "summary.nc")
    assert list(summary["alpha"].values) == [0.05, 0.5]
    p = raw["p_value"].isel(point=0).values  # (replicate, test)
    for a, alpha in enumerate((0.05, 0.5)):
        rate = (p < alpha).mean(axis=0)
        np.testing.assert_allclose(summary["rejection"].isel(point=0, alpha=a), rate)
        np.testing.assert_allclose(summary["rejection_mcse"].isel(point=0, alpha=a), np.sqrt(rate * (1 - rate) / 6))
    assert (summary["n_p_missing"].values == 0).all()
    np.testing.assert_allclose(summary["nominal_band"].isel(point=0), 1.96 * np.sqrt([0.05 * 0.95 / 6, 0.25 / 6]))
    cell = summary.sel(analysis="slopes:REML", interval="wald", param="beta[time]").isel(point=0)
    wald = raw.sel(analysis="slopes:REML", interval="wald", param="beta[time]").isel(point=0)
    covers = (wald["lower"] <= 0.0) & (0.0 <= wald["upper"])
    assert float(cell["interval_coverage"]) == pytest.approx(float(covers.mean()))
    mean = float(wald["estimate"].mean())
    be = ((wald["lower"] <= mean) & (mean <= wald["upper"])).mean()
    assert float(cell["interval_be_coverage"]) == pytest.approx(float(be))
    assert float(cell["interval_width"]) == pytest.approx(float((wald["upper"] - wald["lower"]).mean()))
    assert float(cell["interval_not_computed"]) == 0.0
    # the study's own Wald coverage agrees with the stored intervals
    own = summary["coverage_all"].sel(analysis="slopes:REML", param="beta[time]", subset="all").isel(point=0)
    assert float(own) == pytest.approx(float(covers.mean()))


def test_a_study_without_tests_stores_what_it_stored_before(tmp_path):
    text = STUDY.split("[[analysis]]")[0]
    path = tmp_path / "plain.toml"
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 0
    raw = ReplicateStore(tmp_path / "out").open()
    assert set(raw.data_vars) == {
        "estimate", "std_error", "objective", "converged", "singular", "n_evals", "fit_seconds", "status", "truth", "done",
    }
    assert "test" not in raw.dims and "interval" not in raw.dims and "reason_codes" not in raw.attrs


BASE = STUDY.split("[[analysis]]")[0]


def test_layouts_redrawn_per_replicate_get_lrts_and_wald_but_no_t_tests(tmp_path):
    text = BASE.replace('times = [0, 1, 2, 3]', 'times = [0, 1, 2, 3]\nredraw = true\nmissing = 0.1') + ANALYSES.replace(
        'name = "slopes"\nmethods = ["ML", "REML"]', 'name = "slopes"\nmethods = ["ML", "REML"]\ntests = ["satterthwaite"]\nintervals = ["wald", "profile"]'
    ) + '[[lrt]]\nsmaller = "flat"\nlarger = "slopes"\n'
    path = tmp_path / "redraw.toml"
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 0
    raw = ReplicateStore(tmp_path / "out").open().load()
    fixed = raw["test_kind"] == "fixed"
    assert (raw["test_reason"].sel(test=fixed).values == VARYING_ROWS).all()
    assert np.isnan(raw["p_value"].sel(test=fixed).values).all()
    lrt = raw.sel(test="lrt:flat<slopes:ML:chi2")
    assert (lrt["test_reason"].values == COMPUTED).all() and np.isfinite(lrt["p_value"].values).all()
    slopes = raw.sel(analysis="slopes:REML")
    assert (slopes["interval_reason"].sel(interval="wald").values == COMPUTED).all()
    assert (slopes["interval_reason"].sel(interval="profile").values == VARYING_ROWS).all()
ANALYSES = """
[[analysis]]
name = "slopes"
methods = ["ML", "REML"]

[[analysis]]
name = "flat"
formula = "y ~ 1 + (1 + time | subject)"
methods = ["ML", "REML"]
"""

BAD = [
    ('[[analysis]]\nname = "a"\ntests = ["wald"]\n', 'analysis.a.tests[0]: must be one of asymptotic, residual, satterthwaite, kenward-roger, got "wald"'),
    ('[[analysis]]\nname = "a"\ntests = "satterthwaite"\n', 'analysis.a.tests: must be a list of ddf methods (asymptotic, residual, satterthwaite, kenward-roger) or { ddf, effects } tables, got "satterthwaite"'),
    ('[[analysis]]\nname = "a"\nmethods = ["ML"]\ntests = ["kenward-roger"]\n', 'analysis.a.tests: "kenward-roger" is defined for REML fits; the analysis has no REML method'),
    ('[[analysis]]\nname = "a"\ntests = [{ ddf = "residual", effects = [] }]\n', "analysis.a.tests[0].effects: must be a non-empty list of fixed-effect names, got []"),
    ('[[analysis]]\nname = "a"\nintervals = ["profil"]\n', 'analysis.a.intervals[0]: must be one of wald, profile, bootstrap, got "profil"'),
    ('[tests]\nddf = ["satterthwaite"]\neffect = ["time"]\n', "tests.effect: unknown key (expected one of: ddf, effects)"),
    (ANALYSES + '[[lrt]]\nsmaller = "flatt"\nlarger = "slopes"\n', 'lrt[0].smaller: must name an [[analysis]] (slopes, flat), got "flatt"'),
    (ANALYSES + '[[lrt]]\nsmaller = "flat"\nlarger = "slopes"\nnull = "F"\n', 'lrt[0].null: must be one of chi2, mixture, exact, got "F"'),
    (ANALYSES + '[[lrt]]\nsmaller = "flat"\nlarger = "slopes"\nnsim = 100\n', 'lrt[0].nsim: applies to null = "exact" only'),
    ('[summary]\nalpha = []\n', "summary.alpha: must be a number or a non-empty list of numbers between 0 and 1"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_inference_keys_are_one_line(extra, message):
    with pytest.raises(wb.WorkbenchError) as failure:
        parse_study(BASE + extra, Path("."))
    assert str(failure.value) == message


def test_kenward_roger_needs_a_reml_fit():
    text = BASE.replace("replicates = 6", 'replicates = 6\nmethods = ["ML"]') + '[tests]\nddf = ["kenward-roger"]\n'
    with pytest.raises(wb.WorkbenchError) as failure:
        parse_study(text, Path("."))
    assert str(failure.value) == 'tests.ddf: "kenward-roger" is defined for REML fits; study.methods has no REML'



PLANNED = [
    (ANALYSES + '[[lrt]]\nsmaller = "flat"\nlarger = "slopes"\nmethod = "REML"\n', "lrt[0].method: REML criteria of models with different fixed effects are not comparable; use ML"),
    (ANALYSES + '[[lrt]]\nsmaller = "slopes"\nlarger = "flat"\n', "lrt[0].smaller: the models are not nested: 'slopes' has beta[time], 'flat' does not"),
    (ANALYSES + '[[lrt]]\nsmaller = "flat"\nlarger = "slopes"\nnull = "mixture"\n', "lrt[0].null: 'mixture' is for a test of one variance component; the larger model adds 0 variances"),
    ('[[analysis]]\nname = "a"\ntests = [{ ddf = "residual", effects = ["tim"] }]\n', "analysis.a.tests: no fixed effect 'tim' in the analysis (it has: (Intercept), time)"),
]


@pytest.mark.parametrize(("extra", "message"), PLANNED)
def test_checks_that_need_the_designs_stop_the_run_before_any_output(tmp_path, extra, message, capsys):
    path = tmp_path / "study.toml"
    path.write_text(BASE + extra)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "out").exists()
