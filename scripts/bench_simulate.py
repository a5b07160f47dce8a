"""Time simulating responses: µs per replicate in a batch of 1000, for the three canonical layouts.

Prints, per layout, the time to draw the replicates' normals (one SeedSequence and Generator
per replicate, the draw contract), the kernel time, and their sum. Usage:

    python scripts/bench_simulate.py [--batch 1000] [--repeat 5]
"""

import argparse
import time

import numpy as np
import pandas as pd

from workbench.model.design import build_design
from workbench.kernels.simulate import simulate_responses
from workbench.simulation.simulate import draw_normals, simulation_inputs
from workbench.model.truth import truth_to_parameters


def slopes():
    layout = pd.DataFrame({"subject": np.repeat(np.arange(50), 10), "time": np.tile(np.arange(10.0), 50)})
    truth = {
        "beta": {"(Intercept)": 250.0, "time": 10.0},
        "sigma": 25.6,
        "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9}, "corr": {"(Intercept):time": 0.07}}},
    }
    return "y ~ 1 + time + (1 + time | subject)", layout, truth


def nested():
    state, city, hood = np.meshgrid(np.arange(20), np.arange(5), np.arange(4), indexing="ij")
    units = pd.DataFrame({"state": state.ravel(), "city": city.ravel(), "hood": hood.ravel()})
    layout = units.loc[units.index.repeat(5)].reset_index(drop=True)
    sd = {"(Intercept)": 1.0}
    re = {"state": {"sd": sd}, "state:city": {"sd": sd}, "state:city:hood": {"sd": sd}}
    truth = {"beta": {"(Intercept)": 0.0}, "sigma": 1.0, "re": re}
    return "y ~ 1 + (1 | state/city/hood)", layout, truth


def crossed():
    layout = pd.DataFrame({"sender": np.repeat(np.arange(30), 30), "receiver": np.tile(np.arange(30), 30)})
    sd = {"(Intercept)": 1.0}
    truth = {"beta": {"(Intercept)": 0.0}, "sigma": 1.0, "re": {"sender": {"sd": sd}, "receiver": {"sd": sd}}}
    return "y ~ 1 + (1 | sender) + (1 | receiver)", layout, truth


def best_of(repeat, action):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    header = f"{'layout':<34} {'rows':>5} {'draw µs':>9} {'kernel µs':>10} {'total µs':>9}"
    print(f"{header}   (per replicate, batch {args.batch})")
    layouts = (("random slopes 50 × 10", slopes), ("nested 20 × 5 × 4 × 5", nested), ("crossed 30 × 30", crossed))
    for name, make in layouts:
        formula, layout, truth = make()
        design = build_design(formula, layout, response_required=False)
        inputs = simulation_inputs(design, *truth_to_parameters(design, truth))
        replicates = np.arange(args.batch)
        normals = draw_normals(1, 0, replicates, inputs.size)
        out = np.empty((args.batch, design.n))
        arrays = (inputs.xbeta, inputs.codes, inputs.z, inputs.term_q, inputs.term_offset, inputs.lam, inputs.sigma)
        simulate_responses(*arrays, normals[:1], out[:1])  # compile outside the timing
        draw = best_of(args.repeat, lambda: draw_normals(1, 0, replicates, inputs.size))
        kernel = best_of(args.repeat, lambda: simulate_responses(*arrays, normals, out))
        scale = 1e6 / args.batch
        print(f"{name:<34} {design.n:>5} {draw * scale:>9.1f} {kernel * scale:>10.1f} {(draw + kernel) * scale:>9.1f}")


if __name__ == "__main__":
    main()
