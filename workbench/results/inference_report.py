"""The report's sections on tests and intervals: tables of rejection rates and coverage, and their figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from workbench.results import inference_plots, plots
from workbench.results.summarise import _with_mcse


def inference_sections(summary: xr.Dataset, design: plots.DesignAxis, folder: Path, svg: bool) -> list[str]:
    """Markdown sections (with their figures written to `folder`) for the tests and intervals of a summary."""
    sections = []
    if "rejection" in summary:
        sections.append(_tests_section(summary, design, folder, svg))
    if "interval_coverage" in summary:
        sections.append(_intervals_section(summary, design, folder, svg))
    return sections


def _tests_section(summary: xr.Dataset, design: plots.DesignAxis, folder: Path, svg: bool) -> str:
    figure = plots.save(inference_plots.rejection_figure(summary, design), folder, "rejection", svg)
    alphas = [float(a) for a in summary["alpha"].values]
    lines = [
        "## Tests",
        "",
        "Rejection rate (MCSE) of every test at each alpha over all finished replicates: the Type I error where "
        "the tested effect is 0 in the truth, the power elsewhere. A test without a p-value counts as not "
        "rejecting; `missing` says how many. The band is where a test of exact size alpha lands 95% of the time.",
        "",
        f"![rejection rates]({figure})",
    ]
    for point in range(design.npoints):
        cell = summary.isel(point=point)
        lines += ["", f"### {design.title(point, width=1000)} (n = {int(cell['n_done'])})", ""]
        header = ["test", *(f"alpha = {a:g}" for a in alphas), "missing"]
        rows = []
        for test in summary["test"].values:
            chosen = cell.sel(test=test)
            rates = [_with_mcse(chosen["rejection"].isel(alpha=a), chosen["rejection_mcse"].isel(alpha=a)) for a in range(len(alphas))]
            rows.append([str(test), *rates, str(int(chosen["n_p_missing"]))])
        lines.append(markdown(header, rows))
    return "\n".join(lines)


def _intervals_section(summary: xr.Dataset, design: plots.DesignAxis, folder: Path, svg: bool) -> str:
    level = float(summary.attrs.get("level", 0.95))
    lines = [
        "## Intervals",
        "",
        f"Coverage of {level:.0%} intervals over all fits that asked for them (an interval not computed does not "
        "cover), among the computed ones, the bias-eliminated coverage (of the mean estimate; Morris et al. 2019), "
        "the mean width and the share not computed, each with its n.",
    ]
    for method in summary["interval"].values:
        data = summary.sel(interval=method)
        params = [str(p) for p in data["param"].values if np.isfinite(data["interval_coverage"].sel(param=p)).any()]
        if not params:
            continue
        figure = plots.save(inference_plots.interval_coverage_figure(summary, design, str(method), params), folder, f"coverage_{method}", svg)
        lines += ["", f"### {method}", "", f"![coverage of {method} intervals]({figure})"]
        for point in range(design.npoints):
            cell = data.isel(point=point)
            lines += ["", f"#### {design.title(point, width=1000)}", ""]
            header = ["parameter", "analysis", "coverage (all)", "coverage (computed)", "bias-eliminated", "width", "not computed", "n"]
            rows = []
            for param in params:
                for analysis in data["analysis"].values:
                    c = cell.sel(param=param, analysis=analysis)
                    if not np.isfinite(c["interval_coverage"]):
                        continue
                    rows.append([
                        param,
                        str(analysis),
                        _with_mcse(c["interval_coverage"], c["interval_coverage_mcse"]),
                        _with_mcse(c["interval_coverage_computed"], c["interval_coverage_computed_mcse"]),
                        _with_mcse(c["interval_be_coverage"], c["interval_be_coverage_mcse"]),
                        f"{float(c['interval_width']):.4g}",
                        f"{float(c['interval_not_computed']):.3f}",
                        str(int(c["interval_n"])),
                    ])
            lines.append(markdown(header, rows))
    return "\n".join(lines)


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
