"""A fast one-way study run through the runner agrees with the exact ML/REML theory."""

import time

import numpy as np
import pytest
import xarray as xr

from workbench.results import theory
from workbench.results.report import write_report
from workbench.run import main
from workbench.results.validation import QUANTITIES, OneWayDesign, compare, one_way_study, singular_gap

# Two design points with many zero variance estimates (4 groups) and few (15 groups).
STUDY = """
[study]
name = "oneway-fast"
seed = 11
replicates = 1500
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + (1 | batch)"

[layout]
kind = "nested"
levels = { batch = 4 }
size = 3

[truth]
beta = { "(Intercept)" = 5.0 }
sigma = 2.0
[truth.re.batch]
sd = { "(Intercept)" = 1.2 }

[grid]
"layout.levels.batch" = [4, 15]

[execution]
chunk_size = 500
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oneway")
    path = folder / "study.toml"
    path.write_text(STUDY)
    out = folder / "out"
    started = time.perf_counter()
    assert main([str(path), "--out", str(out), "--quiet", "--no-report"]) == 0
    seconds = time.perf_counter() - started
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as summary:
        return out, summary.load(), seconds


def test_the_fast_study_agrees_with_exact_theory_within_4_mcse(run):
    out, summary, seconds = run
    study = one_way_study(summary)
    assert study is not None and study.group == "batch"
    assert study.designs == (OneWayDesign(4, 3, 1.44, 4.0), OneWayDesign(15, 3, 1.44, 4.0))
    comparison = compare(summary, study)
    assert len(comparison) == 2 * 2 * len(QUANTITIES)
    assert (comparison["mcse"] > 0).all()
    worst = comparison.loc[comparison["z"].abs().idxmax()]
    assert abs(worst["z"]) < 4, (
        f"{worst['method']} {worst['quantity']} at point {worst['point']}: exact {worst['theory']:.4f}, "
        f"study {worst['study']:.4f} (MCSE {worst['mcse']:.4f}), {worst['z']:+.1f} MCSE"
    )
    # The comparison is sharp: ML's downward bias of var_a at 4 groups is many MCSEs from REML's.
    mean_var_a = comparison[(comparison["quantity"] == "mean_var_a") & (comparison["point"] == 0)].set_index("method")
    assert (mean_var_a.loc["REML", "study"] - mean_var_a.loc["ML", "study"]) / mean_var_a["mcse"].max() > 10
    assert seconds < 60


def test_theory_column_is_the_exact_theory(run):
    _, summary, _ = run
    comparison = compare(summary, one_way_study(summary)).set_index(["point", "method", "quantity"])
    assert comparison.loc[(0, "REML", "prob_zero"), "theory"] == theory.prob_zero(4, 3, 1.44, 4.0, "REML")
    expected = theory.mean_coverage(15, 3, 1.44, 4.0, "ML", 0.95)
    assert comparison.loc[(1, "ML", "coverage_mu"), "theory"] == pytest.approx(expected, rel=1e-12)


def test_singular_and_exactly_zero_differ_negligibly():
    for design in (OneWayDesign(4, 3, 1.44, 4.0), OneWayDesign(5, 2, 0.0625, 1.0), OneWayDesign(30, 5, 1.0, 1.0)):
        for method in ("ML", "REML"):
            gap = singular_gap(design, method)
            assert 0 <= gap < 1e-6
            assert singular_gap(design, method, tolerance=0.0) == 0.0
            # A large tolerance is the chance that theta_hat is below it, checked by simulation of F.
            assert singular_gap(design, method, tolerance=0.5) > 100 * gap


def test_singular_gap_matches_simulated_sums_of_squares():
    rng = np.random.default_rng(3)
    design, tolerance = OneWayDesign(6, 4, 0.3, 1.0), 0.3
    lam = design.var_e + design.size * design.var_a
    ssa = lam * rng.chisquare(design.groups - 1, 400_000)
    sse = design.var_e * rng.chisquare(design.groups * (design.size - 1), 400_000)
    var_a, var_e = theory.truncated_estimates(ssa, sse, design.groups, design.size, "REML")
    theta = np.sqrt(var_a / var_e)
    share = np.mean((theta > 0) & (theta < tolerance))
    assert share == pytest.approx(singular_gap(design, "REML", tolerance), abs=4 * np.sqrt(share / 400_000))


def test_other_studies_are_not_one_way(run):
    _, summary, _ = run
    unbalanced = summary.copy()
    text = summary.attrs["study"].replace("size = 3", "size = { min = 2, max = 4 }")
    unbalanced.attrs = {**summary.attrs, "study": text}
    assert one_way_study(unbalanced) is None
    slopes = summary.assign_coords(param=[p.replace("beta[(Intercept)]", "beta[time]") for p in summary.param.values])
    assert one_way_study(slopes) is None
    no_study = summary.copy()
    no_study.attrs = {}
    assert one_way_study(no_study) is None


def test_the_report_of_a_one_way_study_sets_it_beside_the_theory(run):
    out, _, _ = run
    text = write_report(out, svg=False).read_text()
    assert "## Agreement with exact theory" in text and "(validation.png)" in text
    assert (out / "report" / "validation.png").stat().st_size > 10_000
    assert "P(0 < θ̂ < 1e-4) is at most" in text
    section = text.split("## Agreement with exact theory")[1].split("## Summary tables")[0]
    rows = [line for line in section.splitlines() if line.startswith(("| 0 | 4 |", "| 1 | 15 |"))]
    assert [row.split(" | ")[2] for row in rows] == ["ML", "REML", "ML", "REML"]
    assert all(float(row.rstrip(" |").rsplit("| ", 1)[1]) < 4 for row in rows)
