"""Whether the compiled kernels of a study are cached yet: the first run after an install compiles them."""

from __future__ import annotations

from pathlib import Path

from workbench.kernels.montecarlo import simulate_chunk
from workbench.kernels.replicate_loop import fit_chunk

# An empty cache on two busy cores (python -m workbench.run simulations/quickstart.toml: 235 s)
COMPILE_SECONDS = 240


def kernels_cached() -> bool:
    """True when the replicate kernels have a cache index (Numba's, beside the sources or in NUMBA_CACHE_DIR).

    Reads two file names and compiles nothing; an index written for other argument types
    counts as cached (those compile in seconds, not minutes). Where Numba keeps its cache
    elsewhere than this looks, the kernels count as cached: the line is only a courtesy.
    """
    try:
        return all(Path(kernel._cache._cache_file._index_path).exists() for kernel in (fit_chunk, simulate_chunk))
    except AttributeError:
        return True


def cold_start_line() -> str:
    """The line a run prints before the kernels compile."""
    return f"compiling kernels (first run after install, about {COMPILE_SECONDS} s)…"
