"""Marginal cost per fit of a Monte Carlo study run from the command line, against lme4 and statsmodels.

Three designs (random slopes 50 subjects × 10 times; nested 20 × 5 × 4 × 5 = 2,000 rows;
crossed 30 × 30), each fitted by ML and REML (2 fits per replicate). What is measured:

* **workbench end to end**: the study file is written twice, with `--small` and `--replicates`
  (big) replicates, and each is run as a user runs it, `python -m workbench.run FILE --out DIR
  --fresh --no-report --workers 2`, in a subprocess, after one warm-up run that leaves the
  Numba cache warm. Wall clock, the minimum of `--repeats` runs. The marginal cost per fit is
  (t_big − t_small) / ((big − small) × 2); the fixed cost (start-up, imports, loading the
  cached kernels, creating and summarising the store) is t_small − small × 2 × marginal.
* **kernel**: `compute_unit` in this process (drawing the data, ML and REML fits with standard
  errors, 2 threads) on the first `--small` replicates, minimum of `--repeats`, per fit.
* **lme4**: `refit(fit, newresp = y)` in a loop over the same `--small` data sets
  (`simulate_design`, which follows the study's seed contract), timed inside R.
* **statsmodels**: `MixedLM.fit(reml=True)` on the first `--statsmodels` of them.

The REML criteria of workbench (the big run's store, variable `objective`; the kernel run's
with `--kernel-only`) and lme4 are compared on the common replicates: the largest relative
difference, and the number of replicates where lme4's is lower by more than 1e-10 relative.
The store's criteria are also checked to equal the kernel run's (the seed contract).

Per criterion evaluation: the mean `n_evals` per fit, and µs per evaluation estimated as the
kernel time per fit over that mean (an upper bound: it includes forming the cross-products
and the standard errors). Flops per evaluation are counted for the factorisation of
Ω(θ) = Λ̃'AΛ̃ + diag(I, 0) from the cross-products A = [Z X y]'[Z X y] (formed once per fit,
so n does not enter; see workbench.fitting.structure). A level of a nested run of terms is a
front of s rows, its own q random effects first (then its ancestors' effects and the trailing
rows it touches); with r = s − q it costs

    2sq² (scaling its s × q column block by λ) + q³/3 (Cholesky of the own block)
    + rq² (the triangular solve of the other rows) + r²q (the update passed to its parent),

and the dense trailing block of size D (crossed terms' effects, then p fixed effects and y)
costs 2D² (scaling) + D³/3 (Cholesky). The fronts here: slopes 50 of q = 2, s = 5, D = p + 1 = 3;
nested 400 hoods (q = 1, s = 5: own, city, state, X, y), 100 cities (s = 4), 20 states (s = 3),
D = 2; crossed 30 senders (q = 1, s = 1 + 30 receivers + 2), D = 30 + 2. The gradient's
selected inverse is of the same order and is not counted.

    python scripts/bench_study.py [--replicates 4000] [--small 400] [--repeats 3]
        [--statsmodels 20] [--no-r] [--design NAME] [--kernel-only]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np

import workbench
from workbench.fitting.structure import build_structure
from workbench.simulation.simulate import simulate_design
from workbench.study.plan import plan_point
from workbench.study.spec import parse_study
from workbench.study.store import ReplicateStore
from workbench.study.units import compute_unit

WORKERS = 2  # threads of the command-line runs and of the kernel runs
LME4_BETTER = 1e-10  # relative margin by which lme4's REML criterion must be lower to count

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
cat(sprintf("%.17g", c(elapsed, crit)), sep = "\n")  # every digit: cat alone prints 7
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
    """Seconds per `refit` of lme4 and its REML criteria on the responses `ys`; None without R or on failure."""
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


def study_file(directory: Path, stem: str, template: str, replicates: int) -> Path:
    """Write the study text with `replicates` replicates to directory/stem.toml."""
    path = directory / f"{stem}.toml"
    path.write_text(template.format(R=replicates))
    return path


def run_cli(path: Path, out: Path) -> float:
    """Wall-clock seconds of one command-line run of the study file `path` into `out`.

    The child imports the same workbench as this process, whatever the editable install points at.
    """
    root = str(Path(workbench.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "workbench.run", str(path), "--out", str(out), "--fresh", "--no-report"]
    command += ["--workers", str(WORKERS)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.strip()}")
    return seconds


def end_to_end(template: str, small: int, big: int, repeats: int, nfits: int, tmp: Path) -> dict:
    """Time the study through the command line with `small` and `big` replicates.

    Returns the minimum wall-clock seconds of each, the marginal seconds per fit, the fixed
    seconds, and the big run's REML criteria and mean number of evaluations per fit.
    """
    small_file = study_file(tmp, "small", template, small)
    big_file = study_file(tmp, "big", template, big)
    run_cli(small_file, tmp / "warm-up")
    t_small, t_big = np.inf, np.inf
    for _ in range(repeats):
        t_small = min(t_small, run_cli(small_file, tmp / "small"))
        t_big = min(t_big, run_cli(big_file, tmp / "big"))
    marginal = (t_big - t_small) / ((big - small) * nfits)
    objective, n_evals = stored_fits(tmp / "big")
    return {
        "t_small": t_small,
        "t_big": t_big,
        "marginal": marginal,
        "fixed": t_small - small * nfits * marginal,
        "objective": objective,
        "n_evals": n_evals,
    }


def stored_fits(out: Path) -> tuple[np.ndarray, float]:
    """The REML criteria (replicate,) of a finished study's store, and its mean n_evals per fit."""
    data = ReplicateStore(out).open()
    if not bool(data["done"].all()):
        raise SystemExit(f"{out}: the study did not finish every replicate")
    reml = np.flatnonzero(data["estimator"].values == "REML")[0]
    objective = data["objective"].isel(point=0, analysis=reml).values
    return objective, float(data["n_evals"].isel(point=0).mean())


def kernel_fits(study, plan, replicates: int, repeats: int) -> tuple[float, np.ndarray, float]:
    """Seconds per fit of `compute_unit` on replicates [0, replicates) (minimum of `repeats`),
    its REML criteria and its mean n_evals per fit."""
    compute_unit(study, plan, 0, 0, 8)  # compile or load the kernels, warm up
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        results = compute_unit(study, plan, 0, 0, replicates)
        best = min(best, time.perf_counter() - started)
    reml = [method for _, method, _ in study.fits].index("REML")
    return best / (replicates * len(study.fits)), results["objective"][:, reml], float(results["n_evals"].mean())


def flops_per_evaluation(design) -> float:
    """Flops of one factorisation of Ω(θ), by the count of the module docstring."""
    structure = build_structure(design)
    sizes = np.diff(structure.front_ptr)
    q = structure.term_q[structure.front_term]
    r = sizes - q
    fronts = 2 * sizes * q**2 + q**3 / 3 + r * q**2 + r**2 * q
    trailing = len(structure.row_term) - structure.t0
    return float(fronts.sum() + 2 * trailing**2 + trailing**3 / 3)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> str:
    """The largest relative difference of two sets of REML criteria, how often `theirs` is
    lower than `ours` by more than LME4_BETTER relative, and by how much at most."""
    relative = (ours - theirs) / np.abs(theirs)
    text = f"max rel {np.max(np.abs(relative)):.1e}; lme4 better {int(np.sum(relative > LME4_BETTER))}/{len(ours)}"
    return text + (f" (by ≤ {relative.max():.1e})" if relative.max() > LME4_BETTER else "")


def cell(value, digits: int = 3) -> str:
    """A table cell: a number to `digits` significant figures, text as it is, — for nothing."""
    if value is None:
        return "—"
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


def bench_design(name: str, template: str, args: argparse.Namespace) -> tuple[dict, str]:
    """Measure one design; returns its table row and its per-evaluation line."""
    study = parse_study(template.format(R=args.small), Path("."))
    plan = plan_point(study, study.points()[0])
    nfits = len(study.fits)
    kernel, kernel_crit, kernel_evals = kernel_fits(study, plan, args.small, args.repeats)
    row = {"design": name, "kernel ms/fit": 1e3 * kernel}
    reference, seconds = kernel_crit, None
    notes = []
    if not args.kernel_only:
        with tempfile.TemporaryDirectory() as tmp:
            run = end_to_end(template, args.small, args.replicates, args.repeats, nfits, Path(tmp))
        seconds = run["marginal"]
        reference = run["objective"][: args.small]
        row["workbench end to end ms/fit"] = 1e3 * seconds
        row["fixed cost s"] = run["fixed"]
        if not np.array_equal(reference, kernel_crit):
            notes.append(f"store and kernel REML criteria differ (max {np.max(np.abs(reference - kernel_crit)):.3g})")
        notes.append(f"runs {run['t_small']:.2f} s ({args.small} replicates), {run['t_big']:.2f} s ({args.replicates})")
    ys = simulate_design(plan.design, plan.beta, plan.theta, plan.sigma, np.arange(args.small), seed=study.seed, point=0)
    lme4 = None if args.no_r else lme4_fits(name, plan, ys, study.formula)
    if lme4 is not None:
        row["lme4 refit ms/fit"] = 1e3 * lme4[0]
        row["lme4/workbench (end to end)"] = None if seconds is None else lme4[0] / seconds
        row["criteria agreement"] = agreement(reference, lme4[1])
    if args.statsmodels > 0:
        sm_seconds, sm_crit = statsmodels_fits(name, plan.layout, ys[: args.statsmodels])
        row["statsmodels ms/fit"] = 1e3 * sm_seconds
        row["ratio"] = None if seconds is None else sm_seconds / seconds
        gap = sm_crit - reference[: args.statsmodels]
        notes.append(f"statsmodels REML criterion worse by > 1e-3 in {int(np.sum(gap > 1e-3))}/{args.statsmodels} (max {gap.max():.3g})")
    evals = run["n_evals"] if not args.kernel_only else kernel_evals
    flops = flops_per_evaluation(plan.design)
    micro = 1e6 * kernel / kernel_evals
    line = (
        f"{name}: {evals:.1f} criterion evaluations per fit, ≤ {micro:.2f} µs each (kernel time / evaluations), "
        f"{flops / 1e3:.1f} kflop per factorisation ({flops / micro / 1e3:.2f} GFLOP/s at that rate)"
    )
    return row, "; ".join([line] + notes)


COLUMNS = (
    "design",
    "workbench end to end ms/fit",
    "kernel ms/fit",
    "fixed cost s",
    "lme4 refit ms/fit",
    "lme4/workbench (end to end)",
    "statsmodels ms/fit",
    "ratio",
    "criteria agreement",
)


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table over COLUMNS, — where a value was not measured."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=4000, help="replicates of the big run")
    parser.add_argument("--small", type=int, default=400, help="replicates of the small run, the kernel and lme4")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the minimum is kept")
    parser.add_argument("--statsmodels", type=int, default=20, help="replicates fitted by statsmodels (0: none)")
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    parser.add_argument("--design", choices=list(STUDIES), help="run this design only")
    parser.add_argument("--kernel-only", action="store_true", help="skip the command-line runs")
    args = parser.parse_args()
    if not 0 < args.small < args.replicates:
        parser.error("need 0 < --small < --replicates")
    if args.repeats < 1 or not 0 <= args.statsmodels <= args.small:
        parser.error("need --repeats ≥ 1 and 0 ≤ --statsmodels ≤ --small")
    numba.set_num_threads(min(WORKERS, numba.config.NUMBA_NUM_THREADS))
    print(f"cores {os.cpu_count()}, numba threads {numba.get_num_threads()}, numba {numba.__version__}", flush=True)
    rows, lines = [], []
    for name, template in STUDIES.items():
        if args.design in (None, name):
            row, line = bench_design(name, template, args)
            rows.append(row)
            lines.append(line)
            print(line, flush=True)
    print()
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
