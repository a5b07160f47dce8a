"""The report of a study's results: figures and tables in DIR/report/ (`python -m workbench.report DIR`).

DIR is the output directory of `python -m workbench.run`. The report reads `summary.nc`
(or summarises `replicates.zarr` when there is no summary yet) and `timing.nc`; every
figure of the measures is drawn from the summary alone. When the raw replicates are
there, it also draws the zip plot, the distributions of the estimates and the
estimate-vs-estimate scatter plots, stamped with a digest of the summary; redrawn from a
summary alone (as committed results are), the report keeps those figures if their stamp
is this summary's, and says that they are skipped otherwise.
A balanced one-way random-intercept study (see `workbench.results.validation`) is also set
beside the exact theory; `--validate` insists on it.

Exit status: 0 written, 2 no results in DIR or a mistake in the command.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError
from workbench.results import overview_plots, plots, raw_plots, validation
from workbench.results.inference_report import inference_sections, markdown
from workbench.results.metadata import factor_names
from workbench.results.summarise import _with_mcse, summarise
from workbench.study.execute import SUMMARY_FILE, TIMING_FILE, read_summary
from workbench.study.store import ReplicateStore

SUBSET = "all"
# (variable, column title, scale)
_MEASURES = (
    ("bias", "bias", 1),
    ("relbias", "rel. bias %", 100),
    ("empse", "emp. SE", 1),
    ("modelse", "model SE", 1),
    ("rmse", "RMSE", 1),
    ("coverage", "coverage (with SE)", 1),
    ("coverage_all", "coverage (all)", 1),
)
# The figures drawn from the raw replicates.
RAW_FIGURES = ("zip", "distribution", "scatter")


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
    timing: xr.Dataset | None  # None when there is no timing.nc

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
    summary_path = directory / SUMMARY_FILE
    if not store.exists() and not summary_path.exists():
        raise ReportError(f"{directory}: no study results here (no summary.nc or replicates.zarr)")
    raw = None
    if store.exists():
        raw = store.open()[["estimate", "std_error", "converged", "singular", "truth", "done", "fit_seconds"]].load()
        if not raw["done"].any():
            raise ReportError(f"{directory}: no replicate has finished yet")
    if summary_path.exists():
        try:
            summary = read_summary(summary_path)
        except (OSError, ValueError) as exc:
            raise ReportError(f"{summary_path}: cannot read: {' '.join(str(exc).split())}") from None
    else:
        summary = summarise(raw, float(raw.attrs.get("level", 0.95)))
    try:
        document = tomllib.loads(str(summary.attrs.get("study", "")))
    except tomllib.TOMLDecodeError:
        document = {}
    timing = None
    if (directory / TIMING_FILE).exists():
        timing = read_summary(directory / TIMING_FILE)
    elif raw is not None:
        from workbench.results.summarise import timing as timing_of

        timing = timing_of(raw)
    return Results(directory, summary, raw, _design_axis(summary), document, timing)


def _design_axis(summary: xr.Dataset) -> plots.DesignAxis:
    """The grid factors (one per grid path) in the study file's order, first varying slowest."""
    names = factor_names(summary)
    return plots.DesignAxis(
        npoints=summary.sizes["point"],
        labels=tuple(str(summary[name].attrs.get("label", name)) for name in names),
        values=tuple(tuple(np.asarray(summary[name].values).tolist()) for name in names),
    )


def summary_digest(summary: xr.Dataset) -> str:
    """A digest of a summary's numbers and labels: figures drawn from it carry it."""
    digest = hashlib.sha256(str(summary.attrs.get("study", "")).encode())
    for name in sorted(summary.variables):
        digest.update(name.encode())
        values = np.asarray(summary[name].values)
        text = values.dtype.kind in "OUT"
        digest.update(values.astype(str).tobytes() if text else np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:20]


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
    sections += inference_sections(results.summary, results.design, folder, svg)
    if one_way is not None:
        sections.append(_validation_section(results, one_way, folder, svg))
    sections.append(_summary_tables(results))
    path = folder / "report.md"
    text = "\n\n".join(sections) + "\n"
    path.write_text(text, encoding="utf-8")
    # figures of an earlier report that this one does not show
    for figure in [*folder.glob("*.png"), *folder.glob("*.svg")]:
        if f"]({figure.stem}.png)" not in text:
            figure.unlink()
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
    return "## Design points\n\n" + markdown(header, rows)


def _figures(results: Results, param: str, folder: Path, svg: bool) -> list[str]:
    summary, design = results.summary, results.design
    level = float(summary.attrs.get("level", 0.95))
    params = [p for p in results.params if np.isfinite(summary["bias"].sel({"param": p, "subset": SUBSET})).any()]
    relative = [p for p in params if np.isfinite(summary["relbias"].sel({"param": p, "subset": SUBSET})).any()]
    covered = [p for p in params if np.isfinite(summary["coverage"].sel({"param": p, "subset": SUBSET})).any()]
    with_se = [p for p in params if np.isfinite(summary["modelse"].sel({"param": p, "subset": SUBSET})).any()]
    nested = len(design.labels) > 1

    def save(fig, name):
        return plots.save(fig, folder, name, svg)

    strip = (
        " The strip under the panels marks each point's grid factor levels (a nested-loop plot): each line steps "
        "up through its factor's levels, in the order listed above it." if nested else ""
    )
    lacking = [p for p in params if p not in relative]
    relative_note = (
        f" Parameters whose truth is 0 at every point have no relative bias: {', '.join(lacking)} (see the bias)."
        if lacking else ""
    )
    relbias = save(plots.measure_figure(summary, design, relative, "relbias", "relative bias (%)", scale=100), "relbias")
    bias = save(plots.measure_figure(summary, design, params, "bias", "bias"), "bias")
    coverage = save(plots.coverage_figure(summary, design, covered), "coverage")
    errors = save(plots.se_figure(summary, design, with_se), "se")
    rmse = save(plots.measure_figure(summary, design, params, "rmse", "RMSE", reference=None), "rmse")
    lolly = save(overview_plots.lolly_figure(summary, design, param), "lolly")
    shares = save(plots.shares_figure(summary, design), "shares")
    sections = [
        f"## Relative bias\n\n![Relative bias of every parameter]({relbias})\n\n"
        "Bias as a percentage of the truth, (mean estimate − truth) / truth, per design point; bars ±1.96 MCSE."
        + relative_note + strip,
        f"## Bias\n\n![Bias of every parameter]({bias})\n\nMean estimate minus truth, in the parameter's units; "
        "bars ±1.96 MCSE." + strip,
        f"## Coverage\n\n![Coverage of the Wald intervals]({coverage})\n\n"
        "Share of Wald intervals estimate ± z·SE that contain the truth, on one axis for every parameter of an "
        f"analysis model; bars ±1.96 MCSE. Dashed: the nominal {level:g}; grey band: where a method with exactly "
        f"nominal coverage falls 95% of the time, {level:g} ± 1.96·sqrt({level:g}·{1 - level:g}/n).",
        f"## Empirical and model SE\n\n![Empirical and model standard errors]({errors})\n\n"
        "Filled: the empirical SE (the SD of the estimates); open: the model SE (root mean of the squared standard "
        "errors the fits report), each with ±1.96 MCSE bars. Model SEs above the empirical SE overstate the "
        "uncertainty, below it understate it.",
        f"## RMSE\n\n![Root mean squared error]({rmse})\n\nRoot mean squared error, sqrt(bias² + empirical "
        "variance) in the parameter's units; bars ±1.96 MCSE (delta method).",
        f"## Lolly plot of {param}\n\n![Lolly plot of {param}]({lolly})\n\n"
        f"Each row is one design point and analysis: relative bias, coverage and relative error of the model SE of "
        f"{param} as a stem from the reference value (0, or the nominal level), with ±1.96 MCSE bands. "
        "Choose another parameter with `--param`.",
    ]
    if nested:
        loop = save(overview_plots.nested_loop_figure(summary, design, param), "nested_loop")
        sections.append(
            f"## Nested-loop plot of {param}\n\n![Nested-loop plot of {param}]({loop})\n\n"
            "Relative bias and coverage of one parameter across the design points, ordered by the grid factors "
            "(first slowest), as step lines per analysis; the strip below marks each point's factor levels "
            "(Rücker & Schwarzer 2014)."
        )
    sections.append(
        f"## Converged and singular fits\n\n![Shares of converged and singular fits]({shares})\n\n" + _shares_table(results)
    )
    sections.append(_time_section(results, folder, svg))
    sections += _raw_sections(results, param, folder, svg, level)
    return sections


def _time_section(results: Results, folder: Path, svg: bool) -> str:
    if results.timing is None:
        return "## Run time\n\nSkipped: there is no `timing.nc` (run times) in the results."
    timing, design = results.timing, results.design
    figure = plots.save(overview_plots.time_figure(timing, design), folder, "time", svg)
    header = ["point", *design.labels, *(f"{a} ms/fit" for a in results.analyses), "total s"]
    rows = []
    for point in range(design.npoints):
        cell = timing.isel(point=point)
        row = [str(point), *(plots.value_text(values[point]) for values in design.values)]
        row += [f"{1000 * float(cell['mean_fit_seconds'].sel(analysis=a)):.3g}" for a in results.analyses]
        row.append(f"{float(cell['fit_seconds_total'].sum()):.3g}")
        rows.append(row)
    return (
        f"## Run time\n\n![Processor time per fit]({figure})\n\n"
        "Processor time per fit: each chunk's wall time shared out over its fits and the threads that ran them "
        "(drawing the data sets included; the first units of a run also load the compiled kernels). Times differ "
        "from machine to machine and run to run; they are kept in `timing.nc`, apart from the summary.\n\n"
        + markdown(header, rows)
    )


def _raw_sections(results: Results, param: str, folder: Path, svg: bool, level: float) -> list[str]:
    """The sections drawn from the raw replicates; without them, the figures drawn from this same summary are kept."""
    design, raw = results.design, results.raw
    stamp = {"workbench-summary": summary_digest(results.summary), "workbench-param": param}
    pairs = raw_plots.pairs_of(raw, param) if raw is not None else None
    drawn: dict[str, str] = {}
    for name in RAW_FIGURES:
        path = folder / f"{name}.png"
        if raw is not None:
            if name == "scatter" and not pairs:
                path.unlink(missing_ok=True)
                continue
            figure = {
                "zip": lambda: raw_plots.zip_figure(raw, design, param, level),
                "distribution": lambda: raw_plots.distribution_figure(raw, design, param),
                "scatter": lambda: raw_plots.scatter_figure(raw, design, param),
            }[name]()
            drawn[name] = plots.save(figure, folder, name, svg, stamp)
        elif plots.stamp_of(path) == stamp:
            drawn[name] = path.name
        else:
            # drawn from other results (or another parameter): it would not match this report
            path.unlink(missing_ok=True)
            folder.joinpath(f"{name}.svg").unlink(missing_ok=True)
    cell = results.summary.sel({"param": param, "subset": SUBSET})
    missing = int((cell["n_used"] - cell["n_with_se"]).sum())
    excluded = f" {missing} estimates without a finite SE have no interval and are left out." if missing else ""
    sections = []
    if raw is None and drawn:
        sections.append(
            f"The raw replicates are not in `{results.directory}` (they are not committed with the results); the "
            "figures below were drawn from them by the run that wrote this summary (their PNGs carry its digest)."
        )
    if "zip" in drawn:
        sections.append(
            f"## Wald intervals of {param} (zip plot)\n\n![Zip plot of the Wald intervals of {param}]({drawn['zip']})\n\n"
            "Each horizontal line is one replicate's interval, ranked by |estimate − truth| / SE (bottom: closest "
            "to the truth); the intervals above the purple coverage line miss the truth (black; dots mark the "
            "estimates of intervals too narrow to see), those below contain it; dashed: ±1.96 MCSE of the "
            f"coverage; the vertical line is the truth.{excluded} Choose another parameter with `--param`."
        )
    if "distribution" in drawn:
        sections.append(
            f"## Distribution of the estimates of {param}\n\n"
            f"![Distribution of the estimates of {param}]({drawn['distribution']})\n\n"
            "Histograms of the estimates (density, scaled to the share of estimates drawn); dashed: the truth. "
            "Estimates on the boundary at zero (a variance below 1e-8 times the residual variance, lme4's "
            "singular fits) are a point mass, drawn as a stem at 0 whose height on the right-hand axis is their "
            "share. The extreme 0.5% of estimates at either end lie outside the drawn range."
        )
    if "scatter" in drawn:
        sections.append(
            f"## Estimates of {param}, analysis against analysis\n\n"
            f"![Estimates of {param} by one analysis against another]({drawn['scatter']})\n\n"
            "Each dot is one replicate (at most 2000 per panel): on the left the estimate of one analysis against "
            "another's on the same data set (dashed: equal estimates; grey: the truth); on the right their "
            "difference against their mean (a Bland–Altman plot), with the mean difference and ±1.96 SD of the "
            "differences."
        )
    skipped = [name for name in RAW_FIGURES if name not in drawn and not (name == "scatter" and pairs == [])]
    if skipped:
        what = {"zip": "the zip plot", "distribution": "the distributions of the estimates",
                "scatter": "the estimate-vs-estimate scatter plots"}
        sections.append(
            "## Figures of the raw replicates\n\n"
            f"Skipped: {', '.join(what[name] for name in skipped)} of {param}. They need the raw replicates "
            f"(`replicates.zarr`), which are not in `{results.directory}`; run the study again to draw them."
        )
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
    return "Shares of all finished replicates (MCSE):\n\n" + markdown(header, rows)


def _validation_section(results: Results, one_way: validation.OneWayStudy, folder: Path, svg: bool) -> str:
    comparison = validation.compare(results.summary, one_way)
    design = results.design
    titles = {quantity: titles[0] for quantity, titles in validation.QUANTITIES.items()}
    figure = plots.save(overview_plots.validation_figure(comparison, design, titles), folder, "validation", svg)
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
    return markdown(header, rows)


def _summary_tables(results: Results) -> str:
    summary, design = results.summary, results.design
    blocks = [
        "## Summary tables",
        "",
        "Estimate (MCSE) of every measure per parameter and analysis; relative bias in % of the truth. Wald"
        " coverage among the fits with a finite SE, and over all fits with an estimate (no SE: not covering);"
        " n: fits with an estimate (with a finite SE).",
    ]
    for point in range(design.npoints):
        cell = summary.isel(point=point).sel({"subset": SUBSET})
        blocks += ["", f"### {design.title(point, width=1000)}", ""]
        # summaries written before coverage_all existed lack it
        measures = [measure for measure in _MEASURES if measure[0] in summary]
        header = ["parameter", "truth", "analysis", *(title for _, title, _ in measures), "n (with SE)"]
        rows = []
        for param in results.params:
            values = cell.sel({"param": param})
            for analysis in results.analyses:
                chosen = values.sel({"analysis": analysis})
                row = [param, f"{float(values['truth']):.4g}", analysis]
                row += [_with_mcse(scale * chosen[name], scale * chosen[f"{name}_mcse"]) for name, _, scale in measures]
                row.append(f"{int(chosen['n_used'])} ({int(chosen['n_with_se'])})")
                rows.append(row)
        blocks.append(markdown(header, rows))
    return "\n".join(blocks)




# --- command line ---------------------------------------------------------------------------
