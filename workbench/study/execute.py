"""Run a study here or on a cluster: validate, create or resume the store, compute the units, summarise."""

from __future__ import annotations

import contextlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numba
import xarray as xr

from workbench.errors import StudyError
from workbench.results.summarise import summarise, timing
from workbench.study.batches import UnitBatches
from workbench.study.coldstart import cold_start_line, kernels_cached
from workbench.study.resources import check_store
from workbench.study.integrity import INPUTS_ATTR, check_inputs, damaged_units, describe_inputs
from workbench.study.spec import Study
from workbench.study.store import ReplicateStore, StoreLayout
from workbench.study.plan import PointPlan, StudyOutline, check_study, plan_point
from workbench.study.progress import Progress
from workbench.study.units import compute_unit, unit_replicates


def run_study(
    study: Study,
    out: Path,
    workers: int | None = None,
    fresh: bool = False,
    quiet: bool = True,
    scheduler: str | None = None,
) -> xr.Dataset:
    """Run (or resume, or extend) `study` into `out` and return its summary; validates everything first.

    A store made by the same study file with fewer replicates is extended: the new
    replicates are added to it, and the results are those of a run that asked for the
    larger number from the start. With `scheduler`, the units run on that dask cluster;
    this process still writes the store.
    """
    outline = check_study(study)
    check_store(len(study.points()), study.replicates, len(study.fits), len(outline.labels), out)
    if scheduler is not None:
        from workbench.study.cluster import probe_scheduler  # here: only a run on a cluster needs it

        probe_scheduler(scheduler)
    store = ReplicateStore(out)
    if fresh:
        store.remove()
    if store.exists():
        check_inputs(store.attrs().get(INPUTS_ATTR), study, out)
        _extend_if_asked(store, study, out)
    else:
        store.create(_store_layout(study, outline))
    chunk_size = store.chunk_size()
    nchunks = -(-study.replicates // chunk_size)
    npoints = len(study.points())
    done = store.done_units()
    damaged = damaged_units(store, done)
    if damaged:
        store.unmark(damaged)
        done -= damaged
        _say(False, f"{study.name}: {len(damaged)} finished unit(s) damaged or missing in {store.path}; computing them again")
    todo = [(p, c) for p in range(npoints) for c in range(nchunks) if (p, c) not in done]
    summary_path = out / SUMMARY_FILE
    if not todo:
        summary = _summary_of(summary_path, study)
        if summary is not None:
            _say(quiet, f"{study.name}: already complete in {out}")
            return summary
    _announce_bootstrap(study, quiet)
    numba.set_num_threads(min(workers or study.execution.workers, numba.config.NUMBA_NUM_THREADS))
    finished = sum(len(unit_replicates(study, chunk, chunk_size)) for _, chunk in done)
    if scheduler is None and not kernels_cached():
        _say(quiet, cold_start_line())
    progress = Progress(study.name, study.replicates * npoints, finished, quiet)
    if scheduler is None:
        executor = run_locally(study, todo, chunk_size)
    else:
        from workbench.study.cluster import run_on_cluster

        executor = run_on_cluster(
            study, todo, chunk_size, scheduler, threads=workers, notify=lambda text: _say(quiet, text)
        )
    batches = UnitBatches(store, study.replicates, done)
    try:
        with contextlib.closing(executor) as units:
            for point, chunk, results in units:
                batches.add(point, chunk, results)
                progress.advance(len(results["objective"]))
    except BaseException:
        batches.flush()  # also on Ctrl-C: every finished unit is kept
        raise
    finally:
        # the bar is finished before the command says it was interrupted
        progress.close()
    raw = store.open()
    summary = summarise(raw, study.level, study.alpha)
    write_summary(summary, summary_path)
    write_summary(timing(raw), out / TIMING_FILE)
    return summary


def _announce_bootstrap(study: Study, quiet: bool) -> None:
    """Say before the run what bootstrap intervals cost: `nsim` refits per fit of every replicate."""
    fits = sum(len(a.methods) for a in study.analyses if "bootstrap" in a.intervals)
    if fits:
        _say(
            quiet,
            f"{study.name}: bootstrap intervals refit {study.bootstrap_nsim} simulated data sets for each of "
            f"{fits} fit(s) of every replicate, about {study.bootstrap_nsim * fits} extra fits per replicate "
            f"({study.bootstrap_nsim * fits // len(study.fits)}x the cost of the study without them)",
        )


def _summary_of(path: Path, study: Study) -> xr.Dataset | None:
    """The summary at `path` if it is readable and of this very study file; None otherwise."""
    try:
        summary = read_summary(path)
    except Exception:  # missing, truncated or not a summary: it is written again
        return None
    return summary if summary.attrs.get("study") == study.text else None


def _extend_if_asked(store: ReplicateStore, study: Study, out: Path) -> None:
    """Refuse a store made by another study file; grow one made by this file with fewer replicates.

    The study files are compared as TOML documents without ``study.replicates``: any other
    difference (even in ``[execution]`` or ``[summary]``) is another study.
    """
    stored_text = str(store.attrs().get("study", ""))
    if stored_text == study.text:
        return
    if _without_replicates(stored_text) != _without_replicates(study.text):
        raise StudyError(f"{out}: holds the results of a different study file; use --fresh or another --out")
    stored = int(tomllib.loads(stored_text)["study"]["replicates"])
    if study.replicates < stored:
        raise StudyError(
            f"study.replicates: {out} holds {stored} replicates per design point; "
            "a run can add replicates, not remove them (use --fresh or another --out)"
        )
    store.extend(study.replicates, store.chunk_size())
    store.set_attrs({"study": study.text, INPUTS_ATTR: describe_inputs(study)})


def _without_replicates(text: str) -> dict:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {"unreadable": text}
    document.get("study", {}).pop("replicates", None)
    return document


# Replicates per chunk of the store's arrays (a multiple of the unit): a few files per 512
# replicates, where creating a file costs as much as several fits.
CHUNK_REPLICATES = 512
SUMMARY_FILE = "summary.nc"
TIMING_FILE = "timing.nc"
# netCDF4 (HDF5) through h5netcdf: 64-bit integers, and every common engine opens it.
NETCDF_ENGINE = "h5netcdf"


def write_summary(data: xr.Dataset, path: Path) -> None:
    """Write a summary (or the timings) as netCDF4, atomically (a temporary file, then renamed)."""
    temporary = path.with_name(path.name + ".tmp")
    # Through h5netcdf's store, as to_netcdf does, but without its look for a dask scheduler,
    # which imports dask.distributed (0.4 s) when dask is installed; the data are in memory,
    # and h5py serialises its own calls (xarray's HDF5 lock is there for netCDF4-python).
    store = xr.backends.H5NetCDFStore.open(str(temporary), mode="w", lock=False)
    try:
        data.dump_to_store(store)
    finally:
        store.close()
    temporary.replace(path)


def read_summary(path: Path) -> xr.Dataset:
    """Read a summary written by `write_summary` into memory."""
    with xr.open_dataset(path, engine=NETCDF_ENGINE) as stored:
        return stored.load()


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
        units_per_chunk=units_per_chunk(study.execution.chunk_size, study.replicates),
        factors={path: [point.factors[path] for point in points] for path in study.grid},
        truth=outline.truth,
        attrs={
            "study": study.text,
            "study_name": study.name,
            "seed": str(study.seed),
            "level": study.level,
            INPUTS_ATTR: describe_inputs(study),
        }
        | ({"alpha": list(study.alpha)} if outline.tests else {}),
        tests=outline.tests,
        intervals=outline.intervals,
    )


def units_per_chunk(chunk_size: int, replicates: int) -> int:
    """Units per chunk of the store: as many as make up CHUNK_REPLICATES replicates, but not
    more than a point has (a store extended later keeps its chunks)."""
    return max(1, min(CHUNK_REPLICATES // chunk_size, -(-replicates // chunk_size)))


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)
