"""Throughput of a study on a dask.distributed cluster on this machine, against a local run.

Starts a scheduler and worker processes on 127.0.0.1 (no dashboards), runs the study through
`workbench.run.run_study` with a fresh output directory for each setting, and prints
replicates per second. Each setting first runs a few units to load the compiled kernels on
its workers, so the figures are steady-state ones. Every cluster run is checked bit for bit
against the local run.

    python scripts/bench_cluster.py [simulations/quickstart.toml] [--replicates 4000]
        [--chunk-size 64] [--settings local:1 local:2 cluster:1x1 cluster:2x1 cluster:1x2]

`local:T` is a local run on T threads; `cluster:WxT` is W worker processes of T threads each
(a unit runs on its worker's T Numba threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from workbench.run import run_study
from workbench.study.store import ReplicateStore
from workbench.study.spec import load_study

COMPARED = ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status")


class LoopbackCluster:
    """A scheduler and `workers` worker processes of `threads` threads on 127.0.0.1."""

    def __init__(self, directory: Path, workers: int, threads: int):
        self.processes: list[subprocess.Popen] = []
        directory.mkdir(parents=True, exist_ok=True)
        file = directory / "scheduler.json"
        self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--no-dashboard", "--scheduler-file", str(file))  # fmt: skip
        deadline = time.monotonic() + 30
        while not (file.exists() and file.stat().st_size):
            if time.monotonic() > deadline:
                raise RuntimeError("the scheduler did not start")
            time.sleep(0.05)
        self.address = json.loads(file.read_text())["address"]
        for number in range(workers):
            self._start("distributed.cli.dask_worker", self.address, "--nthreads", str(threads),
                        "--no-nanny", "--no-dashboard", "--name", f"worker-{number}",
                        "--local-directory", str(directory / f"worker-{number}"))  # fmt: skip
        from distributed import Client

        with Client(self.address, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, *args: str) -> None:
        self.processes.append(
            subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def timed_run(study, out: Path, workers: int, scheduler: str | None) -> float:
    """Seconds for a fresh run of `study` (after a short warm-up run of the same settings)."""
    warm_up = dataclasses.replace(study, replicates=min(study.replicates, study.execution.chunk_size))
    run_study(warm_up, out / "warm-up", workers=workers, fresh=True, scheduler=scheduler)
    started = time.perf_counter()
    run_study(study, out / "run", workers=workers, fresh=True, scheduler=scheduler)
    return time.perf_counter() - started


def _identical(expected: np.ndarray, actual: np.ndarray) -> bool:
    """Equal element by element, NaN equal to NaN."""
    try:
        np.testing.assert_array_equal(actual, expected)
    except AssertionError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", default="simulations/quickstart.toml")
    parser.add_argument("--replicates", type=int, help="replicates per point (default: the study's)")
    parser.add_argument("--chunk-size", type=int, help="replicates per unit (default: the study's)")
    parser.add_argument(
        "--settings", nargs="+", default=["local:1", "local:2", "cluster:1x1", "cluster:2x1", "cluster:1x2"]
    )
    args = parser.parse_args()
    study = load_study(args.study)
    execution = dataclasses.replace(study.execution, chunk_size=args.chunk_size or study.execution.chunk_size)
    study = dataclasses.replace(study, replicates=args.replicates or study.replicates, execution=execution)
    total = study.replicates * len(study.points())
    print(f"{study.name}: {len(study.points())} points x {study.replicates} replicates, "
          f"chunks of {execution.chunk_size}, methods {', '.join(study.methods)}")  # fmt: skip
    reference = None
    with tempfile.TemporaryDirectory() as scratch:
        for setting in args.settings:
            kind, _, shape = setting.partition(":")
            out = Path(scratch) / setting.replace(":", "-")
            if kind == "local":
                seconds = timed_run(study, out, int(shape), None)
            else:
                workers, threads = (int(n) for n in shape.split("x"))
                cluster = LoopbackCluster(Path(scratch) / f"cluster-{shape}", workers, threads)
                try:
                    seconds = timed_run(study, out, None, cluster.address)
                finally:
                    cluster.close()
            data = ReplicateStore(out / "run").open().load()
            if reference is None:
                reference = data
            same = all(_identical(reference[name].values, data[name].values) for name in COMPARED)
            print(f"{setting:>12}: {seconds:6.2f} s, {total / seconds:7.0f} replicates/s"
                  f"{'' if same else '  (results differ from the first setting!)'}")  # fmt: skip


if __name__ == "__main__":
    main()
