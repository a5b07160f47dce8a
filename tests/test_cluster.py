"""Studies on a dask.distributed cluster: the same results as one machine, through faults.

A real scheduler and two worker processes run on 127.0.0.1 for the whole module (no
dashboards); the runs go through the command line, `main([..., "--scheduler", address])`.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from studies import slopes_study
from workbench.study.cluster import study_digest, unit_key
from workbench.run import main
from workbench.study.store import ReplicateStore

pytest.importorskip("distributed")

REPLICATES = 200
COMPARED = ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status")
START_TIMEOUT = 30  # seconds for a scheduler or a worker to come up
RUN_TIMEOUT = 180  # seconds for one run on the cluster: a guard against hangs, not a target


def write_study(directory: Path, chunk_size: int, scheduler: str | None = None, name: str = "study.toml") -> Path:
    line = "" if scheduler is None else f'scheduler = "{scheduler}"'
    path = directory / name
    path.write_text(slopes_study(name="cluster", seed=11, replicates=REPLICATES, chunk_size=chunk_size, execution=line))
    return path


def load(out: Path):
    return ReplicateStore(out).open().load()


def assert_same_results(expected, actual) -> None:
    assert actual.done.all()
    for name in COMPARED:
        np.testing.assert_array_equal(expected[name].values, actual[name].values, err_msg=name)


def marks(out: Path) -> int:
    progress = out / "progress"
    return len([m for m in progress.iterdir() if not m.name.endswith(".tmp")]) if progress.exists() else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the cluster ------------------------------------------------------------------------


class Processes:
    """Scheduler and worker processes started by a test, stopped by their ids at the end."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.started: list[subprocess.Popen] = []
        self.named: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, "-m", *args], stdout=log, stderr=subprocess.STDOUT)
        process.log = log
        self.started.append(process)
        self.named[name] = process
        return process

    def scheduler(self, name: str = "scheduler") -> tuple[subprocess.Popen, str]:
        """Start a scheduler on a free loopback port; return it and its address."""
        file = self.directory / f"{name}.json"
        process = self.start(
            name,
            "distributed.cli.dask_scheduler",
            "--host", "127.0.0.1",
            "--port", "0",
            "--no-dashboard",
            "--scheduler-file", str(file),
        )  # fmt: skip
        self._wait(process, name, lambda: file.exists() and file.stat().st_size > 0)
        return process, json.loads(file.read_text())["address"]

    def worker(self, address: str, name: str) -> subprocess.Popen:
        """Start a one-thread worker process (no nanny: its id is the worker's) and wait for it."""
        process = self.start(
            name,
            "distributed.cli.dask_worker", address,
            "--name", name,
            "--nthreads", "1",
            "--no-nanny",
            "--no-dashboard",
            "--local-directory", str(self.directory / name),
        )  # fmt: skip
        log = self.directory / f"{name}.log"
        self._wait(process, name, lambda: b"Registered to" in log.read_bytes())
        return process

    def _wait(self, process: subprocess.Popen, name: str, ready) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / f"{name}.log").read_text(errors="replace")
                raise RuntimeError(f"{name} did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            process.log.close()


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    started = Processes(tmp_path_factory.mktemp("cluster"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def address(processes) -> str:
    """A scheduler with two one-thread workers (one of them is killed by a test)."""
    _, address = processes.scheduler()
    for name in ("worker-0", "worker-1"):
        processes.worker(address, name)
    return address


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The study run on this machine alone: the results every cluster run must reproduce."""
    directory = tmp_path_factory.mktemp("local")
    out = directory / "out"
    assert run(write_study(directory, chunk_size=25), out) == 0
    return load(out)


def run(study: Path, out: Path, *extra: str) -> int:
    """The command line, quietly and without the report."""
    return main([str(study), "--out", str(out), "--quiet", "--no-report", *extra])


def in_background(function, *args):
    pool = ThreadPoolExecutor(1)
    running = pool.submit(function, *args)
    pool.shutdown(wait=False)
    return running


def run_in_background(*args):
    return in_background(run, *args)


def run_within_limit(*args) -> int:
    """`run`, failing the test instead of hanging if the cluster does not answer."""
    return run_in_background(*args).result(timeout=RUN_TIMEOUT)


def wait_for_marks(out: Path, count: int, running) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while marks(out) < count and not running.done():
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.005)


# --- tests ---------------------------------------------------------------------------------


def test_a_cluster_run_gives_the_local_results_bit_for_bit(tmp_path, address, local):
    # the study file names a dead scheduler; the command line wins
    study = write_study(tmp_path, chunk_size=10, scheduler=f"tcp://127.0.0.1:{free_port()}")
    out = tmp_path / "out"
    assert run_within_limit(study, out, "--scheduler", address) == 0
    assert_same_results(local, load(out))
    assert marks(out) == 2 * REPLICATES // 10


def test_the_study_file_can_name_the_scheduler(tmp_path, address, local, capsys):
    study = write_study(tmp_path, chunk_size=7, scheduler=address)
    out = tmp_path / "out"
    argv = [str(study), "--out", str(out), "--no-report", "--workers", "1"]
    assert in_background(main, argv).result(timeout=RUN_TIMEOUT) == 0
    assert_same_results(local, load(out))
    captured = capsys.readouterr()
    assert "beta[time]" in captured.out and f"{2 * REPLICATES}/{2 * REPLICATES} replicates" in captured.err


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, processes, address, local):
    from distributed import Client

    study = write_study(tmp_path, chunk_size=2)
    out = tmp_path / "out"
    units = 2 * REPLICATES // 2
    with Client(address, set_as_default=False, timeout=START_TIMEOUT) as client:
        names = {worker: info["name"] for worker, info in client.scheduler_info()["workers"].items()}
        running = run_in_background(study, out, "--scheduler", address)
        wait_for_marks(out, units // 10, running)
        busy: dict = {}
        while not busy and not running.done():
            busy = {worker: keys for worker, keys in client.processing().items() if keys}
        victim, keys = next(iter(busy.items()), (None, ()))
        if victim is not None:
            os.kill(processes.named[names[victim]].pid, signal.SIGKILL)
        at_kill = marks(out)
    assert running.result(timeout=RUN_TIMEOUT) == 0
    assert keys and 0 < at_kill < units, "no worker was killed while it ran units"
    assert all(key.startswith("unit-") for key in keys)
    assert marks(out) == units
    assert_same_results(local, load(out))


def test_a_lost_scheduler_stops_the_run_and_a_rerun_resumes(tmp_path, processes, address, local, capsys):
    scheduler, doomed = processes.scheduler("doomed-scheduler")
    orphan = processes.worker(doomed, "doomed-worker")
    study = write_study(tmp_path, chunk_size=2)
    out = tmp_path / "out"
    running = run_in_background(study, out, "--scheduler", doomed)
    wait_for_marks(out, 10, running)
    os.kill(scheduler.pid, signal.SIGKILL)
    assert running.result(timeout=RUN_TIMEOUT) == 3
    os.kill(orphan.pid, signal.SIGKILL)
    err = capsys.readouterr().err.strip()
    assert err == f"error: lost the dask scheduler at {doomed}; rerun the same command to resume"
    assert 0 < marks(out) < REPLICATES
    assert run_within_limit(study, out, "--scheduler", address) == 0
    assert_same_results(local, load(out))


def test_a_run_waits_for_workers_and_says_so(tmp_path, processes, capsys):
    scheduler, empty = processes.scheduler("empty-scheduler")
    out = tmp_path / "out"
    argv = [str(write_study(tmp_path, chunk_size=10)), "--out", str(out), "--no-report", "--scheduler", empty]
    running = in_background(main, argv)
    deadline = time.monotonic() + RUN_TIMEOUT
    said = ""
    while "waiting" not in said and time.monotonic() < deadline:
        said += capsys.readouterr().err
        time.sleep(0.05)
    assert said.strip() == f"waiting for dask workers to join the scheduler at {empty}"
    assert not running.done()
    os.kill(scheduler.pid, signal.SIGKILL)
    assert running.result(timeout=RUN_TIMEOUT) == 3
    assert marks(out) == 0


def test_an_unreachable_scheduler_is_one_line_and_marks_nothing(tmp_path, capsys):
    dead = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    assert run(write_study(tmp_path, chunk_size=10), out, "--scheduler", dead) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: cannot reach the dask scheduler at {dead}: ") and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, option",
    [(["--scheduler", "tcp://127.0.0.1:8786"], "--scheduler"), ([], "execution.scheduler")],
)
def test_without_dask_the_scheduler_option_says_what_to_install(tmp_path, capsys, monkeypatch, extra, option):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    study = write_study(tmp_path, chunk_size=10, scheduler="tcp://127.0.0.1:8786")
    out = tmp_path / "out"
    assert run(study, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'error: {option} needs dask.distributed: pip install "workbench[dask]"'
    assert not out.exists()


def test_a_scheduler_option_must_be_an_address(tmp_path, capsys):
    assert run(write_study(tmp_path, chunk_size=10), tmp_path / "out", "--scheduler", "localhost:8786") == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --scheduler: must be an address like \"tcp://host:8786\", got 'localhost:8786'"
    assert not (tmp_path / "out").exists()


TABLE_STUDY = """
[study]
name = "table"
seed = 5
replicates = 20
methods = ["REML"]

[model]
formula = "Reaction ~ 1 + Days + (1 + Days | Subject)"

[layout]
kind = "table"
path = "rows.csv"
columns = ["Subject", "Days"]

[truth]
beta = { "(Intercept)" = 251.4, Days = 10.5 }
sigma = 25.6
[truth.re.Subject]
sd = { "(Intercept)" = 24.7, Days = 5.9 }

[execution]
chunk_size = 5
"""


def test_workers_get_the_plan_and_never_read_the_study_files(tmp_path, address):
    from workbench.study.cluster import _compute_unit_task
    from workbench.study.plan import plan_point
    from workbench.study.units import compute_unit
    from workbench.study.spec import load_study

    rows = tmp_path / "rows.csv"
    rows.write_bytes((Path(__file__).parent / "data" / "sleepstudy.csv").read_bytes())
    path = tmp_path / "table.toml"
    path.write_text(TABLE_STUDY)
    assert run(path, tmp_path / "local") == 0
    assert run_within_limit(path, tmp_path / "cluster", "--scheduler", address) == 0
    assert_same_results(load(tmp_path / "local"), load(tmp_path / "cluster"))
    # a unit computed from a shipped plan needs no file
    study = load_study(path)
    plan = plan_point(study, study.points()[0])
    expected = compute_unit(study, plan, 0, 1, 5)
    rows.unlink()
    shipped = _compute_unit_task(study, plan, 0, 1, 5, 1)
    for name in COMPARED:
        np.testing.assert_array_equal(expected[name], shipped[name])


def test_unit_keys_name_the_study_point_and_chunk(tmp_path):
    from workbench.study.spec import load_study

    study = load_study(write_study(tmp_path, chunk_size=10))
    digest = study_digest(study, 10)
    assert digest == study_digest(load_study(write_study(tmp_path, chunk_size=10)), 10)
    assert digest != study_digest(study, 5)
    assert unit_key(digest, 1, 7) == f"unit-{digest}-1-7"
