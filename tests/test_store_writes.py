"""Chunk files, written directly, are byte for byte those zarr writes, however the units of a
chunk arrive; other layouts go through zarr."""

import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from workbench.model.parameters import ParameterLabel
from workbench.study import store as store_module
from workbench.study.chunks import ChunkFiles, ZarrWrites
from workbench.study.store import ReplicateStore, StoreLayout

REPLICATES, CHUNK, POINTS = 10, 4, 2  # the last chunk of each point is short: 2 of 4 replicates


def layout(units_per_chunk: int = 1) -> StoreLayout:
    labels = tuple(ParameterLabel(f"beta[x{i}]", "fixed", "", f"x{i}", "value") for i in range(3))
    return StoreLayout(
        npoints=POINTS,
        replicates=REPLICATES,
        analyses=("ML", "REML"),
        analysis_model=("m", "m"),
        estimator=("ML", "REML"),
        labels=labels,
        chunk_size=CHUNK,
        factors={"layout.subjects": [8, 12]},
        truth=np.zeros((POINTS, 3)),
        attrs={},
        units_per_chunk=units_per_chunk,
    )


def unit_results(rng, rows: int, empty: bool = False) -> dict[str, np.ndarray]:
    """A unit's results in the dtypes the kernels return; `empty`: every array its store fill value."""
    estimate = rng.normal(size=(rows, 2, 3))
    estimate[0, 1, 2] = np.nan
    results = {
        "estimate": estimate,
        "std_error": np.where(rng.random((rows, 2, 3)) < 0.3, np.nan, rng.random((rows, 2, 3))),
        "objective": rng.normal(size=(rows, 2)),
        "converged": rng.random((rows, 2)) < 0.8,
        "singular": rng.random((rows, 2)) < 0.2,
        "n_evals": rng.integers(-5, 1000, (rows, 2)),
        "fit_seconds": rng.random((rows, 2)),
        "status": rng.integers(-1, 4, (rows, 2)),
    }
    if empty:
        results = {name: np.full_like(values, store_module.VARIABLES[name][2]) for name, values in results.items()}
    return results


def units():
    return [(point, chunk) for point in range(POINTS) for chunk in range(-(-REPLICATES // CHUNK))]


def rounds(seed: int = 5) -> list[dict]:
    """Two rounds of every unit's results: a first write, then a rewrite (one unit all fill)."""
    rng = np.random.default_rng(seed)
    rows = {chunk: min(CHUNK, REPLICATES - chunk * CHUNK) for _, chunk in units()}
    first = {unit: unit_results(rng, rows[unit[1]]) for unit in units()}
    second = {unit: unit_results(rng, rows[unit[1]], empty=unit == (1, 0)) for unit in units()}
    return [first, second]


def chunk_files(store: ReplicateStore) -> dict[str, bytes]:
    """Every chunk file of the store's result arrays, by its path in the store."""
    files = {}
    for name in store_module.PER_FIT:
        for path in (store.path / name / "c").rglob("*"):
            if path.is_file():
                files[str(path.relative_to(store.path))] = path.read_bytes()
    return files


def test_chunk_files_are_those_zarr_writes(tmp_path):
    fast, plain = ReplicateStore(tmp_path / "fast"), ReplicateStore(tmp_path / "plain")
    fast.create(layout())
    plain.create(layout())
    group = zarr.open_group(plain.path, mode="a")
    for results in rounds():
        for (point, chunk), values in results.items():
            fast.write_units(point, {chunk: values})
            for name, array in values.items():
                group[name][point, chunk * CHUNK : chunk * CHUNK + len(array)] = array
    assert all(isinstance(writer, ChunkFiles) for writer in fast._writers.values())
    written = chunk_files(fast)
    assert written == chunk_files(plain)
    assert "estimate/c/1/2/0/0" in written and "singular/c/1/0/0" not in written  # short; all fill
    assert not [path for path in fast.path.rglob("*.partial")]
    last = rounds()[-1]
    for data in (fast.open().load(), plain.open().load()):
        for (point, chunk), values in last.items():
            for name, array in values.items():
                stored = data[name].values[point, chunk * CHUNK : chunk * CHUNK + len(array)]
                np.testing.assert_array_equal(stored, array.astype(stored.dtype))
    assert fast.open().done.all()


def test_other_codecs_are_written_through_zarr(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CHUNK_CODECS", (ZstdCodec(level=3), Crc32cCodec()))
    store = ReplicateStore(tmp_path / "other")
    store.create(layout())
    last = rounds()[-1]
    for (point, chunk), values in last.items():
        store.write_units(point, {chunk: values})
    assert all(isinstance(writer, ZarrWrites) for writer in store._writers.values())
    data = store.open().load()
    for (point, chunk), values in last.items():
        np.testing.assert_array_equal(data["estimate"].values[point, chunk * CHUNK :][: len(values["estimate"])], values["estimate"])


@pytest.mark.parametrize("groups", [[[0, 1, 2]], [[1], [0, 2]], [[2], [0], [1]]])
def test_units_sharing_a_chunk_are_written_as_zarr_would_in_any_grouping(tmp_path, groups):
    fast, plain = ReplicateStore(tmp_path / "fast"), ReplicateStore(tmp_path / "plain")
    fast.create(layout(units_per_chunk=3))
    plain.create(layout(units_per_chunk=3))
    group = zarr.open_group(plain.path, mode="a")
    for results in rounds():
        for point in range(POINTS):
            for units in groups:
                fast.write_units(point, {chunk: results[point, chunk] for chunk in units})
                for chunk in units:
                    for name, array in results[point, chunk].items():
                        group[name][point, chunk * CHUNK : chunk * CHUNK + len(array)] = array
            assert {mark.name for mark in fast.progress.iterdir()} >= {f"p{point}-c{chunk}" for chunk in range(3)}
    assert all(isinstance(writer, ChunkFiles) for writer in fast._writers.values())
    written = chunk_files(fast)
    assert written == chunk_files(plain)
    assert sorted(name for name in written if name.startswith("estimate/")) == ["estimate/c/0/0/0/0", "estimate/c/1/0/0/0"]
    assert fast.open().done.all()


def test_units_that_do_not_fit_the_store_are_refused(tmp_path):
    store = ReplicateStore(tmp_path / "s")
    store.create(layout(units_per_chunk=2))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="estimate: unit 0 of point 0 has 5 replicates, not 4"):
        store.write_units(0, {0: unit_results(rng, CHUNK + 1)})
    with pytest.raises(ValueError, match=r"units \[1, 2\] of point 0 are not in one chunk of 2 units"):
        store.write_units(0, {1: unit_results(rng, CHUNK), 2: unit_results(rng, 2)})
    assert not store.done_units()
