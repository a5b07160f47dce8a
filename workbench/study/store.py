"""The raw results of a study: a Zarr store written chunk by chunk, and its completion marks.

`DIR/replicates.zarr` holds dims (point, replicate, analysis, param). A work unit is one
point and `chunk_size` replicates; every array is chunked `units_per_chunk` consecutive units
of one point per chunk, so that a study writes a few files per several units rather than
one per array and unit (creating a file costs far more than filling it). The units of a
chunk are written together, each chunk file atomically (`workbench.study.chunks`); after
that, a file `DIR/progress/p<point>-c<unit>` holding the digest of what each unit wrote is
created atomically: its completion mark. A run killed at any moment loses only the units
without a mark; they are recomputed, bit for bit the same, when the run resumes. Every chunk
carries a CRC32C checksum, and the store is created under a temporary name and renamed, so a
kill during creation leaves no store rather than half of one.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import platform
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from workbench.fitting.status import status_codes_text
from workbench.errors import StudyError
from workbench.kernels.reasons import reason_codes_text
from workbench.results.metadata import RAW, describe, grid_coordinates
from workbench.study.chunks import unit_writers
from workbench.study.integrity import unit_digest


# name: (dims, dtype, fill)
PER_FIT = {
    "estimate": (("point", "replicate", "analysis", "param"), "f8", np.nan),
    "std_error": (("point", "replicate", "analysis", "param"), "f8", np.nan),
    "objective": (("point", "replicate", "analysis"), "f8", np.nan),
    "converged": (("point", "replicate", "analysis"), "bool", False),
    "singular": (("point", "replicate", "analysis"), "bool", False),
    "n_evals": (("point", "replicate", "analysis"), "i4", 0),
    "fit_seconds": (("point", "replicate", "analysis"), "f8", np.nan),
    "status": (("point", "replicate", "analysis"), "i1", -1),
}
# Only in the stores of studies that declare tests (the first four) or intervals (the rest).
PER_TEST = {
    "statistic": (("point", "replicate", "test"), "f8", np.nan),
    "df": (("point", "replicate", "test"), "f8", np.nan),
    "p_value": (("point", "replicate", "test"), "f8", np.nan),
    "test_reason": (("point", "replicate", "test"), "i1", -1),
}
PER_INTERVAL = {
    "lower": (("point", "replicate", "analysis", "interval", "param"), "f8", np.nan),
    "upper": (("point", "replicate", "analysis", "interval", "param"), "f8", np.nan),
    "interval_reason": (("point", "replicate", "analysis", "interval", "param"), "i1", -1),
}
VARIABLES = {**PER_FIT, **PER_TEST, **PER_INTERVAL}

# Zstandard as zarr's default, then a CRC32C checksum of the compressed bytes of each chunk.
CHUNK_CODECS = (ZstdCodec(level=0), Crc32cCodec())
_MARK = re.compile(r"p(\d+)-c(\d+)")


@dataclass(frozen=True)
class StoreLayout:
    """What the store's coordinates are; fixed when it is created."""

    npoints: int
    replicates: int
    analyses: tuple[str, ...]  # coordinate values, "<analysis name>:<method>" (or the method alone)
    analysis_model: tuple[str, ...]  # the analysis name of each
    estimator: tuple[str, ...]  # ML or REML, of each
    labels: tuple  # ParameterLabel of every parameter
    chunk_size: int  # replicates per unit
    factors: dict  # grid path → values per point
    truth: np.ndarray  # (point, param)
    attrs: dict
    tests: tuple = ()  # TestLabel of every test
    intervals: tuple[str, ...] = ()  # interval methods
    units_per_chunk: int = 1  # consecutive units of a point per chunk of the arrays

    @property
    def variables(self) -> dict:
        """The variables of the store: `PER_FIT`, with `PER_TEST` and `PER_INTERVAL` when asked for."""
        return {**PER_FIT, **(PER_TEST if self.tests else {}), **(PER_INTERVAL if self.intervals else {})}

    @property
    def nchunks(self) -> int:
        return -(-self.replicates // self.chunk_size)


def versions() -> dict[str, str]:
    """Versions of what produced the results."""
    import numba
    import pandas

    from workbench import __version__

    return {
        "workbench_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
        "numba_version": numba.__version__,
        "pandas_version": pandas.__version__,
        "xarray_version": xr.__version__,
        "zarr_version": zarr.__version__,
    }


class ReplicateStore:
    """Create, resume, write and read the raw results of one study in `directory`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.path = self.directory / "replicates.zarr"
        self.progress = self.directory / "progress"
        self._writers = None  # of the arrays, read from the store's metadata at the first write

    def exists(self) -> bool:
        return (self.path / "zarr.json").exists()

    def remove(self) -> None:
        """Delete the raw results and marks (for a fresh start); leaves other files alone."""
        self._writers = None
        for path in (self.path, self.progress):
            if path.exists():
                shutil.rmtree(path)
        for name in ("summary.nc", "timing.nc", "COMPLETE"):
            (self.directory / name).unlink(missing_ok=True)

    def create(self, layout: StoreLayout) -> None:
        """Write the coordinates, the truth and empty arrays; no replicate is marked done."""
        self._writers = None
        self.directory.mkdir(parents=True, exist_ok=True)
        coords = {
            "point": np.arange(layout.npoints),
            "replicate": np.arange(layout.replicates),
            "analysis": np.array(layout.analyses, dtype=object),
            "param": np.array([label.name for label in layout.labels], dtype=object),
            "analysis_model": ("analysis", np.array(layout.analysis_model, dtype=object)),
            "estimator": ("analysis", np.array(layout.estimator, dtype=object)),
        }
        for field in ("kind", "group", "effect", "scale"):
            coords[field] = ("param", np.array([getattr(label, field) for label in layout.labels], dtype=object))
        if layout.tests:
            coords["test"] = np.array([test.name for test in layout.tests], dtype=object)
            for field in ("kind", "analysis", "effect", "null"):
                values = np.array([getattr(test, field) for test in layout.tests], dtype=object)
                coords[f"test_{field}"] = ("test", values)
        if layout.intervals:
            coords["interval"] = np.array(layout.intervals, dtype=object)
        factors, dimensions = grid_coordinates(layout.factors)
        for name, (values, attrs) in factors.items():
            coords[name] = ("point", values, attrs)
        skeleton = xr.Dataset({"truth": (("point", "param"), layout.truth)}, coords=coords)
        describe(skeleton, RAW)
        skeleton.attrs.update(layout.attrs)
        skeleton.attrs["grid_factors"] = " ".join(dimensions)
        skeleton.attrs["chunk_size"] = layout.chunk_size
        skeleton.attrs["units_per_chunk"] = layout.units_per_chunk
        skeleton.attrs["status_codes"] = status_codes_text()
        if layout.tests or layout.intervals:
            skeleton.attrs["reason_codes"] = reason_codes_text()
        skeleton.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        skeleton.attrs.update(versions())
        building = self.path.with_name(self.path.name + ".building")
        if building.exists():
            shutil.rmtree(building)
        skeleton.to_zarr(building, mode="w", consolidated=False)
        group = zarr.open_group(building, mode="a")
        shape = {
            "point": layout.npoints,
            "replicate": layout.replicates,
            "analysis": len(layout.analyses),
            "param": len(layout.labels),
            "test": len(layout.tests),
            "interval": len(layout.intervals),
        }
        rows = layout.chunk_size * layout.units_per_chunk
        for name, (dims, dtype, fill) in layout.variables.items():
            group.create_array(
                name,
                shape=tuple(shape[d] for d in dims),
                chunks=tuple(1 if d == "point" else rows if d == "replicate" else shape[d] for d in dims),
                dtype=dtype,
                fill_value=fill,
                dimension_names=list(dims),
                attributes=_attributes(name),
                compressors=CHUNK_CODECS,
            )
        _consolidate(building)
        if self.progress.exists():
            shutil.rmtree(self.progress)
        self.progress.mkdir()
        if self.path.exists():  # the remains of a store whose creation was cut short before this one
            shutil.rmtree(self.path)
        os.replace(building, self.path)

    def attrs(self) -> dict:
        try:
            return dict(zarr.open_group(self.path, mode="r").attrs)
        except Exception as exc:  # a damaged zarr.json: nothing of the store can be trusted
            raise StudyError(
                f"{self.path}: the store's metadata is damaged ({type(exc).__name__}); use --fresh or another --out"
            ) from None

    def chunk_size(self) -> int:
        """Replicates per unit."""
        return int(self.attrs()["chunk_size"])

    def units_per_chunk(self) -> int:
        """Units per chunk of the arrays (1 in a store made before chunks held several)."""
        return int(self.attrs().get("units_per_chunk", 1))

    def done_units(self) -> set[tuple[int, int]]:
        """(point, chunk) of every unit with a completion mark; stray files and marks of units
        the store does not have are ignored."""
        if not self.progress.is_dir():
            return set()
        group = zarr.open_group(self.path, mode="r")
        npoints = group["point"].shape[0]
        nchunks = -(-group["replicate"].shape[0] // int(group.attrs["chunk_size"]))
        done = set()
        for mark in self.progress.iterdir():
            match = _MARK.fullmatch(mark.name)
            if match and int(match[1]) < npoints and int(match[2]) < nchunks:
                done.add((int(match[1]), int(match[2])))
        return done

    def mark_digest(self, point: int, chunk: int) -> str:
        """The digest recorded in a unit's completion mark ('' for a mark without one)."""
        try:
            text = (self.progress / f"p{point}-c{chunk}").read_text()
            return str(json.loads(text)["digest"]) if text else ""
        except (OSError, ValueError, KeyError, TypeError):
            return "unreadable"

    def read_unit(self, point: int, chunk: int) -> dict[str, np.ndarray]:
        """A unit's arrays as stored, by the names its mark lists."""
        mark = json.loads((self.progress / f"p{point}-c{chunk}").read_text())
        group = zarr.open_group(self.path, mode="r")
        size = int(group.attrs["chunk_size"])
        stop = min((chunk + 1) * size, group["replicate"].shape[0])
        return {name: group[name][point, chunk * size : stop] for name in mark["names"]}

    def unmark(self, units: set[tuple[int, int]]) -> None:
        """Remove the completion marks of `units`, so that they are computed again."""
        for point, chunk in units:
            (self.progress / f"p{point}-c{chunk}").unlink(missing_ok=True)

    def write_units(self, point: int, units: dict[int, dict[str, np.ndarray]]) -> None:
        """Write finished units of one point that share a chunk of the arrays, then their marks.

        `units` maps a unit's index to its results (arrays with a leading replicate axis, the
        same names in every unit). A chunk that these units do not fill holds other units'
        replicates too: it is read back and written again with them unchanged.
        """
        if self._writers is None:
            self._writers = unit_writers(self.path, VARIABLES)
            self._layout = (self.chunk_size(), self.units_per_chunk())
        size, per = self._layout
        blocks = {unit // per for unit in units}
        if len(blocks) != 1:
            raise ValueError(f"units {sorted(units)} of point {point} are not in one chunk of {per} units")
        lo = blocks.pop() * per * size
        stored = {
            unit: {name: np.asarray(values, self._writers[name].dtype) for name, values in results.items()}
            for unit, results in units.items()
        }
        for unit, results in stored.items():  # all checked before anything is written
            for name, values in results.items():
                rows = min(size, self._writers[name].shape[1] - unit * size)
                if len(values) != rows:
                    raise ValueError(f"{name}: unit {unit} of point {point} has {len(values)} replicates, not {rows}")
        for name in next(iter(stored.values())):
            writer = self._writers[name]
            hi = min(lo + per * size, writer.shape[1])
            if sum(len(results[name]) for results in stored.values()) == hi - lo:
                chunk = np.empty((hi - lo, *stored[unit][name].shape[1:]), writer.dtype)
            else:  # other units' replicates share the chunk
                chunk = writer.read(point, lo, hi)
            for unit, results in stored.items():
                chunk[unit * size - lo : unit * size - lo + len(results[name])] = results[name]
            writer.write(point, lo, chunk)
        self.progress.mkdir(exist_ok=True)
        for unit, results in stored.items():
            mark = self.progress / f"p{point}-c{unit}"
            temporary = mark.with_name(mark.name + ".tmp")
            temporary.write_text(json.dumps({"digest": unit_digest(results), "names": sorted(results)}))
            os.replace(temporary, mark)

    def open(self) -> xr.Dataset:
        """The raw results as an xarray dataset, with `done(point, replicate)` from the marks."""
        data = xr.open_zarr(self.path, consolidated=True, chunks=None)
        # The small coordinates in memory, so that grouping by a grid factor works on the lazy store.
        data = data.assign_coords({name: data[name].load() for name in data.coords if name not in data.dims})
        done = np.zeros((data.sizes["point"], data.sizes["replicate"]), bool)
        size = int(data.attrs["chunk_size"])
        for point, chunk in self.done_units():
            done[point, chunk * size : (chunk + 1) * size] = True
        done = xr.DataArray(done, dims=("point", "replicate"), attrs=_attributes("done"))
        return data.assign(done=done)

    def extend(self, replicates: int, chunk_size: int) -> None:
        """Grow the replicate dimension to `replicates`, keeping every finished replicate.

        The last chunk of a point that was cut short by the old number of replicates gets
        more replicates now: its completion mark is removed, so that it is computed again
        (bit for bit the same for the replicates it had) with the new ones.
        """
        self._writers = None  # the arrays' shapes change
        group = zarr.open_group(self.path, mode="a")
        old = group["replicate"].shape[0]
        if replicates <= old:
            return
        for name, (dims, _, _) in VARIABLES.items():
            if name not in group:
                continue
            shape = list(group[name].shape)
            shape[dims.index("replicate")] = replicates
            group[name].resize(tuple(shape))
        group["replicate"].resize((replicates,))
        group["replicate"][:] = np.arange(replicates, dtype=group["replicate"].dtype)
        if old % chunk_size:
            for point, chunk in self.done_units():
                if chunk == old // chunk_size:
                    (self.progress / f"p{point}-c{chunk}").unlink(missing_ok=True)
        _consolidate(self.path)

    def set_attrs(self, attrs: dict) -> None:
        """Update attributes of the store's root (and its consolidated metadata)."""
        group = zarr.open_group(self.path, mode="a")
        group.attrs.update(attrs)
        _consolidate(self.path)


def _consolidate(path: Path) -> None:
    """Write the consolidated metadata that xarray reads in one request instead of one per array.

    zarr-python warns that consolidated metadata is its extension of the Zarr 3 format; xarray
    and zarr-python read it, and a reader without it reads the arrays' own metadata (it is a copy).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part", category=UserWarning)
        zarr.consolidate_metadata(path)


def _attributes(name: str) -> dict:
    """The attributes of a store variable, as JSON (the status flags as a list)."""
    single = describe(xr.Dataset({name: ((), np.zeros((), VARIABLES.get(name, ("", "f8"))[1]))}), RAW)
    attrs = dict(single[name].attrs)
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in attrs.items()}
