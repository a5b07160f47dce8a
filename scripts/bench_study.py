"""Per-fit cost of a Monte Carlo study: workbench vs lme4's refit loop vs statsmodels MixedLM.

Three layouts (random slopes 50 subjects × 10 times; nested 20 × 5 × 4 × 5 = 2,000 rows;
crossed 30 × 30), the same simulated data sets for every peer, REML fits. workbench's figure
is a whole study unit (drawing the data, ML and REML fits with standard errors, on all
cores) divided by its number of fits; lme4's is `refit(fit, newresp = y)` in a loop, timed
inside R; statsmodels' is `MixedLM.fit(reml=True)` on a subset. Each peer's REML criterion is
compared with workbench's on every common replicate: a positive difference means workbench
found the lower (better) optimum.

    python scripts/bench_study.py [--replicates 400] [--statsmodels 20] [--no-r]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np

from workbench.study.plan import plan_point
from workbench.study.units import compute_unit
from workbench.simulation.simulate import simulate_design
from workbench.study.spec import parse_study

STUDIES = {
    "slopes 50x10": """
[study]
name = "slopes"
seed = 1
replicates = {R}
methods = ["ML", "REML"]
[model]
formula = "y ~ 1 + time + (1 + time | subject)"
[layout]
kind = "longitudinal"
subjects = 50
times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
[truth]
beta = {{ "(Intercept)" = 250.0, time = 10.0 }}
sigma = 25.6
[truth.re.subject]
sd = {{ "(Intercept)" = 24.7, time = 5.9 }}
corr = {{ "(Intercept):time" = 0.07 }}
""",
    "nested 20x5x4x5": """
[study]
name = "nested"
seed = 2
replicates = {R}
methods = ["ML", "REML"]
[model]
formula = "y ~ 1 + (1 | state/city/hood)"
[layout]
kind = "nested"
levels = {{ state = 20, city = 5, hood = 4 }}
size = 5
[truth]
beta = {{ "(Intercept)" = 24.0 }}
sigma = 4.0
[truth.re.state]
sd = {{ "(Intercept)" = 0.8 }}
[truth.re."state:city"]
sd = {{ "(Intercept)" = 0.6 }}
[truth.re."state:city:hood"]
sd = {{ "(Intercept)" = 0.5 }}
""",
    "crossed 30x30": """
[study]
name = "crossed"
seed = 3
replicates = {R}
methods = ["ML", "REML"]
[model]
formula = "y ~ 1 + (1 | sender) + (1 | receiver)"
[layout]
kind = "crossed"
factors = {{ sender = 30, receiver = 30 }}
[truth]
beta = {{ "(Intercept)" = 3.0 }}
sigma = 0.8
[truth.re.sender]
sd = {{ "(Intercept)" = 0.5 }}
[truth.re.receiver]
sd = {{ "(Intercept)" = 0.3 }}
""",
}

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
layout <- read.csv(args[1])
for (g in strsplit(args[4], ",")[[1]]) layout[[g]] <- factor(layout[[g]])
Y <- as.matrix(read.csv(args[2], header = FALSE))
form <- as.formula(args[3])
layout$y <- Y[, 1]
fit <- lmer(form, layout, REML = TRUE)
crit <- numeric(ncol(Y))
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(ncol(Y))) crit[i] <- REMLcrit(refit(fit, newresp = Y[, i]))
elapsed <- proc.time()[["elapsed"]] - t0
cat(elapsed, crit, sep = "\n")
"""


def statsmodels_fits(name: str, layout, ys: np.ndarray) -> tuple[float, np.ndarray]:
    """Seconds per REML fit and −2 × REML log-likelihood, with MixedLM's usual encodings."""
    import statsmodels.formula.api as smf

    frame = layout.copy()
    crit = []
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for y in ys:
            frame["y"] = y
            if name.startswith("slopes"):
                model = smf.mixedlm("y ~ time", frame, groups="subject", re_formula="~time")
            elif name.startswith("nested"):
                frame["city_in_state"] = frame["city"].astype(str)
                frame["hood_in_state"] = frame["city"].astype(str) + ":" + frame["hood"].astype(str)
                model = smf.mixedlm(
                    "y ~ 1",
                    frame,
                    groups="state",
                    vc_formula={"city": "0 + C(city_in_state)", "hood": "0 + C(hood_in_state)"},
                )
            else:
                frame["one"] = 1
                model = smf.mixedlm(
                    "y ~ 1",
                    frame,
                    groups="one",
                    re_formula="0",
                    vc_formula={"sender": "0 + C(sender)", "receiver": "0 + C(receiver)"},
                )
            crit.append(-2 * model.fit(reml=True).llf)
    return (time.perf_counter() - started) / len(ys), np.array(crit)


def lme4_fits(name, plan, ys: np.ndarray, formula: str) -> tuple[float, np.ndarray] | None:
    if shutil.which("Rscript") is None:
        return None
    groups = sorted({f for term in plan.design.formula.random for f in term.factors})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layout = plan.layout
        layout.to_csv(tmp / "layout.csv", index=False)
        np.savetxt(tmp / "y.csv", ys.T, delimiter=",")
        (tmp / "refit.R").write_text(R_SCRIPT)
        done = subprocess.run(
            ["Rscript", str(tmp / "refit.R"), str(tmp / "layout.csv"), str(tmp / "y.csv"), formula, ",".join(groups)],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        print(f"  lme4 failed for {name}: {done.stderr.strip().splitlines()[-1:]}")
        return None
    values = np.array([float(v) for v in done.stdout.split()])
    return values[0] / len(ys), values[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--statsmodels", type=int, default=20, help="replicates fitted by statsmodels")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, numba threads {numba.get_num_threads()}, numba {numba.__version__}")
    rows = []
    for name, template in STUDIES.items():
        study = parse_study(template.format(R=args.replicates), Path("."))
        point = study.points()[0]
        plan = plan_point(study, point)
        compute_unit(study, plan, 0, 0, 8)  # compile and warm up
        started = time.perf_counter()
        results = compute_unit(study, plan, 0, 0, args.replicates)
        ours = (time.perf_counter() - started) / (args.replicates * len(study.methods))
        ours_crit = results["objective"][:, study.methods.index("REML")]
        ys = simulate_design(plan.design, plan.beta, plan.theta, plan.sigma, np.arange(args.replicates), seed=study.seed, point=0)
        line = {"study": name, "workbench ms/fit": 1e3 * ours}
        lme4 = None if args.no_r else lme4_fits(name, plan, ys, study.formula)
        if lme4 is not None:
            seconds, crit = lme4
            line["lme4 refit ms/fit"] = 1e3 * seconds
            line["lme4/workbench"] = seconds / ours
            line["lme4 crit - ours (max)"] = float(np.max(crit - ours_crit))
            line["lme4 better by >1e-6 (n)"] = int(np.sum(ours_crit - crit > 1e-6 * np.abs(crit)))
        seconds, crit = statsmodels_fits(name, plan.layout, ys[: args.statsmodels])
        line["statsmodels ms/fit"] = 1e3 * seconds
        line["statsmodels/workbench"] = seconds / ours
        gap = crit - ours_crit[: args.statsmodels]
        line["statsmodels worse by >1e-3 (n)"] = f"{int(np.sum(gap > 1e-3))}/{args.statsmodels} (max {gap.max():.3g})"
        rows.append(line)
        print("  ".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in line.items()), flush=True)


if __name__ == "__main__":
    main()
