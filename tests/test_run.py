"""The study runner: validation before output, the dataset layout, determinism and resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import workbench as wb
from studies import slopes_study
from workbench.fitting.fit import optimize, summarize_fit
from workbench.fitting.problem import Problem
from workbench.model.design import build_design
from workbench.run import main
from workbench.simulation.simulate import simulate
from workbench.study.store import ReplicateStore

def write_study(tmp_path, replicates=12, chunk_size=5, name="study.toml", **replace):
    text = slopes_study(replicates=replicates, chunk_size=chunk_size)
    for old, new in replace.items():
        text = text.replace(old.replace("_", " "), new)
    path = tmp_path / name
    path.write_text(text)
    return path


def run(path, out, *extra):
    return main([str(path), "--out", str(out), "--quiet", "--no-report", *extra])


def load(out):
    return ReplicateStore(out).open().load()


def test_a_run_writes_the_dataset_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(write_study(tmp_path), out) == 0
    data = load(out)
    assert dict(data.sizes) == {"point": 2, "replicate": 12, "analysis": 2, "param": 10}
    assert list(data.analysis.values) == ["ML", "REML"]
    assert list(data["subjects"].values) == [8, 12]
    assert data["subjects"].attrs["path"] == "layout.subjects"
    for name in ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "fit_seconds", "status"):
        assert name in data
    assert data.done.all()
    assert (data.status >= 0).all() and np.isfinite(data.estimate.sel(param="beta[time]")).all()
    assert data.truth.sel(param="var[subject:time]").values.tolist() == [0.25, 0.25]
    assert data.truth.sel(param="cov[subject:(Intercept),time]").values[0] == pytest.approx(0.15)
    assert "formula" in data.attrs["study"] and data.attrs["seed"] == "7" and "numba_version" in data.attrs
    summary = xr.open_dataset(out / "summary.nc", engine="h5netcdf")
    assert {"bias", "bias_mcse", "coverage", "coverage_mcse", "empse", "modelse", "rmse"} <= set(summary.data_vars)
    printed = capsys.readouterr()
    assert "beta[time]" in printed.out and "REML" in printed.out
    assert "summary.nc" in printed.err and "summary.nc" not in printed.out


def test_a_replicate_is_the_fit_of_the_simulated_data_set(tmp_path):
    out = tmp_path / "out"
    assert run(write_study(tmp_path, replicates=3), out) == 0
    data = load(out)
    layout = pd.DataFrame({"subject": np.repeat(np.arange(1, 9), 5), "time": np.tile([0.0, 1, 2, 3, 4], 8)})
    truth = {
        "beta": {"(Intercept)": 10.0, "time": 1.0},
        "sigma": 1.0,
        "re": {"subject": {"sd": {"(Intercept)": 1.0, "time": 0.5}, "corr": {"(Intercept):time": 0.3}}},
    }
    y = simulate("y ~ 1 + time + (1 + time | subject)", layout, truth, nsim=3, seed=7, point=0)
    data_set = layout.assign(y=y[2])
    # ML, the first method, starts where workbench.fitting.fit does: the same fit to the last digits
    # (before the Newton polish of wb.fit, which moves θ̂ by the quasi-Newton stop's ~1e-6)
    problem = Problem.build(build_design("y ~ 1 + time + (1 + time | subject)", data_set))
    fit = summarize_fit(problem, optimize(problem, reml=False, polish=False), reml=False)
    row = data.sel({"point": 0, "replicate": 2, "analysis": "ML"})
    assert float(row.objective) == pytest.approx(fit.objective, rel=1e-12)
    assert float(row.estimate.sel(param="beta[time]")) == pytest.approx(fit.fixef["time"], rel=1e-10)
    assert float(row.std_error.sel(param="beta[time]")) == pytest.approx(fit.fixef_se["time"], rel=1e-8)
    assert float(row.estimate.sel(param="sd[Residual]")) == pytest.approx(fit.sigma, rel=1e-10)
    # REML starts from ML's optimum: the same optimum, θ̂ to the optimiser's accuracy
    fit = wb.fit("y ~ 1 + time + (1 + time | subject)", data_set, reml=True)
    row = data.sel({"point": 0, "replicate": 2, "analysis": "REML"})
    assert float(row.objective) == pytest.approx(fit.objective, rel=1e-12)
    assert float(row.estimate.sel(param="var[subject:time]")) == pytest.approx(
        fit.varcorr.loc[(fit.varcorr.var1 == "time") & (fit.varcorr.var2 == ""), "vcov"].item(), rel=1e-5
    )


def test_results_do_not_depend_on_chunk_size_or_threads(tmp_path):
    runs = []
    for chunk_size, workers in ((5, 1), (3, 2), (12, 2)):
        out = tmp_path / f"out{chunk_size}-{workers}"
        assert run(write_study(tmp_path, chunk_size=chunk_size), out, "--workers", str(workers)) == 0
        runs.append(load(out))
    for other in runs[1:]:
        for name in ("estimate", "std_error", "objective", "n_evals", "status"):
            np.testing.assert_array_equal(runs[0][name].values, other[name].values)


def test_a_killed_run_resumes_to_the_same_results(tmp_path):
    study = write_study(tmp_path, replicates=60, chunk_size=2)
    whole = tmp_path / "whole"
    assert run(study, whole) == 0
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.run", str(study), "--out", str(out), "--quiet", "--workers", "1"], env=env
    )
    progress = out / "progress"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress.exists() and len(list(progress.iterdir())) >= 4:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    marks = len(list(progress.iterdir()))
    assert 0 < marks < 60, "the run was not killed part-way"
    assert run(study, out) == 0
    for name in ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status"):
        np.testing.assert_array_equal(load(whole)[name].values, load(out)[name].values)


def test_a_finished_run_reports_and_exits(tmp_path, capsys):
    study = write_study(tmp_path, replicates=4)
    out = tmp_path / "out"
    assert run(study, out) == 0
    before = (out / "summary.nc").stat().st_mtime_ns
    assert main([str(study), "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().err
    assert (out / "summary.nc").stat().st_mtime_ns == before
    assert run(study, out, "--fresh") == 0
    assert (out / "summary.nc").stat().st_mtime_ns != before


def test_another_study_in_the_same_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(write_study(tmp_path, replicates=4), out) == 0
    assert run(write_study(tmp_path, replicates=5, name="other.toml", **{"seed = 7": "seed = 8"}), out) == 2
    assert "holds the results of a different study file" in capsys.readouterr().err
    # a change of [execution] is another study too: the store is chunked by it
    assert run(write_study(tmp_path, replicates=5, chunk_size=2, name="other.toml"), out) == 2
    assert "holds the results of a different study file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("[8, 12]", "[8, -3]", "layout.subjects: must be a positive integer, got -3 (grid point 1)"),
        ("times = [0, 1, 2, 3, 4]", "times = []", "layout.times"),
        ("1 + time | subject", "1 + age | subject", "model.formula: no column named 'age'"),
        ("[truth.re.subject]", "[truth.re.patient]", "truth.re.patient"),
        ('"(Intercept):time" = 0.3', '"(Intercept):time" = 1.5', "truth.re.subject.corr"),
        ('"layout.subjects" = [8, 12]', '"layout.subjects" = []', "grid"),
        ("replicates = 12", "replicates = 0", "study.replicates"),
    ],
)
def test_bad_studies_get_one_line_and_write_nothing(tmp_path, capsys, old, new, message):
    path = tmp_path / "study.toml"
    path.write_text(slopes_study().replace(old, new))
    out = tmp_path / "out"
    assert run(path, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("content", [None, "", "this is = not [toml"])
def test_missing_empty_or_broken_files(tmp_path, capsys, content):
    path = tmp_path / "study.toml"
    if content is not None:
        path.write_text(content)
    assert run(path, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "study.toml" in err and "\n" not in err


@pytest.mark.parametrize("seed", [0, 2**31, 2**63, 2**64 - 1])
def test_64_bit_seeds_run_resume_and_round_trip(tmp_path, seed):
    """Any seed SeedSequence takes runs, resumes bit for bit, and is kept exactly in store and summary."""
    path = tmp_path / "study.toml"
    path.write_text(slopes_study(seed=seed, replicates=6, chunk_size=3, grid='"layout.subjects" = [8]'))
    out = tmp_path / "out"
    assert run(path, out) == 0
    first = load(out)
    # lose the second chunk and the summary, as a killed run would, then resume
    (out / "progress" / "p0-c1").unlink()
    (out / "summary.nc").unlink()
    assert run(path, out) == 0
    again = load(out)
    assert again.attrs["seed"] == str(seed)
    np.testing.assert_array_equal(again.estimate.values, first.estimate.values)
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as summary:
        assert int(summary.attrs["seed"]) == seed
