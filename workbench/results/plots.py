"""Figures of a study report: bias, coverage, fit shares, zip plot, distributions, exact theory.

Figures are made with `matplotlib.figure.Figure` directly, never through pyplot, so that
drawing a report opens no window and leaves no global state behind. Design points run
along x in the order of the study (first grid factor slowest); with several grid factors
a nested-loop strip (Rücker & Schwarzer 2014, BMC Med Res Methodol 14:129) under each
column of panels shows the factor levels of every point.
"""

from __future__ import annotations

import ast
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image
from scipy.special import ndtri

from workbench.kernels.montecarlo import SINGULAR_TOL

DPI = 100
COLORS = {"ML": "#1f77b4", "REML": "#d95f02"}
MARKERS = {"ML": "o", "REML": "s"}
# analysis models after the first are told apart by their markers
MODEL_MARKERS = ("^", "D", "v", "P", "X", "<", ">")
Z95 = float(ndtri(0.975))
# Estimates outside these quantiles are left out of the histograms, so that a few huge
# estimates do not squeeze the bulk of the distribution into one bin.
_SHOWN_QUANTILES = (0.005, 0.995)
_LEVELS_WIDTH = 48  # characters of a nested-loop strip's list of levels


@dataclass(frozen=True)
class DesignAxis:
    """The design points along x: the grid factors' short labels and their values per point."""

    npoints: int
    labels: tuple[str, ...]
    values: tuple[tuple, ...]  # per factor, its value at every point

    @property
    def x(self) -> np.ndarray:
        return np.arange(self.npoints, dtype=float)

    def title(self, point: int, width: int = 40) -> str:
        """The factor settings of one point, wrapped to `width` characters."""
        settings = ", ".join(f"{label}={value_text(values[point])}" for label, values in zip(self.labels, self.values))
        return "\n".join(textwrap.wrap(f"point {point}" + (f": {settings}" if settings else ""), width))


def factor_label(path: str) -> str:
    """A short label of a grid path: 'truth.re.g.sd."(Intercept)"' -> 'sd[g:(Intercept)]'."""
    parts = path.replace('"', "").replace("'", "").split(".")
    if parts[:2] == ["truth", "re"] and len(parts) >= 5:
        return f"{parts[3]}[{parts[2]}:{'.'.join(parts[4:])}]"
    if parts[:2] == ["truth", "beta"]:
        return f"beta[{'.'.join(parts[2:])}]"
    return ".".join(parts[1:]) or path


def save(fig: Figure, directory: Path, name: str, svg: bool) -> str:
    """Write `name`.png (and .svg) into `directory`; return the PNG's file name."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    # A 256-colour palette makes these flat-coloured figures a third of the size, unchanged to the eye.
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette.save(directory / f"{name}.png", optimize=True)
    if svg:
        fig.savefig(directory / f"{name}.svg")
    return f"{name}.png"


def bias_figure(summary: xr.Dataset, design: DesignAxis, params: list[str], subset: str = "all") -> Figure:
    """Bias of every parameter per design point and analysis, with ±1.96 MCSE bars (a row of panels per analysis model)."""
    fig, cells = _model_panels(summary, design, params)
    for ax, title, param, analyses in cells:
        ax.axhline(0.0, color="0.5", lw=0.8)
        for analysis, offset in zip(analyses, _offsets(len(analyses))):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            _with_bars(ax, design.x + offset, cell["bias"], cell["bias_mcse"], analysis, summary)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("bias", fontsize=8)
    _method_legend(fig, summary)
    return fig


def coverage_figure(summary: xr.Dataset, design: DesignAxis, params: list[str], subset: str = "all") -> Figure:
    """Wald coverage per point and analysis with ±1.96 MCSE bars, the nominal level and its MCSE band."""
    level = float(summary.attrs.get("level", 0.95))
    fig, cells = _model_panels(summary, design, params)
    for ax, title, param, analyses in cells:
        # The band: where a method with exactly nominal coverage lands 95% of the time.
        n = summary["n_with_se"].sel({"param": param, "subset": subset, "analysis": analyses}).max("analysis").values
        half = Z95 * np.sqrt(level * (1 - level) / np.maximum(n, 1))
        ax.bar(design.x, 2 * half, bottom=level - half, width=1.0, color="0.85", linewidth=0)
        ax.axhline(level, color="0.3", lw=0.8, ls="--")
        for analysis, offset in zip(analyses, _offsets(len(analyses))):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            _with_bars(ax, design.x + offset, cell["coverage"], cell["coverage_mcse"], analysis, summary)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("coverage", fontsize=8)
    _method_legend(fig, summary)
    return fig


def shares_figure(summary: xr.Dataset, design: DesignAxis) -> Figure:
    """Shares of converged and of singular fits per point and analysis, with ±1.96 MCSE bars."""
    fig, axes = _panels(2, design, ncols=2)
    for ax, (name, title) in zip(axes, (("converged_share", "converged fits"), ("singular_share", "singular fits"))):
        for method, offset in _methods(summary):
            cell = summary.sel({"analysis": method})
            _with_bars(ax, design.x + offset, cell[name], cell[f"{name}_mcse"], method, summary)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("share of replicates", fontsize=8)
        ax.set_ylim(-0.03, 1.03)
    _method_legend(fig, summary)
    return fig


def zip_figure(raw: xr.Dataset, design: DesignAxis, param: str, level: float) -> Figure:
    """Zip plot (Morris, White & Crowther 2019, Fig. 5) of the Wald intervals of `param`.

    In each panel (point, method) the intervals are ranked by |estimate - truth| / SE and
    drawn at their centile of that rank: the intervals above the coverage line miss the truth.
    """
    z = float(ndtri((1 + level) / 2))
    methods = [str(m) for m in raw["analysis"].values]
    rows = -(-design.npoints // 3)
    per_row = -(-design.npoints // rows)  # at most 3 points a row, rows as full as they can be
    columns = per_row * len(methods)
    fig = Figure(figsize=(2.25 * columns, 3.0 * rows + 0.5), layout="constrained")
    for point in range(design.npoints):
        row, place = divmod(point, per_row)
        truth = float(raw["truth"].sel({"param": param}).values[point])
        for j, method in enumerate(methods):
            ax = fig.add_subplot(rows, columns, row * columns + place * len(methods) + j + 1)
            values = _fits(raw, point, method, param)
            estimate, std_error = values["estimate"], values["std_error"]
            keep = np.isfinite(std_error)
            _zip_panel(ax, estimate[keep], std_error[keep], truth, z, level, style(raw, method)[0])
            ax.set_title(f"{design.title(point, 36)}\n{method}", fontsize=7)
            if place * len(methods) + j:
                ax.tick_params(labelleft=False)
            else:
                ax.set_ylabel("centile of |z|", fontsize=8)
    fig.legend(
        handles=[
            Line2D([], [], color="0.5", lw=2, label="interval covers the truth"),
            Line2D([], [], color="0.1", lw=2, label="interval misses"),
            Line2D([], [], color="k", lw=0.8, label="truth"),
            Line2D([], [], color="#7b3294", lw=1.2, label="coverage (dashed: ±1.96 MCSE)"),
        ],
        loc="outside upper center",
        ncols=4,
        fontsize=8,
        frameon=False,
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
    ax.tick_params(labelsize=7)
    ax.text(0.03, 0.03, f"{coverage:.1%} cover", transform=ax.transAxes, fontsize=7)


def distribution_figure(raw: xr.Dataset, design: DesignAxis, param: str) -> Figure:
    """Histograms of the estimates of `param` per point, ML and REML, the truth dashed.

    Estimates at zero (fits on the boundary: a variance below SINGULAR_TOL² times the
    residual variance) are a point mass: the histogram shows the density of the other
    estimates, scaled to their share, and a stem at 0 on the right-hand axis the share at zero.
    """
    methods = [str(m) for m in raw["analysis"].values]
    columns = min(design.npoints, 4)
    rows = -(-design.npoints // columns)
    fig = Figure(figsize=(3.3 * columns, 2.5 * rows + 0.5), layout="constrained")
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
            ax.stairs(density, edges, color=style(raw, method)[0], lw=1.2)
        ax.axvline(truth, color="k", lw=1, ls="--")
        ax.set_title(design.title(point, 44), fontsize=7)
        ax.tick_params(labelsize=7)
        if point % columns == 0:
            ax.set_ylabel("density", fontsize=8)
        if point >= design.npoints - columns:
            ax.set_xlabel(param, fontsize=8)
        if spikes:
            share_axis = ax.twinx()
            width = edges[-1] - edges[0]
            for (method, values), offset in zip(fits.items(), _offsets(len(fits))):
                share = values["zero"].mean() if len(values["zero"]) else 0.0
                color, marker = style(raw, method)
                share_axis.vlines(offset * 0.05 * width, 0, share, color=color, lw=2.5)
                share_axis.plot(offset * 0.05 * width, share, marker, color=color, ms=4)
            share_axis.set_ylim(0, 1)
            share_axis.tick_params(labelsize=7)
            if (point + 1) % columns == 0 or point == design.npoints - 1:
                share_axis.set_ylabel("share at 0 (stems)", fontsize=8)
    handles = [Line2D([], [], color=style(raw, m)[0], marker=style(raw, m)[1], lw=1.5, label=m) for m in methods]
    handles.append(Line2D([], [], color="k", lw=1, ls="--", label="truth"))
    if spikes:
        handles.append(Line2D([], [], color="0.4", lw=2.5, label="share of estimates at 0 (right axis)"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8, frameon=False)
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


def validation_figure(comparison: pd.DataFrame, design: DesignAxis, titles: dict[str, str]) -> Figure:
    """Exact theory beside the Monte Carlo estimates (top row) and their difference in MCSEs (bottom row)."""
    quantities = list(titles)
    fig, axes = _panels(2 * len(quantities), design, ncols=len(quantities), panel_width=3.4)
    methods = list(dict.fromkeys(comparison["method"]))
    offsets = _offsets(len(methods))
    for k, quantity in enumerate(quantities):
        top, bottom = axes[k], axes[len(quantities) + k]
        for method, offset in zip(methods, offsets):
            rows = comparison[(comparison["quantity"] == quantity) & (comparison["method"] == method)]
            x = rows["point"].to_numpy(float) + offset
            top.plot(x, rows["theory"], "_", color="k", ms=9, mew=1.6)
            _with_bars(top, x, rows["study"], rows["mcse"], method, None)
            bottom.plot(x, rows["z"], MARKERS[method], color=COLORS[method], ms=4)
        top.set_title(titles[quantity], fontsize=9)
        bottom.axhline(0, color="0.5", lw=0.8)
        for edge, style in ((2, ":"), (4, "--")):
            for sign in (-1, 1):
                bottom.axhline(sign * edge, color="0.4", lw=0.8, ls=style)
        limit = max(4.5, float(np.nanmax(np.abs(comparison["z"]))) + 0.5)
        bottom.set_ylim(-limit, limit)
        bottom.set_ylabel("(study − theory) / MCSE", fontsize=8)
    handles = [Line2D([], [], color=COLORS.get(m, "0.3"), marker=MARKERS.get(m, "o"), lw=0, label=m) for m in methods]
    handles += [
        Line2D([], [], color="k", marker="_", ms=9, mew=1.6, lw=0, label="exact theory"),
        Line2D([], [], color="0.3", marker="o", lw=1, label="Monte Carlo ± 1.96 MCSE"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8, frameon=False)
    return fig


# --- panels along the design points -------------------------------------------------------


def _panels(
    npanels: int, design: DesignAxis, ncols: int | None = None, panel_width: float | None = None, blank: set | None = None
):
    """A figure of `npanels` panels sharing x per column, with the points labelled under each column.

    Panels whose index is in `blank` are left empty (None in the returned list).
    """
    blank = blank or set()
    if ncols is None:
        ncols = 1 if npanels <= 5 else 2 if npanels <= 12 else 3
    nrows = -(-npanels // ncols)
    nested = len(design.labels) > 1
    width = panel_width or max(3.6, min(7.5 if ncols == 1 else 5.5, 2.4 + 0.45 * design.npoints))
    heights = [2.0] * nrows + ([0.3 * len(design.labels) + 0.35] if nested else [])
    fig = Figure(figsize=(width * ncols + 1.5 * nested, sum(heights) + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(heights), ncols, height_ratios=heights)
    axes = []
    first: dict[int, object] = {}
    for i in range(npanels):
        row, col = divmod(i, ncols)
        if i in blank:
            axes.append(None)
            continue
        axes.append(fig.add_subplot(grid[row, col], sharex=first.get(col)))
        first.setdefault(col, axes[-1])
    lowest = {i % ncols: ax for i, ax in enumerate(axes) if ax is not None}
    for ax in (ax for ax in axes if ax is not None):
        ax.tick_params(labelsize=7)
        ax.set_xlim(-0.5, design.npoints - 0.5)
        if nested:
            # Light lines where the slowest factor changes, to read the loops across panels.
            for edge in np.flatnonzero(np.asarray(design.values[0][1:]) != np.asarray(design.values[0][:-1])):
                ax.axvline(edge + 0.5, color="0.85", lw=0.8, zorder=0)
        if ax not in lowest.values() or nested:
            ax.tick_params(labelbottom=False)
    for col, ax in lowest.items():
        if nested:
            _nested_loop(fig.add_subplot(grid[-1, col], sharex=ax), design, named=col == 0)
        else:
            _label_points(ax, design)
    return fig, axes


def _label_points(ax, design: DesignAxis) -> None:
    """Tick labels of one grid factor's values (or of the lone point)."""
    ax.set_xticks(design.x)
    if design.labels:
        ax.set_xticklabels([value_text(v) for v in design.values[0]])
        ax.set_xlabel(design.labels[0], fontsize=8)
    else:
        ax.set_xticklabels(["the design point"] * design.npoints)


def _nested_loop(ax, design: DesignAxis, named: bool) -> None:
    """Step lines of each factor's level per point, first factor on top; tick labels name the levels if `named`."""
    nfactors = len(design.labels)
    names = []
    for k, (label, values) in enumerate(zip(design.labels, design.values)):
        levels = list(dict.fromkeys(values))
        if all(isinstance(v, (int, float)) for v in levels):
            levels = sorted(levels)
        rank = np.array([levels.index(v) for v in values], float)
        band = nfactors - 1 - k
        height = band + 0.2 + 0.6 * rank / max(len(levels) - 1, 1)
        ax.stairs(height, np.arange(design.npoints + 1) - 0.5, baseline=None, color="0.2", lw=1.2)
        listed = ", ".join(value_text(v) for v in levels)
        # a long list of levels (tables, say) would squeeze the panels: the point titles have them all
        listed = listed if len(listed) <= _LEVELS_WIDTH else listed[: _LEVELS_WIDTH - 1] + "…"
        names.append((band + 0.5, f"{label}: {listed}"))
    ax.set_ylim(0, nfactors)
    ax.set_yticks([y for y, _ in names], [text for _, text in names] if named else [], fontsize=7)
    ax.set_xticks(design.x if design.npoints <= 30 else ax.get_xticks())
    ax.set_xlabel("design point (lines go up with the listed levels)", fontsize=8)
    ax.tick_params(labelsize=7)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


def _methods(summary: xr.Dataset):
    methods = [str(m) for m in summary["analysis"].values]
    return zip(methods, _offsets(len(methods)))


def style(data: xr.Dataset | None, analysis: str) -> tuple[str, str]:
    """(colour, marker) of an analysis: the colour says the estimator, the marker the analysis model."""
    if data is None or "estimator" not in data.coords:
        return COLORS.get(analysis, "0.3"), MARKERS.get(analysis, "o")
    labels = [str(a) for a in data["analysis"].values]
    estimator = str(data["estimator"].values[labels.index(analysis)])
    models = list(dict.fromkeys(str(m) for m in data["analysis_model"].values))
    model = models.index(str(data["analysis_model"].values[labels.index(analysis)]))
    marker = MARKERS.get(estimator, "o") if model == 0 else MODEL_MARKERS[(model - 1) % len(MODEL_MARKERS)]
    return COLORS.get(estimator, "0.3"), marker


def _model_panels(summary: xr.Dataset, design: DesignAxis, params: list[str]):
    """Panels of every parameter, a block of rows per analysis model; yields (axis, title, param, analyses)."""
    models = list(dict.fromkeys(str(m) for m in summary["analysis_model"].values))
    analyses = {
        model: [str(a) for a, m in zip(summary["analysis"].values, summary["analysis_model"].values) if m == model]
        for model in models
    }
    # each model's block shows the parameters it estimates
    used = summary["n_used"].sel(subset="all").max("point") > 0
    shown = {model: [p for p in params if bool(used.sel(analysis=analyses[model], param=p).any())] for model in models}
    widest = max(len(shown[model]) for model in models)
    ncols = 1 if widest <= 5 else 2 if widest <= 12 else 3
    rows = {model: -(-len(shown[model]) // ncols) for model in models}
    blank, cells, first = set(), [], 0
    for model in models:
        blank |= {first + j for j in range(len(shown[model]), rows[model] * ncols)}
        first += rows[model] * ncols
    fig, axes = _panels(first, design, ncols=ncols, blank=blank)
    first = 0
    for model in models:
        for j, param in enumerate(shown[model]):
            title = f"{model}: {param}" if model else param
            cells.append((axes[first + j], title, param, analyses[model]))
        first += rows[model] * ncols
    return fig, cells


def _offsets(count: int) -> np.ndarray:
    return np.linspace(-0.15, 0.15, count) if count > 1 else np.zeros(1)


def _with_bars(ax, x, value, mcse, method: str, data: xr.Dataset | None) -> None:
    """Points with ±1.96 MCSE error bars in the analysis's colour and marker; missing values are skipped."""
    value, mcse = np.asarray(value, float), np.asarray(mcse, float)
    keep = np.isfinite(value)
    if not keep.any():
        return
    error = np.where(np.isfinite(mcse), Z95 * mcse, 0.0)[keep]
    color, marker = style(data, method)
    ax.errorbar(np.asarray(x)[keep], value[keep], yerr=error, fmt=marker, color=color, ms=4, capsize=2, lw=1, label=method)


def _method_legend(fig: Figure, summary: xr.Dataset) -> None:
    methods = [str(m) for m in summary["analysis"].values]
    handles = [
        Line2D([], [], color=style(summary, m)[0], marker=style(summary, m)[1], lw=1, label=f"{m} ± 1.96 MCSE")
        for m in methods
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8, frameon=False)


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


def value_text(value) -> str:
    """A grid value as text: floats in %g form; a table (stored as its Python text) compactly,
    a distribution as ``chisq(df=1)``."""
    value = np.asarray(value)
    if value.ndim:
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    value = value.item()
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    if text.startswith("{"):
        try:
            table = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(table, dict):
            items = {key: value_text(item) for key, item in table.items() if key != "family"}
            inner = ", ".join(f"{key}={item}" for key, item in items.items())
            if "family" in table:
                return f"{table['family']}({inner})" if inner else str(table["family"])
            return "{" + inner + "}"
    return text
