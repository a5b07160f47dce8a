"""The datasets a study writes: CF attributes, consolidated Zarr, netCDF4 summary, grid factors, extension."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import workbench.results as wr
from studies import slopes_study
from workbench.results.metadata import grid_coordinates
from workbench.run import main
from workbench.study.store import ReplicateStore

TABLE_GRID = (
    '"layout.subjects" = [8, 12]\n'
    '"truth.re.subject.sd" = [{ "(Intercept)" = 1.0, time = 0.5 }, { "(Intercept)" = 0.5, time = 0.2 }]'
)


def write(tmp_path, name="study.toml", **options):
    path = tmp_path / name
    path.write_text(slopes_study(**options))
    return path


def run(path, out, *extra):
    return main([str(path), "--out", str(out), "--quiet", "--no-report", *extra])


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    path = write(folder, replicates=6, chunk_size=3, grid=TABLE_GRID)
    assert run(path, folder / "out") == 0
    return folder / "out"


def test_every_variable_and_coordinate_has_a_long_name_and_units(out):
    for data in (ReplicateStore(out).open(), xr.open_dataset(out / "summary.nc"), xr.open_dataset(out / "timing.nc")):
        assert data.attrs["Conventions"].startswith("CF-")
        for name, variable in data.variables.items():
            assert variable.attrs.get("long_name"), name
            if np.issubdtype(variable.dtype, np.number) or variable.dtype == bool:
                assert "units" in variable.attrs or "description" in variable.attrs, name
    summary = xr.open_dataset(out / "summary.nc")
    assert summary["relbias"].attrs["units"] == "1" and "fraction" in summary["relbias"].attrs["long_name"]
    assert summary["coverage"].attrs["units"] == "1" and "units" not in summary["bias"].attrs


def test_status_codes_are_cf_flags(out):
    status = ReplicateStore(out).open()["status"]
    values, meanings = status.attrs["flag_values"], status.attrs["flag_meanings"].split()
    assert list(values) == [-1, 0, 1, 2, 3]
    assert meanings == ["not_run", "converged", "stalled", "iteration_limit", "failed"]
    assert set(np.unique(status.values)) <= set(values)


def test_the_store_opens_without_warnings_from_consolidated_metadata(out):
    assert (out / "replicates.zarr" / "zarr.json").read_text().count('"consolidated_metadata"') == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = xr.open_zarr(out / "replicates.zarr")
    assert data.sizes["replicate"] == 6


def test_the_summary_is_netcdf4_and_opens_with_every_netcdf4_engine(out):
    assert (out / "summary.nc").read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    pytest.importorskip("netCDF4")
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as first, xr.open_dataset(
        out / "summary.nc", engine="netcdf4"
    ) as second:
        xr.testing.assert_identical(first.load(), second.load())
        assert first.attrs["seed"] == "7"


def test_summary_and_timings_round_trip_through_netcdf(out):
    from workbench.results.summarise import summarise, timing
    from workbench.study.execute import read_summary, write_summary

    raw = ReplicateStore(out).open()
    for made, name in ((summarise(raw), "summary"), (timing(raw), "timing")):
        path = out / f"again-{name}.nc"
        write_summary(made, path)
        back = read_summary(path)
        xr.testing.assert_identical(back, made)
        path.unlink()
    assert read_summary(out / "summary.nc").attrs["seed"] == "7"  # 64-bit seeds stay text


def test_a_rerun_writes_the_same_summary_byte_for_byte(tmp_path):
    path = write(tmp_path, replicates=4, chunk_size=2)
    first = tmp_path / "a"
    assert run(path, first) == 0
    assert run(path, first, "--fresh") == 0
    second = tmp_path / "b"
    assert run(path, second) == 0
    assert (first / "summary.nc").read_bytes() == (second / "summary.nc").read_bytes()
    assert "created" in ReplicateStore(first).attrs() and "created" not in xr.open_dataset(first / "summary.nc").attrs


def test_grid_factors_have_python_names_and_tables_one_coordinate_per_leaf(out):
    summary = xr.open_dataset(out / "summary.nc")
    assert summary.attrs["grid_factors"] == "subjects sd_subject_Intercept"
    assert summary.subjects.attrs["path"] == "layout.subjects"
    assert summary.sd_subject_Intercept.attrs["path"] == 'truth.re.subject.sd."(Intercept)"'
    assert summary.sd_subject_time.attrs["path"] == "truth.re.subject.sd.time"
    assert summary.sd_subject_time.values.tolist() == [0.5, 0.2, 0.5, 0.2]
    assert len(summary.query(point="subjects == 8 and sd_subject_time > 0.3").point) == 1
    raw = ReplicateStore(out).open()
    assert raw.groupby("subjects").mean()["estimate"].sizes["subjects"] == 2


def test_open_with_grid_gives_the_factors_as_dimensions(out):
    summary = wr.open(out, grid=True)
    assert summary["bias"].dims == ("analysis", "param", "subset", "subjects", "sd_subject_Intercept")
    assert summary.sd_subject_time.dims == ("sd_subject_Intercept",)
    flat = xr.open_dataset(out / "summary.nc")
    for point in flat.point.values:
        cell = flat.sel(point=point)
        where = {"subjects": int(cell.subjects), "sd_subject_Intercept": float(cell.sd_subject_Intercept)}
        assert int(summary.point.sel(where)) == point
        np.testing.assert_array_equal(summary.bias.sel(where).values, cell.bias.values)
    # the documented one-liner
    one_liner = flat.set_index(point=flat.attrs["grid_factors"].split()).unstack("point")
    np.testing.assert_array_equal(one_liner.bias.transpose(*summary.bias.dims).values, summary.bias.values)
    assert wr.open(out, raw=True, grid=True)["estimate"].dims[-2:] == ("subjects", "sd_subject_Intercept")


def test_grid_coordinate_names():
    factors = {
        "layout.size": [2, 5],
        "layout.levels.group": [5, 10],
        'truth.re.group.sd."(Intercept)"': [0.25, 1.0],
        "truth.beta.x": [0, 1],
        "truth.re.g.sd": [{"a": 1.0, "b": 1.0}, {"a": 2.0, "b": 2.0}],
        "layout.times": [[0, 1], [0, 1, 2]],
    }
    coords, dimensions = grid_coordinates(factors)
    assert list(coords) == [
        "size", "levels_group", "sd_group_Intercept", "beta_x", "sd_g_a", "sd_g_b", "times"
    ]
    assert dimensions == ["size", "levels_group", "sd_group_Intercept", "beta_x", "sd_g_a", "times"]
    assert coords["times"][0].tolist() == ["[0, 1]", "[0, 1, 2]"]
    assert coords["sd_g_b"][1]["grid_dimension"] == "sd_g_a"
    # tables that no single leaf tells apart are numbered
    tables = [{"a": 1.0, "b": 1.0}, {"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 1.0}]
    coords, dimensions = grid_coordinates({"truth.re.g.sd": tables})
    assert dimensions == ["sd_g_level"] and coords["sd_g_level"][0].tolist() == [0, 1, 2]


def test_raising_replicates_extends_the_store_bit_for_bit(tmp_path, capsys):
    out = tmp_path / "extended"
    assert run(write(tmp_path, replicates=7, chunk_size=3), out) == 0
    before = ReplicateStore(out).open().load()
    assert run(write(tmp_path, replicates=14, chunk_size=3), out) == 0
    extended = ReplicateStore(out).open().load()
    whole = tmp_path / "whole"
    assert run(write(tmp_path, "whole.toml", replicates=14, chunk_size=3), whole) == 0
    fresh = ReplicateStore(whole).open().load()
    assert extended.sizes["replicate"] == 14 and extended.done.all()
    for name in ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status"):
        np.testing.assert_array_equal(extended[name].values, fresh[name].values)
        np.testing.assert_array_equal(extended[name].values[:, :7], before[name].values)
    assert "replicates = 14" in extended.attrs["study"]
    with xr.open_dataset(out / "summary.nc") as one, xr.open_dataset(whole / "summary.nc") as other:
        xr.testing.assert_identical(one.load(), other.load())
    # fewer replicates than the store holds: refused, nothing changed
    assert run(write(tmp_path, replicates=10, chunk_size=3), out) == 2
    assert "study.replicates: " in capsys.readouterr().err
    assert ReplicateStore(out).open().sizes["replicate"] == 14


def test_progress_goes_to_standard_error_and_counts_a_resume_exactly(tmp_path):
    path = write(tmp_path, replicates=7, chunk_size=3, grid='"layout.subjects" = [8]')
    out = tmp_path / "out"
    assert run(path, out) == 0
    (out / "progress" / "p0-c1").unlink()
    (out / "summary.nc").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "workbench.run", str(path), "--out", str(out), "--no-report"],
        capture_output=True, text=True, check=True,
    )
    assert "resuming, 4 of 7 replicates already done" in done.stderr
    assert done.stderr.strip().splitlines()[1].startswith("7/7 replicates")
    assert done.stdout.startswith("point 0") and "summary:" not in done.stdout


def test_the_default_table_fits_100_columns_and_wide_has_every_measure(tmp_path, capsys):
    path = write(tmp_path, replicates=4, chunk_size=2)
    assert run(path, tmp_path / "out") == 0
    compact = capsys.readouterr().out
    assert max(map(len, compact.splitlines())) <= 100 and "coverage" in compact
    assert run(path, tmp_path / "out", "--wide") == 0
    wide = capsys.readouterr().out
    for title in ("bias", "rel. bias %", "emp. SE", "model SE", "rel. error model SE %", "RMSE", "coverage"):
        assert title in wide.splitlines()[4]


def test_open_with_grid_with_a_single_factor(tmp_path):
    path = write(tmp_path, replicates=2, chunk_size=2)
    assert run(path, tmp_path / "out") == 0
    summary = wr.open(tmp_path / "out", grid=True)
    assert summary["bias"].dims == ("subjects", "analysis", "param", "subset")
    assert summary.point.values.tolist() == [0, 1] and summary.subjects.values.tolist() == [8, 12]
    flat = xr.open_dataset(tmp_path / "out" / "summary.nc").swap_dims(point="subjects")
    xr.testing.assert_identical(flat.load(), summary)
