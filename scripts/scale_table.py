"""Fits of rescaled and shifted data beside lme4's and the exact optimum, and the time per fit.

The cases of tests/data/lme4_scale.json (scripts/reference/lme4_scale.R): sleepstudy with
Reaction + offset and Days × scale, by REML and ML, and a random intercept with group SD 1e3
and σ = 1e-6. The exact optimum of a shifted or rescaled data set follows from the unshifted
fit: y + a leaves both criteria unchanged; Days × c leaves the ML deviance unchanged and adds
2 log c to the REML criterion (log|R_X|²). Usage:

    PYTHONPATH=$PWD python scripts/scale_table.py [--time]
"""

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import pandas as pd

import workbench as wb

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"


def case_data(case: dict) -> tuple[str, pd.DataFrame]:
    if case["kind"] == "tiny_sigma":
        return "y ~ 1 + time + (1 | subject)", pd.read_csv(DATA / "tiny_sigma.csv", dtype={"subject": str})
    data = pd.read_csv(DATA / "sleepstudy.csv", dtype={"Subject": str})
    if case["kind"] == "offset":
        data["Reaction"] = data["Reaction"] + case["value"]
    else:
        data["Days"] = data["Days"] * case["value"]
    return SLEEP, data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", action="store_true", help="also time the plain sleepstudy fits")
    args = parser.parse_args()
    cases = json.loads((DATA / "lme4_scale.json").read_text())["cases"]
    base = {m: cases[f"offset=0-{m}"] for m in ("REML", "ML")}
    print(f"{'case':<18} {'exact':>16} {'lme4':>16} {'workbench':>16} {'σ lme4':>12} {'σ workbench':>12}  status")
    for name, case in cases.items():
        method = "REML" if case["reml"] else "ML"
        exact = float("nan")
        if case["kind"] == "offset":
            exact = base[method]["objective"]
        elif case["kind"] == "scale":
            exact = base[method]["objective"] + (2 * math.log(case["value"]) if case["reml"] else 0.0)
        formula, data = case_data(case)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = wb.fit(formula, data, reml=case["reml"])
            ours, sigma, status = fit.objective, fit.sigma, ("converged" if fit.converged else f"not converged (code {fit.return_code})")
        except Exception as exc:  # the table shows what happened
            ours, sigma, status = float("nan"), float("nan"), f"{type(exc).__name__}: {str(exc)[:40]}"
        lme4 = case.get("objective", float("nan"))
        print(f"{name:<18} {exact:16.8f} {lme4:16.8f} {ours:16.8f} {case.get('sigma', float('nan')):12.6g} {sigma:12.6g}  {status}")
    if args.time:
        formula, data = case_data(cases["offset=0-REML"])
        for reml in (True, False):
            wb.fit(formula, data, reml=reml)
            times = []
            for _ in range(500):
                start = time.perf_counter()
                wb.fit(formula, data, reml=reml)
                times.append(time.perf_counter() - start)
            times.sort()  # the minimum is the least disturbed by other work on the machine
            print(
                f"sleepstudy {'REML' if reml else 'ML'}: minimum {1e3 * times[0]:.3f} ms,"
                f" median {1e3 * times[len(times) // 2]:.3f} ms per fit"
            )


if __name__ == "__main__":
    main()
