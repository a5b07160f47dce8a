"""Run a study here or on a cluster: validate, create or resume the store, compute the units, summarise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numba
import xarray as xr

from workbench.errors import StudyError
from workbench.results.summarise import summarise
from workbench.study.cluster import run_on_cluster
from workbench.study.spec import Study
from workbench.study.store import ReplicateStore, StoreLayout
from workbench.study.plan import PointPlan, StudyOutline, check_study, plan_point
from workbench.study.units import compute_unit


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
    outline = check_study(study)
    store = ReplicateStore(out)
    if fresh:
        store.remove()
    if store.exists():
        if store.attrs().get("study") != study.text:
            raise StudyError(f"{out}: holds the results of a different study file; use --fresh or another --out")
    else:
        store.create(_store_layout(study, outline))
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
    """Compute the units here, one after another (each runs its replicates on all threads).

    Units come point by point: each point's plan is built once and kept while its units run.
    """
    points = study.points()
    plan: PointPlan | None = None
    planned = -1
    for point, chunk in units:
        if point != planned:
            plan, planned = plan_point(study, points[point]), point
        yield point, chunk, compute_unit(study, plan, point, chunk, chunk_size)


def _store_layout(study: Study, outline: StudyOutline) -> StoreLayout:
    points = study.points()
    fits = study.fits
    return StoreLayout(
        npoints=len(points),
        replicates=study.replicates,
        analyses=tuple(label for _, _, label in fits),
        analysis_model=tuple(analysis.name for analysis, _, _ in fits),
        estimator=tuple(method for _, method, _ in fits),
        labels=outline.labels,
        chunk_size=study.execution.chunk_size,
        factors={path: [point.factors[path] for point in points] for path in study.grid},
        truth=outline.truth,
        attrs={"study": study.text, "study_name": study.name, "seed": str(study.seed), "level": study.level},
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


