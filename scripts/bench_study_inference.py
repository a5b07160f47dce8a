"""The cost per replicate of each test and interval in a study, relative to a plain fit, and R's per fit.

One design (Luke's crossed 12 × 12 subjects × items, condition within both, maximal model
fitted by REML; the LRT adds the ML fits of the model with and without the condition) is
run as a study of R replicates once without any test and once per test or interval; the cost
per replicate is the study's processor time over R (the least of three runs), on one thread,
and the extra over the plain study is the test's own. Then one replicate's data set in R, timed inside R: lme4::lmer
(REML), lmerTest's summary() with Satterthwaite and Kenward–Roger df, and lme4's
confint(method = "profile"). `python scripts/bench_inference.py --study` runs this. Usage:

    python scripts/bench_study_inference.py [--replicates R] [--no-r]
"""

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import workbench as wb
from workbench.study.execute import run_study
from workbench.study.spec import parse_study

ROOT = Path(__file__).resolve().parent.parent

STUDY = """
[study]
name = "bench"
seed = 5
replicates = {replicates}

[model]
formula = "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)"

[layout]
kind = "crossed"
factors = {{ subj = 12, item = 12 }}
size = 2

[layout.covariates.cond]
dist = "grid"
values = [-0.5, 0.5]

[truth]
beta = {{ "(Intercept)" = 0.0, cond = 0.0 }}
sigma = 1.0
[truth.re.subj]
sd = {{ "(Intercept)" = 0.8, cond = 0.6 }}
corr = {{ "(Intercept):cond" = 0.2 }}
[truth.re.item]
sd = {{ "(Intercept)" = 0.6, cond = 0.6 }}
corr = {{ "(Intercept):cond" = -0.2 }}

[execution]
workers = 1

[[analysis]]
name = "maximal"
methods = ["REML"]
{extra}
"""

VARIANTS = {
    "plain fit": "",
    "asymptotic (z)": 'tests = [{ ddf = "asymptotic", effects = ["cond"] }]',
    "residual": 'tests = [{ ddf = "residual", effects = ["cond"] }]',
    "satterthwaite": 'tests = [{ ddf = "satterthwaite", effects = ["cond"] }]',
    "kenward-roger": 'tests = [{ ddf = "kenward-roger", effects = ["cond"] }]',
    "wald intervals": 'intervals = ["wald"]',
    "profile intervals (SDs, sigma)": 'intervals = ["profile"]',
}
# The LRT needs two more fits (ML with and without cond); its cost is set beside a plain study of the same fits.
LRT_FITS = """
[[analysis]]
name = "full_ml"
methods = ["ML"]

[[analysis]]
name = "no_cond"
formula = "y ~ 1 + (1 + cond | subj) + (1 + cond | item)"
methods = ["ML"]
"""
LRT = LRT_FITS + '\n[[lrt]]\nsmaller = "no_cond"\nlarger = "full_ml"\n'

R_CODE = r"""
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); calls <- as.integer(args[2])
f <- y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)
per <- function(n, expr) { e <- substitute(expr); t <- system.time(for (i in seq_len(n)) eval(e, parent.frame()))[["elapsed"]]; t / n }
m0 <- lme4::lmer(f, d); m <- lmerTest::lmer(f, d)
cat("lmer", per(calls, lme4::lmer(f, d)), "\n")
cat("lmerTest_lmer", per(calls, lmerTest::lmer(f, d)), "\n")
cat("summary_satterthwaite", per(calls, summary(m, ddf = "Satterthwaite")), "\n")
cat("summary_kenward_roger", per(calls, summary(m, ddf = "Kenward-Roger")), "\n")
cat("confint_profile", per(max(1, calls %/% 5), suppressWarnings(suppressMessages(confint(m0, method = "profile")))), "\n")
"""


def study_seconds(extra: str, replicates: int, folder: Path, name: str, repeats: int = 3) -> float:
    """Processor seconds per replicate of the study with `extra` in its analysis table, the least of
    `repeats` runs after a warm-up (processor time, as other work on a shared machine inflates wall time)."""
    warm = parse_study(STUDY.format(replicates=2, extra=extra), ROOT)
    run_study(warm, folder / f"{name}-warm", fresh=True)
    study = parse_study(STUDY.format(replicates=replicates, extra=extra), ROOT)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        run_study(study, folder / name, fresh=True)
        best = min(best, time.process_time() - start)
    return best / replicates


def time_r(folder: Path, calls: int) -> dict[str, float] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    study = folder / "one.toml"
    study.write_text(STUDY.format(replicates=1, extra=""))
    csv = folder / "one.csv"
    wb.replicate_data(study, point=0, replicate=0).to_csv(csv, index=False)
    script = folder / "time.R"
    script.write_text(R_CODE)
    done = subprocess.run([rscript, str(script), str(csv), str(calls)], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        print("R failed:", done.stderr.strip().splitlines()[-1:])
        return None
    return {parts[0]: float(parts[1]) for parts in (line.split() for line in done.stdout.splitlines()) if len(parts) == 2}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=20, help="calls per R timing (profile: a fifth)")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        # a profile costs ~100 fits: a tenth of the replicates time it well enough
        seconds = {
            label: study_seconds(extra, args.replicates // (10 if "profile" in label else 1), folder, f"v{i}")
            for i, (label, extra) in enumerate(VARIANTS.items())
        }
        plain_lrt = study_seconds(LRT_FITS, args.replicates, folder, "lrt-plain")
        with_lrt = study_seconds(LRT, args.replicates, folder, "lrt")
        r = None if args.no_r else time_r(folder, args.calls)
    plain = seconds["plain fit"]
    print(f"Luke crossed 12 x 12, maximal REML fit, {args.replicates} replicates (profile: a tenth), 1 thread")
    print("| per replicate | ms | extra over the plain fit |")
    print("|---|---|---|")
    for label, value in seconds.items():
        extra = "" if label == "plain fit" else f"{1e3 * (value - plain):+.2f} ms ({value / plain:.2f}× the plain fit)"
        print(f"| {label} | {1e3 * value:.2f} | {extra} |")
    print(f"| LRT chi2 (+ ML fits with and without cond) | {1e3 * with_lrt:.2f} | {1e3 * (with_lrt - plain_lrt):+.2f} ms over the same three fits without the test; the two ML fits cost {1e3 * (plain_lrt - plain):.2f} ms |")
    if r:
        print()
        print("| R, per fit of one replicate | ms |")
        print("|---|---|")
        for key, value in r.items():
            print(f"| {key} | {1e3 * value:.1f} |")


if __name__ == "__main__":
    main()
