"""Open a study's results as xarray datasets, optionally with the grid factors as dimensions.

The summary is a netCDF4 file; any netCDF4 reader opens it. With xarray alone, the grid
factors become real dimensions in one line::

    ds = xr.open_dataset("results/validation_oneway/summary.nc")
    ds = ds.set_index(point=ds.attrs["grid_factors"].split()).unstack("point")   # several factors
    ds = xr.open_dataset("results/slopes/summary.nc").swap_dims(point="subjects")  # one factor

`open_results(DIR, grid=True)` (``workbench.results.open``) does the same, and also opens the
raw replicates (``raw=True``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError
from workbench.results.metadata import factor_names

__all__ = ["on_grid", "open_results"]


def open_results(directory: str | Path, grid: bool = False, raw: bool = False) -> xr.Dataset:
    """The summary (or with `raw`, the raw replicates) of the study run into `directory`.

    Parameters
    ----------
    directory : path
        The output directory of a study run (``results/<study name>/`` by default).
    grid : bool
        Replace the ``point`` dimension by one dimension per grid factor (`on_grid`).
    raw : bool
        The raw replicates (``replicates.zarr``, opened lazily) instead of the summary.
    """
    from workbench.study.execute import SUMMARY_FILE, read_summary
    from workbench.study.store import ReplicateStore

    folder = Path(directory)
    if raw:
        store = ReplicateStore(folder)
        if not store.exists():
            raise WorkbenchError(f"directory: no raw replicates in {folder} (no replicates.zarr)")
        data = store.open()
    else:
        path = folder / SUMMARY_FILE
        if not path.exists():
            raise WorkbenchError(f"directory: no summary in {folder} (no {SUMMARY_FILE})")
        data = read_summary(path)
    return on_grid(data) if grid else data


def on_grid(data: xr.Dataset) -> xr.Dataset:
    """`data` with one dimension per grid factor instead of ``point`` (unchanged without a grid).

    Design points are the full factorial of the grid, so every combination of factor
    values is present; ``point`` stays as a coordinate over the new dimensions.
    """
    factors = factor_names(data)
    if not factors:
        return data
    if len(factors) == 1:  # a single factor: no MultiIndex to unstack, the factor takes the point's place
        return data.swap_dims({"point": factors[0]})
    followers = [name for name in data.coords if data[name].attrs.get("grid_dimension") in factors]
    numbered = data.drop_vars(followers).assign_coords(design_point=("point", data["point"].values, data["point"].attrs))
    shaped = numbered.set_index(point=factors).unstack("point").rename_vars(design_point="point")
    # full factorial: every point is there, so the point numbers stay integers
    shaped["point"] = shaped["point"].astype(data["point"].dtype)
    for name in followers:
        dimension = data[name].attrs["grid_dimension"]
        by_level = dict(zip(data[dimension].values.tolist(), data[name].values.tolist()))
        values = [by_level[level] for level in shaped[dimension].values.tolist()]
        shaped = shaped.assign_coords({name: (dimension, np.array(values, dtype=data[name].dtype), data[name].attrs)})
    return shaped
