"""The report of a study's results: figures and tables in DIR/report/ (`python -m workbench.report DIR`).

DIR is the output directory of `python -m workbench.run`. The report reads `summary.nc`
(or summarises `replicates.zarr` when there is no summary yet) and, when the raw
replicates are there, also draws the zip plot and the distributions of the estimates.
A balanced one-way random-intercept study (see `workbench.results.validation`) is also set
beside the exact theory; `--validate` insists on it.

Exit status: 0 written, 2 no results in DIR or a mistake in the command.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from workbench.results import plots
from workbench.results import validation
from workbench.errors import WorkbenchError
from workbench.study.store import ReplicateStore
from workbench.results.summarise import _with_mcse, summarise

SUBSET = "all"
_MEASURES = (("bias", "bias"), ("empse", "empirical SE"), ("modelse", "model SE"), ("coverage", "coverage"))


class ReportError(WorkbenchError):
    """There are no results to report, or the report was asked for something they lack."""


@dataclass(frozen=True)
class Results:
    """A study's results as the report uses them."""

    directory: Path
    summary: xr.Dataset
    raw: xr.Dataset | None  # None when only the summary is kept (as in committed results)
    design: plots.DesignAxis
    document: dict  # the study file, parsed

    @property
    def name(self) -> str:
        return str(self.summary.attrs.get("study_name", self.directory.name))

    @property
    def params(self) -> list[str]:
        return [str(p) for p in self.summary["param"].values]

    @property
    def analyses(self) -> list[str]:
        return [str(m) for m in self.summary["analysis"].values]


def load_results(directory: str | Path) -> Results:
    """Read the summary (and the raw replicates, if kept) of the study in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ReportError(f"{directory}: no such directory")
    store = ReplicateStore(directory)
    summary_path = directory / "summary.nc"
    if not store.exists() and not summary_path.exists():
        raise ReportError(f"{directory}: no study results here (no summary.nc or replicates.zarr)")
    raw = None
    if store.exists():
        raw = store.open()[["estimate", "std_error", "converged", "singular", "truth", "done"]].load()
        if not raw["done"].any():
            raise ReportError(f"{directory}: no replicate has finished yet")
    if summary_path.exists():
        try:
            with xr.open_dataset(summary_path, engine="h5netcdf") as stored:
                summary = stored.load()
        except (OSError, ValueError) as exc:
            raise ReportError(f"{summary_path}: cannot read: {' '.join(str(exc).split())}") from None
    else:
        summary = summarise(raw, float(raw.attrs.get("level", 0.95)))
    try:
        document = tomllib.loads(str(summary.attrs.get("study", "")))
    except tomllib.TOMLDecodeError:
        document = {}
    return Results(directory, summary, raw, _design_axis(summary, document), document)


def _design_axis(summary: xr.Dataset, document: dict) -> plots.DesignAxis:
    """The grid factors in the study file's order (first varying slowest), as coordinates on point."""
    on_point = [name for name, coord in summary.coords.items() if coord.dims == ("point",) and name != "point"]
    paths = [path for path in document.get("grid", {}) if path in on_point]
    paths += [path for path in on_point if path not in paths]
    return plots.DesignAxis(
        npoints=summary.sizes["point"],
        labels=tuple(plots.factor_label(path) for path in paths),
        values=tuple(tuple(np.asarray(summary[path].values).tolist()) for path in paths),
    )


def write_report(
    directory: str | Path, param: str | None = None, validate: bool | None = None, svg: bool = True
) -> Path:
    """Write DIR/report/ (figures and report.md) and return the path of report.md.

    Parameters
    ----------
    directory : path
        The output directory of a study run.
    param : str, optional
        The parameter of the zip plot and the distributions (default: the first variance component).
    validate : bool, optional
        Set the results beside the exact one-way theory: None when the study is a
        balanced one-way study, True always (an error if it is not one).
    svg : bool
        Also write every figure as SVG.
    """
    results = load_results(directory)
    param = _chosen_param(results, param)
    one_way = validation.one_way_study(results.summary) if validate is not False else None
    if validate and one_way is None:
        raise ReportError(
            f"--validate: {results.directory} is not a balanced one-way random-intercept study "
            '(y ~ 1 + (1 | g) on a layout of kind "nested" with one level factor and a fixed size >= 2)'
        )
    folder = results.directory / "report"
    folder.mkdir(exist_ok=True)
    sections = [_heading(results), _overview(results)]
    sections += _figures(results, param, folder, svg)
    if one_way is not None:
        sections.append(_validation_section(results, one_way, folder, svg))
    sections.append(_summary_tables(results))
    path = folder / "report.md"
    path.write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return path


def _chosen_param(results: Results, param: str | None) -> str:
    """The requested parameter, or the first variance component (else the first variance, else the first)."""
    params = results.params
    if param is not None:
        if param not in params:
            raise ReportError(f"--param: no parameter {param!r} in the results (they have: {', '.join(params)})")
        return param
    components = [p for p in params if p.startswith("var[") and p != "var[Residual]"]
    variances = [p for p in params if p.startswith("var[")]
    return (components or variances or params)[0]


# --- sections -------------------------------------------------------------------------------


def _heading(results: Results) -> str:
    study = results.document.get("study", {})
    formula = results.document.get("model", {}).get("formula", "?")
    layout = results.document.get("layout", {}).get("kind", "?")
    level = float(results.summary.attrs.get("level", 0.95))
    lines = [
        f"# {results.name}: {' vs '.join(results.analyses)}",
        "",
        f"Model `{formula}` on a `{layout}` layout; {study.get('replicates', '?')} replicates per design point "
        f"(seed {study.get('seed', '?')}); Wald intervals of level {level:g}. Every measure is over all "
        "finished replicates with a finite estimate (failed and singular fits included); Monte Carlo "
        "SEs (MCSE) follow Morris, White & Crowther (2019). Made by `python -m workbench.report`.",
    ]
    analyses = results.document.get("analysis", [])
    if analyses:
        lines += ["", "Data generated by the model above, fitted by the analyses:", ""]
        for table in analyses:
            methods = ", ".join(table.get("methods", study.get("methods", ["ML", "REML"])))
            lines.append(f"- `{table.get('name', '?')}`: `{table.get('formula', formula)}` by {methods}")
        lines += [
            "",
            "A parameter an analysis shares with the generating model has its value as truth; one the "
            "generating model lacks has truth 0 (a correlation with a zero SD: undefined, no bias or coverage).",
        ]
    return "\n".join(lines)


def _overview(results: Results) -> str:
    design, summary = results.design, results.summary
    header = ["point", *design.labels, "finished replicates"]
    rows = [
        [str(point), *(plots.value_text(values[point]) for values in design.values), str(int(summary["n_done"][point]))]
        for point in range(design.npoints)
    ]
    return "## Design points\n\n" + _markdown(header, rows)


def _figures(results: Results, param: str, folder: Path, svg: bool) -> list[str]:
    summary, design = results.summary, results.design
    level = float(summary.attrs.get("level", 0.95))
    params = [p for p in results.params if np.isfinite(summary["bias"].sel({"param": p, "subset": SUBSET})).any()]
    covered = [p for p in params if np.isfinite(summary["coverage"].sel({"param": p, "subset": SUBSET})).any()]
    bias = plots.save(plots.bias_figure(summary, design, params), folder, "bias", svg)
    coverage = plots.save(plots.coverage_figure(summary, design, covered), folder, "coverage", svg)
    shares = plots.save(plots.shares_figure(summary, design), folder, "shares", svg)
    nested = len(design.labels) > 1
    sections = [
        f"## Bias\n\n![Bias of every parameter]({bias})\n\n"
        "Mean estimate minus truth per design point; bars ±1.96 MCSE."
        + (" The strip under the panels marks each point's grid factor levels (a nested-loop plot)." if nested else ""),
        f"## Coverage\n\n![Coverage of the Wald intervals]({coverage})\n\n"
        "Share of Wald intervals estimate ± z·SE that contain the truth; bars ±1.96 MCSE. Dashed: the nominal "
        f"{level:g}; grey band: where a method with exactly nominal coverage falls 95% of the time, "
        f"{level:g} ± 1.96·sqrt({level:g}·{1 - level:g}/n).",
        f"## Converged and singular fits\n\n![Shares of converged and singular fits]({shares})\n\n"
        + _shares_table(results),
    ]
    if results.raw is None:
        sections.append(
            "## Intervals and distributions\n\n"
            f"The raw replicates are not in `{results.directory}` (they are not committed with the results); "
            "run the study again to draw the zip plot and the distributions of the estimates."
        )
        return sections
    raw = results.raw
    zip_plot = plots.save(plots.zip_figure(raw, design, param, level), folder, "zip", svg)
    distribution = plots.save(plots.distribution_figure(raw, design, param), folder, "distribution", svg)
    missing = int((np.isfinite(raw["estimate"]) & ~np.isfinite(raw["std_error"])).sel({"param": param}).sum())
    excluded = f" {missing} estimates without a finite SE have no interval and are left out." if missing else ""
    sections += [
        f"## Wald intervals of {param} (zip plot)\n\n![Zip plot of the Wald intervals of {param}]({zip_plot})\n\n"
        "Each horizontal line is one replicate's interval, ranked by |estimate − truth| / SE (bottom: closest "
        "to the truth); the intervals above the purple coverage line miss the truth (black; dots mark the "
        "estimates of intervals too narrow to see), those below contain it; dashed: ±1.96 MCSE of the "
        f"coverage; the vertical line is the truth.{excluded} Choose another parameter with `--param`.",
        f"## Distribution of the estimates of {param}\n\n"
        f"![Distribution of the estimates of {param}]({distribution})\n\n"
        "Histograms of the estimates (density, scaled to the share of estimates drawn); dashed: the truth. "
        "Estimates on the boundary at zero (a variance below 1e-8 times the residual variance, lme4's "
        "singular fits) are a point mass, drawn as a stem at 0 whose height on the right-hand axis is their "
        "share. The extreme 0.5% of estimates at either end lie outside the drawn range.",
    ]
    return sections


def _shares_table(results: Results) -> str:
    summary, design = results.summary, results.design
    header = ["point", *design.labels]
    header += [f"{m} {what}" for m in results.analyses for what in ("converged", "singular")]
    rows = []
    for point in range(design.npoints):
        row = [str(point), *(plots.value_text(values[point]) for values in design.values)]
        for method in results.analyses:
            cell = summary.isel(point=point).sel({"analysis": method})
            row += [_with_mcse(cell[name], cell[f"{name}_mcse"]) for name in ("converged_share", "singular_share")]
        rows.append(row)
    return "Shares of all finished replicates (MCSE):\n\n" + _markdown(header, rows)


def _validation_section(results: Results, one_way: validation.OneWayStudy, folder: Path, svg: bool) -> str:
    comparison = validation.compare(results.summary, one_way)
    design = results.design
    titles = {quantity: titles[0] for quantity, titles in validation.QUANTITIES.items()}
    figure = plots.save(plots.validation_figure(comparison, design, titles), folder, "validation", svg)
    z = np.abs(comparison["z"].to_numpy())
    estimators = {str(m) for m in results.summary["estimator"].values}
    gap = max(validation.singular_gap(d, m) for d in one_way.designs for m in estimators)
    lines = [
        "## Agreement with exact theory",
        "",
        "The balanced one-way model y = μ + a + e has exact ML and REML theory (`workbench.results.theory`): the "
        "probability that the variance of the group effect is estimated as 0, the expected estimates of "
        "both variances, and the coverage of the Wald interval for μ. Here they are beside the study's "
        "singular share, mean estimates and coverage. The MCSE of a mean is the sample SD / sqrt(n); that "
        "of a share is binomial at the theoretical probability.",
        "",
        f"![Exact theory vs Monte Carlo]({figure})",
        "",
        f"{len(z)} comparisons: largest |study − theory| / MCSE = {np.nanmax(z):.2f}; "
        f"{np.mean(z <= 1.96):.0%} within 1.96 MCSE (95% expected if the theory and the fits agree), "
        f"{np.mean(z <= 4):.0%} within 4 MCSE.",
        "",
        f"A fit counts as singular when θ̂ = σ̂ₐ/σ̂ₑ < 1e-4 rather than θ̂ = 0; by the same F law, "
        f"P(0 < θ̂ < 1e-4) is at most {gap:.1e} at these points, far below every MCSE.",
    ]
    if results.raw is not None:
        raw = results.raw
        estimate = raw["estimate"].sel({"param": one_way.var_a_param})
        largest = float(estimate.where(raw["singular"] & raw["done"]).max())
        if np.isfinite(largest):
            lines[-1] += f" The largest σ̂²ₐ among the singular fits is {largest:.1e}."
    lines += ["", _validation_table(comparison, design)]
    return "\n".join(lines)


def _validation_table(comparison, design: plots.DesignAxis) -> str:
    """One row per point and method: each quantity's theory and study value (MCSE), and the largest |z|."""
    header = ["point", *design.labels, "method"]
    for _, exact, measured in validation.QUANTITIES.values():
        header += [f"{exact} exact", f"{measured} (MCSE)"]
    header.append("max \\|z\\|")
    rows = []
    for (point, method), cells in comparison.groupby(["point", "method"], sort=False):
        row = [str(point), *(plots.value_text(values[point]) for values in design.values), method]
        by_quantity = cells.set_index("quantity")
        for quantity in validation.QUANTITIES:
            exact, study, mcse = by_quantity.loc[quantity, ["theory", "study", "mcse"]]
            row += [f"{exact:.4f}" if exact >= 1e-3 else f"{exact:.2g}", _with_mcse(study, mcse)]
        row.append(f"{np.nanmax(np.abs(cells['z'])):.1f}")
        rows.append(row)
    return _markdown(header, rows)


def _summary_tables(results: Results) -> str:
    summary, design = results.summary, results.design
    blocks = ["## Summary tables", "", "Estimate (MCSE) of bias, empirical and model SE and coverage per parameter."]
    for point in range(design.npoints):
        cell = summary.isel(point=point).sel({"subset": SUBSET})
        blocks += ["", f"### {design.title(point, width=1000)}", ""]
        header = ["parameter", "truth"] + [f"{label} {m}" for _, label in _MEASURES for m in results.analyses]
        rows = []
        for param in results.params:
            values = cell.sel({"param": param})
            row = [param, f"{float(values['truth']):.4g}"]
            for name, _ in _MEASURES:
                for method in results.analyses:
                    chosen = values.sel({"analysis": method})
                    row.append(_with_mcse(chosen[name], chosen[f"{name}_mcse"]))
            rows.append(row)
        blocks.append(_markdown(header, rows))
    return "\n".join(blocks)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------
