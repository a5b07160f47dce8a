"""Time confidence intervals and likelihood-ratio tests against a plain fit, and lme4's profile intervals.

For three data sets (tests/data: sleepstudy, the 16-cluster treatment, the crossed 12 × 12
maximal model), REML fits:

- a plain `wb.fit`, then `confint` by Wald, profile and parametric bootstrap (`--nsim`
  replicates), in milliseconds and as multiples of the fit;
- `wb.lrt` of the model against a smaller one with the χ² null and the exact null (RLRT,
  `--exact-nsim` draws) where the pair has one;
- lme4 1.1-31's `confint(method = "profile")` and RLRsim's `exactRLRT` on the same data,
  timed inside an Rscript child (R's start-up not counted), and the ratios.

Every time is the median of repeated calls after an untimed warm-up call (which also compiles
the Numba kernels). R is skipped, with a message, when Rscript is missing or fails. Usage:

    python scripts/bench_intervals.py [--quick] [--no-r] [--nsim 1000] [--exact-nsim 10000]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numba
import pandas as pd

import workbench as wb

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CASES = [
    # name, csv, formula, a smaller model for the χ² test
    ("sleepstudy", "sleepstudy.csv", "Reaction ~ 1 + Days + (1 + Days | Subject)", "Reaction ~ 1 + Days + (1 | Subject)"),
    ("clusters16", "clusters16_lrt.csv", "y ~ 1 + treat + x + (1 | cluster)", "y ~ 1 + treat + x"),
    ("crossed12", "crossed12_lrt.csv", "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)",
     "y ~ 1 + cond + (1 + cond | subj) + (1 | item)"),
]
EXACT_PAIRS = {
    # the exact null needs a test of one variance: the cluster variance; the item intercept given subjects
    "clusters16": ("y ~ 1 + treat + x", "y ~ 1 + treat + x + (1 | cluster)"),
    "crossed12": ("y ~ 1 + cond + (1 | subj)", "y ~ 1 + cond + (1 | subj) + (1 | item)"),
}

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(RLRsim)})
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[[1]], stringsAsFactors = TRUE)
repeats <- as.integer(args[[3]])
exact_nsim <- as.integer(args[[4]])
m <- lmer(as.formula(args[[2]]), data)
time_it <- function(expr) {
  invisible(eval(expr))
  median(vapply(seq_len(repeats), function(i) system.time(eval(expr))[["elapsed"]], 0))
}
fit <- time_it(quote(lmer(as.formula(args[[2]]), data)))
profile <- time_it(quote(suppressWarnings(confint(m, method = "profile", quiet = TRUE))))
exact <- NA
if (length(args) >= 6) {
  m0 <- lmer(as.formula(args[[5]]), data)
  mA <- lmer(as.formula(args[[6]]), data)
  tested <- lmer(as.formula(args[[7]]), data)
  exact <- time_it(quote(exactRLRT(tested, mA, m0, nsim = exact_nsim)))
} else if (length(args) == 5) {
  single <- lmer(as.formula(args[[5]]), data)
  exact <- time_it(quote(exactRLRT(single, nsim = exact_nsim)))
}
cat(jsonlite::toJSON(list(fit = fit, profile = profile, exact = exact), auto_unbox = TRUE, digits = NA))
"""


def median_seconds(repeats, call):
    """Warm up with one untimed call, then the median seconds of `repeats` calls."""
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def run_r(csv, formula, repeats, exact_nsim, exact_args):
    rscript = shutil.which("Rscript")
    if rscript is None:
        print("  lme4: skipped (Rscript not found on PATH)")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as handle:
        handle.write(R_SCRIPT)
    command = [rscript, handle.name, str(csv), formula, str(repeats), str(exact_nsim), *exact_args]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=7200)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"  lme4: skipped (Rscript could not run: {error})")
        return None
    finally:
        Path(handle.name).unlink()
    if completed.returncode != 0:
        print(f"  lme4: skipped (Rscript exited with status {completed.returncode}): {completed.stderr.strip()[-300:]}")
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and replicates")
    parser.add_argument("--no-r", action="store_true", help="skip lme4 and RLRsim")
    parser.add_argument("--nsim", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--exact-nsim", type=int, default=10000, help="draws of the exact null")
    options = parser.parse_args()
    repeats = 3 if options.quick else 7
    r_repeats = 1 if options.quick else 3
    nsim = 200 if options.quick else options.nsim
    print(f"workbench {wb.__version__}, numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads; "
          f"bootstrap nsim {nsim}, exact-null draws {options.exact_nsim}; medians of {repeats} (R: {r_repeats})")
    for name, csv, formula, smaller_formula in CASES:
        data = pd.read_csv(DATA / csv)
        print(f"\n{name}: {formula} (REML, {len(data)} rows)")
        fit_s = median_seconds(repeats, lambda: wb.fit(formula, data))
        fit = wb.fit(formula, data)
        smaller = wb.fit(smaller_formula, data)
        rows = [("fit", fit_s)]
        for method in ("wald", "profile"):
            rows.append((f"confint {method}", median_seconds(repeats, lambda: fit.confint(method))))
        boot_repeats = 1 if options.quick else 3
        rows.append((f"confint bootstrap ({nsim})", median_seconds(boot_repeats, lambda: fit.confint("bootstrap", nsim=nsim))))
        rows.append(("lrt chi2", median_seconds(repeats, lambda: wb.lrt(smaller, fit))))
        exact_args = []
        if name in EXACT_PAIRS:
            small_f, large_f = EXACT_PAIRS[name]
            pair = (wb.fit(small_f, data), wb.fit(large_f, data))
            rows.append((f"lrt exact ({options.exact_nsim})", median_seconds(
                boot_repeats, lambda: wb.lrt(*pair, null="exact", nsim=options.exact_nsim))))
            single = "y ~ 1 + cond + (1 | item)" if name == "crossed12" else None
            exact_args = [small_f, large_f, single] if single else [large_f]
        for label, seconds in rows:
            print(f"  {label:28s} {1e3 * seconds:10.2f} ms  {seconds / fit_s:9.1f} × fit")
        if options.no_r:
            continue
        r = run_r(DATA / csv, formula, r_repeats, options.exact_nsim, exact_args)
        if r is None:
            continue
        profile_s = dict(rows)["confint profile"]
        print(f"  lme4 lmer                    {1e3 * r['fit']:10.2f} ms")
        print(f"  lme4 confint profile         {1e3 * r['profile']:10.2f} ms  "
              f"{r['profile'] / r['fit']:9.1f} × lmer; {r['profile'] / profile_s:.0f} × workbench's profile")
        if r.get("exact") is not None:
            ours = dict(rows)[f"lrt exact ({options.exact_nsim})"]
            print(f"  RLRsim exactRLRT ({options.exact_nsim})    {1e3 * r['exact']:10.2f} ms  "
                  f"{r['exact'] / ours:9.1f} × workbench's exact null")


if __name__ == "__main__":
    main()
