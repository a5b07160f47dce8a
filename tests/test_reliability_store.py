"""A store is never mixed, never silently lost, and damage is found and computed again."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from studies import slopes_study
from workbench.run import main
from workbench.study.lock import output_lock
from workbench.errors import StudyError
from workbench.study.store import ReplicateStore


def write(tmp_path, **kwargs):
    path = tmp_path / "study.toml"
    path.write_text(slopes_study(**kwargs))
    return path


def run(path, out):
    return main([str(path), "--out", str(out), "--quiet", "--no-report"])


def arrays(out):
    data = ReplicateStore(out).open().load()
    return {name: data[name].values for name in ("estimate", "std_error", "objective", "status")}


def same(first, second):
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.fixture
def complete(tmp_path):
    """A finished study and the arrays it stored."""
    path, out = write(tmp_path, replicates=10, chunk_size=5), tmp_path / "out"
    assert run(path, out) == 0
    return path, out, arrays(out)


def test_a_second_run_into_a_locked_directory_is_refused(tmp_path, capsys):
    path, out = write(tmp_path), tmp_path / "out"
    with output_lock(out):
        assert run(path, out) == 2
        assert sorted(entry.name for entry in out.iterdir()) == [".lock"]
    message = capsys.readouterr().err.strip()
    assert message == (
        f"error: {out}: is being written by another run (pid {os.getpid()}); wait for it to finish or use another --out"
    )
    assert run(path, out) == 0


def test_two_runs_started_together_leave_one_complete_store(tmp_path, complete):
    path, reference_out, reference = complete
    command = [sys.executable, "-m", "workbench.run", str(path), "--quiet", "--no-report"]
    for trial in range(4):
        out = tmp_path / f"race{trial}"
        runs = [subprocess.Popen([*command, "--out", str(out)], stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(process.returncode, process.communicate()[1]) for process in runs]
        results = [(process.returncode, err) for process, (_, err) in zip(runs, results)]
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 2]), results
        for code, err in results:
            if code == 2:
                assert "is being written by another run" in err and err.count("\n") == 1
        same(arrays(out), reference)
        assert ReplicateStore(out).open().done.all()


def test_a_file_as_out_is_one_line(tmp_path, capsys):
    path, out = write(tmp_path), tmp_path / "file"
    out.write_text("x")
    assert run(path, out) == 2
    assert capsys.readouterr().err == f"error: --out: {out} is a file, not a directory\n"


def test_a_changed_table_file_is_refused_on_resume(tmp_path, capsys):
    rows = "\n".join(f"{s},{t}" for s in range(6) for t in range(4))
    (tmp_path / "rows.csv").write_text("subject,time\n" + rows + "\n")
    text = slopes_study(replicates=6, chunk_size=3, grid="").replace(
        'kind = "longitudinal"\nsubjects = 8\ntimes = [0, 1, 2, 3, 4]', 'kind = "table"\npath = "rows.csv"'
    )
    path, out = tmp_path / "study.toml", tmp_path / "out"
    path.write_text(text)
    assert run(path, out) == 0
    ReplicateStore(out).unmark({(0, 1)})  # as if killed before the last unit
    capsys.readouterr()
    (tmp_path / "rows.csv").write_text("subject,time\n" + rows + "\n5,9\n")
    assert run(path, out) == 2
    assert capsys.readouterr().err == (
        f"error: {out}: was computed from other inputs (the file rows.csv changed since); use --fresh or another --out\n"
    )


def _chunk_files(out, name):
    return sorted(p for p in (out / "replicates.zarr" / name / "c").rglob("*") if p.is_file())


def test_overwritten_bytes_are_found_and_computed_again(complete, capsys):
    path, out, reference = complete
    chunk = _chunk_files(out, "estimate")[1]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = b"\xff" * 8
    chunk.write_bytes(data)
    (out / "summary.nc").unlink()
    assert run(path, out) == 0
    # a chunk holds both units of its point (10 replicates, 5 per unit)
    assert "2 finished unit(s) damaged or missing" in capsys.readouterr().err
    same(arrays(out), reference)


def test_deleted_chunks_are_computed_again_even_when_complete(complete, capsys):
    path, out, reference = complete
    for chunk in _chunk_files(out, "objective")[:2]:
        chunk.unlink()
    assert run(path, out) == 0
    assert "4 finished unit(s) damaged or missing" in capsys.readouterr().err  # two chunks of two units
    same(arrays(out), reference)


def test_stray_marks_and_a_missing_progress_folder(complete):
    path, out, reference = complete
    progress = out / "progress"
    (progress / "p0-c1~").write_text("")
    (progress / "p99-c0").write_text("")
    (progress / "notes.txt").write_text("")
    assert ReplicateStore(out).done_units() == {(0, 0), (0, 1), (1, 0), (1, 1)}
    for mark in progress.iterdir():
        mark.unlink()
    progress.rmdir()
    assert run(path, out) == 0
    same(arrays(out), reference)


@pytest.mark.parametrize("damage", ["truncate", "other study"])
def test_a_summary_that_is_not_this_studys_is_written_again(complete, tmp_path, damage):
    path, out, _ = complete
    summary = out / "summary.nc"
    if damage == "truncate":
        summary.write_bytes(summary.read_bytes()[:100])
    else:
        other, other_out = write(tmp_path / ".." / tmp_path.name, seed=8, replicates=10, chunk_size=5), tmp_path / "other"
        assert run(other, other_out) == 0
        path.write_text(slopes_study(replicates=10, chunk_size=5))
        summary.write_bytes((other_out / "summary.nc").read_bytes())
    assert run(path, out) == 0
    from workbench.study.execute import read_summary

    assert read_summary(summary).attrs["study"] == path.read_text()


def test_a_damaged_store_metadata_is_one_line(complete, capsys):
    path, out, _ = complete
    (out / "replicates.zarr" / "zarr.json").write_text("{not json")
    assert run(path, out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'replicates.zarr'}: the store's metadata is damaged") and err.count("\n") == 1
    assert main([str(path), "--out", str(out), "--quiet", "--no-report", "--fresh"]) == 0


def test_a_kill_during_store_creation_leaves_nothing_or_a_valid_store(tmp_path, complete):
    path, _, reference = complete
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from workbench.study.execute import _store_layout
        from workbench.study.plan import check_study
        from workbench.study.spec import load_study
        from workbench.study.store import ReplicateStore
        study = load_study({str(path)!r})
        layout = _store_layout(study, check_study(study))
        print("ready", flush=True)
        sys.stdin.readline()
        ReplicateStore(Path(sys.argv[1])).create(layout)
        """
    )
    rng = np.random.default_rng(3)
    for trial in range(5):
        out = tmp_path / f"kill{trial}"
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdout.readline() == "ready\n"
        process.stdin.write("\n")
        process.stdin.flush()
        time.sleep(rng.uniform(0, 0.15))
        process.kill()
        process.communicate()
        store = ReplicateStore(out)
        assert not store.exists() or store.done_units() == set()
        assert run(path, out) == 0
        same(arrays(out), reference)


def test_marks_record_a_digest_of_what_the_unit_wrote(complete):
    _, out, _ = complete
    mark = json.loads((out / "progress" / "p0-c0").read_text())
    assert len(mark["digest"]) == 64 and "estimate" in mark["names"]


def test_a_refused_run_leaves_no_directory(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(slopes_study().replace("sigma = 1.0", "sigma = -1.0"))
    out = tmp_path / "out"
    assert run(path, out) == 2
    assert not out.exists()
    with pytest.raises(StudyError):
        with output_lock(tmp_path / "x"):
            raise StudyError("x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("replicates = 12", "replicates = 1000000000000", "error: study.replicates: must be at most 1,000,000,000, got 1,000,000,000,000"),
        ("chunk_size = 5", "chunk_size = 1000000000000", "error: execution.chunk_size: must be at most 1,000,000, got 1,000,000,000,000"),
        ('name = "tiny"', 'name = "' + "n" * 300 + '"', "error: study.name: must be at most 100 characters (a folder name), got 300"),
        ("sigma = 1.0", "sigma = 1e308", "error: truth.sigma: must be at most 1e+150 in magnitude, got 1e+308"),
        ('"(Intercept)" = 10.0', '"(Intercept)" = 1e308', "error: truth.beta.\"(Intercept)\": must be at most 1e+150 in magnitude, got 1e+308"),
        ('"layout.subjects" = [8, 12]', '"layout.subjects" = [8, 12]\n"truth.sigma" = [1.0, 2.0]\n"truth.beta.time" = ' + str(list(range(60000))), "error: grid: makes 240,000 design points, more than 100,000"),
        ("subjects = 8", "subjects = 15000000", "error: layout: data sets of up to 75,000,000 rows need about"),
    ],
    ids=["replicates", "chunk_size", "name", "sigma", "beta", "grid", "rows"],
)
def test_what_no_machine_can_hold_is_one_line_before_anything_is_written(tmp_path, capsys, old, new, message):
    text = slopes_study()
    assert old in text
    path, out = tmp_path / "study.toml", tmp_path / "out"
    path.write_text(text.replace(old, new, 1).replace('"layout.subjects" = [8, 12]', "") if old == "subjects = 8" else text.replace(old, new, 1))
    assert run(path, out) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not out.exists()


def test_a_store_larger_than_the_disk_is_one_line(tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**6, 0, 10**5))
    path, out = write(tmp_path, replicates=1000), tmp_path / "out"
    assert run(path, out) == 2
    assert capsys.readouterr().err.startswith("error: study.replicates: the results would take up to 728.0 kB, more than the 100.0 kB free")
    assert not out.exists()


def test_a_full_disk_while_writing_is_one_line_and_resumable(complete, tmp_path, capsys, monkeypatch):
    path, _, reference = complete
    out = tmp_path / "full"
    real = ReplicateStore.write_units
    calls = []

    def write_units(self, *args):
        calls.append(args)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(self.path))
        return real(self, *args)

    monkeypatch.setattr(ReplicateStore, "write_units", write_units)
    assert run(path, out) == 2
    assert capsys.readouterr().err == f"error: cannot write the results ({out / 'replicates.zarr'}): No space left on device; rerun to resume\n"
    monkeypatch.setattr(ReplicateStore, "write_units", real)
    assert run(path, out) == 0
    same(arrays(out), reference)


def test_an_interrupted_run_keeps_the_units_it_finished_in_an_unfinished_chunk(complete, tmp_path, monkeypatch):
    from workbench.study import execute
    from workbench.study.spec import load_study

    path, _, reference = complete
    out = tmp_path / "interrupted"
    real = execute.run_locally

    def interrupted(*args):
        units = real(*args)
        yield next(units)  # the first of the two units of point 0's chunk, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "run_locally", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute.run_study(load_study(path), out)
    assert ReplicateStore(out).done_units() == {(0, 0)}
    monkeypatch.setattr(execute, "run_locally", real)
    execute.run_study(load_study(path), out)  # the chunk is completed around the kept unit
    same(arrays(out), reference)
    assert ReplicateStore(out).done_units() == {(0, 0), (0, 1), (1, 0), (1, 1)}
