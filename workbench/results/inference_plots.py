"""Figures of a study's tests and intervals: rejection rates against α, and coverage per interval method."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from workbench.results.plots import FONT, Z95, DesignAxis, legend, offsets, panels

_COLORS = ("#1f77b4", "#d95f02", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")


def _bars(ax, x, value, mcse, index: int, label: str) -> Line2D:
    value, mcse = np.asarray(value, float), np.asarray(mcse, float)
    color, marker = _COLORS[index % len(_COLORS)], _MARKERS[index % len(_MARKERS)]
    keep = np.isfinite(value)
    if keep.any():
        error = np.where(np.isfinite(mcse), Z95 * mcse, 0.0)[keep]
        ax.errorbar(np.asarray(x)[keep], value[keep], yerr=error, fmt=marker, color=color, ms=4, capsize=2, lw=1)
    return Line2D([], [], color=color, marker=marker, lw=1, label=label)


def rejection_figure(summary: xr.Dataset, design: DesignAxis) -> Figure:
    """Rejection rate of every test per point (±1.96 MCSE), one panel per α, with α and its Monte Carlo band."""
    alphas = [float(a) for a in summary["alpha"].values]
    tests = [str(t) for t in summary["test"].values]
    fig, axes = panels(len(alphas), design)
    handles: list = []
    for ax, a in zip(axes, range(len(alphas))):
        alpha = alphas[a]
        band = summary["nominal_band"].isel(alpha=a).values
        ax.bar(design.x, 2 * band, bottom=alpha - band, width=1.0, color="0.85", linewidth=0)
        ax.axhline(alpha, color="0.3", lw=0.8, ls="--")
        handles = []
        for i, (test, offset) in enumerate(zip(tests, offsets(len(tests)))):
            cell = summary.sel(test=test).isel(alpha=a)
            handles.append(_bars(ax, design.x + offset, cell["rejection"], cell["rejection_mcse"], i, test))
        ax.set_title(f"alpha = {alpha:g}", fontsize=FONT + 1)
        ax.set_ylabel("rejection rate", fontsize=FONT)
    handles += [
        Line2D([], [], color="0.3", lw=0.8, ls="--", label="nominal alpha"),
        Patch(color="0.85", label="alpha ± 1.96 sqrt(alpha (1 - alpha) / n)"),
    ]
    legend(fig, handles)
    return fig


def interval_coverage_figure(summary: xr.Dataset, design: DesignAxis, method: str, params: list[str]) -> Figure:
    """Coverage over all replicates of one interval method, a panel per parameter, a series per analysis."""
    level = float(summary.attrs.get("level", 0.95))
    data = summary.sel(interval=method)
    analyses = [str(a) for a in data["analysis"].values if np.isfinite(data["interval_coverage"].sel(analysis=a).values).any()]
    fig, axes = panels(len(params), design)
    handles: list = []
    for ax, param in zip(axes, params):
        n = data["interval_n"].sel(param=param).max("analysis").values
        half = Z95 * np.sqrt(level * (1 - level) / np.maximum(n, 1))
        ax.bar(design.x, 2 * half, bottom=level - half, width=1.0, color="0.85", linewidth=0)
        ax.axhline(level, color="0.3", lw=0.8, ls="--")
        handles = []
        for i, (analysis, offset) in enumerate(zip(analyses, offsets(len(analyses)))):
            cell = data.sel(analysis=analysis, param=param)
            handles.append(_bars(ax, design.x + offset, cell["interval_coverage"], cell["interval_coverage_mcse"], i, analysis))
        ax.set_title(param, fontsize=FONT + 1)
        ax.set_ylabel("coverage (all)", fontsize=FONT)
    handles += [
        Line2D([], [], color="0.3", lw=0.8, ls="--", label=f"nominal {level:g}"),
        Patch(color="0.85", label="95% of exactly nominal methods"),
    ]
    legend(fig, handles)
    return fig
