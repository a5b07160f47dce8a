"""Time `FitResult.refit` (a user's own Monte Carlo loop) against lme4's `refit`, timed inside R.

Two designs, each fitted once and then refitted to `nsim` responses simulated from the fit
(`FitResult.simulate`, the same responses for both packages):

1. sleepstudy, ``Reaction ~ 1 + Days + (1 + Days | Subject)`` (180 rows);
2. random slopes, 50 subjects × 10 times, ``y ~ 1 + time + (1 + time | subject)`` (500 rows),
   the truth of the study example in the design notes.

For each, by REML and by ML: ms per refit for workbench (`res.refit(y)`, the full result:
estimates, SEs, variance components, BLUPs) and for lme4 (`refit(fit, y)` in an Rscript child,
the loop timed with proc.time() inside R so R's start-up is not counted), a fresh `wb.fit` per
response for comparison, and the ratio. Every time is the median over `repeats` passes of the
whole loop, after an untimed pass. For ML the criteria of the two packages are compared
response by response; for REML they are not: lme4 1.1-31's `refit` of a REML fit rebuilds the
criterion with n − 1 in place of n − p (see scripts/reference/lme4_accessors.R).

    python scripts/bench_refit.py [--quick] [--no-r]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

import workbench as wb

ROOT = Path(__file__).resolve().parent.parent
SLEEPSTUDY = ("sleepstudy", "Reaction ~ 1 + Days + (1 + Days | Subject)", "Subject")
SLOPES = ("slopes 50×10", "y ~ 1 + time + (1 + time | subject)", "subject")
SLOPES_TRUTH = {
    "beta": {"(Intercept)": 250.0, "time": 10.0},
    "sigma": 25.6,
    "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9}, "corr": {"(Intercept):time": 0.07}}},
}
SEED = 20261125

R_LOOP = textwrap.dedent(
    """
    suppressPackageStartupMessages(library(lme4))
    args <- commandArgs(trailingOnly = TRUE)
    data <- read.csv(args[[1]])
    data[[args[[4]]]] <- factor(data[[args[[4]]]])
    responses <- as.matrix(read.csv(args[[2]], header = FALSE))
    reml <- args[[3]] == "REML"
    repeats <- as.integer(args[[5]])
    fit <- lmer(as.formula(args[[6]]), data, REML = reml)
    criterion <- function(f) if (reml) REMLcrit(f) else deviance(f)
    loop <- function() vapply(seq_len(ncol(responses)), function(j) criterion(refit(fit, responses[, j])), 0)
    invisible(loop())  # untimed: loads and byte-compiles refit's code paths
    seconds <- numeric(repeats)
    for (i in seq_len(repeats)) {
      start <- proc.time()[["elapsed"]]
      values <- loop()
      seconds[i] <- (proc.time()[["elapsed"]] - start) / ncol(responses)
    }
    cat("lme4_version", as.character(packageVersion("lme4")), "\\n")
    cat("seconds_per_refit", sprintf("%.7f", seconds), "\\n")
    cat("criteria", sprintf("%.10f", values), "\\n")
    """
)


def slopes_data() -> pd.DataFrame:
    layout = pd.DataFrame({"subject": np.repeat([f"s{i:02d}" for i in range(50)], 10), "time": np.tile(np.arange(10.0), 50)})
    return layout.assign(y=wb.simulate(SLOPES[1], layout, SLOPES_TRUTH, nsim=1, seed=SEED)[0])


def median_per_call(repeats: int, loop, count: int) -> tuple[float, list]:
    """Median seconds per call over `repeats` timed passes of `loop` (after one untimed pass)."""
    results = loop()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = loop()
        seconds.append((time.perf_counter() - start) / count)
    return statistics.median(seconds), results


def run_lme4(data: pd.DataFrame, responses: np.ndarray, formula: str, group: str, reml: bool, repeats: int):
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("    lme4: skipped (Rscript not found on PATH)")
        return None
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        data.to_csv(folder / "data.csv", index=False)
        np.savetxt(folder / "responses.csv", responses.T, delimiter=",", fmt="%.17g")
        (folder / "loop.R").write_text(R_LOOP)
        command = [rscript, str(folder / "loop.R"), str(folder / "data.csv"), str(folder / "responses.csv"),
                   "REML" if reml else "ML", group, str(repeats), formula]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        except (OSError, subprocess.TimeoutExpired) as error:
            print(f"    lme4: skipped (Rscript could not run: {error})")
            return None
    if completed.returncode != 0:
        print(f"    lme4: skipped (Rscript exited with status {completed.returncode}): "
              f"{completed.stderr.strip().splitlines()[-1:]}")
        return None
    report = {line.split()[0]: line.split()[1:] for line in completed.stdout.splitlines() if line.strip()}
    return {
        "seconds": statistics.median(float(v) for v in report["seconds_per_refit"]),
        "criteria": np.array([float(v) for v in report["criteria"]]),
        "version": report["lme4_version"][0],
    }


def bench(name: str, formula: str, group: str, data: pd.DataFrame, reml: bool, args) -> dict:
    method = "REML" if reml else "ML"
    fit = wb.fit(formula, data, reml=reml)
    responses = fit.simulate(args.nsim, seed=SEED)
    repeats = 3 if args.quick else 7
    ours, refits = median_per_call(repeats, lambda: [fit.refit(y) for y in responses], len(responses))
    response = formula.split("~")[0].strip()
    fresh_repeats = 1 if args.quick else 3
    fresh, _ = median_per_call(
        fresh_repeats, lambda: [wb.fit(formula, data.assign(**{response: y}), reml=reml) for y in responses],
        len(responses),
    )
    converged = sum(r.converged for r in refits)
    print(f"  {name}, {method}, {len(data)} rows, {args.nsim} responses")
    print(f"    workbench refit  {ours * 1e3:8.3f} ms/refit  median of {repeats} loops  ({converged}/{len(refits)} converged)")
    print(f"    workbench fit    {fresh * 1e3:8.3f} ms/fit    a fresh wb.fit per response (design rebuilt)")
    row = {"name": f"{name} {method}", "workbench": ours, "fresh": fresh, "lme4": None}
    if args.no_r:
        print("    lme4: skipped (--no-r)")
        return row
    lme4 = run_lme4(data, responses, formula, group, reml, repeats)
    if lme4 is None:
        return row
    row["lme4"], row["version"] = lme4["seconds"], lme4["version"]
    print(f"    lme4 refit       {lme4['seconds'] * 1e3:8.3f} ms/refit  median of {repeats} loops, timed in R  "
          f"→ {lme4['seconds'] / ours:.1f}× workbench")
    ours_criteria = np.array([r.objective for r in refits])
    if not reml:
        gap = ours_criteria - lme4["criteria"]
        print(f"    deviance workbench − lme4: max {gap.max():+.2e}, min {gap.min():+.2e} "
              f"(workbench lower or equal in {int((gap <= 1e-7 * np.abs(lme4['criteria'])).sum())}/{len(gap)})")
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer responses and repeats")
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    parser.add_argument("--nsim", type=int, default=None, help="responses per design (default 200, quick 40)")
    args = parser.parse_args()
    args.nsim = args.nsim or (40 if args.quick else 200)

    sleepstudy = pd.read_csv(ROOT / "tests" / "data" / "sleepstudy.csv")
    rows = []
    for (name, formula, group), data in ((SLEEPSTUDY, sleepstudy), (SLOPES, slopes_data())):
        for reml in (True, False):
            rows.append(bench(name, formula, group, data, reml, args))

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    version = next((r["version"] for r in rows if r.get("version")), None)
    print(f"\nmachine: CPUs {os.cpu_count()} (usable {usable}), Python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"numba {numba.__version__}, " + (f"lme4 {version}" if version else "lme4 not run"))
    print(f"\n{'ms per refit':<22} {'workbench':>10} {'wb.fit':>10} {'lme4 refit':>11} {'lme4/wb':>8}")
    for row in rows:
        lme4 = f"{row['lme4'] * 1e3:>11.3f}" if row["lme4"] is not None else f"{'—':>11}"
        ratio = f"{row['lme4'] / row['workbench']:>7.1f}×" if row["lme4"] is not None else f"{'—':>8}"
        print(f"{row['name']:<22} {row['workbench'] * 1e3:>10.3f} {row['fresh'] * 1e3:>10.3f} {lme4} {ratio}")


if __name__ == "__main__":
    main()
