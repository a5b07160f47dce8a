"""Run a study's units as dask.distributed tasks; the client keeps the store and the resume logic.

A unit (one design point, one chunk of replicates) becomes a task that runs `compute_unit`
on a worker and returns its arrays; the client writes each result to the Zarr store as it
arrives and only then marks the unit done. Workers therefore write nothing and need no
shared filesystem, and an interrupted run keeps every unit it has written.

Each point's plan (layout, design, true parameters) is built here, on the client, and
shipped to the workers as a task of its own: workers never read the study's files (a
``table`` layout's CSV), and a plan lost with a worker is shipped again from the
scheduler. Tasks are pure and keyed by the study, the point and the chunk, so a unit whose
worker dies is simply run again elsewhere — with the same result, since a replicate's data
depend only on `SeedSequence(seed, spawn_key=(point, replicate))`.

dask is optional: nothing here imports `distributed` until a cluster is asked for.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba
import numpy as np

from workbench.errors import ClusterError, RunStopped
from workbench.study.plan import PointPlan, plan_point
from workbench.study.units import compute_unit
from workbench.study.spec import Study

__all__ = ["ClusterError", "RunStopped", "require_distributed", "run_on_cluster", "unit_key"]

#: Units submitted per worker thread before the client waits for one to finish: enough to
#: keep every worker busy while a result travels back, few enough that memory stays flat.
UNITS_PER_THREAD = 2
#: Reruns of a unit whose task raised (a worker that dies is handled by the scheduler).
RETRIES = 2
#: Seconds to wait for the scheduler when connecting.
CONNECT_TIMEOUT = 10.0
#: Seconds between looks at how many worker threads the cluster has (workers come and go).
CAPACITY_REFRESH = 1.0
_INSTALL = 'pip install "workbench[dask]"'


def require_distributed(option: str) -> None:
    """Raise `ClusterError` naming `option` unless dask.distributed can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError(f"{option} needs dask.distributed: {_INSTALL}") from None


def unit_key(digest: str, point: int, chunk: int) -> str:
    """The task key of one unit: the same unit of the same study always gets the same key."""
    return f"unit-{digest}-{point}-{chunk}"


def study_digest(study: Study, chunk_size: int) -> str:
    """A short hash of what a unit's result depends on besides its point and chunk."""
    text = "\n".join((study.text, str(study.base_dir), str(chunk_size)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_on_cluster(
    study: Study,
    units: list[tuple[int, int]],
    chunk_size: int,
    address: str,
    threads: int | None = None,
    notify: Callable[[str], None] | None = None,
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Compute `units` on the dask cluster at `address`, yielding each result as it completes.

    Parameters
    ----------
    study, units, chunk_size
        As for `workbench.study.execute.run_locally`: the units are (point, chunk) pairs.
    address : str
        The scheduler, e.g. ``"tcp://127.0.0.1:8786"``.
    threads : int, optional
        Numba threads per unit on a worker; by default the worker's number of threads.
    notify : callable, optional
        Called with a line of text when the cluster has no workers yet.

    Raises `ClusterError` if the scheduler cannot be reached and `RunStopped` if the
    connection breaks; results yielded before that are complete and can be kept.
    """
    require_distributed("--scheduler")
    with _quiet_distributed_logs():
        client = _connect(address)
        try:
            yield from _run(client, study, units, chunk_size, threads, address, notify)
        except RunStopped:
            raise
        except Exception as exc:
            if not _connection_lost(client, exc):
                raise  # a unit's own error, as in a local run
            raise RunStopped(f"lost the dask scheduler at {address}; rerun the same command to resume") from None
        finally:
            client.close(timeout=CONNECT_TIMEOUT)


def probe_scheduler(address: str) -> None:
    """One `ClusterError` line unless something listens at the scheduler's address (checked
    before the store is created, and again before connecting)."""
    from distributed.comm.addressing import parse_host_port

    try:
        host, port = parse_host_port(address.removeprefix("tcp://"))
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot reach the dask scheduler at {address}: {_reason(exc)}") from None


def _connect(address: str):
    """A client of the scheduler at `address`, or one `ClusterError` line saying why not."""
    from distributed import Client

    # Probe first: a refused connection is reported at once, not after the client's retries.
    probe_scheduler(address)
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the dask scheduler at {address}: {_reason(exc)}") from None


def _run(client, study: Study, units, chunk_size: int, threads, address: str, notify):
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    digest = study_digest(study, chunk_size)
    points = study.points()
    left = Counter(point for point, _ in units)  # units of each point not yet yielded
    plans: dict[int, object] = {}  # point → future of its plan, while units of it are out
    where: dict[str, tuple[int, int]] = {}  # task key → (point, chunk)
    finished = as_completed(loop=client.loop)
    capacity = _Capacity(client)
    todo = iter(units)
    exhausted = False
    if units and not capacity.threads and notify is not None:
        notify(f"waiting for dask workers to join the scheduler at {address}")
    while True:
        while not exhausted and len(where) < capacity():
            unit = next(todo, None)
            if unit is None:
                exhausted = True
                break
            point, chunk = unit
            if point not in plans:
                plans[point] = _ship_plan(client, plan_point(study, points[point]), f"plan-{digest}-{point}")
            key = unit_key(digest, point, chunk)
            future = client.submit(
                _compute_unit_task,
                study,
                plans[point],
                point,
                chunk,
                chunk_size,
                threads,
                key=key,
                pure=True,
                retries=RETRIES,
            )
            where[key] = unit
            finished.add(future)
        if not where:
            return
        future = next(finished)
        point, chunk = where.pop(future.key)
        if future.status == "error" and isinstance(future.exception(), KilledWorker):
            raise RunStopped(
                f"dask workers died each time they ran point {point}, chunk {chunk} "
                "(out of memory?); rerun the same command to resume"
            )
        results = future.result()
        del future
        left[point] -= 1
        if not left[point]:
            del plans[point]  # the scheduler may forget the plan now
        yield point, chunk, results


def _ship_plan(client, plan: PointPlan, key: str):
    """Send a point's plan once, as a task that returns it (so it can be resent if lost)."""
    import dask

    # A big table layout makes a big plan; it is sent once per point, not once per unit.
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"}):
        return client.submit(_identity, plan, key=key, pure=True, retries=RETRIES)


def _identity(value):
    return value


_UNIT_LOCK = threading.Lock()


def _compute_unit_task(
    study: Study, plan: PointPlan, point: int, chunk: int, chunk_size: int, threads: int | None
) -> dict[str, np.ndarray]:
    """Run one unit on a worker, one unit at a time per process, on the worker's threads.

    A worker started with ``--nthreads T`` runs a unit on T Numba threads rather than T
    units at once: the same use of its cores, and Numba's kernels never run concurrently
    in one process (not every Numba threading layer allows that).
    """
    if threads is None:
        threads = _worker_threads()
    with _UNIT_LOCK:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        return compute_unit(study, plan, point, chunk, chunk_size)


def _worker_threads() -> int:
    from distributed import get_worker

    try:
        return get_worker().state.nthreads
    except ValueError:  # not on a worker (e.g. a test calling the task directly)
        return numba.config.NUMBA_NUM_THREADS


class _Capacity:
    """How many units may be out at once: a few per worker thread, looked up now and then."""

    def __init__(self, client):
        self.client = client
        self.looked = -float("inf")
        self.threads = 0
        self()

    def __call__(self) -> int:
        now = time.monotonic()
        if now - self.looked >= CAPACITY_REFRESH:
            self.looked = now
            try:
                self.threads = sum(self.client.nthreads().values())
            except OSError:  # the scheduler is gone; the next result will say so
                self.threads = 0
        return UNITS_PER_THREAD * max(self.threads, 1)


@contextmanager
def _quiet_distributed_logs():
    """Keep distributed's log lines (about reconnecting, say) off the command's output.

    Whatever they would report reaches the user as one error line instead.
    """
    names = ["distributed"] + [name for name in logging.root.manager.loggerDict if name.startswith("distributed.")]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.level or logger.name == "distributed":  # the others inherit the level
            logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _connection_lost(client, exc: Exception) -> bool:
    """Whether `exc`, raised while talking to the cluster, means the scheduler is gone."""
    from distributed.client import FutureCancelledError
    from distributed.comm import CommClosedError

    return isinstance(exc, (FutureCancelledError, CommClosedError)) or client.status != "running"


def _reason(exc: BaseException) -> str:
    """An exception as a short phrase, without the errno prefix."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())
