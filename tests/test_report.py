"""The study report: figures and markdown tables from a run's output, and its one-line errors."""

import re
import shutil
import struct

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from studies import slopes_study
from workbench import report as report_cli
from workbench.results import report
from workbench.results.metadata import label
from workbench.results.plots import DesignAxis, stamp_of
from workbench.results.raw_plots import at_zero
from workbench.run import main as run_main

STUDY = slopes_study(
    name="tiny-report",
    seed=5,
    replicates=40,
    chunk_size=20,
    slope_sd=0.2,
    grid='"layout.subjects" = [6, 12]\n"truth.re.subject.sd.time" = [0.05, 0.5]',
)
FIGURES = (
    "relbias", "bias", "coverage", "se", "rmse", "lolly", "nested_loop", "shares", "time", "zip", "distribution", "scatter"
)
RAW_FIGURES = ("zip", "distribution", "scatter")


def png_size(path):
    """Width and height from a PNG's header."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    path = folder / "study.toml"
    path.write_text(STUDY)
    return path


@pytest.fixture(scope="module")
def out(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    assert run_main([str(study), "--out", str(out), "--quiet"]) == 0
    return out


def test_a_run_writes_the_report(out):
    folder = out / "report"
    text = (folder / "report.md").read_text()
    for name in FIGURES:
        assert f"]({name}.png)" in text
        assert (folder / f"{name}.svg").stat().st_size > 1000
    for reference in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        width, height = png_size(folder / reference)
        assert 400 <= width <= 2500 and 250 <= height <= 2500, reference
        assert (folder / reference).stat().st_size > 5_000
        with Image.open(folder / reference) as image:
            assert len(image.convert("RGB").getcolors(maxcolors=width * height)) > 20, "a drawing, not a blank"
    assert "Agreement with exact theory" not in text
    # nothing in the folder that the report does not show
    shown = set(re.findall(r"\]\(([^)]+)\.png\)", text))
    assert {path.stem for path in folder.iterdir() if path.suffix in (".png", ".svg")} == shown


def test_the_report_holds_the_summary_tables(out):
    text = (out / "report" / "report.md").read_text()
    assert text.startswith("# tiny-report: ML vs REML")
    assert "## Design points" in text and "| point | subjects | sd[subject:time] | finished replicates |" in text
    headings = re.findall(r"^### point \d+: subjects=\d+, sd\[subject:time\]=[\d.]+$", text, flags=re.M)
    assert len(headings) == 4
    header = (
        "| parameter | truth | analysis | bias | rel. bias % | emp. SE | model SE | RMSE | coverage (with SE)"
        " | coverage (all) | n (with SE) |"
    )
    assert text.count(header) == 4
    assert re.search(r"^\| var\[subject:time\] \| 0\.0025 \| ML \| ", text, flags=re.M)
    assert re.search(r"^\| var\[subject:time\] \| 0\.0025 \| REML \| ", text, flags=re.M)
    assert "## Wald intervals of var[subject:(Intercept)] (zip plot)" in text


def test_the_factors_keep_the_order_of_the_study_file(out):
    results = report.load_results(out)
    assert results.design.labels == ("subjects", "sd[subject:time]")
    assert results.design.values == ((6, 6, 12, 12), (0.05, 0.5, 0.05, 0.5))


def test_param_chooses_the_zip_plot_and_svg_can_be_left_out(out, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report"))
    assert report_cli.main([str(copy), "--param", "beta[time]", "--no-svg"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("report: ")
    text = (copy / "report" / "report.md").read_text()
    assert "## Wald intervals of beta[time] (zip plot)" in text
    assert not list((copy / "report").glob("*.svg"))


def test_a_report_from_the_summary_alone_says_what_is_missing(out, tmp_path):
    copy = tmp_path / "summary-only"
    copy.mkdir()
    shutil.copy(out / "summary.nc", copy / "summary.nc")
    assert report_cli.main([str(copy), "--no-svg"]) == 0
    text = (copy / "report" / "report.md").read_text()
    for name in FIGURES:
        assert (f"({name}.png)" in text) == (name not in RAW_FIGURES + ("time",)), name
    assert "Skipped: the zip plot, the distributions of the estimates, the estimate-vs-estimate scatter plots" in text
    assert "Skipped: there is no `timing.nc`" in text


def test_redrawing_committed_results_keeps_every_section(out, tmp_path):
    """Summary, timings and report without the raw replicates, as committed: the redrawn report keeps every figure."""
    copy = tmp_path / "committed"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("replicates.zarr", "progress"))
    before = (copy / "report" / "report.md").read_text()
    assert report_cli.main([str(copy), "--no-svg"]) == 0
    text = (copy / "report" / "report.md").read_text()
    for name in FIGURES:
        assert f"({name}.png)" in text and (copy / "report" / f"{name}.png").exists(), name
    assert text.count("## ") == before.count("## ")
    assert "drawn from them by the run that wrote this summary" in text
    assert stamp_of(copy / "report" / "zip.png")["workbench-param"] == "var[subject:(Intercept)]"
    # another parameter's zip plot cannot be drawn without the raw replicates: said, and the old one removed
    assert report_cli.main([str(copy), "--no-svg", "--param", "beta[time]"]) == 0
    text = (copy / "report" / "report.md").read_text()
    assert "(zip.png)" not in text and not (copy / "report" / "zip.png").exists()
    assert "Skipped: the zip plot" in text



def test_a_report_without_a_summary_summarises_the_raw_replicates(out, tmp_path):
    copy = tmp_path / "raw-only"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report", "summary.nc"))
    assert report_cli.main([str(copy), "--no-svg"]) == 0
    with xr.open_dataset(out / "summary.nc", engine="h5netcdf") as stored:
        recomputed = report.load_results(copy).summary
        np.testing.assert_allclose(recomputed["bias"].values, stored["bias"].values)


def test_no_report_leaves_only_the_results(study, tmp_path):
    out = tmp_path / "out"
    assert run_main([str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert (out / "summary.nc").exists() and not (out / "report").exists()


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, [], r"^error: \S+missing: no such directory$"),
        ("empty", [], r"^error: \S+empty: no study results here \(no summary.nc or replicates.zarr\)$"),
        ("results", ["--param", "var[x]"], r"^error: --param: no parameter 'var\[x\]' in the results \(they have: beta"),
        ("results", ["--validate"], r"^error: --validate: \S+ is not a balanced one-way random-intercept study"),
    ],
)
def test_errors_are_one_line_with_status_2(make, args, message, out, tmp_path, capsys):
    target = tmp_path / "missing"
    if make == "empty":
        target = tmp_path / "empty"
        target.mkdir()
    elif make == "results":
        target = out
    assert report_cli.main([str(target), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), captured.err


def test_a_store_with_no_finished_replicate_is_an_error(out, tmp_path, capsys):
    copy = tmp_path / "unfinished"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report", "summary.nc", "progress"))
    assert report_cli.main([str(copy)]) == 2
    assert capsys.readouterr().err.strip().endswith("no replicate has finished yet")


def test_factor_labels_are_short():
    assert label(("layout", "subjects")) == "subjects"
    assert label(("layout", "levels", "group")) == "levels.group"
    assert label(("truth", "re", "group", "sd", "(Intercept)")) == "sd[group:(Intercept)]"
    assert label(("truth", "beta", "time")) == "beta[time]"
    assert label(("truth", "sigma")) == "sigma"


def test_design_axis_titles_name_the_factor_values():
    design = DesignAxis(2, ("subjects", "sd[g:x]"), ((10, 20), (0.5, 1.0)))
    assert design.title(1) == "point 1: subjects=20, sd[g:x]=1"
    assert DesignAxis(1, (), ()).title(0) == "point 0"


def test_estimates_at_zero_are_relative_to_the_residual_scale():
    estimate, residual = np.array([0.0, 1e-9, 1e-7, 0.5]), np.full(4, 1.0)
    assert at_zero("var[g:(Intercept)]", estimate, residual).tolist() == [True, True, False, False]
    assert at_zero("sd[g:(Intercept)]", np.sqrt(estimate), residual).tolist() == [True, True, False, False]
    assert not at_zero("var[Residual]", estimate, residual).any()
    assert not at_zero("beta[x]", estimate, residual).any()
