"""Write a whole chunk of a store array as one file, without zarr's per-write machinery.

Opening the group and assigning through zarr costs about as much as computing a unit; the
chunk file itself is simple. For the layout `ReplicateStore.create` makes — a regular grid
whose chunk is one point and a run of replicates, default chunk keys, codecs bytes
(little-endian), Zstandard level 0 without checksum, then CRC32C — a chunk file is the C-order
chunk (padded with the fill value when the last chunk is short), compressed by the same
numcodecs Zstd that zarr's ZstdCodec calls, followed by the little-endian CRC32C of the
compressed bytes: byte for byte what zarr writes. An array in any other layout is written
through zarr.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import zarr
from numcodecs.zstd import Zstd

try:  # what zarr 3.1 uses: where a zarr lacks them, every array is written through zarr itself
    import google_crc32c
    from zarr.core.chunk_grids import RegularChunkGrid
    from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
except ImportError:  # pragma: no cover - depends on the installed zarr
    google_crc32c = None

_ZSTD = Zstd(level=0, checksum=False)
_LITTLE = {"name": "bytes", "configuration": {"endian": "little"}}
_COMPRESSION = [{"name": "zstd", "configuration": {"level": 0, "checksum": False}}, {"name": "crc32c"}]


class ZarrWrites:
    """Writes chunks of one array through zarr: for a layout `ChunkFiles` does not know."""

    def __init__(self, array: zarr.Array):
        self.array = array
        self.dtype = array.dtype
        self.shape = array.shape

    def write(self, point: int, start: int, values: np.ndarray) -> None:
        """Write replicates `start`… of `point`."""
        self.array[point, start : start + len(values)] = values

    def read(self, point: int, start: int, stop: int) -> np.ndarray:
        """Replicates [start, stop) of `point` as stored (the fill value where nothing was written)."""
        return self.array[point, start:stop]


class ChunkFiles(ZarrWrites):
    """Writes whole chunks of one array straight to their files (and reads them through zarr)."""

    def __init__(self, array: zarr.Array, folder: Path):
        super().__init__(array)
        metadata = array.metadata
        self.folder = folder
        self.blank = np.full(metadata.chunk_grid.chunk_shape, metadata.fill_value, self.dtype)
        self.encode_key = metadata.encode_chunk_key
        self.write_empty = array.config.write_empty_chunks

    def write(self, point: int, start: int, values: np.ndarray) -> None:
        """Write the chunk of replicates `start`… of `point`; an all-fill chunk is removed, as zarr does."""
        rows = self.blank.shape[1]
        expected = (min(rows, self.shape[1] - start), *self.blank.shape[2:])
        if not 0 <= point < self.shape[0] or start % rows or values.shape != expected:
            raise ValueError(f"{self.folder.name}: the values must fill exactly one chunk")
        chunk = self.blank.copy()
        chunk[0, : len(values)] = values
        path = self.folder / self.encode_key((point, start // rows) + (0,) * (chunk.ndim - 2))
        if not self.write_empty and _all_fill(chunk, self.blank):
            path.unlink(missing_ok=True)
            return
        compressed = _ZSTD.encode(np.ascontiguousarray(chunk, self.dtype.newbyteorder("<")))
        _replace(path, compressed + struct.pack("<I", google_crc32c.value(compressed)))


def unit_writers(path: Path, names) -> dict[str, ChunkFiles | ZarrWrites]:
    """A writer for each of the arrays `names` that the store at `path` has, from its metadata read once."""
    group = zarr.open_group(path, mode="a")
    arrays = {name: group[name] for name in names if name in group}
    return {
        name: ChunkFiles(array, path / name) if understood(array) else ZarrWrites(array)
        for name, array in arrays.items()
    }


def understood(array: zarr.Array) -> bool:
    """Whether `array` has exactly the layout whose chunk files `ChunkFiles` writes."""
    metadata = array.metadata
    if google_crc32c is None or metadata.zarr_format != 3:
        return False
    if metadata.storage_transformers or array.config.order != "C":
        return False
    if not isinstance(metadata.chunk_grid, RegularChunkGrid):
        return False
    if type(metadata.chunk_key_encoding) is not DefaultChunkKeyEncoding:
        return False
    dtype = array.dtype
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or array.ndim < 2:
        return False
    chunks = metadata.chunk_grid.chunk_shape
    if chunks[0] != 1 or tuple(chunks[2:]) != tuple(array.shape[2:]):
        return False
    codecs = [codec.to_dict() for codec in metadata.codecs]
    serialised = [_LITTLE, {"name": "bytes"}] if dtype.itemsize == 1 else [_LITTLE]  # one byte has no order
    return bool(codecs) and codecs[0] in serialised and codecs[1:] == _COMPRESSION


def _all_fill(chunk: np.ndarray, blank: np.ndarray) -> bool:
    """Whether zarr counts `chunk` as empty: equal to the fill, NaN equal to NaN, a zero fill by its bits."""
    if chunk.dtype.kind == "f" and blank.flat[0] == 0:
        return chunk.tobytes() == blank.tobytes()
    return np.array_equal(chunk, blank, equal_nan=True)


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` under a temporary name, then rename: a kill leaves the old file or the new one."""
    temporary = path.with_name(path.name + ".partial")
    try:
        try:
            temporary.write_bytes(data)
        except FileNotFoundError:  # the first chunk of its folder
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
