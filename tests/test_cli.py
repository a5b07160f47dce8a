"""The `workbench` command (and `python -m workbench`) and the package's metadata."""

import io
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import workbench
from studies import slopes_study
from workbench import cli
from workbench.study import execute

ROOT = Path(__file__).parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"workbench {workbench.__version__}"


def test_the_subcommands_are_the_modules_commands(tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text(slopes_study(replicates=2, chunk_size=2, grid='"layout.subjects" = [8]'))
    out = tmp_path / "out"
    assert cli.main(["run", str(study), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("point 0: subjects = 8") and "report: " in captured.err
    assert cli.main(["report", str(out), "--no-svg"]) == 0
    assert cli.main(["data", str(study), "--point", "0", "--replicate", "1", "--out", str(tmp_path / "d.csv")]) == 0
    assert (tmp_path / "d.csv").read_text().startswith("subject,time,y")
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit) as done:
        cli.main([])
    assert done.value.code == 2


def test_python_dash_m_workbench():
    done = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    for command in ("run", "report", "data", "--version"):
        assert command in done.stdout


def test_package_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "workbench-lmm"  # "workbench" on the package index is another project
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["scripts"] == {"workbench": "workbench.cli:main"}
    assert any(d.startswith("h5netcdf>=") for d in project["dependencies"])
    assert any(c.startswith("License ::") for c in project["classifiers"]) is False  # SPDX, not a classifier
    assert (ROOT / "workbench" / "py.typed").exists()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_starts_at_the_replicates_done_and_is_closed_on_interrupt(tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    study = tmp_path / "study.toml"
    study.write_text(slopes_study(replicates=7, chunk_size=3, grid='"layout.subjects" = [8]'))
    out = tmp_path / "out"
    from workbench.study.spec import load_study

    execute.run_study(load_study(study), out, quiet=True)
    (out / "progress" / "p0-c1").unlink()
    (out / "summary.nc").unlink()
    real = execute.run_locally

    def interrupted(*args):
        yield from real(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "run_locally", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute.run_study(load_study(study), out, quiet=False)
    drawn = terminal.getvalue()
    # 4 of 7 were done (the last chunk holds one replicate), 3 more ran; the bar ended before the interruption
    assert "4/7" in drawn and drawn.rstrip("\r").rsplit("\r", 1)[-1].lstrip().startswith("tiny: 100%")
    assert "7/7" in drawn and "8/7" not in drawn and drawn.endswith("\n")
