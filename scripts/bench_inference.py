"""Time fixed-effect inference (params, coef_table by each ddf) against the plain fit, and lmerTest's.

For each data set: the median milliseconds of `wb.fit`, of `params` / `params_se`, of
`coef_table(ddf)` for each ddf, and of the nopython kernels a study would call
(`kernels.ddf.satterthwaite_coefficients`, `kenward_roger_coefficients`), each also as a
ratio to the fit. Then the same data sets in R, timed inside R by
scripts/reference/inference_ddf.R --time: lme4::lmer, lmerTest::lmer (which computes the
Hessian and Jacobian that Satterthwaite's df need at fit time) and lmerTest's summary()
with ddf = "Satterthwaite" and "Kenward-Roger" (pbkrtest).

Data sets: the three of the R references (sleepstudy, 16 clusters, crossed 12 × 12), and two
larger simulated ones to show how the dense Kenward–Roger scales with the number of random
effects: random slopes for 100 subjects × 10 times (200 random effects) and a crossed 30 × 30
maximal model (120). BLAS runs on one thread (as in a study's units): on a small shared
machine its threads only compete. Usage:

    python scripts/bench_inference.py [--quick] [--no-r]
    python scripts/bench_inference.py --study [--no-r]   # the cost in a study (bench_study_inference.py)
"""

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

import workbench as wb
from workbench.kernels import ddf
from workbench.kernels.objective import make_workspace

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
R_SCRIPT = ROOT / "scripts" / "reference" / "inference_ddf.R"
METHODS = ("asymptotic", "residual", "satterthwaite", "kenward-roger")
R_KEYS = ("lme4_lmer", "lmerTest_lmer", "summary_satterthwaite", "summary_kenward_roger")


def median_ms(repeats, call):
    """One untimed call, then the median milliseconds of `repeats` calls."""
    call()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds)


def simulated_sets():
    """(name, data, formula, factors) of the two larger simulated data sets."""
    slopes_layout = pd.DataFrame({"subject": np.repeat(np.arange(100), 10), "time": np.tile(np.arange(10.0), 100)})
    slopes_formula = "y ~ 1 + time + (1 + time | subject)"
    slopes_truth = {
        "beta": {"(Intercept)": 250.0, "time": 10.0},
        "sigma": 25.0,
        "re": {"subject": {"sd": {"(Intercept)": 25.0, "time": 6.0}, "corr": {"(Intercept):time": 0.1}}},
    }
    crossed_layout = pd.DataFrame({"subj": np.repeat(np.arange(30), 30), "item": np.tile(np.arange(30), 30)})
    crossed_layout["cond"] = np.where((crossed_layout.subj + crossed_layout.item) % 2 == 0, -0.5, 0.5)
    crossed_formula = "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)"
    crossed_truth = {
        "beta": {"(Intercept)": 5.0, "cond": 0.8},
        "sigma": 1.0,
        "re": {
            "subj": {"sd": {"(Intercept)": 1.0, "cond": 0.6}, "corr": {"(Intercept):cond": 0.2}},
            "item": {"sd": {"(Intercept)": 0.8, "cond": 0.5}, "corr": {"(Intercept):cond": -0.1}},
        },
    }
    out = []
    for name, layout, formula, truth, factors in (
        ("slopes-100x10", slopes_layout, slopes_formula, slopes_truth, "subject"),
        ("crossed-30x30", crossed_layout, crossed_formula, crossed_truth, "subj,item"),
    ):
        y = wb.simulate(formula, layout, truth, nsim=1, seed=20261125)[0]
        out.append((name, layout.assign(y=y), formula, factors))
    return out


def reference_sets():
    return [
        ("sleepstudy", pd.read_csv(DATA / "sleepstudy.csv"), "Reaction ~ 1 + Days + (1 + Days | Subject)", "Subject"),
        ("cluster16", pd.read_csv(DATA / "cluster16.csv"), "y ~ 1 + treat + (1 | cluster)", "cluster"),
        ("crossed12", pd.read_csv(DATA / "crossed12.csv"), "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)",
         "subj,item"),
    ]


def time_workbench(data, formula, repeats):
    """Milliseconds of the fit, params, each coef_table and the two coefficient kernels."""
    fit = wb.fit(formula, data)
    problem = fit.problem
    st, cp, p = problem.structure, problem.products, problem.design.p
    ws = make_workspace(st)
    df, se = np.empty(p), np.empty(p)
    times = {"fit": median_ms(repeats, lambda: wb.fit(formula, data))}
    times["params"] = median_ms(repeats, lambda: fit.params_se)
    for method in METHODS:
        times[method] = median_ms(repeats, lambda: fit.coef_table(method))
    times["satterthwaite kernel"] = median_ms(
        repeats, lambda: ddf.satterthwaite_coefficients(fit.theta, fit.sigma, st, cp, ws, True, df)
    )
    times["kenward-roger kernel"] = median_ms(
        repeats, lambda: ddf.kenward_roger_coefficients(fit.theta, fit.sigma, st, cp, se, df)
    )
    nrandom = len(st.row_term) - p - 1
    return times, fit.n_obs, nrandom


def time_r(name, data, formula, factors, calls, folder):
    """lmerTest's milliseconds per call on one data set, or None when R is unavailable."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    csv = Path(folder) / f"{name}.csv"
    data.to_csv(csv, index=False)
    command = [rscript, str(R_SCRIPT), "--time", str(calls), str(csv), formula, factors]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if completed.returncode != 0:
        print(f"  R failed on {name}: {completed.stderr.strip().splitlines()[-1:]}")
        return None
    out = {}
    for line in completed.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "data":
            out[parts[1]] = 1e3 * float(parts[2])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-r", action="store_true", help="skip lme4 / lmerTest")
    parser.add_argument("--study", action="store_true", help="the cost per replicate of each test and interval in a study")
    args = parser.parse_args()
    if args.study:
        import bench_study_inference

        bench_study_inference.main(["--no-r"] if args.no_r else [])
        return
    repeats = 5 if args.quick else 30
    calls = 3 if args.quick else 20
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, data, formula, factors in reference_sets() + simulated_sets():
            with threadpool_limits(limits=1, user_api="blas"):
                times, n, nrandom = time_workbench(data, formula, repeats)
            r_times = None if args.no_r else time_r(name, data, formula, factors, calls, folder)
            rows.append((name, n, nrandom, times, r_times))
            print(f"{name}: n = {n}, {nrandom} random effects")
            fit_ms = times["fit"]
            for key, value in times.items():
                ratio = "" if key == "fit" else f"  ({value / fit_ms:.2f} × fit)"
                print(f"  workbench {key:<22} {value:9.3f} ms{ratio}")
            if r_times:
                for key, value in r_times.items():
                    print(f"  R {key:<30} {value:9.1f} ms")
    print()
    header = (
        "| data | n | q | fit | params | satterthwaite | kenward-roger"
        " | R lmer | R lmerTest lmer | R summary Satt. | R summary KR |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, n, nrandom, times, r_times in rows:
        r = r_times or {}
        cells = [
            name,
            str(n),
            str(nrandom),
            f"{times['fit']:.2f} ms",
            f"{times['params']:.2f} ms",
            f"{times['satterthwaite']:.2f} ms ({times['satterthwaite'] / times['fit']:.2f}×)",
            f"{times['kenward-roger']:.2f} ms ({times['kenward-roger'] / times['fit']:.2f}×)",
        ] + [f"{r[key]:.1f} ms" if key in r else "—" for key in R_KEYS]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
