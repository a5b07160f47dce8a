"""Cost of one REML refit against problem size: a Markdown table per series and a log–log plot.

What is measured: milliseconds per `FitResult.refit(y)` (same design, new response: the fast
path of a refit loop), by REML, for four series of designs:

1. ``groups``: number of groups G ∈ {10, 30, 100, 300, 1000, 3000, 10000} for
   (a) random slopes ``y ~ 1 + time + (1 + time | subject)``, 10 times per subject;
   (b) nested ``y ~ 1 + (1 | a/b)``, G top-level groups × 5 subgroups × 4 rows;
   (c) crossed ``y ~ 1 + (1 | f) + (1 | g)``, G levels of f × 30 of g, every pair once.
2. ``q``: random-effect dimension q ∈ {1, …, 6},
   ``y ~ 1 + x1 + … + (1 + x1 + … + x_{q-1} | subject)``, 200 subjects × 12 rows, x ~ N(0, 1).
3. ``levels``: levels L ∈ {30, 100, 300, 1000, 2000, 5000} of a crossed factor g in
   ``y ~ 1 + (1 | f) + (1 | g)``, two layouts. *g leads*: f at 30 levels, every f × g pair once
   up to L = 300, from L = 1000 on each g level observed 5 times with random f levels (about
   5·L rows). workbench orders terms by levels, largest first (lme4's order), eliminates the
   leading factor level by level and factors the rest densely, so here the dense trailing
   block is f's 30 levels + X + y, whatever L. *g trails*: f at 2L levels with 5 rows each and
   g drawn so that every g level has 10 rows (10·L rows); f leads and g's L levels are in the
   dense trailing block, whose Cholesky grows like L³. Beside the time: L³/3, the flops of a
   dense Cholesky of an L × L block, D, the size of the trailing block actually factored, and
   D³/3; and where a fit crosses 1 s. A size is skipped when one fit is predicted (log–log
   from the last two sizes) or measured at the previous size to exceed ``--max-seconds``.
4. ``insteval``: the InstEval-sized crossed data set of scripts/instevalish.py (73,421 rows),
   ``y ~ 1 + service + lectage + studage + (1 | s) + (1 | d) + (1 | dept)``: an ML fit (a fresh
   `wb.fit`, design build included), then a REML fit and its refit to a simulated response,
   which are skipped (with a note) when the ML fit alone exceeded ``--max-seconds``. The fit of
   lme4's own InstEval against lme4 in the same run and MixedModels.jl's published time is in
   scripts/bench_fit.py (MIXEDMODELS_JL below says what that figure is).

How: for each design the layout is built in this process, `nsim` responses are simulated from
a truth in the spirit of the other benchmarks (intercept SD 1, slope SDs 0.5, nested and
second crossed SD 0.5, σ 1, β = 0), the model is fitted once by REML to the first response
(untimed warm-up: builds the design, compiles nothing new once the Numba cache is warm), then
refitted to each of the others. Each refit is timed best-of-k (`--repeats`, default 3) to
damp the noise of a shared machine; the table gives the median over responses of those best
times, the median evaluations of the criterion per refit (`FitResult.n_evals`) and µs per
evaluation. k and the number of responses shrink when the warm-up fit says a case would take
longer than ``--max-seconds`` (default 20) in all; a size whose single fit would exceed it is
skipped, with a note, and so are the larger sizes of its series. A refit returns a full
result (estimates, SEs, variance components, BLUPs as pandas objects), so on small designs a
fixed cost of a few ms of Python per fit dominates and µs/evaluation overstates what one
evaluation of the criterion costs there.

    PYTHONPATH=$PWD python scripts/bench_scaling.py [--series groups,q,levels,insteval]
        [--max-seconds 20] [--repeats 3] [--nsim 6] [--blas-threads 1] [--quick]
        [--plot docs/scaling.png] [--no-plot]

BLAS threads. The dense trailing block is factored by SciPy's LAPACK (OpenBLAS) from D = 64
on, beside Numba's own threads. On this 2-core machine shared with other jobs, OpenBLAS's
default threads oversubscribe the cores and its waiting threads cost far more than the work:
the *g trails* fit at L = 100 (D = 102) took 0.5–2.2 s per refit with 2 OpenBLAS threads and
8 ms with 1, and the InstEval-sized ML fit 17–65 s against 2.7 s. The script therefore sets
OPENBLAS_NUM_THREADS (and MKL_NUM_THREADS) to ``--blas-threads``, default 1, before numpy
loads; ``--blas-threads 0`` leaves the environment as it is, to see the default behaviour.

``--quick`` runs the smallest two sizes of each series (and InstEval once), a smoke run. The
first run of a fresh checkout compiles the Numba kernels (a few minutes).
"""

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
SEED = 20261203
GROUPS = (10, 30, 100, 300, 1000, 3000, 10000)
DIMENSIONS = (1, 2, 3, 4, 5, 6)
LEVELS = (30, 100, 300, 1000, 2000, 5000)
FULL_CROSSING_UP_TO = 300  # levels series: every f × g pair up to this L, then 5 rows per g level
INSTEVAL_FORMULA = "y ~ 1 + service + lectage + studage + (1 | s) + (1 | d) + (1 | dept)"
# The published MixedModels.jl figure that scripts/bench_fit.py sets beside its InstEval fit.
MIXEDMODELS_JL = (
    "MixedModels.jl's published benchmark (PkgBenchmark report of 2 October 2018, Julia 1.0.0, Intel i5-3570 at\n"
    "3.4 GHz) fits lme4's InstEval, y ~ 1 + service + (1|s) + (1|d) + (1|dept), by ML in 2.0 s; scripts/bench_fit.py\n"
    "fits that model to those data with workbench and lme4 in one run."
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", default="groups,q,levels,insteval",
                        help="comma-separated subset of groups,q,levels,insteval (default all)")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="cap on one case's total time; sizes whose one fit exceeds it are skipped (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="best-of-k timing of each refit (default 3)")
    parser.add_argument("--nsim", type=int, default=6,
                        help="responses per design: one for the warm-up fit, the rest refitted (default 6)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS/MKL threads, set before numpy loads (default 1; 0 leaves the environment alone)")
    parser.add_argument("--quick", action="store_true", help="the smallest two sizes of each series, a smoke run")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "scaling.png"), help="PNG to write (default docs/scaling.png)")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    args = parser.parse_args(argv)
    args.series = [s.strip() for s in args.series.split(",") if s.strip()]
    unknown = set(args.series) - {"groups", "q", "levels", "insteval"}
    if unknown:
        parser.error(f"unknown series {', '.join(sorted(unknown))}; choose from groups,q,levels,insteval")
    if args.nsim < 2:
        parser.error("--nsim must be at least 2 (one warm-up response and one refit)")
    return args


# ---------------------------------------------------------------- layouts and truths


def slopes_case(groups, rng):
    layout = pd.DataFrame({"subject": np.repeat(np.arange(groups), 10), "time": np.tile(np.arange(10.0), groups)})
    truth = {"beta": {"(Intercept)": 0.0, "time": 0.0}, "sigma": 1.0,
             "re": {"subject": {"sd": {"(Intercept)": 1.0, "time": 0.5}, "corr": {"(Intercept):time": 0.2}}}}
    return "y ~ 1 + time + (1 + time | subject)", layout, truth


def nested_case(groups, rng):
    layout = pd.DataFrame({"a": np.repeat(np.arange(groups), 20), "b": np.tile(np.repeat(np.arange(5), 4), groups)})
    truth = {"beta": {"(Intercept)": 0.0}, "sigma": 1.0,
             "re": {"a": {"sd": {"(Intercept)": 1.0}}, "a:b": {"sd": {"(Intercept)": 0.5}}}}
    return "y ~ 1 + (1 | a/b)", layout, truth


def crossed_truth():
    return {"beta": {"(Intercept)": 0.0}, "sigma": 1.0,
            "re": {"f": {"sd": {"(Intercept)": 1.0}}, "g": {"sd": {"(Intercept)": 0.5}}}}


def crossed_case(groups, rng):
    layout = pd.DataFrame({"f": np.repeat(np.arange(groups), 30), "g": np.tile(np.arange(30), groups)})
    return "y ~ 1 + (1 | f) + (1 | g)", layout, crossed_truth()


def dimension_case(q, rng):
    subjects, rows = 200, 12
    names = [f"x{j}" for j in range(1, q)]
    layout = pd.DataFrame({"subject": np.repeat(np.arange(subjects), rows)})
    for name in names:
        layout[name] = rng.standard_normal(subjects * rows)
    effects = " + ".join(["1", *names])
    sd = {"(Intercept)": 1.0, **{name: 0.5 for name in names}}
    truth = {"beta": {"(Intercept)": 0.0, **{name: 0.0 for name in names}}, "sigma": 1.0,
             "re": {"subject": {"sd": sd}}}
    return f"y ~ {effects} + ({effects} | subject)", layout, truth


def levels_case(levels, rng):
    """g (L levels) against f (30 levels): g has the most levels, so it leads and f's block trails."""
    if levels <= FULL_CROSSING_UP_TO:
        layout = pd.DataFrame({"f": np.tile(np.arange(30), levels), "g": np.repeat(np.arange(levels), 30)})
    else:
        layout = pd.DataFrame({"f": rng.integers(0, 30, 5 * levels), "g": np.repeat(np.arange(levels), 5)})
    return "y ~ 1 + (1 | f) + (1 | g)", layout, levels_truth()


def trailing_case(levels, rng):
    """g (L levels) against f (2L levels, 5 rows each): f leads, so g's L × L block is the dense trailing one."""
    g = rng.permutation(np.tile(np.arange(levels), 10))
    layout = pd.DataFrame({"f": np.repeat(np.arange(2 * levels), 5), "g": g})
    return "y ~ 1 + (1 | f) + (1 | g)", layout, levels_truth()


def levels_truth():
    truth = crossed_truth()
    truth["re"] = {"f": {"sd": {"(Intercept)": 0.5}}, "g": {"sd": {"(Intercept)": 1.0}}}
    return truth


SERIES = {
    "groups": ("number of groups G", GROUPS, {
        "slopes (1 + time | subject), 10 per subject": slopes_case,
        "nested (1 | a/b), G × 5 × 4": nested_case,
        "crossed (1 | f) + (1 | g), G × 30": crossed_case,
    }),
    "q": ("random-effect dimension q", DIMENSIONS, {"(1 + x1 + … | subject), 200 × 12": dimension_case}),
    "levels": ("levels L of the second crossed factor", LEVELS,
               {"g leads: 30 levels of f × L of g": levels_case,
                "g trails: 2L levels of f (5 rows each) × L of g": trailing_case}),
}


# ---------------------------------------------------------------- timing


def best_of(k, call):
    """The least seconds of `k` calls of `call` (k ≥ 1) and the last result."""
    best, result = math.inf, None
    for _ in range(k):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def trailing_size(res):
    structure = res.problem.structure
    return len(structure.row_term) - structure.t0


def measure(formula, layout, truth, args):
    """Warm-up fit, then best-of-k refits; a row of the table (None values where not measured)."""
    responses = wb.simulate(formula, layout, truth, nsim=args.nsim, seed=SEED)
    start = time.perf_counter()
    fit = wb.fit(formula, layout.assign(y=responses[0]), reml=True)
    warm = time.perf_counter() - start
    refits = list(responses[1:])
    repeats = args.repeats
    # the refit costs at most about the warm-up fit: shrink k, then the responses, to stay in budget
    while repeats > 1 and warm * (1 + repeats * len(refits)) > args.max_seconds:
        repeats -= 1
    while len(refits) > 1 and warm * (1 + repeats * len(refits)) > args.max_seconds:
        refits.pop()
    seconds, evals, converged = [], [], 0
    for y in refits:
        best, res = best_of(repeats, lambda: fit.refit(y))
        seconds.append(best)
        evals.append(res.n_evals)
        converged += bool(res.converged)
    ms = statistics.median(seconds) * 1e3
    per_fit = statistics.median(evals)
    return {
        "n": len(layout), "ms": ms, "evals": per_fit, "us_per_eval": ms * 1e3 / per_fit if per_fit else math.nan,
        "warm_s": warm, "refits": len(refits), "repeats": repeats, "converged": converged,
        "trailing": trailing_size(fit),
    }


def predicted_seconds(points, size):
    """One fit's seconds at `size`, extrapolated log–log from the last two measured (size, seconds); None if < 2."""
    if len(points) < 2:
        return None
    (s0, t0), (s1, t1) = points[-2], points[-1]
    slope = max(math.log(t1 / t0) / math.log(s1 / s0), 1.0) if t0 > 0 and t1 > 0 else 1.0
    return t1 * (size / s1) ** slope


def run_series(key, args):
    label, sizes, cases = SERIES[key]
    sizes = sizes[:2] if args.quick else sizes
    results = {}
    for case_name, build in cases.items():
        rows, points, stopped = [], [], None
        print(f"\n### {label}: {case_name}\n", flush=True)
        for size in sizes:
            if stopped is not None:
                rows.append({"size": size, "skipped": stopped})
                continue
            guess = predicted_seconds(points, size)
            if guess is not None and guess > args.max_seconds:
                stopped = f"skipped: one fit predicted at ~{guess:.0f} s > --max-seconds {args.max_seconds:g}"
                rows.append({"size": size, "skipped": stopped})
                continue
            rng = np.random.default_rng([SEED, size])
            formula, layout, truth = build(size, rng)
            row = {"size": size, "formula": formula, **measure(formula, layout, truth, args)}
            rows.append(row)
            # the warm-up fit (design build included) bounds what the next size's first fit costs
            points.append((size, max(row["warm_s"], row["ms"] / 1e3)))
            if row["warm_s"] > args.max_seconds:
                stopped = f"skipped: a fit at the previous size took {row['warm_s']:.1f} s > --max-seconds"
            print(f"  {size}: {row['n']} rows, {row['ms']:.3f} ms/refit, {row['evals']:g} evals "
                  f"(warm-up fit {row['warm_s']:.3f} s; best of {row['repeats']} × {row['refits']} responses)",
                  file=sys.stderr, flush=True)
        results[case_name] = rows
        print_table(key, label, case_name, rows)
    return results


def fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def print_table(key, label, case_name, rows):
    size_name = {"groups": "G", "q": "q", "levels": "L"}[key]
    extra = key == "levels"
    head = f"| {size_name} | rows n | ms/fit | evals/fit | µs/eval |"
    rule = "|---:|---:|---:|---:|---:|"
    if extra:
        head += " L³/3 flops | trailing D | D³/3 flops |"
        rule += "---:|---:|---:|"
    print(head)
    print(rule)
    for row in rows:
        if "skipped" in row:
            cells = f"| {row['size']:,} | {row['skipped']} | | | |" + (" | | |" if extra else "")
            print(cells)
            continue
        cells = (f"| {row['size']:,} | {row['n']:,} | {fmt(row['ms'])} | {row['evals']:g} | "
                 f"{fmt(row['us_per_eval'], 1)} |")
        if extra:
            cells += f" {row['size'] ** 3 / 3:.2e} | {row['trailing']:,} | {row['trailing'] ** 3 / 3:.2e} |"
        print(cells)
    measured = [r for r in rows if "skipped" not in r]
    if measured:
        print(f"\nformula: `{measured[-1]['formula']}`; REML; each ms/fit is the median over responses "
              f"of the best of k refits (k = {', '.join(str(r['repeats']) for r in measured)}; responses = "
              f"{', '.join(str(r['refits']) for r in measured)}); converged refits: "
              f"{sum(r['converged'] for r in measured)}/{sum(r['refits'] for r in measured)}.")
    if extra and measured:
        crossing = next((r for r in measured if r["ms"] >= 1e3), None)
        last = measured[-1]
        if crossing is not None:
            before = [r for r in measured if r["size"] < crossing["size"]]
            text = f"A fit first takes over 1 s at L = {crossing['size']:,} ({crossing['ms'] / 1e3:.2f} s)"
            if before:
                (s0, t0), (s1, t1) = (before[-1]["size"], before[-1]["ms"]), (crossing["size"], crossing["ms"])
                slope = math.log(t1 / t0) / math.log(s1 / s0)
                at = s0 * (1e3 / t0) ** (1 / slope)
                text += (f"; {t0:.0f} ms at L = {s0:,}, and log–log interpolation between the two "
                         f"(slope {slope:.1f}) puts 1 s at L ≈ {at:,.0f}")
            print(text + ".")
        else:
            print(f"No measured fit reached 1 s (the largest, L = {last['size']:,}, took {last['ms']:.1f} ms).")
        if last["trailing"] < last["size"]:
            print(f"The dense trailing block stays at D = {last['trailing']} (f's levels + X + y): the L-level "
                  f"factor has the most levels, so it leads and is eliminated level by level; nothing is L × L.")
        else:
            print(f"The dense trailing block is g's L levels + X + y (D = L + {last['trailing'] - last['size']}): "
                  f"its Cholesky costs D³/3 flops per evaluation, the L³ growth.")
    print(flush=True)


def run_insteval(args):
    sys.path.insert(0, str(SCRIPTS))
    from instevalish import instevalish

    data = instevalish(seed=1)
    levels = " × ".join(f"{data[name].nunique():,} {name}" for name in ("s", "d", "dept"))
    print(f"\n### InstEval-sized crossed fit ({len(data):,} rows, {levels})\n", flush=True)
    ml_seconds, ml = best_of(1, lambda: wb.fit(INSTEVAL_FORMULA, data, reml=False))
    repeats = 1
    if not args.quick and ml_seconds * (args.repeats - 1) <= args.max_seconds:
        more, _ = best_of(args.repeats - 1, lambda: wb.fit(INSTEVAL_FORMULA, data, reml=False))
        ml_seconds, repeats = min(ml_seconds, more), args.repeats
    rows = [("ML, a fresh wb.fit (design build included)", ml_seconds, ml, repeats, "ML fit")]
    notes = []
    if ml_seconds > args.max_seconds:
        notes.append(f"REML fit and refit skipped: the ML fit took {ml_seconds:.1f} s > --max-seconds "
                     f"{args.max_seconds:g}, and each would take about as long.")
    else:
        reml_seconds, reml = best_of(1, lambda: wb.fit(INSTEVAL_FORMULA, data, reml=True))
        rows.append(("REML, a fresh wb.fit (the refit's warm-up)", reml_seconds, reml, 1, "REML fit"))
        y = reml.simulate(1, seed=SEED)[0]
        k = 1 if args.quick or reml_seconds * args.repeats > args.max_seconds else args.repeats
        refit_seconds, refit = best_of(k, lambda: reml.refit(y))
        rows.append(("REML refit to a simulated response", refit_seconds, refit, k, "REML refit"))
    print("| fit | rows n | ms/fit | evals/fit | µs/eval |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, res, k, _ in rows:
        ms = seconds * 1e3
        print(f"| {name} (best of {k}) | {len(data):,} | {fmt(ms, 1)} | {res.n_evals} | "
              f"{fmt(ms * 1e3 / res.n_evals, 1)} |")
    print(f"\nformula: `{INSTEVAL_FORMULA}`; dense trailing block D = {trailing_size(ml):,} "
          f"(d's and dept's levels + X + y; s leads); converged: "
          f"{', '.join(str(bool(r[2].converged)) for r in rows)}.")
    for note in notes:
        print(note)
    print(MIXEDMODELS_JL)
    print(flush=True)
    return {"n": len(data), "rows": [(short, seconds * 1e3, res.n_evals) for _, seconds, res, _, short in rows]}


# ---------------------------------------------------------------- plot


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    panels = [key for key in ("groups", "q", "levels", "insteval") if key in results]
    columns = 2 if len(panels) > 1 else 1
    lines = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(6.2 * columns, 4.6 * lines), squeeze=False)
    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    for ax, key in zip(axes.flat, panels):
        if key == "insteval":
            inst = results[key]
            names = [name for name, _, _ in inst["rows"]]
            seconds = [ms / 1e3 for _, ms, _ in inst["rows"]]
            ax.bar(names, seconds, color=["tab:blue", "tab:green", "tab:orange"][: len(names)])
            ax.set_ylabel("seconds per fit")
            ax.set_title(f"InstEval-sized crossed fit, {inst['n']:,} rows")
            for i, (_, ms, evals) in enumerate(inst["rows"]):
                ax.text(i, ms / 1e3, f"{ms / 1e3:,.2f} s, {evals} evals", ha="center", va="bottom", fontsize=8)
            ax.set_ylim(0, max(seconds) * 1.2)
            continue
        label, _, _ = SERIES[key]
        sizes = set()
        for case_name, rows in results[key].items():
            measured = [r for r in rows if "skipped" not in r]
            if not measured:
                continue
            sizes.update(r["size"] for r in measured)
            ax.plot([r["size"] for r in measured], [r["ms"] for r in measured], "o-", label=case_name)
        if key == "levels":
            cases = [[r for r in rows if "skipped" not in r] for rows in results[key].values()]
            if len(cases) == 2 and cases[1] and cases[0]:
                xs = np.array([r["size"] for r in cases[1]], float)
                top = cases[1][-1]
                ax.plot(xs, top["ms"] * (xs / top["size"]) ** 3, ":", color="grey",
                        label="∝ L³ (dense L × L Cholesky), through the last point")
                xs = np.array([r["size"] for r in cases[0]], float)
                ax.plot(xs, cases[0][0]["ms"] * xs / xs[0], "--", color="grey", label="∝ L, from the first point")
            ax.axhline(1e3, color="red", lw=0.8, alpha=0.6, label="1 s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(sizes))
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel("ms per REML refit")
        ax.set_title(key)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("workbench: ms per REML refit against problem size (median over responses of best-of-k)", fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


def main(argv=None):
    args = parse_args(argv)
    if args.blas_threads > 0:
        # before numpy and SciPy load OpenBLAS, which reads these once
        for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.blas_threads)
    global np, pd, wb
    import numba
    import numpy as np
    import pandas as pd

    import workbench as wb

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# workbench scaling: ms per REML refit\n\nmachine: CPUs {os.cpu_count()} (usable {usable}), "
          f"Python {sys.version.split()[0]}, numpy {np.__version__}, numba {numba.__version__} "
          f"({numba.config.NUMBA_NUM_THREADS} threads), BLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; --max-seconds {args.max_seconds:g}, "
          f"--repeats {args.repeats}, --nsim {args.nsim}{', --quick' if args.quick else ''}", flush=True)
    results = {}
    for key in args.series:
        results[key] = run_insteval(args) if key == "insteval" else run_series(key, args)
    if not args.no_plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
