"""Parametric-bootstrap intervals in a study: each replicate's limits are those of wb.fit's confint."""

import numpy as np
import pytest

import workbench as wb
from workbench.errors import StudyError
from workbench.run import main
from workbench.study.bootstrap_intervals import bootstrap_seed
from workbench.study.spec import parse_study
from workbench.study.store import ReplicateStore

STUDY = """
[study]
name = "bootstrap"
seed = 5
replicates = 3
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + x + (1 | group)"

[layout]
kind = "nested"
levels = { group = 8 }
size = 4
[layout.covariates.x]
dist = "normal"

[truth]
beta = { "(Intercept)" = 1.0, x = 0.5 }
sigma = 1.0
[truth.re.group]
sd = { "(Intercept)" = 0.8 }

[intervals]
methods = ["wald", "bootstrap"]
nsim = 40

[execution]
chunk_size = 2
"""


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bootstrap")
    path = folder / "study.toml"
    path.write_text(STUDY)
    assert main([str(path), "--out", str(folder / "out"), "--quiet", "--no-report"]) == 0
    return path, ReplicateStore(folder / "out").open().load()


@pytest.mark.parametrize("fit, method", [(0, "ML"), (1, "REML")])
@pytest.mark.parametrize("replicate", [0, 2])
def test_limits_equal_the_bootstrap_of_wb_fit_on_the_same_replicate(stored, replicate, fit, method):
    path, raw = stored
    data = wb.replicate_data(str(path), point=0, replicate=replicate)
    result = wb.fit("y ~ 1 + x + (1 | group)", data, reml=method == "REML")
    expected = result.confint(method="bootstrap", nsim=40, seed=bootstrap_seed(5, 0, replicate, fit))
    cell = raw.isel(point=0, replicate=replicate).sel(analysis=method, interval="bootstrap")
    for name in expected.index:
        assert cell["interval_reason"].sel(param=name) == 0
        # the study's fit is not polished as wb.fit's is: centres differ by ~1e-7
        assert cell["lower"].sel(param=name) == pytest.approx(expected.loc[name, "lower"], rel=1e-5, abs=1e-7)
        assert cell["upper"].sel(param=name) == pytest.approx(expected.loc[name, "upper"], rel=1e-5, abs=1e-7)


def test_seeds_differ_between_replicates_and_fits():
    seeds = {bootstrap_seed(5, p, r, f) for p in range(2) for r in range(3) for f in range(2)}
    assert len(seeds) == 12 and all(0 <= s < 2**64 for s in seeds)


def test_the_cost_is_said_before_the_run(tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text(STUDY.replace("replicates = 3", "replicates = 1"))
    assert main([str(path), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert "bootstrap: bootstrap intervals refit 40 simulated data sets for each of 2 fit(s) of every replicate, about 80 extra fits per replicate (40x the cost of the study without them)" in err


@pytest.mark.parametrize("nsim, message", [("5", "intervals.nsim: must be an integer from 10 to 1000000, got 5"), ('"x"', "intervals.nsim: must be an integer from 10 to 1000000, got \"x\"")])
def test_a_bad_nsim_is_one_line(tmp_path, nsim, message):
    with pytest.raises(StudyError) as failure:
        parse_study(STUDY.replace("nsim = 40", f"nsim = {nsim}"), tmp_path)
    assert str(failure.value) == message
