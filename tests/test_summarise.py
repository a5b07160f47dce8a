"""Tests of the Monte Carlo performance summaries against hand computations and a per-cell NumPy twin."""

import math

import numpy as np
import pytest
import xarray as xr
from scipy.special import ndtri

from workbench.results import theory
from workbench.results.summarise import MEASURES, SUBSETS, format_table, summarise

Z95 = float(ndtri(0.975))


def make_raw(estimate, std_error, truth, converged=None, singular=None, done=None, params=None, methods=None):
    """A raw dataset from arrays shaped (point, replicate, method, param)."""
    estimate = np.asarray(estimate, dtype=float)
    points, replicates, n_methods, n_params = estimate.shape
    params = params or [f"beta[x{i}]" for i in range(n_params)]
    methods = methods or ["ML", "REML"][:n_methods]
    if converged is None:
        converged = np.ones(estimate.shape[:3], dtype=bool)
    if singular is None:
        singular = np.zeros(estimate.shape[:3], dtype=bool)
    cell = ("point", "replicate", "analysis", "param")
    fit = cell[:3]
    data = {
        "estimate": (cell, estimate),
        "std_error": (cell, np.broadcast_to(np.asarray(std_error, dtype=float), estimate.shape)),
        "objective": (fit, np.zeros(estimate.shape[:3])),
        "converged": (fit, np.asarray(converged, dtype=bool)),
        "singular": (fit, np.asarray(singular, dtype=bool)),
        "status": (fit, np.where(np.asarray(converged), 0, 1).astype(np.int8)),
        "truth": (("point", "param"), np.broadcast_to(np.asarray(truth, dtype=float), (points, n_params))),
    }
    if done is not None:
        data["done"] = (("point", "replicate"), np.asarray(done, dtype=bool))
    coords = {
        "point": np.arange(points),
        "replicate": np.arange(replicates),
        "analysis": methods,
        "param": params,
        "layout.subjects": ("point", 10 * (np.arange(points) + 1)),
    }
    return xr.Dataset(data, coords=coords, attrs={"seed": 7, "study": "name = 'x'"})


def column(values):
    """Five replicates of one parameter at one point for one method: shape (1, R, 1, 1)."""
    return np.asarray(values, dtype=float).reshape(1, -1, 1, 1)


def test_hand_computed_measures():
    # estimates 1..5, truth 2.5, standard errors 1, 1, 2, 2, 1
    raw = make_raw(column([1, 2, 3, 4, 5]), column([1, 1, 2, 2, 1]), 2.5)
    cell = summarise(raw).sel({"point": 0, "analysis": "ML", "param": "beta[x0]", "subset": "all"})
    value = {name: float(cell[name]) for name in cell.data_vars if "share" not in name}

    # mean 3, sum of squared deviations 10, sample variance 2.5
    assert value["n_used"] == 5 and value["n_with_se"] == 5
    assert value["bias"] == pytest.approx(0.5)
    assert value["bias_mcse"] == pytest.approx(math.sqrt(10 / (5 * 4)))
    assert value["relbias"] == pytest.approx(0.2)
    assert value["relbias_mcse"] == pytest.approx(math.sqrt(0.5) / 2.5)
    assert value["empse"] == pytest.approx(math.sqrt(2.5))
    assert value["empse_mcse"] == pytest.approx(math.sqrt(2.5) / math.sqrt(2 * 4))
    # squared errors 2.25, .25, .25, 2.25, 6.25: MSE 2.25, deviations 0, -2, -2, 0, 4
    assert value["rmse"] == pytest.approx(1.5)
    mse_mcse = math.sqrt(24 / (5 * 4))
    assert value["rmse_mcse"] == pytest.approx(mse_mcse / (2 * 1.5))
    # model variances 1, 1, 4, 4, 1: mean 2.2, sample variance 10.8 / 4 = 2.7
    assert value["modelse"] == pytest.approx(math.sqrt(2.2))
    assert value["modelse_mcse"] == pytest.approx(math.sqrt(2.7 / (4 * 5 * 2.2)))
    ratio = math.sqrt(2.2) / math.sqrt(2.5)
    assert value["relative_error_modelse"] == pytest.approx(ratio - 1)
    assert value["relative_error_modelse_mcse"] == pytest.approx(
        ratio * math.sqrt(2.7 / (4 * 5 * 2.2**2) + 1 / (2 * 4))
    )
    # |error| 1.5, .5, .5, 1.5, 2.5 against 1.96 * se = 1.96, 1.96, 3.92, 3.92, 1.96
    assert value["coverage"] == pytest.approx(0.8)
    assert value["coverage_mcse"] == pytest.approx(math.sqrt(0.8 * 0.2 / 5))


def test_level_sets_the_interval_width():
    raw = make_raw(column([1, 2, 3, 4, 5]), column([1, 1, 2, 2, 1]), 2.5)
    # z(0.5) = 0.674: of |error| 1.5, .5, .5, 1.5, 2.5 with se 1, 1, 2, 2, 1 only the two .5 are covered
    summary = summarise(raw, level=0.5)
    assert float(summary["coverage"].sel(subset="all").squeeze()) == pytest.approx(0.4)
    assert summary.attrs["level"] == 0.5
    with pytest.raises(ValueError, match="level"):
        summarise(raw, level=1.5)


def test_converged_subset_and_shares():
    converged = np.array([True, True, False, True, True]).reshape(1, 5, 1)
    singular = np.array([False, True, False, False, True]).reshape(1, 5, 1)
    raw = make_raw(column([1, 2, 3, 4, 5]), 1.0, 2.5, converged=converged, singular=singular)
    summary = summarise(raw).squeeze()
    assert list(summary["subset"].values) == list(SUBSETS)
    assert summary["n_used"].sel(subset="all") == 5
    assert summary["n_used"].sel(subset="converged") == 4
    # converged estimates 1, 2, 4, 5: mean 3, squared deviations 4 + 1 + 1 + 4
    assert float(summary["bias"].sel(subset="converged")) == pytest.approx(0.5)
    assert float(summary["empse"].sel(subset="converged")) == pytest.approx(math.sqrt(10 / 3))
    assert float(summary["converged_share"]) == pytest.approx(0.8)
    assert float(summary["converged_share_mcse"]) == pytest.approx(math.sqrt(0.8 * 0.2 / 5))
    assert float(summary["singular_share"]) == pytest.approx(0.4)
    assert float(summary["singular_share_mcse"]) == pytest.approx(math.sqrt(0.4 * 0.6 / 5))


def test_failed_fits_are_excluded_from_measures_but_counted_in_shares():
    estimate = column([1, np.nan, 3, 4, 5])
    converged = np.array([True, False, True, True, True]).reshape(1, 5, 1)
    summary = summarise(make_raw(estimate, 1.0, 2.5, converged=converged)).squeeze()
    assert summary["n_used"].sel(subset="all") == 4
    assert float(summary["bias"].sel(subset="all")) == pytest.approx(np.mean([1, 3, 4, 5]) - 2.5)
    assert float(summary["converged_share"]) == pytest.approx(0.8)
    assert int(summary["n_done"]) == 5


def test_missing_standard_errors_leave_estimate_measures_intact():
    std_error = column([1, np.nan, 2, 2, 1])
    summary = summarise(make_raw(column([1, 2, 3, 4, 5]), std_error, 2.5)).squeeze().sel(subset="all")
    assert summary["n_with_se"] == 4
    assert float(summary["modelse"]) == pytest.approx(math.sqrt(np.mean([1, 4, 4, 1])))
    assert float(summary["coverage"]) == pytest.approx(0.75)
    none = summarise(make_raw(column([1, 2, 3, 4, 5]), np.nan, 2.5)).squeeze().sel(subset="all")
    assert float(none["bias"]) == pytest.approx(0.5)
    for name in ("modelse", "coverage", "relative_error_modelse"):
        assert np.isnan(float(none[name])) and np.isnan(float(none[f"{name}_mcse"]))


def test_cells_with_fewer_than_two_values_are_nan():
    estimate = np.concatenate([column([np.nan, np.nan, np.nan]), column([np.nan, 2.0, np.nan])], axis=-1)
    summary = summarise(make_raw(estimate, 1.0, [1.0, 1.0], params=["a", "b"]))
    assert list(summary["n_used"].sel(subset="all").values.ravel()) == [0, 1]
    for name in MEASURES:
        assert np.isnan(summary[name].values).all()
        assert np.isnan(summary[f"{name}_mcse"].values).all()


def test_zero_or_unknown_truth():
    estimate = np.concatenate([column([1, 2, 3]), column([1, 2, 3])], axis=-1)
    summary = summarise(make_raw(estimate, 1.0, [0.0, np.nan], params=["zero", "unknown"]))
    cell = summary.sel({"point": 0, "analysis": "ML", "subset": "all"})
    assert float(cell["bias"].sel(param="zero")) == pytest.approx(2.0)
    assert np.isnan(float(cell["relbias"].sel(param="zero")))
    assert np.isnan(float(cell["coverage"].sel(param="unknown")))
    assert float(cell["empse"].sel(param="unknown")) == pytest.approx(1.0)


def test_done_mask_equals_dropping_the_missing_replicates():
    rng = np.random.default_rng(3)
    estimate = rng.normal(size=(2, 8, 2, 3))
    std_error = rng.uniform(0.5, 1.5, size=estimate.shape)
    converged = rng.uniform(size=estimate.shape[:3]) < 0.8
    done = np.ones((2, 8), dtype=bool)
    done[0, 5:] = False
    done[1, 6:] = False
    # what a partly written store holds where nothing was computed
    estimate[~done] = 1e6
    converged[~done] = False
    raw = make_raw(estimate, std_error, 0.0, converged=converged, done=done)
    summary = summarise(raw)
    for point, kept in ((0, 5), (1, 6)):
        alone = summarise(raw.isel(point=[point], replicate=slice(0, kept)).drop_vars("done"))
        xr.testing.assert_allclose(summary.isel(point=[point]), alone)


def reference_cell(estimate, std_error, truth, z):
    """Per-cell NumPy twin of the measures, written straight from Morris et al. Table 6."""
    keep = np.isfinite(estimate)
    x, s = estimate[keep], std_error[keep]
    n = x.size
    empse = x.std(ddof=1)
    mse = np.mean((x - truth) ** 2)
    se_ok = np.isfinite(s)
    v = s[se_ok] ** 2
    modelse = math.sqrt(v.mean())
    cover = np.mean(np.abs(x[se_ok] - truth) <= z * s[se_ok])
    return {
        "bias": x.mean() - truth,
        "bias_mcse": empse / math.sqrt(n),
        "empse": empse,
        "empse_mcse": empse / math.sqrt(2 * (n - 1)),
        "rmse": math.sqrt(mse),
        "rmse_mcse": math.sqrt(np.sum(((x - truth) ** 2 - mse) ** 2) / (n * (n - 1))) / (2 * math.sqrt(mse)),
        "modelse": modelse,
        "modelse_mcse": math.sqrt(v.var(ddof=1) / (4 * v.size * modelse**2)),
        "relative_error_modelse": modelse / empse - 1,
        "coverage": cover,
        "coverage_mcse": math.sqrt(cover * (1 - cover) / v.size),
    }


def test_vectorised_measures_match_a_per_cell_twin():
    rng = np.random.default_rng(11)
    shape = (3, 40, 2, 4)
    truth = rng.normal(size=(3, 4))
    estimate = truth[:, None, None, :] + rng.normal(size=shape)
    estimate[rng.uniform(size=shape) < 0.1] = np.nan
    std_error = rng.uniform(0.6, 1.4, size=shape)
    std_error[rng.uniform(size=shape) < 0.1] = np.nan
    raw = make_raw(estimate, std_error, truth)
    # the input's dimension order must not matter
    summary = summarise(raw.transpose("param", "analysis", "replicate", "point")).sel(subset="all")
    for p in range(3):
        for m, method in enumerate(["ML", "REML"]):
            for k, param in enumerate(raw["param"].values):
                expected = reference_cell(estimate[p, :, m, k], std_error[p, :, m, k], truth[p, k], Z95)
                cell = summary.sel({"point": p, "analysis": method, "param": param})
                for name, value in expected.items():
                    assert float(cell[name]) == pytest.approx(value, rel=1e-10), name


def test_coordinates_and_attributes_are_kept():
    raw = make_raw(np.zeros((2, 3, 2, 1)), 1.0, 0.0)
    raw.attrs["nested"] = {"not": "storable"}
    raw.attrs["methods"] = ["ML", "REML"]
    summary = summarise(raw)
    assert summary["bias"].dims == ("point", "analysis", "param", "subset")
    assert summary["converged_share"].dims == ("point", "analysis")
    assert list(summary["layout.subjects"].values) == [10, 20]
    assert summary["layout.subjects"].dims == ("point",)
    assert summary.attrs["seed"] == 7 and summary.attrs["study"] == "name = 'x'"
    assert summary.attrs["methods"] == ["ML", "REML"]
    assert "nested" not in summary.attrs and summary.attrs["level"] == 0.95


def test_summary_round_trips_through_zarr(tmp_path):
    raw = make_raw(np.random.default_rng(1).normal(size=(2, 5, 2, 2)), 1.0, 0.0)
    raw.attrs["methods"] = ["ML", "REML"]
    summary = summarise(raw)
    summary.to_zarr(tmp_path / "summary.zarr", consolidated=False)
    xr.testing.assert_identical(xr.open_zarr(tmp_path / "summary.zarr", consolidated=False).load(), summary)


def test_one_way_study_agrees_with_exact_theory():
    """Summaries of simulated one-way fits match the exact ML/REML theory within 4 MCSEs."""
    rng = np.random.default_rng(2026)
    groups, size, var_a, var_e, replicates = 6, 4, 0.5, 1.0, 20000
    lam = var_e + size * var_a
    ssa = lam * rng.chisquare(groups - 1, replicates)
    sse = var_e * rng.chisquare(groups * (size - 1), replicates)
    mean = rng.normal(0.0, math.sqrt(lam / (groups * size)), replicates)
    estimate = np.empty((1, replicates, 2, 3))
    std_error = np.full(estimate.shape, np.nan)
    for m, method in enumerate(("ML", "REML")):
        est_a, est_e = theory.truncated_estimates(ssa, sse, groups, size, method)
        estimate[0, :, m] = np.column_stack([mean, est_a, est_e])
        std_error[0, :, m, 0] = np.sqrt((est_e + size * est_a) / (groups * size))
    params = ["beta[(Intercept)]", "var[g:(Intercept)]", "var[Residual]"]
    summary = summarise(make_raw(estimate, std_error, [0.0, var_a, var_e], params=params)).sel(
        point=0, subset="all"
    )
    for method in ("ML", "REML"):
        cell = summary.sel({"analysis": method})
        exact = theory.expected_estimates(groups, size, var_a, var_e, method)
        coverage = theory.mean_coverage(groups, size, var_a, var_e, method)
        checks = [
            ("bias", params[1], exact["bias_var_a"]),
            ("bias", params[2], exact["bias_var_e"]),
            ("coverage", params[0], coverage),
        ]
        for name, param, value in checks:
            found = cell[name].sel(param=param)
            assert abs(float(found) - value) < 4 * float(cell[f"{name}_mcse"].sel(param=param))


def test_format_table():
    rng = np.random.default_rng(5)
    estimate = rng.normal(size=(2, 10, 2, 2))
    params = ["beta[(Intercept)]", "sd[subject:(Intercept)]"]
    std_error = np.where(np.arange(2) == 0, 1.0, np.nan)
    summary = summarise(make_raw(estimate, std_error, 0.0, params=params))
    text = format_table(summary)
    words = ["ML", "REML", "bias", "emp. SE", "model SE", "coverage", "layout.subjects = 10", "point 1"]
    for word in params + words:
        assert word in text
    assert max(len(line) for line in text.splitlines()) <= 100
    one = format_table(summary, point=1)
    assert "point 1: layout.subjects = 20" in one and "point 0" not in one
    lines = one.splitlines()
    assert [line for line in lines if line.startswith(("beta", "sd"))] == [
        "beta[(Intercept)], truth 0", "sd[subject:(Intercept)], truth 0"
    ]
    rows = [line for line in lines if line.startswith(("  ML", "  REML"))]
    assert len(rows) == 4
    # right-aligned columns: every row ends at the same place
    header = next(line for line in lines if line.lstrip().startswith("bias"))
    assert {len(row) for row in rows} == {len(header)}
    # the SD has no standard error, so its model SE and coverage are shown as missing
    assert rows[2].endswith("-") and rows[2].split()[-2:] == ["-", "-"]
    # truth 0: no relative bias
    assert rows[0].split()[3] == "-"
    assert "\x1b" not in text
    wide = format_table(summary, point=1, wide=True).splitlines()
    assert wide[4].split()[:3] == ["parameter", "analysis", "truth"] and "RMSE" in wide[4]
    assert len(wide) == 5 + 4
