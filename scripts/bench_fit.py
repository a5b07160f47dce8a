"""Time one fit with workbench, statsmodels and lme4, and check that they reach the same optimum.

Two fits, each timed in this process (workbench, statsmodels) or in an Rscript child whose
timing is taken inside R, so R's start-up is not counted (lme4, via scripts/lme4_fit.R):

1. sleepstudy, ``Reaction ~ 1 + Days + (1 + Days | Subject)`` by REML: ms per fit for
   workbench, statsmodels MixedLM and lme4's lmer, the ratios to workbench, and each
   log-likelihood (statsmodels' llf is on lme4's REML logLik scale).
2. A crossed data set the size of lme4's InstEval (scripts/instevalish.py, 73,421 rows,
   2,972 students × 1,128 lecturers + 14 departments) by ML: seconds per fit for workbench
   and lme4, both deviances and their difference, and the evaluation counts. statsmodels is
   skipped at this size.
3. lme4's own InstEval (exported from R, so only when R and lme4 are there), the model of
   MixedModels.jl's published benchmark, ``y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)``
   by ML: seconds per fit for workbench and lme4 in this run, beside MixedModels.jl's published
   time (MIXEDMODELS_JL_INSTEVAL below: measured on another machine, so a rough comparison).

Every time is the median of repeated fits after an untimed warm-up fit. lme4 is skipped, with
a message, when Rscript is missing, lme4 does not load or R fails. Usage:

    python scripts/bench_fit.py [--quick] [--no-r]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import statsmodels
from statsmodels.regression.mixed_linear_model import MixedLM

import workbench as wb

SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
from instevalish import instevalish  # noqa: E402

SLEEPSTUDY_CSV = SCRIPTS.parent / "tests" / "data" / "sleepstudy.csv"
SLEEPSTUDY_FORMULA = "Reaction ~ 1 + Days + (1 + Days | Subject)"
INSTEVAL_FORMULA = "y ~ 1 + service + lectage + studage + (1 | s) + (1 | d) + (1 | dept)"
INSTEVAL_FACTORS = ("s", "d", "dept", "lectage", "studage")
REAL_INSTEVAL_FORMULA = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"
REAL_INSTEVAL_FACTORS = ("s", "d", "dept")
# MixedModels.jl's PkgBenchmark report of 2 October 2018 (MixedModels.jl on Julia 1.0.0, Intel
# Core i5-3570 at 3.4 GHz): benchmark ["crossed", "InstEval:1+A+(1|G)+(1|H)+(1|I)"], that is
# y ~ 1 + service + (1|s) + (1|d) + (1|dept) fitted by ML to lme4's InstEval, 1.999 s a fit.
MIXEDMODELS_JL_INSTEVAL = 1.999
SAME_OPTIMUM_LOGLIK = 1e-3  # log-likelihoods this close count as the same optimum
DEVIANCE_RELATIVE_TOLERANCE = 1e-7


def median_seconds(repeats, fit):
    """Warm up with one untimed call, then return the median seconds of `repeats` calls and the last result."""
    result = fit()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def run_lme4(csv, formula, reml, timings, calls, factors):
    """Fit with lmer in an Rscript child; a dict of its report, or None (with a message) if R is unavailable."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("  lme4: skipped (Rscript not found on PATH)")
        return None
    method = "REML" if reml else "ML"
    command = [rscript, str(SCRIPTS / "lme4_fit.R"), str(csv), formula, method]
    command += [str(timings), str(calls), ",".join(factors)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"  lme4: skipped (Rscript could not run: {error})")
        return None
    if completed.returncode == 3:
        print("  lme4: skipped (library(lme4) does not load in R)")
        return None
    if completed.returncode != 0:
        print(f"  lme4: skipped (Rscript exited with status {completed.returncode}); R said:")
        for line in completed.stderr.strip().splitlines()[-8:]:
            print(f"    {line}")
        return None
    report = {line.split()[0]: line.split()[1:] for line in completed.stdout.splitlines() if line.strip()}
    try:
        return {
            "seconds": statistics.median(float(value) for value in report["seconds_per_call"]),
            "loglik": float(report["loglik"][0]),
            "objective": float(report["objective"][0]),
            "n_evals": int(report["n_evals"][0]),
            "optimizer": report["optimizer"][0],
            "messages": int(report["messages"][0]),
            "version": report["lme4_version"][0],
            "r_version": report["r_version"][0],
        }
    except (KeyError, IndexError, ValueError, statistics.StatisticsError):
        print(f"  lme4: skipped (unexpected output from {SCRIPTS / 'lme4_fit.R'}: {completed.stdout[:200]!r})")
        return None


def ratio(other, ours):
    return f"{other / ours:.1f}×" if other is not None else "—"


def bench_sleepstudy(args):
    data = pd.read_csv(SLEEPSTUDY_CSV)
    print(f"sleepstudy: {SLEEPSTUDY_FORMULA}, REML, {len(data)} rows")
    repeats = 10 if args.quick else 100
    seconds, fit = median_seconds(repeats, lambda: wb.fit(SLEEPSTUDY_FORMULA, data, reml=True))
    row = {"workbench": seconds, "statsmodels": None, "lme4": None}
    logliks = {"workbench": fit.loglik}
    print(f"  workbench    {seconds * 1e3:8.2f} ms/fit  median of {repeats:<3}  "
          f"logLik {fit.loglik:.6f}  n_evals {fit.n_evals}  converged {fit.converged}")

    def statsmodels_fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MixedLM.from_formula("Reaction ~ Days", data, groups="Subject", re_formula="~Days")
            return model.fit(reml=True)

    repeats = 3 if args.quick else 10
    row["statsmodels"], sm_fit = median_seconds(repeats, statsmodels_fit)
    logliks["statsmodels"] = sm_fit.llf
    print(f"  statsmodels  {row['statsmodels'] * 1e3:8.2f} ms/fit  median of {repeats:<3}  "
          f"logLik {sm_fit.llf:.6f}  {ratio(row['statsmodels'], seconds)} workbench")

    lme4 = None
    if args.no_r:
        print("  lme4: skipped (--no-r)")
    else:
        timings, calls = (3, 5) if args.quick else (15, 10)
        lme4 = run_lme4(SLEEPSTUDY_CSV, SLEEPSTUDY_FORMULA, True, timings, calls, ["Subject"])
    if lme4 is not None:
        row["lme4"] = lme4["seconds"]
        logliks["lme4"] = lme4["loglik"]
        print(f"  lme4         {lme4['seconds'] * 1e3:8.2f} ms/fit  median of {timings} × {calls} calls  "
              f"logLik {lme4['loglik']:.6f}  n_evals {lme4['n_evals']}  {ratio(lme4['seconds'], seconds)} workbench")
    spread = max(logliks.values()) - min(logliks.values())
    verdict = "yes" if spread <= SAME_OPTIMUM_LOGLIK else "NO"
    print(f"  same optimum ({', '.join(logliks)}): {verdict}, logLiks span {spread:.2e}")
    return row, lme4


def bench_insteval(args):
    data = instevalish(seed=1)
    levels = " × ".join(f"{data[name].nunique():,} {name}" for name in ("s", "d", "dept"))
    print(f"\nInstEval-size crossed fit: {INSTEVAL_FORMULA}, ML, {len(data):,} rows, {levels}")
    repeats = 1 if args.quick else 3
    seconds, fit = median_seconds(repeats, lambda: wb.fit(INSTEVAL_FORMULA, data, reml=False))
    row = {"workbench": seconds, "statsmodels": None, "lme4": None}
    print(f"  workbench    {seconds:8.2f} s/fit   median of {repeats}  deviance {fit.objective:.6f}  "
          f"n_evals {fit.n_evals}  converged {fit.converged}")
    print(f"  statsmodels: skipped (not practical at this size: crossed effects need one {len(data):,}-row group)")
    lme4 = None
    if args.no_r:
        print("  lme4: skipped (--no-r)")
    else:
        timings = 1 if args.quick else 2
        with tempfile.TemporaryDirectory() as directory:
            csv = Path(directory) / "instevalish.csv"
            data.to_csv(csv, index=False)
            lme4 = run_lme4(csv, INSTEVAL_FORMULA, False, timings, 1, INSTEVAL_FACTORS)
    if lme4 is not None:
        row["lme4"] = lme4["seconds"]
        print(f"  lme4         {lme4['seconds']:8.2f} s/fit   median of {timings}  deviance {lme4['objective']:.6f}  "
              f"n_evals {lme4['n_evals']} ({lme4['optimizer']}, {lme4['messages']} warnings)  "
              f"{ratio(lme4['seconds'], seconds)} workbench")
        difference = fit.objective - lme4["objective"]
        relative = difference / abs(lme4["objective"])
        verdict = "yes" if relative <= DEVIANCE_RELATIVE_TOLERANCE else "NO"
        print(f"  deviance workbench − lme4 = {difference:+.3e} (relative {relative:+.2e}); "
              f"workbench at least as low (to {DEVIANCE_RELATIVE_TOLERANCE:g} relative): {verdict}")
    return row, lme4


def export_insteval(path):
    """Write lme4's InstEval to `path` with Rscript; False (with a message) when R or lme4 is missing."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("  skipped (Rscript not found on PATH)")
        return False
    code = f"write.csv(lme4::InstEval, {str(path)!r}, row.names = FALSE)"
    try:
        completed = subprocess.run([rscript, "-e", code], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"  skipped (Rscript could not run: {error})")
        return False
    if completed.returncode != 0:
        print(f"  skipped (R could not export lme4::InstEval: {completed.stderr.strip()[-200:]})")
        return False
    return True


def bench_real_insteval(args):
    print(f"\nlme4's InstEval: {REAL_INSTEVAL_FORMULA}, ML (the model of MixedModels.jl's benchmark)")
    row = {"workbench": None, "statsmodels": None, "lme4": None}
    if args.no_r:
        print("  skipped (--no-r: the data come from R)")
        return row
    with tempfile.TemporaryDirectory() as directory:
        csv = Path(directory) / "InstEval.csv"
        if not export_insteval(csv):
            return row
        data = pd.read_csv(csv)
        repeats = 1 if args.quick else 3
        seconds, fit = median_seconds(repeats, lambda: wb.fit(REAL_INSTEVAL_FORMULA, data, reml=False))
        row["workbench"] = seconds
        print(f"  workbench    {seconds:8.2f} s/fit   median of {repeats}  {len(data):,} rows  "
              f"deviance {fit.objective:.6f}  n_evals {fit.n_evals}  converged {fit.converged}")
        timings = 1 if args.quick else 2
        lme4 = run_lme4(csv, REAL_INSTEVAL_FORMULA, False, timings, 1, REAL_INSTEVAL_FACTORS)
    if lme4 is not None:
        row["lme4"] = lme4["seconds"]
        difference = fit.objective - lme4["objective"]
        print(f"  lme4         {lme4['seconds']:8.2f} s/fit   median of {timings}  deviance {lme4['objective']:.6f}  "
              f"n_evals {lme4['n_evals']}  {ratio(lme4['seconds'], seconds)} workbench; "
              f"deviance workbench − lme4 = {difference:+.3e}")
    print(f"  MixedModels.jl, published (2018, Julia 1.0, i5-3570 at 3.4 GHz): {MIXEDMODELS_JL_INSTEVAL:.2f} s/fit, "
          f"{ratio(MIXEDMODELS_JL_INSTEVAL, seconds)} workbench here")
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    args = parser.parse_args()
    sleep_row, sleep_lme4 = bench_sleepstudy(args)
    inst_row, inst_lme4 = bench_insteval(args)
    real_row = bench_real_insteval(args)

    lme4 = sleep_lme4 or inst_lme4
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    print("\nmachine:")
    print(f"  CPUs {os.cpu_count()} (usable {usable}), Python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads), "
          f"statsmodels {statsmodels.__version__}, "
          + (f"R {lme4['r_version']}, lme4 {lme4['version']}" if lme4 else "lme4 not run"))

    def cell(value, scale):
        return f"{value * scale:>11.2f}" if value is not None else f"{'—':>11}"

    print(f"\n{'fit':<26} {'workbench':>11} {'statsmodels':>11} {'lme4':>11} {'sm/wb':>7} {'lme4/wb':>8}")
    for name, row, scale in (("sleepstudy REML (ms)", sleep_row, 1e3), ("InstEval-size ML (s)", inst_row, 1.0),
                             ("lme4's InstEval ML (s)", real_row, 1.0)):
        cells = "".join(cell(row[key], scale) + " " for key in ("workbench", "statsmodels", "lme4"))
        print(f"{name:<26} {cells}{ratio(row['statsmodels'], row['workbench']):>7} "
              f"{ratio(row['lme4'], row['workbench']):>8}")


if __name__ == "__main__":
    main()
