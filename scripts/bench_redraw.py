"""Cost of a layout redrawn for every replicate, against the same study with a fixed layout.

The Maas & Hox model (y ~ 1 + X + Z + X:Z + (1 + X | group), X per observation, Z per
group) at three sizes, and random slopes with MAR dropout. For each, one study unit of
`--replicates` replicates (ML and REML fits) is timed with a fixed layout (and no dropout)
and with ``redraw = true`` (and the dropout); the unit's wall time per replicate is
reported, and for the redrawn layout its parts: making the data sets (layouts, generating designs,
simulation, dropout; `DataSource.data_sets`), building the fit problems (analysis designs when
the rows changed, structures and cross-products), and the fits (the rest).
Best of `--repeat` runs.

    python scripts/bench_redraw.py [--replicates 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numba
import numpy as np

from workbench.model.parameters import parameter_names
from workbench.study.plan import plan_point
from workbench.study.spec import parse_study
from workbench.study.units import compute_unit
from workbench.study.varying import analysis_problems

MAAS_HOX = """
[study]
name = "bench"
seed = 1
replicates = {R}
methods = ["ML", "REML"]
[model]
formula = "y ~ 1 + X + Z + X:Z + (1 + X | group)"
[layout]
kind = "nested"
levels = {{ group = {G} }}
size = {N}
redraw = {REDRAW}
[layout.covariates.X]
dist = "normal"
[layout.covariates.Z]
dist = "normal"
level = "group"
[truth]
beta = {{ "(Intercept)" = 1.0, X = 1.0, Z = 1.0, "X:Z" = 1.0 }}
sigma = 0.7071
[truth.re.group]
sd = {{ "(Intercept)" = 0.3536, X = 0.3536 }}
"""

DROPOUT = """
[study]
name = "bench"
seed = 2
replicates = {R}
methods = ["ML", "REML"]
[model]
formula = "y ~ 1 + time + (1 + time | subject)"
[layout]
kind = "longitudinal"
subjects = 60
times = [0, 1, 2, 3, 4, 5]
redraw = {REDRAW}
{DROPOUT}
[truth]
beta = {{ "(Intercept)" = 0.0, time = 0.3 }}
sigma = 1.0
[truth.re.subject]
sd = {{ "(Intercept)" = 1.0, time = 0.3 }}
"""

def _variants(text: str, varying: str = "") -> dict[str, str]:
    return {
        "fixed": text.replace("{REDRAW}", "false").replace("{DROPOUT}", ""),
        "redrawn": text.replace("{REDRAW}", "true").replace("{DROPOUT}", varying),
    }


CASES = {
    "Maas-Hox 10 groups x 5": _variants(MAAS_HOX.replace("{G}", "10").replace("{N}", "5")),
    "Maas-Hox 30 groups x 30": _variants(MAAS_HOX.replace("{G}", "30").replace("{N}", "30")),
    "Maas-Hox 50 groups x 50": _variants(MAAS_HOX.replace("{G}", "50").replace("{N}", "50")),
    "slopes 60 x 6, MAR dropout": _variants(DROPOUT, "dropout = {{ intercept = -2.5, slope = 0.8 }}"),
}


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    r = args.replicates
    print(f"{numba.get_num_threads()} threads; {r} replicates per unit, ML and REML; ms per replicate, best of {args.repeat}")
    print(f"{'case':30} {'fixed':>8} {'redrawn':>8} {'ratio':>6} {'data set':>9} {'problem':>8} {'fits':>8}")
    for name, variants in CASES.items():
        times = {}
        for variant, template in variants.items():
            text = template.replace("{R}", str(r)).replace("{{", "{").replace("}}", "}")
            study = parse_study(text, Path("."))
            plan = plan_point(study, study.points()[0])
            compute_unit(study, plan, 0, 0, 4)  # compile and warm up
            times[variant] = best_of(args.repeat, lambda: compute_unit(study, plan, 0, 0, r)) / r
        source = plan.source
        replicates = np.arange(r)
        made = source.data_sets(replicates)
        data_sets = best_of(args.repeat, lambda: source.data_sets(replicates)) / r
        template = list(parameter_names(plan.analyses[0].design))
        problems = best_of(args.repeat, lambda: analysis_problems(study.formula, source, made, template)) / r
        fits = times["redrawn"] - data_sets - problems
        print(
            f"{name:30} {times['fixed'] * 1e3:8.2f} {times['redrawn'] * 1e3:8.2f} {times['redrawn'] / times['fixed']:6.1f}"
            f" {data_sets * 1e3:9.2f} {problems * 1e3:8.2f} {fits * 1e3:8.2f}"
        )


if __name__ == "__main__":
    main()
