"""Cost per work unit of writing a study's store: chunks of 8 units, of one unit, and through zarr.

A store of 4 points × `--units` units of 64 replicates, 2 analyses × 6 parameters (the arrays
of `PER_FIT`), is created in `--dir` three times: with chunks of 8 units, written as a run
writes them (`UnitBatches`: a chunk's files once all its units are done, then their marks);
with chunks of one unit, each written as it finishes; and with chunks of one unit written
through zarr (the group opened per unit, one assignment per array, then the mark). Wall and
CPU milliseconds per unit are reported. Creating a file is what costs: on some machines
nearly a millisecond.

    python scripts/bench_store_writes.py [--dir /tmp/bench_store] [--units 64]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import zarr

from workbench.model.parameters import ParameterLabel
from workbench.study.batches import UnitBatches
from workbench.study.integrity import unit_digest
from workbench.study.store import ReplicateStore, StoreLayout

CHUNK, POINTS = 64, 4


def layout(units: int, units_per_chunk: int) -> StoreLayout:
    labels = tuple(ParameterLabel(f"beta[x{i}]", "fixed", "", f"x{i}", "value") for i in range(6))
    return StoreLayout(
        npoints=POINTS,
        replicates=units * CHUNK,
        analyses=("ML", "REML"),
        analysis_model=("m", "m"),
        estimator=("ML", "REML"),
        labels=labels,
        chunk_size=CHUNK,
        factors={"layout.subjects": list(range(POINTS))},
        truth=np.zeros((POINTS, 6)),
        attrs={},
        units_per_chunk=units_per_chunk,
    )


def unit_results(rng) -> dict[str, np.ndarray]:
    """Results of one unit, in the dtypes the kernels return."""
    shape, fits = (CHUNK, 2, 6), (CHUNK, 2)
    return {
        "estimate": rng.normal(size=shape),
        "std_error": rng.random(shape),
        "objective": rng.normal(size=fits),
        "converged": rng.random(fits) < 0.9,
        "singular": rng.random(fits) < 0.1,
        "n_evals": rng.integers(0, 500, fits),
        "fit_seconds": rng.random(fits),
        "status": rng.integers(0, 4, fits),
    }


def through_zarr(store: ReplicateStore, point: int, chunk: int, start: int, results: dict) -> None:
    """A unit written through zarr, then its mark."""
    group = zarr.open_group(store.path, mode="a")
    stored = {}
    for name, values in results.items():
        stored[name] = np.asarray(values, dtype=group[name].dtype)
        group[name][point, start : start + len(values)] = stored[name]
    mark = store.progress / f"p{point}-c{chunk}"
    temporary = mark.with_name(mark.name + ".tmp")
    temporary.write_text(json.dumps({"digest": unit_digest(stored), "names": sorted(stored)}))
    os.replace(temporary, mark)


def batched(store: ReplicateStore, data: list) -> None:
    """Every unit of `data` held until its chunk is whole, as a run writes them."""
    batches = UnitBatches(store, store.open().sizes["replicate"], set())
    for (point, chunk), results in data:
        batches.add(point, chunk, results)


def one_by_one(write):
    """Every unit of `data` written by `write(store, point, chunk, start, results)` as it comes."""

    def writes(store: ReplicateStore, data: list) -> None:
        for (point, chunk), results in data:
            write(store, point, chunk, chunk * CHUNK, results)

    return writes


def timed(write, store: ReplicateStore, data: list) -> tuple[float, float]:
    """Wall and CPU milliseconds per unit of writing every unit of `data`."""
    wall, cpu = time.perf_counter(), time.process_time()
    write(store, data)
    count = len(data)
    return 1000 * (time.perf_counter() - wall) / count, 1000 * (time.process_time() - cpu) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/bench_store"))
    parser.add_argument("--units", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    data = [((p, c), unit_results(rng)) for p in range(POINTS) for c in range(args.units)]
    direct = one_by_one(lambda store, point, chunk, start, results: store.write_units(point, {chunk: results}))
    ways = (("8 units a chunk", 8, batched), ("1 unit a chunk", 1, direct), ("through zarr", 1, one_by_one(through_zarr)))
    for label, per, write in ways:
        folder = args.dir / label.replace(" ", "_")
        shutil.rmtree(folder, ignore_errors=True)
        store = ReplicateStore(folder)
        store.create(layout(args.units, per))
        wall, cpu = timed(write, store, data)
        print(f"{label:>15}: {wall:6.2f} ms per unit ({cpu:.2f} ms CPU), {len(data)} units of {CHUNK} replicates")
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
