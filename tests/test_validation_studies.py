"""The validation studies of tests run at small replicate counts and agree with exact theory."""

import re
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.results import theory
from workbench.run import main
from workbench.study.execute import read_summary
from workbench.study.store import ReplicateStore

SIMULATIONS = Path(__file__).resolve().parents[1] / "simulations"


def _small(name: str, replicates: int, grid: str | None, tmp_path: Path) -> Path:
    text = (SIMULATIONS / f"{name}.toml").read_text()
    text = re.sub(r"replicates = \d+", f"replicates = {replicates}", text)
    if grid is not None:
        text = re.sub(r"^\"layout\.[a-z.]+\" = .*$", grid, text, flags=re.MULTILINE)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    assert main([str(path), "--out", str(tmp_path / name), "--quiet", "--no-report"]) == 0
    return path


@pytest.fixture(scope="module")
def mixture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixture")
    path = _small("mixture_lrt", 400, '"layout.levels.group" = [5, 30]', folder)
    return path, ReplicateStore(folder / "mixture_lrt").open().load()


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("point", "groups"), [(0, 5), (1, 30)])
def test_the_share_of_zero_lrt_statistics_matches_the_exact_point_mass(mixture, method, point, groups):
    _, raw = mixture
    statistic = raw["statistic"].sel(test=f"lrt:fixed<random:{method}:mixture").isel(point=point).values
    expected = theory.lrt_point_mass(groups, 5, method)
    mcse = np.sqrt(expected * (1 - expected) / statistic.size)
    assert abs(np.mean(statistic == 0) - expected) < 3.5 * mcse


def test_the_linear_model_of_a_study_is_fitted_as_wb_fit_fits_it(mixture):
    path, raw = mixture
    data = wb.replicate_data(path, point=0, replicate=3)
    for method in ("ML", "REML"):
        fit = wb.fit("y ~ 1", data, reml=method == "REML")
        stored = raw.sel(analysis=f"fixed:{method}").isel(point=0, replicate=3)
        assert float(stored["objective"]) == pytest.approx(fit.objective, rel=1e-12)
        assert float(stored["estimate"].sel(param="sd[Residual]")) == pytest.approx(fit.sigma, rel=1e-12)


def test_exact_p_values_are_uniform_above_the_point_mass(mixture):
    _, raw = mixture
    # P(p = 1) is the point mass; P(p <= alpha) is alpha up to Monte Carlo error
    for method in ("ML", "REML"):
        p = raw["p_value"].sel(test=f"lrt:fixed<random:{method}:exact").isel(point=0).values
        assert np.isfinite(p).all()
        assert np.mean(p == 1.0) == pytest.approx(theory.lrt_point_mass(5, 5, method), abs=3.5 * 0.5 / np.sqrt(p.size))
        assert abs(np.mean(p <= 0.1) - 0.1) < 3.5 * np.sqrt(0.09 / p.size)


def test_the_luke_study_reports_type_i_errors_with_mcse(tmp_path):
    _small("luke_crossed", 6, '"layout.factors" = [{ subj = 12, item = 12 }]', tmp_path)
    summary = read_summary(tmp_path / "luke_crossed" / "summary.nc")
    tests = list(summary["test"].values)
    assert tests == [
        "maximal:ML:asymptotic:cond",
        "maximal:ML:satterthwaite:cond",
        "maximal:REML:asymptotic:cond",
        "maximal:REML:satterthwaite:cond",
        "maximal:REML:kenward-roger:cond",
        "lrt:no_cond<maximal:ML:chi2",
    ]
    assert summary["rejection"].dims == ("point", "test", "alpha")
    assert list(summary["alpha"].values) == [0.01, 0.05]
    rate, mcse = summary["rejection"].values, summary["rejection_mcse"].values
    np.testing.assert_allclose(mcse, np.sqrt(rate * (1 - rate) / 6))
    assert (summary["n_p_missing"].values == 0).all()
    assert summary["interval_coverage"].sel(interval="wald", analysis="maximal:REML").notnull().any()
