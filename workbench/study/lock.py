"""One run per output directory: an advisory lock held from validation to the last file written.

The lock is `fcntl.flock` on `<out>/.lock`: the kernel releases it when the process ends,
however it ends, so a killed run never leaves a directory locked. A second run of any study
into the same directory is refused with one line before it touches anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import StudyError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the lock of output directory `out` (created if missing) for the duration of the block."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StudyError(f"--out: {out} is a file, not a directory")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StudyError(f"--out: cannot write to {out}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 32, 0).decode(errors="replace").strip()
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StudyError(
                f"{out}: is being written by another run{who}; wait for it to finish or use another --out"
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(handle)
        # a run refused before it wrote anything leaves no directory behind
        if created and [entry.name for entry in out.iterdir()] == [LOCK_FILE]:
            (out / LOCK_FILE).unlink()
            out.rmdir()
