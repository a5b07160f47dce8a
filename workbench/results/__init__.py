"""A study's results: summaries, report, and `open` (the summary or raw replicates as xarray datasets)."""

from workbench.results.reading import on_grid, open_results as open  # noqa: A004 - like xarray's open_dataset

__all__ = ["on_grid", "open"]
