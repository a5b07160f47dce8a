"""The commands answer --help without importing the heavy libraries (numba, xarray, zarr, matplotlib)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numba", "xarray", "zarr", "matplotlib", "pandas", "scipy", "formulaic")


@pytest.mark.parametrize("module", ["workbench.run", "workbench.report", "workbench.data", "workbench"])
def test_help_imports_no_heavy_module(module):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{module!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(' '.join(name for name in {HEAVY!r} if name in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    assert done.stderr.strip() == ""


def test_a_cold_cache_is_announced_before_the_kernels_compile(tmp_path, capsys, monkeypatch):
    from studies import slopes_study
    from workbench.run import main
    from workbench.study import coldstart, execute

    study = tmp_path / "study.toml"
    study.write_text(slopes_study(replicates=4, chunk_size=2))
    assert main([str(study), "--out", str(tmp_path / "first"), "--no-report"]) == 0
    assert coldstart.kernels_cached()  # the run above compiled (or loaded) the kernels
    capsys.readouterr()
    assert main([str(study), "--out", str(tmp_path / "warm"), "--no-report"]) == 0
    assert "compiling kernels" not in capsys.readouterr().err
    monkeypatch.setattr(execute, "kernels_cached", lambda: False)
    assert main([str(study), "--out", str(tmp_path / "cold"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("compiling kernels (first run after install, about ")
    assert main([str(study), "--out", str(tmp_path / "quiet"), "--quiet", "--no-report"]) == 0
    assert "compiling" not in capsys.readouterr().err
