"""Figures of a study report that need the raw replicates: zip plot, distributions, estimate vs estimate.

They are drawn when ``replicates.zarr`` is there; a report redrawn from a committed summary
alone keeps them if they were drawn from the same summary (see `workbench.results.report`).
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import ndtri

from workbench.kernels.montecarlo import SINGULAR_TOL
from workbench.results.plots import FONT, Z95, DesignAxis, legend, line_style, offsets, style

# Estimates outside these quantiles are left out of the histograms, so that a few huge
# estimates do not squeeze the bulk of the distribution into one bin.
_SHOWN_QUANTILES = (0.005, 0.995)
_ZIP_COLUMNS = 6
# At most this many points of each pair in the scatter plots, so that files stay small.
_SCATTER_POINTS = 2000


def zip_figure(raw: xr.Dataset, design: DesignAxis, param: str, level: float) -> Figure:
    """Zip plot (Morris, White & Crowther 2019, Fig. 5) of the Wald intervals of `param`.

    In each panel (point, method) the intervals are ranked by |estimate - truth| / SE and
    drawn at their centile of that rank: the intervals above the coverage line miss the truth.
    """
    z = float(ndtri((1 + level) / 2))
    methods = [str(m) for m in raw["analysis"].values]
    # at most 6 panels a row (whole points), rows as full as they can be
    most = max(1, _ZIP_COLUMNS // len(methods))
    rows = -(-design.npoints // most)
    per_row = -(-design.npoints // rows)
    columns = per_row * len(methods)
    fig = Figure(figsize=(max(2.4 * columns, 5.5), 2.7 * rows + 0.6), layout="constrained")
    for point in range(design.npoints):
        row, place = divmod(point, per_row)
        truth = float(raw["truth"].sel({"param": param}).values[point])
        for j, method in enumerate(methods):
            ax = fig.add_subplot(rows, columns, row * columns + place * len(methods) + j + 1)
            values = _fits(raw, point, method, param)
            estimate, std_error = values["estimate"], values["std_error"]
            keep = np.isfinite(std_error)
            _zip_panel(ax, estimate[keep], std_error[keep], truth, z, level, style(raw, method)[0])
            ax.set_title(f"{design.title(point, 34)}\n{method}", fontsize=FONT)
            if place * len(methods) + j:
                ax.tick_params(labelleft=False)
            else:
                ax.set_ylabel("centile of |z|", fontsize=FONT)
    legend(
        fig,
        [
            Line2D([], [], color="0.5", lw=2, label="interval covers the truth"),
            Line2D([], [], color="0.1", lw=2, label="interval misses"),
            Line2D([], [], color="k", lw=0.8, label="truth"),
            Line2D([], [], color="#7b3294", lw=1.2, label="coverage (dashed: ±1.96 MCSE)"),
        ],
    )
    return fig


def _zip_panel(ax, estimate, std_error, truth, z, level, color) -> None:
    n = len(estimate)
    if n == 0:
        ax.text(0.5, 0.5, "no interval", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        return
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.abs(estimate - truth) / std_error
    # A zero SE with an estimate at the truth is a perfect interval, not NaN.
    score = np.where(np.isnan(score), 0.0, score)
    order = np.argsort(score, kind="stable")
    centile = 100 * (np.arange(n) + 1) / n
    lower, upper = (estimate - z * std_error)[order], (estimate + z * std_error)[order]
    covers = np.abs(estimate - truth)[order] <= z * std_error[order]
    segments = np.stack([np.column_stack([lower, centile]), np.column_stack([upper, centile])], axis=1)
    inside, outside = to_rgba(color, 0.45), to_rgba("#1a1a1a", 1.0)
    colors = np.where(covers[:, np.newaxis], np.array([inside]), np.array([outside]))
    # Rasterised, so that an SVG of thousands of intervals stays small.
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=0.7, rasterized=True))
    # Intervals narrower than a line (an SE near 0 at a singular fit) would not show: mark their estimates.
    misses = ~covers
    ax.plot(estimate[order][misses], centile[misses], ".", color="#1a1a1a", ms=1.5, rasterized=True)
    coverage = covers.mean()
    mcse = np.sqrt(coverage * (1 - coverage) / n)
    ax.axhline(100 * coverage, color="#7b3294", lw=1.2)
    for edge in (coverage - Z95 * mcse, coverage + Z95 * mcse):
        ax.axhline(100 * edge, color="#7b3294", lw=0.8, ls="--")
    ax.axvline(truth, color="k", lw=0.8)
    low, high = np.quantile(lower, 0.01), np.quantile(upper, 0.99)
    low, high = min(low, truth), max(high, truth)
    pad = 0.05 * (high - low) if high > low else 1.0
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(0, 100)
    ax.tick_params(labelsize=FONT - 1)
    ax.locator_params(axis="x", nbins=4)
    ax.text(0.03, 0.03, f"{coverage:.1%} cover", transform=ax.transAxes, fontsize=FONT - 1,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})


def distribution_figure(raw: xr.Dataset, design: DesignAxis, param: str) -> Figure:
    """Histograms of the estimates of `param` per point, ML and REML, the truth dashed.

    Estimates at zero (fits on the boundary: a variance below SINGULAR_TOL² times the
    residual variance) are a point mass: the histogram shows the density of the other
    estimates, scaled to their share, and a stem at 0 on the right-hand axis the share at zero.
    """
    methods = [str(m) for m in raw["analysis"].values]
    columns = min(design.npoints, 4)
    rows = -(-design.npoints // columns)
    fig = Figure(figsize=(max(3.3 * columns, 5.5), 2.6 * rows + 0.6), layout="constrained")
    panels = []
    for point in range(design.npoints):
        fits = {method: _fits(raw, point, method, param) for method in methods}
        for values in fits.values():
            finite = np.isfinite(values["estimate"])
            values["estimate"] = values["estimate"][finite]
            values["zero"] = at_zero(param, values["estimate"], values["residual"][finite])
        panels.append(fits)
    spikes = any(values["zero"].any() for fits in panels for values in fits.values())
    for point, fits in enumerate(panels):
        ax = fig.add_subplot(rows, columns, point + 1)
        truth = float(raw["truth"].sel({"param": param}).values[point])
        inside = [v["estimate"][~v["zero"]] for v in fits.values()]
        edges = _bin_edges(np.concatenate(inside), truth, spikes)
        for method, values in fits.items():
            count = max(len(values["estimate"]), 1)
            density = np.histogram(values["estimate"][~values["zero"]], bins=edges)[0] / (count * np.diff(edges))
            ax.stairs(density, edges, color=style(raw, method)[0], lw=1.2, ls=line_style(raw, method))
        ax.axvline(truth, color="k", lw=1, ls="--")
        ax.set_title(design.title(point, 44), fontsize=FONT)
        ax.tick_params(labelsize=FONT - 1)
        if point % columns == 0:
            ax.set_ylabel("density", fontsize=FONT)
        if point >= design.npoints - columns:
            ax.set_xlabel(param, fontsize=FONT)
        if spikes:
            share_axis = ax.twinx()
            width = edges[-1] - edges[0]
            for (method, values), offset in zip(fits.items(), offsets(len(fits))):
                share = values["zero"].mean() if len(values["zero"]) else 0.0
                color, marker = style(raw, method)
                share_axis.vlines(offset * 0.05 * width, 0, share, color=color, lw=2.5)
                share_axis.plot(offset * 0.05 * width, share, marker, color=color, ms=4)
            share_axis.set_ylim(0, 1)
            share_axis.tick_params(labelsize=FONT - 1)
            if (point + 1) % columns == 0 or point == design.npoints - 1:
                share_axis.set_ylabel("share at 0 (stems)", fontsize=FONT)
    handles = [
        Line2D([], [], color=style(raw, m)[0], marker=style(raw, m)[1], ls=line_style(raw, m), lw=1.5, label=m)
        for m in methods
    ]
    handles.append(Line2D([], [], color="k", lw=1, ls="--", label="truth"))
    if spikes:
        handles.append(Line2D([], [], color="0.4", lw=2.5, label="share of estimates at 0 (right axis)"))
    legend(fig, handles)
    return fig


def at_zero(param: str, estimate: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Which estimates of a random-effect variance or SD sit on the boundary at zero.

    lme4 calls a fit singular when a diagonal entry of the relative factor is below
    SINGULAR_TOL; for a variance that is a variance below SINGULAR_TOL² times the residual
    variance (an SD below SINGULAR_TOL times the residual SD). Other parameters have no boundary.
    """
    if param.startswith("var[") and param != "var[Residual]":
        return estimate <= SINGULAR_TOL**2 * residual
    if param.startswith("sd[") and param != "sd[Residual]":
        return estimate <= SINGULAR_TOL * residual
    return np.zeros(estimate.shape, bool)


def pairs_of(raw: xr.Dataset, param: str) -> list[tuple[str, str]]:
    """Pairs of analyses that both estimate `param`: each analysis against the first one that does."""
    estimated = [
        str(a) for a in raw["analysis"].values
        if np.isfinite(raw["estimate"].sel({"analysis": a, "param": param})).any()
    ]
    if len(estimated) <= 3:
        return list(itertools.combinations(estimated, 2))
    return [(estimated[0], other) for other in estimated[1:]]


def scatter_figure(raw: xr.Dataset, design: DesignAxis, param: str) -> Figure:
    """Estimates of `param` by one analysis against another's, replicate by replicate, per point, and their differences.

    Both analyses fitted the same data set in each replicate. For each pair, the left panel is
    rsimsum's estimate-vs-estimate scatter (y = x dashed), the right one its Bland–Altman
    plot: the difference against the mean of the two estimates, with the mean difference
    and its 95% limits of agreement (mean ± 1.96 SD).
    """
    pairs = pairs_of(raw, param)
    cells = [(point, pair) for point in range(design.npoints) for pair in pairs]
    # a row per point when there are several pairs
    per_row = len(pairs) if len(pairs) > 1 else min(len(cells), 2)
    columns, rows = 2 * per_row, -(-len(cells) // per_row)
    fig = Figure(figsize=(max(2.6 * columns, 5.5), 2.6 * rows + 0.7), layout="constrained")
    for index, (point, (first, second)) in enumerate(cells):
        truth = float(raw["truth"].sel({"param": param}).values[point])
        x, y = _fits(raw, point, first, param)["estimate"], _fits(raw, point, second, param)["estimate"]
        both = np.isfinite(x) & np.isfinite(y)
        x, y = x[both][:_SCATTER_POINTS], y[both][:_SCATTER_POINTS]
        color = style(raw, second)[0]
        scatter = fig.add_subplot(rows, columns, 2 * index + 1)
        scatter.plot(x, y, ".", color=color, ms=2.5, alpha=0.5, rasterized=True)
        ends = np.quantile(np.concatenate([x, y, [truth]]), [0.0, 1.0]) if len(x) else np.array([truth - 1, truth + 1])
        scatter.plot(ends, ends, color="k", lw=0.8, ls="--")
        scatter.axvline(truth, color="0.6", lw=0.6)
        scatter.axhline(truth, color="0.6", lw=0.6)
        scatter.set_xlabel(first, fontsize=FONT)
        scatter.set_ylabel(second, fontsize=FONT)
        difference = fig.add_subplot(rows, columns, 2 * index + 2)
        mean, gap = (x + y) / 2, y - x
        difference.plot(mean, gap, ".", color=color, ms=2.5, alpha=0.5, rasterized=True)
        if len(gap) > 1:
            centre, spread = gap.mean(), gap.std(ddof=1)
            difference.axhline(centre, color="k", lw=0.9)
            for edge in (centre - Z95 * spread, centre + Z95 * spread):
                difference.axhline(edge, color="k", lw=0.8, ls=":")
        difference.axhline(0, color="0.6", lw=0.6)
        difference.set_xlabel("mean of the two", fontsize=FONT)
        difference.set_ylabel(f"{second} − {first}", fontsize=FONT)
        for ax in (scatter, difference):
            ax.set_title(design.title(point, 40), fontsize=FONT)
            ax.tick_params(labelsize=FONT - 1)
            ax.locator_params(nbins=4)
    legend(
        fig,
        [
            Line2D([], [], color="0.3", marker=".", lw=0, label=f"estimates of {param}, one per replicate"),
            Line2D([], [], color="k", lw=0.8, ls="--", label="equal estimates"),
            Line2D([], [], color="0.6", lw=0.6, label="truth (left), no difference (right)"),
            Line2D([], [], color="k", lw=0.9, label="mean difference"),
            Line2D([], [], color="k", lw=0.8, ls=":", label="± 1.96 SD of the differences"),
        ],
    )
    return fig


def _fits(raw: xr.Dataset, point: int, method: str, param: str) -> dict[str, np.ndarray]:
    """Estimates, SEs and residual variances of the finished replicates of one cell."""
    cell = raw.isel(point=point).sel({"analysis": method})
    done = cell["done"].values
    residual = "var[Residual]" if param.startswith("var[") else "sd[Residual]"
    estimate = cell["estimate"].sel({"param": param}).values[done]
    return {
        "estimate": estimate,
        "std_error": cell["std_error"].sel({"param": param}).values[done],
        "residual": (
            cell["estimate"].sel({"param": residual}).values[done]
            if residual in cell["param"].values
            else np.ones_like(estimate)
        ),
    }


def _bin_edges(values: np.ndarray, truth: float, spike: bool) -> np.ndarray:
    """Histogram edges over the central estimates, the truth and (with a spike) zero; Rice's number of bins."""
    bins = int(np.clip(2 * (len(values) / 2) ** (1 / 3), 10, 60))  # values holds both methods' estimates
    ends = [truth] + ([0.0] if spike else [])
    if len(values):
        ends += list(np.quantile(values, _SHOWN_QUANTILES))
    low, high = min(ends), max(ends)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)
