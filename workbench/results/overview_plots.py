"""Overview figures of a study report: lolly plot, nested-loop plot, run time, agreement with exact theory.

The lolly plot (as rsimsum's ``autoplot(type = "lolly")``) shows, for one parameter, each
analysis's relative bias, coverage and relative error of the model SE at every design point
as a stem from the reference value, with ±1.96 MCSE bars. The nested-loop plot (Rücker &
Schwarzer 2014) draws the same parameter's relative bias and coverage as step lines across
the design points ordered by their grid factors, with the factor levels in a strip below.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from workbench.results.plots import (
    COLORS, FONT, MARKERS, Z95, DesignAxis, analysis_handles, legend, offsets, panels, style, value_text, with_bars,
)

# (measure, title, scale, reference: None for the nominal level)
LOLLY_MEASURES = (
    ("relbias", "relative bias (%)", 100.0, 0.0),
    ("coverage", "coverage", 1.0, None),
    ("relative_error_modelse", "relative error of model SE (%)", 100.0, 0.0),
)


def lolly_figure(summary: xr.Dataset, design: DesignAxis, param: str, subset: str = "all") -> Figure:
    """Lolly plot of one parameter: a row per design point and analysis, a panel per measure."""
    level = float(summary.attrs.get("level", 0.95))
    analyses = [str(a) for a in summary["analysis"].values]
    rows = [(point, analysis) for point in range(design.npoints) for analysis in analyses]
    y = np.arange(len(rows))[::-1].astype(float)
    # "point: factor values · analysis", the factors named in the axis label
    labels = [
        f"{point}: {', '.join(value_text(values[point]) for values in design.values)} · {analysis}"
        if design.labels else analysis
        for point, analysis in rows
    ]
    label_width = max(len(text) for text in labels)
    width = 3.0 * len(LOLLY_MEASURES) + 0.065 * label_width
    fig = Figure(figsize=(max(width, 7.0), 0.24 * len(rows) + 1.3), layout="constrained")
    axes = fig.subplots(1, len(LOLLY_MEASURES), sharey=True)
    for ax, (measure, title, scale, reference) in zip(axes, LOLLY_MEASURES):
        reference = level if reference is None else reference
        ax.axvline(reference, color="0.4", lw=0.8, ls="--")
        for row, (point, analysis) in enumerate(rows):
            cell = summary.isel(point=point).sel({"analysis": analysis, "param": param, "subset": subset})
            value, mcse = scale * float(cell[measure]), scale * float(cell[f"{measure}_mcse"])
            if not np.isfinite(value):
                continue
            color, marker = style(summary, analysis)
            ax.plot([reference, value], [y[row], y[row]], color=color, lw=1.2)
            ax.plot(value, y[row], marker, color=color, ms=4.5)
            if np.isfinite(mcse):
                ax.plot([value - Z95 * mcse, value + Z95 * mcse], [y[row], y[row]], color=color, lw=3, alpha=0.35)
        ax.set_title(title, fontsize=FONT + 1)
        ax.tick_params(labelsize=FONT - 1)
        ax.grid(axis="x", color="0.92", lw=0.6)
        ax.set_axisbelow(True)
    axes[0].set_yticks(y, labels, fontsize=FONT - 1)
    if design.labels:
        names = textwrap.fill(f"point: {', '.join(design.labels)} · analysis", 60)
        axes[0].set_ylabel(names, fontsize=FONT)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    handles = analysis_handles(summary, "")
    handles += [
        Line2D([], [], color="0.4", lw=3, alpha=0.35, label="± 1.96 MCSE"),
        Line2D([], [], color="0.4", lw=0.8, ls="--", label=f"reference (0; nominal {level:g})"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5), fontsize=FONT, frameon=False)
    fig.suptitle(f"{param} at every design point, by analysis", fontsize=FONT + 2)
    return fig


def nested_loop_figure(summary: xr.Dataset, design: DesignAxis, param: str, subset: str = "all") -> Figure:
    """Relative bias and coverage of one parameter as step lines over the design points, factor levels below."""
    level = float(summary.attrs.get("level", 0.95))
    fig, axes = panels(2, design, ncols=1, panel_width=max(6.5, 0.32 * design.npoints + 2.5))
    edges = np.arange(design.npoints + 1) - 0.5
    for ax, (measure, title, scale, reference) in zip(axes, LOLLY_MEASURES[:2]):
        reference = level if reference is None else reference
        ax.axhline(reference, color="0.4", lw=0.8, ls="--")
        for analysis, offset in zip((str(a) for a in summary["analysis"].values), offsets(summary.sizes["analysis"])):
            cell = summary.sel({"analysis": analysis, "param": param, "subset": subset})
            values = scale * cell[measure].values
            color, _ = style(summary, analysis)
            ax.stairs(values, edges, baseline=None, color=color, lw=1.4)
            with_bars(ax, design.x + offset, values, scale * cell[f"{measure}_mcse"].values, analysis, summary)
        ax.set_ylabel(title, fontsize=FONT)
        ax.set_title(f"{param}: {title}", fontsize=FONT + 1)
    legend(fig, analysis_handles(summary, " (bars ± 1.96 MCSE)"))
    return fig


def time_figure(timing: xr.Dataset, design: DesignAxis) -> Figure:
    """Mean processor time per fit (ms) per design point and analysis."""
    fig, (ax,) = panels(1, design, ncols=1)
    analyses = [str(a) for a in timing["analysis"].values]
    for analysis, offset in zip(analyses, offsets(len(analyses))):
        values = 1000 * timing["mean_fit_seconds"].sel({"analysis": analysis}).values
        color, marker = style(timing, analysis)
        ax.plot(design.x + offset, values, marker, color=color, ms=5, ls="-" if design.npoints > 1 else "", lw=0.8)
    finite = 1000 * timing["mean_fit_seconds"].values
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if len(finite) and finite.max() > 20 * finite.min():
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel("ms per fit", fontsize=FONT)
    ax.set_title("processor time per fit", fontsize=FONT + 1)
    legend(fig, analysis_handles(timing, ""))
    return fig


def validation_figure(comparison: pd.DataFrame, design: DesignAxis, titles: dict[str, str]) -> Figure:
    """Exact theory beside the Monte Carlo estimates (top row) and their difference in MCSEs (bottom row)."""
    quantities = list(titles)
    fig, axes = panels(2 * len(quantities), design, ncols=len(quantities), panel_width=3.4)
    methods = list(dict.fromkeys(comparison["method"]))
    shifts = offsets(len(methods))
    for k, quantity in enumerate(quantities):
        top, bottom = axes[k], axes[len(quantities) + k]
        for method, offset in zip(methods, shifts):
            rows = comparison[(comparison["quantity"] == quantity) & (comparison["method"] == method)]
            x = rows["point"].to_numpy(float) + offset
            top.plot(x, rows["theory"], "_", color="k", ms=9, mew=1.6)
            with_bars(top, x, rows["study"], rows["mcse"], method, None)
            bottom.plot(x, rows["z"], MARKERS[method], color=COLORS[method], ms=4)
        top.set_title(titles[quantity], fontsize=FONT + 1)
        bottom.axhline(0, color="0.5", lw=0.8)
        for edge, style in ((2, ":"), (4, "--")):
            for sign in (-1, 1):
                bottom.axhline(sign * edge, color="0.4", lw=0.8, ls=style)
        limit = max(4.5, float(np.nanmax(np.abs(comparison["z"]))) + 0.5)
        bottom.set_ylim(-limit, limit)
        bottom.set_ylabel("(study − theory) / MCSE", fontsize=FONT)
    handles = [Line2D([], [], color=COLORS.get(m, "0.3"), marker=MARKERS.get(m, "o"), lw=0, label=m) for m in methods]
    handles += [
        Line2D([], [], color="k", marker="_", ms=9, mew=1.6, lw=0, label="exact theory"),
        Line2D([], [], color="0.3", marker="o", lw=1, label="Monte Carlo ± 1.96 MCSE"),
        Line2D([], [], color="0.4", lw=0.8, ls=":", label="± 2 MCSE"),
        Line2D([], [], color="0.4", lw=0.8, ls="--", label="± 4 MCSE"),
    ]
    legend(fig, handles)
    return fig
