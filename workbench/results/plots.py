"""Figures of a study report along the design points: bias, relative bias, coverage, SEs, RMSE, fit shares.

Figures are made with `matplotlib.figure.Figure` directly, never through pyplot, so that
drawing a report opens no window and leaves no global state behind. Design points run
along x in the order of the study (first grid factor slowest); with several grid factors
a nested-loop strip (Rücker & Schwarzer 2014, BMC Med Res Methodol 14:129) under each
column of panels shows the factor levels of every point. Legends sit inside the figure,
above the panels, in as many rows as their entries need (constrained layout makes room for
them and for every label, so that nothing drawn is clipped). The figures that need the raw replicates
are in `workbench.results.raw_plots`, the overviews in `workbench.results.overview_plots`.
"""

from __future__ import annotations

import ast
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from PIL import Image, PngImagePlugin
from scipy.special import ndtri

DPI = 100
COLORS = {"ML": "#1f77b4", "REML": "#d95f02"}
MARKERS = {"ML": "o", "REML": "s"}
# analysis models after the first are told apart by their markers
MODEL_MARKERS = ("^", "D", "v", "P", "X", "<", ">")
Z95 = float(ndtri(0.975))
_LEVELS_WIDTH = 48  # characters of a nested-loop strip's list of levels
# Width of a legend entry (inches): its marker and padding, and per character of its label.
_LEGEND_ENTRY_PAD, _LEGEND_CHARACTER = 0.55, 0.062
FONT = 8


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


def save(fig: Figure, directory: Path, name: str, svg: bool, stamp: dict[str, str] | None = None) -> str:
    """Write `name`.png (and .svg) into `directory`; return the PNG's file name.

    `stamp` is kept as text chunks of the PNG (e.g. what results it was drawn from).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    info = PngImagePlugin.PngInfo()
    for key, value in (stamp or {}).items():
        info.add_text(key, value)
    # A 256-colour palette makes these flat-coloured figures a third of the size, unchanged to the eye.
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        palette.save(directory / f"{name}.png", optimize=True, pnginfo=info)
    if svg:
        fig.savefig(directory / f"{name}.svg")
    else:
        (directory / f"{name}.svg").unlink(missing_ok=True)  # an earlier drawing's
    return f"{name}.png"


def stamp_of(path: Path) -> dict[str, str]:
    """The text chunks of a PNG written by `save` (empty if there is no such file)."""
    if not path.exists():
        return {}
    with Image.open(path) as image:
        return dict(getattr(image, "text", {}))


def measure_figure(
    summary: xr.Dataset,
    design: DesignAxis,
    params: list[str],
    measure: str,
    ylabel: str,
    scale: float = 1.0,
    reference: float | None = 0.0,
    subset: str = "all",
) -> Figure:
    """One measure of every parameter per design point and analysis, ±1.96 MCSE bars (a row block per analysis model).

    `scale` multiplies values and MCSEs (100 for percentages); `reference` is drawn as a grey line.
    """
    fig, cells = model_panels(summary, design, params, measure)
    for ax, title, param, analyses in cells:
        if reference is not None:
            ax.axhline(reference, color="0.5", lw=0.8)
        for analysis, offset in zip(analyses, offsets(len(analyses))):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            with_bars(ax, design.x + offset, scale * cell[measure], scale * cell[f"{measure}_mcse"], analysis, summary)
        ax.set_title(title, fontsize=FONT + 1)
        ax.set_ylabel(ylabel, fontsize=FONT)
    legend(fig, analysis_handles(summary, " ± 1.96 MCSE"))
    return fig


def se_figure(summary: xr.Dataset, design: DesignAxis, params: list[str], subset: str = "all") -> Figure:
    """Empirical SE (filled) beside the mean model SE (open) per point and analysis, ±1.96 MCSE bars."""
    fig, cells = model_panels(summary, design, params, "empse")
    for ax, title, param, analyses in cells:
        shifts = offsets(2 * len(analyses))
        for k, analysis in enumerate(analyses):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            with_bars(ax, design.x + shifts[2 * k], cell["empse"], cell["empse_mcse"], analysis, summary)
            model_x = design.x + shifts[2 * k + 1]
            with_bars(ax, model_x, cell["modelse"], cell["modelse_mcse"], analysis, summary, hollow=True)
        ax.set_title(title, fontsize=FONT + 1)
        ax.set_ylabel("standard error", fontsize=FONT)
    handles = analysis_handles(summary, "")
    handles += [
        Line2D([], [], color="0.3", marker="o", lw=0, label="empirical SE (SD of the estimates)"),
        Line2D([], [], color="0.3", marker="o", mfc="white", lw=0, label="model SE (root mean SE²)"),
        Line2D([], [], color="0.3", lw=1, label="± 1.96 MCSE"),
    ]
    legend(fig, handles)
    return fig


def coverage_figure(summary: xr.Dataset, design: DesignAxis, params: list[str], subset: str = "all") -> Figure:
    """Wald coverage per point and analysis with ±1.96 MCSE bars, the nominal level and its Monte Carlo band.

    Every panel of an analysis model has the same y axis, so that coverage reads alike across parameters.
    """
    level = float(summary.attrs.get("level", 0.95))
    fig, cells = model_panels(summary, design, params, "coverage")
    low: dict[tuple, float] = {}  # per analysis model
    for ax, title, param, analyses in cells:
        # The band: where a method with exactly nominal coverage lands 95% of the time.
        n = summary["n_with_se"].sel({"param": param, "subset": subset, "analysis": analyses}).max("analysis").values
        half = Z95 * np.sqrt(level * (1 - level) / np.maximum(n, 1))
        ax.bar(design.x, 2 * half, bottom=level - half, width=1.0, color="0.85", linewidth=0)
        ax.axhline(level, color="0.3", lw=0.8, ls="--")
        block = tuple(analyses)
        low[block] = min(low.get(block, level), float(np.min(level - half)))
        for analysis, offset in zip(analyses, offsets(len(analyses))):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            with_bars(ax, design.x + offset, cell["coverage"], cell["coverage_mcse"], analysis, summary)
            lower = (cell["coverage"] - Z95 * cell["coverage_mcse"]).values
            if np.isfinite(lower).any():
                low[block] = min(low[block], float(np.nanmin(lower)))
        ax.set_title(title, fontsize=FONT + 1)
        ax.set_ylabel("coverage", fontsize=FONT)
    for ax, _, _, analyses in cells:
        ax.set_ylim(max(0.0, np.floor(low[tuple(analyses)] * 20) / 20 - 0.01), 1.005)
    handles = analysis_handles(summary, " ± 1.96 MCSE")
    handles += [
        Line2D([], [], color="0.3", lw=0.8, ls="--", label=f"nominal {level:g}"),
        Patch(color="0.85", label="95% of exactly nominal methods"),
    ]
    legend(fig, handles)
    return fig


def shares_figure(summary: xr.Dataset, design: DesignAxis) -> Figure:
    """Shares of converged and of singular fits per point and analysis, with ±1.96 MCSE bars."""
    fig, axes = panels(2, design, ncols=2)
    analyses = [str(m) for m in summary["analysis"].values]
    for ax, (name, title) in zip(axes, (("converged_share", "converged fits"), ("singular_share", "singular fits"))):
        for analysis, offset in zip(analyses, offsets(len(analyses))):
            cell = summary.sel({"analysis": analysis})
            with_bars(ax, design.x + offset, cell[name], cell[f"{name}_mcse"], analysis, summary)
        ax.set_title(title, fontsize=FONT + 1)
        ax.set_ylabel("share of replicates", fontsize=FONT)
        ax.set_ylim(-0.03, 1.03)
    legend(fig, analysis_handles(summary, " ± 1.96 MCSE"))
    return fig


def legend(fig: Figure, handles: list) -> None:
    """The figure's legend above its panels, inside the figure, in as many rows as its entries need."""
    widest = max(_LEGEND_ENTRY_PAD + _LEGEND_CHARACTER * len(handle.get_label()) for handle in handles)
    ncols = max(1, min(len(handles), int(fig.get_figwidth() // widest)))
    fig.legend(handles=handles, loc="outside upper center", ncols=ncols, fontsize=FONT, frameon=False)


def analysis_handles(data: xr.Dataset, suffix: str) -> list[Line2D]:
    """A legend entry per analysis, in its colour and marker."""
    handles = []
    for analysis in (str(a) for a in data["analysis"].values):
        color, marker = style(data, analysis)
        handles.append(Line2D([], [], color=color, marker=marker, lw=1, label=f"{analysis}{suffix}"))
    return handles


def panels(
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
    heights = [2.1] * nrows + ([0.42 * len(design.labels) + 0.3] if nested else [])
    fig = Figure(figsize=(width * ncols, sum(heights) + 0.8), layout="constrained")
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
        ax.tick_params(labelsize=FONT - 1)
        ax.set_xlim(-0.5, design.npoints - 0.5)
        if nested:
            # Light lines where the slowest factor changes, to read the loops across panels.
            for edge in np.flatnonzero(np.asarray(design.values[0][1:]) != np.asarray(design.values[0][:-1])):
                ax.axvline(edge + 0.5, color="0.85", lw=0.8, zorder=0)
        if ax not in lowest.values() or nested:
            ax.tick_params(labelbottom=False)
    for col, ax in lowest.items():
        if nested:
            nested_loop_strip(fig.add_subplot(grid[-1, col], sharex=ax), design)
        else:
            label_points(ax, design)
    return fig, axes


def label_points(ax, design: DesignAxis) -> None:
    """Tick labels of one grid factor's values (or of the lone point)."""
    ax.set_xticks(design.x)
    if design.labels:
        ax.set_xticklabels([value_text(v) for v in design.values[0]])
        ax.set_xlabel(design.labels[0], fontsize=FONT)
    else:
        ax.set_xticklabels(["the design point"] * design.npoints)


def nested_loop_strip(ax, design: DesignAxis) -> None:
    """Step lines of each factor's level per point, first factor on top, each named (with its levels) above its line."""
    nfactors = len(design.labels)
    for k, (label, values) in enumerate(zip(design.labels, design.values)):
        levels = list(dict.fromkeys(values))
        if all(isinstance(v, (int, float)) for v in levels):
            levels = sorted(levels)
        rank = np.array([levels.index(v) for v in values], float)
        band = nfactors - 1 - k
        height = band + 0.1 + 0.45 * rank / max(len(levels) - 1, 1)
        ax.stairs(height, np.arange(design.npoints + 1) - 0.5, baseline=None, color="0.2", lw=1.2)
        listed = ", ".join(value_text(v) for v in levels)
        # a long list of levels (tables, say) would squeeze the panels: the point titles have them all
        listed = listed if len(listed) <= _LEVELS_WIDTH else listed[: _LEVELS_WIDTH - 1] + "…"
        ax.text(-0.45, band + 0.62, f"{label}: {listed}", fontsize=FONT - 1, va="bottom", ha="left", color="0.2")
    ax.set_ylim(0, nfactors)
    ax.set_yticks([])
    ax.set_xticks(design.x if design.npoints <= 30 else ax.get_xticks())
    ax.set_xlabel("design point", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 1)
    for spine in ("top", "right", "left"):
        ax.spines[spine].set_visible(False)


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


def line_style(data: xr.Dataset, analysis: str) -> str:
    """The line style of an analysis: solid for the first analysis model, then dashed, dotted, dash-dotted."""
    if "analysis_model" not in data.coords:
        return "-"
    models = list(dict.fromkeys(str(m) for m in data["analysis_model"].values))
    labels = [str(a) for a in data["analysis"].values]
    model = models.index(str(data["analysis_model"].values[labels.index(analysis)]))
    return ("-", "--", ":", "-.")[model % 4]


def model_panels(summary: xr.Dataset, design: DesignAxis, params: list[str], measure: str):
    """Panels of the parameters, a block of rows per analysis model; returns the figure and (axis, title, param, analyses).

    A model's block has the parameters of `params` that its analyses have a finite `measure` of
    (a model without a random slope has no panel for its variance), so blocks differ in size.
    """
    models = list(dict.fromkeys(str(m) for m in summary["analysis_model"].values))
    blocks = []
    for model in models:
        analyses = [str(a) for a, m in zip(summary["analysis"].values, summary["analysis_model"].values) if m == model]
        values = summary[measure].sel({"analysis": analyses, "subset": "all"})
        mine = [p for p in params if np.isfinite(values.sel({"param": p})).any()]
        blocks.append((model, analyses, mine))
    widest = max(len(mine) for _, _, mine in blocks) if blocks else 0
    ncols = 1 if widest <= 5 else 2 if widest <= 12 else 3
    layout, cells, index = [], [], 0
    for model, analyses, mine in blocks:
        rows = -(-len(mine) // ncols)
        layout.append((index, mine, analyses, model))
        index += rows * ncols
    blank = set(range(index))
    for start, mine, _, _ in layout:
        blank -= set(range(start, start + len(mine)))
    fig, axes = panels(max(index, 1), design, ncols=ncols, blank=blank)
    for start, mine, analyses, model in layout:
        for j, param in enumerate(mine):
            title = f"{model}: {param}" if model else param
            cells.append((axes[start + j], title, param, analyses))
    return fig, cells


def offsets(count: int) -> np.ndarray:
    return np.linspace(-0.15, 0.15, count) if count > 1 else np.zeros(1)


def with_bars(ax, x, value, mcse, method: str, data: xr.Dataset | None, hollow: bool = False) -> None:
    """Points with ±1.96 MCSE error bars in the analysis's colour and marker; missing values are skipped."""
    value, mcse = np.asarray(value, float), np.asarray(mcse, float)
    keep = np.isfinite(value)
    if not keep.any():
        return
    error = np.where(np.isfinite(mcse), Z95 * mcse, 0.0)[keep]
    color, marker = style(data, method)
    face = "white" if hollow else color
    ax.errorbar(
        np.asarray(x)[keep], value[keep], yerr=error, fmt=marker, color=color, mfc=face, ms=4, capsize=2, lw=1, label=method
    )


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
