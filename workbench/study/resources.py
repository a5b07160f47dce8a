"""What a study may ask of the machine, checked before anything is written.

Limits that no real study reaches but a typo does (``replicates = 10**12``, a 3000 × 3000
grid, ``subjects = 5000000``, ``sigma = 1e308``): each is refused with one line naming the
key, instead of running for minutes and then running out of memory or overflowing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workbench.errors import StudyError

MAX_REPLICATES = 1_000_000_000
MAX_CHUNK_SIZE = 1_000_000
MAX_POINTS = 100_000
MAX_NAME_LENGTH = 100
# The largest magnitude of a true value: its square (a variance, a sum of squares) stays finite.
MAX_TRUTH = 1e150
# Bytes a unit holds per row and replicate (responses, simulated draws, fitted values), and per row.
_BYTES_PER_ROW_AND_REPLICATE = 24
_BYTES_PER_ROW = 400


def memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_rows(rows: int, chunk_size: int, replicates: int, where: str) -> None:
    """A unit's data sets must fit in half the machine's memory."""
    per_unit = min(chunk_size, replicates)
    needed = rows * (per_unit * _BYTES_PER_ROW_AND_REPLICATE + _BYTES_PER_ROW)
    if needed > memory_bytes() // 2:
        raise StudyError(
            f"{where}: data sets of up to {rows:,} rows need about {_size(needed)} per unit of {per_unit} "
            f"replicates, more than half this machine's memory ({_size(memory_bytes())}); "
            "use fewer rows or a smaller execution.chunk_size"
        )


def store_bytes(npoints: int, replicates: int, nfits: int, nparams: int) -> int:
    """About what a store of this shape takes on disk, uncompressed."""
    return npoints * replicates * nfits * (16 * nparams + 22)


def check_store(npoints: int, replicates: int, nfits: int, nparams: int, out: Path) -> None:
    """The store must fit on the disk that will hold it."""
    needed = store_bytes(npoints, replicates, nfits, nparams)
    existing = Path(out).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise StudyError(
            f"study.replicates: the results would take up to {_size(needed)}, "
            f"more than the {_size(free)} free on the disk of {out}"
        )


def _size(count: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if count < 1000 or unit == "PB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError
