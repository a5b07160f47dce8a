"""`python -m workbench.run study.toml`: run a Monte Carlo study, resumably, and summarise it.

Exit status: 0 done (or already complete), 2 a mistake in the study file or the command (or
no dask scheduler at the address given), 3 a run on a dask cluster stopped part-way (the
scheduler was lost; rerun the same command to resume), 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numba
import numpy as np
import xarray as xr

from workbench.cluster import ClusterError, require_distributed, run_on_cluster
from workbench.driver import check_study, compute_unit, plan_point
from workbench.errors import StudyError, WorkbenchError
from workbench.report import write_report
from workbench.store import ReplicateStore, StoreLayout
from workbench.study import Study, load_study
from workbench.summarise import format_table, summarise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workbench.run",
        description="Run a Monte Carlo study of mixed-model estimators from a study file.",
    )
    parser.add_argument("study", help="the study file (TOML)")
    parser.add_argument("--out", help="output directory (default: results/<study name>/)")
    parser.add_argument(
        "--workers",
        type=int,
        help="threads on this machine (default: the study's, or all cores); with --scheduler, "
        "threads per unit on a dask worker (default: the worker's)",
    )
    parser.add_argument("--scheduler", help="run on the dask cluster of this scheduler, e.g. tcp://host:8786")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in the output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--no-report", action="store_true", help="skip the figures and tables in <out>/report/")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        study = load_study(args.study)
        if args.workers is not None and args.workers < 1:
            raise StudyError(f"--workers: must be a positive integer, got {args.workers}")
        scheduler = args.scheduler or study.execution.scheduler
        if scheduler is not None:
            _check_scheduler(scheduler, "--scheduler" if args.scheduler else "execution.scheduler")
        out = Path(args.out) if args.out else Path("results") / study.name
        summary = run_study(
            study, out, workers=args.workers, fresh=args.fresh, quiet=args.quiet, scheduler=scheduler
        )
    except (WorkbenchError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_status", 2)
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    print(format_table(summary))
    print(f"\nresults: {out / 'replicates.zarr'}\nsummary: {out / 'summary.nc'}")
    if not args.no_report:
        print(f"report: {write_report(out)}")
    return 0


def run_study(
    study: Study,
    out: Path,
    workers: int | None = None,
    fresh: bool = False,
    quiet: bool = True,
    scheduler: str | None = None,
) -> xr.Dataset:
    """Run (or resume) `study` into `out` and return its summary; validates everything first.

    With `scheduler`, the units run on that dask cluster; this process still writes the store.
    """
    params = check_study(study)
    store = ReplicateStore(out)
    if fresh:
        store.remove()
    if store.exists():
        if store.attrs().get("study") != study.text:
            raise StudyError(f"{out}: holds the results of a different study file; use --fresh or another --out")
    else:
        store.create(_store_layout(study, params))
    chunk_size = store.chunk_size()
    nchunks = -(-study.replicates // chunk_size)
    npoints = len(study.points())
    done = store.done_units()
    todo = [(p, c) for p in range(npoints) for c in range(nchunks) if (p, c) not in done]
    summary_path = out / "summary.nc"
    if not todo and summary_path.exists():
        _say(quiet, f"{study.name}: already complete in {out}")
        with xr.open_dataset(summary_path, engine="scipy") as existing:
            return existing.load()
    numba.set_num_threads(min(workers or study.execution.workers, numba.config.NUMBA_NUM_THREADS))
    progress = Progress(study, chunk_size, len(done), npoints * nchunks, quiet)
    if scheduler is None:
        executor = run_locally(study, todo, chunk_size)
    else:
        executor = run_on_cluster(
            study, todo, chunk_size, scheduler, threads=workers, notify=lambda text: _say(quiet, text)
        )
    with contextlib.closing(executor) as units:
        for point, chunk, results in units:
            store.write_unit(point, chunk, chunk * chunk_size, results)
            progress.advance(len(results["objective"]))
    progress.close()
    summary = summarise(store.open(), study.level)
    temporary = summary_path.with_suffix(".tmp")
    summary.to_netcdf(temporary, engine="scipy")
    temporary.replace(summary_path)
    return summary


def run_locally(study: Study, units: list[tuple[int, int]], chunk_size: int) -> Iterator[tuple[int, int, dict]]:
    """Compute the units here, one after another (each runs its replicates on all threads)."""
    for point, chunk in units:
        yield point, chunk, compute_unit(study, point, chunk, chunk_size)


def _check_scheduler(address: str, option: str) -> None:
    """A scheduler address must look like one, and dask.distributed must be installed."""
    if not (address.startswith("tcp://") and len(address) > 6):
        raise StudyError(f'{option}: must be an address like "tcp://host:8786", got {address!r}')
    require_distributed(option)


def _store_layout(study: Study, params: tuple[str, ...]) -> StoreLayout:
    points = study.points()
    truth = [plan_point(study, point).truth for point in points]
    return StoreLayout(
        npoints=len(points),
        replicates=study.replicates,
        methods=study.methods,
        params=params,
        chunk_size=study.execution.chunk_size,
        factors={path: [point.factors[path] for point in points] for path in study.grid},
        truth=np.array(truth),
        attrs={"study": study.text, "study_name": study.name, "seed": study.seed, "level": study.level},
    )


class Progress:
    """A progress bar on a terminal, a line per tenth of the work otherwise."""

    def __init__(self, study: Study, chunk_size: int, done_units: int, total_units: int, quiet: bool):
        self.total = study.replicates * len(study.points())
        self.done = min(done_units * chunk_size, self.total)
        self.started = time.perf_counter()
        self.fresh = 0
        self.quiet = quiet
        self.bar = None
        self.next_line = self.done + max(self.total // 10, 1)
        if quiet:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, unit="rep", desc=study.name, smoothing=0.1)
        elif self.done:
            print(f"{study.name}: resuming, {self.done} of {self.total} replicates already done", flush=True)

    def advance(self, count: int) -> None:
        self.done += count
        self.fresh += count
        if self.bar is not None:
            self.bar.update(count)
        elif not self.quiet and (self.done >= self.next_line or self.done == self.total):
            rate = self.fresh / max(time.perf_counter() - self.started, 1e-9)
            print(f"{self.done}/{self.total} replicates ({rate:.0f} per second)", flush=True)
            self.next_line = self.done + max(self.total // 10, 1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
