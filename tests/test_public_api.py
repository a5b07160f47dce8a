"""The public API: what the README shows runs as written, and every argument is checked."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def _python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    # the cluster example needs dask-jobqueue and a batch system
    return [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "dask_jobqueue" not in block]


def test_exports():
    assert set(wb.__all__) >= {"fit", "simulate", "marginal_cov", "FitResult", "WorkbenchError", "__version__"}
    assert isinstance(wb.__version__, str) and wb.__version__
    assert issubclass(wb.WorkbenchError, ValueError)


def test_readme_examples_run_as_written(monkeypatch):
    """The README's Python blocks, in order, in one namespace (later blocks use earlier imports)."""
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    blocks = _python_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    assert isinstance(namespace["res"], wb.FitResult) and namespace["res"].converged
    assert namespace["Y"].shape == (100, 30) and namespace["V"].shape == (30, 30)


NESTED = "y ~ 1 + (1 | state) + (1 | city) + (1 | hood)"
NESTED_TRUTH = {
    "beta": {"(Intercept)": 0.0},
    "sigma": 0.5,
    "re": {"state": {"sd": {"(Intercept)": 2.0}}, "city": {"sd": {"(Intercept)": 1.5}}, "hood": {"sd": {"(Intercept)": 1.0}}},
}


def test_three_people_nested_example_is_defined():
    """The textbook example: one person per neighbourhood, cannot be fitted, is well defined."""
    layout = pd.DataFrame({"state": ["S1", "S1", "S2"], "city": ["C1", "C1", "C2"], "hood": ["N1", "N2", "N3"]})
    v_state, v_city, v_hood, s2 = 4.0, 2.25, 1.0, 0.25
    expected = np.array(
        [
            [v_state + v_city + v_hood + s2, v_state + v_city, 0.0],
            [v_state + v_city, v_state + v_city + v_hood + s2, 0.0],
            [0.0, 0.0, v_state + v_city + v_hood + s2],
        ]
    )
    np.testing.assert_allclose(wb.marginal_cov(NESTED, layout, NESTED_TRUTH), expected, rtol=1e-12)
    y = wb.simulate(NESTED, layout, NESTED_TRUTH, nsim=20000, seed=3)
    assert y.shape == (20000, 3)
    np.testing.assert_allclose(np.cov(y.T), expected, atol=0.25)
    with pytest.raises(WorkbenchError, match="grouping factor 'hood' has 3 levels for 3 observations"):
        wb.fit(NESTED, layout.assign(y=y[0]))


def test_single_level_factor_is_simulated_but_not_fitted():
    layout = pd.DataFrame({"g": ["a"] * 5, "x": np.arange(5.0)})
    truth = {"beta": {"(Intercept)": 1.0}, "sigma": 1.0, "re": {"g": {"sd": {"(Intercept)": 2.0}}}}
    v = wb.marginal_cov("y ~ 1 + (1 | g)", layout, truth)
    np.testing.assert_allclose(v, 4.0 + np.eye(5), rtol=1e-12)
    y = wb.simulate("y ~ 1 + (1 | g)", layout, truth, nsim=2, seed=0)
    with pytest.raises(WorkbenchError, match="grouping factor 'g' has 1 level; a fitted model needs at least 2"):
        wb.fit("y ~ 1 + (1 | g)", layout.assign(y=y[0]))


def test_crossed_senders_and_receivers():
    """Same sender → v_a, same receiver → v_b, neither → 0 (one message per pair)."""
    pairs = [(s, r) for s in range(4) for r in range(3)]
    layout = pd.DataFrame({"sender": [f"s{s}" for s, _ in pairs], "receiver": [f"r{r}" for _, r in pairs]})
    truth = {
        "beta": {"(Intercept)": 0.0},
        "sigma": 1.0,
        "re": {"sender": {"sd": {"(Intercept)": 1.2}}, "receiver": {"sd": {"(Intercept)": 0.7}}},
    }
    v = wb.marginal_cov("y ~ 1 + (1 | sender) + (1 | receiver)", layout, truth)
    v_a, v_b = 1.44, 0.49
    for i, (s1, r1) in enumerate(pairs):
        for j, (s2, r2) in enumerate(pairs):
            expected = (v_a if s1 == s2 else 0.0) + (v_b if r1 == r2 else 0.0) + (1.0 if i == j else 0.0)
            assert v[i, j] == pytest.approx(expected, abs=1e-12)


SLEEP = "Reaction ~ 1 + Days + (1 + Days | Subject)"


@pytest.fixture(scope="module")
def sleepstudy():
    return pd.read_csv(DATA / "sleepstudy.csv")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reml": "ML"}, "reml: must be True or False, got 'ML'"),
        ({"reml": "no"}, "reml: must be True or False, got 'no'"),
        ({"reml": 0}, "reml: must be True or False, got 0"),
        ({"formula": 3}, "formula: must be a non-empty string, got 3"),
        ({"data": {"Reaction": [1.0]}}, "data: expected a pandas DataFrame, got dict"),
    ],
)
def test_fit_arguments_are_checked(sleepstudy, kwargs, message):
    arguments = {"formula": SLEEP, "data": sleepstudy, "reml": True, **kwargs}
    with pytest.raises(WorkbenchError, match=re.escape(message)):
        wb.fit(**arguments)


def test_fit_takes_numpy_booleans(sleepstudy):
    assert not wb.fit(SLEEP, sleepstudy, reml=np.False_).reml


LAYOUT = pd.DataFrame({"g": np.repeat(np.arange(4), 3), "x": np.tile([0.0, 1.0, 2.0], 4)})
TRUTH = {"beta": {"(Intercept)": 1.0, "x": 0.5}, "sigma": 1.0, "re": {"g": {"sd": {"(Intercept)": 1.0}}}}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nsim": 0}, "nsim: must be a positive integer, got 0"),
        ({"nsim": 2.0}, "nsim: must be a positive integer, got 2.0"),
        ({"seed": -1}, "seed: must be an integer from 0 to 18446744073709551615, got -1"),
        ({"seed": 2**64}, "seed: must be an integer from 0 to 18446744073709551615, got 18446744073709551616"),
        ({"seed": True}, "seed: must be an integer from 0 to 18446744073709551615, got True"),
        ({"point": -2}, "point: must be a non-negative integer, got -2"),
        ({"layout": [1, 2]}, "layout: expected a pandas DataFrame, got list"),
        ({"truth": 3}, "truth: expected a mapping such as a dict, got int"),
        ({"formula": None}, "formula: must be a non-empty string, got None"),
    ],
)
def test_simulate_arguments_are_checked(kwargs, message):
    arguments = {"formula": "y ~ 1 + x + (1 | g)", "layout": LAYOUT, "truth": TRUTH, **kwargs}
    with pytest.raises(WorkbenchError, match=re.escape(message)):
        wb.simulate(**arguments)


@pytest.mark.parametrize("seed", [0, 2**31, 2**63, 2**64 - 1])
def test_simulate_takes_64_bit_seeds(seed):
    y = wb.simulate("y ~ 1 + x + (1 | g)", LAYOUT, TRUTH, nsim=2, seed=seed)
    again = wb.simulate("y ~ 1 + x + (1 | g)", LAYOUT, TRUTH, nsim=2, seed=seed)
    assert np.array_equal(y, again) and np.isfinite(y).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_rows": 0}, "max_rows: must be a positive integer, got 0"),
        ({"layout": None}, "layout: expected a pandas DataFrame, got NoneType"),
        ({"truth": [1]}, "truth: expected a mapping such as a dict, got list"),
    ],
)
def test_marginal_cov_arguments_are_checked(kwargs, message):
    arguments = {"formula": "y ~ 1 + x + (1 | g)", "layout": LAYOUT, "truth": TRUTH, **kwargs}
    with pytest.raises(WorkbenchError, match=re.escape(message)):
        wb.marginal_cov(**arguments)
