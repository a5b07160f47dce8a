"""The data-scale truth ↔ (β, θ, σ) ↔ var/cov and SD/corr parameter coordinates."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strategies import models
from workbench.model.design import build_design
from workbench.errors import TruthError, WorkbenchError
from workbench.model.parameters import (
    parameter_labels,
    parameter_names,
    parameter_values,
    semidefinite_cholesky,
    term_covariances,
    term_lambdas,
)
from workbench.model.truth import parameters_to_truth, truth_to_parameters
from workbench.study.spec import validate_truth

SLOPES = "y ~ 1 + time + (1 + time | subject)"
TRUTH = {
    "beta": {"(Intercept)": 250.0, "time": 10.0},
    "sigma": 25.6,
    "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9}, "corr": {"(Intercept):time": 0.07}}},
}


def layout(**extra):
    frame = pd.DataFrame({"subject": np.repeat([1, 2, 3, 4], 5), "time": np.tile(np.arange(5.0), 4)})
    frame["x"] = np.linspace(-1, 1, len(frame)) ** 3
    frame["state"] = np.repeat(["a", "b"], 10)
    frame["city"] = np.tile(np.repeat([1, 2], 5), 2)
    return frame.assign(**extra)


def design_of(formula):
    return build_design(formula, layout(), response_required=False)


def test_theta_of_the_sleepstudy_like_truth():
    """λ = diag(sd)·chol(R)/σ, lower triangle column-major."""
    beta, theta, sigma = truth_to_parameters(design_of(SLOPES), TRUTH)
    rho = 0.07
    expected = np.array([24.7, 5.9 * rho, 5.9 * math.sqrt(1 - rho**2)]) / 25.6
    np.testing.assert_allclose(theta, expected, rtol=1e-15)
    np.testing.assert_array_equal(beta, [250.0, 10.0])
    assert sigma == 25.6


def test_parameter_names_slopes():
    assert parameter_names(design_of(SLOPES)) == [
        "beta[(Intercept)]",
        "beta[time]",
        "var[subject:(Intercept)]",
        "var[subject:time]",
        "cov[subject:(Intercept),time]",
        "var[Residual]",
        "sd[subject:(Intercept)]",
        "sd[subject:time]",
        "corr[subject:(Intercept),time]",
        "sd[Residual]",
    ]


def test_parameter_names_three_effects_nested_and_uncorrelated():
    design = design_of("y ~ 1 + x + (1 + time + x | subject) + (1 | state/city)")
    assert parameter_names(design) == [
        "beta[(Intercept)]",
        "beta[x]",
        "var[subject:(Intercept)]",
        "var[subject:time]",
        "var[subject:x]",
        "cov[subject:(Intercept),time]",
        "cov[subject:(Intercept),x]",
        "cov[subject:time,x]",
        "var[state:city:(Intercept)]",
        "var[state:(Intercept)]",
        "var[Residual]",
        "sd[subject:(Intercept)]",
        "sd[subject:time]",
        "sd[subject:x]",
        "corr[subject:(Intercept),time]",
        "corr[subject:(Intercept),x]",
        "corr[subject:time,x]",
        "sd[state:city:(Intercept)]",
        "sd[state:(Intercept)]",
        "sd[Residual]",
    ]
    uncorrelated = design_of("y ~ 1 + time + (1 + time || subject)")
    assert parameter_names(uncorrelated)[2:5] == ["var[subject:(Intercept)]", "var[subject:time]", "var[Residual]"]


def test_parameter_values_of_the_example():
    design = design_of(SLOPES)
    values = dict(zip(parameter_names(design), parameter_values(design, *truth_to_parameters(design, TRUTH))))
    assert values["var[subject:(Intercept)]"] == pytest.approx(24.7**2, rel=1e-14)
    assert values["var[subject:time]"] == pytest.approx(5.9**2, rel=1e-14)
    assert values["cov[subject:(Intercept),time]"] == pytest.approx(0.07 * 24.7 * 5.9, rel=1e-14)
    assert values["var[Residual]"] == pytest.approx(25.6**2, rel=1e-15)
    assert values["corr[subject:(Intercept),time]"] == pytest.approx(0.07, rel=1e-14)
    assert values["sd[Residual]"] == 25.6


def test_correlation_keys_in_either_order():
    flipped = copy.deepcopy(TRUTH)
    flipped["re"]["subject"]["corr"] = {"time:(Intercept)": 0.07}
    design = design_of(SLOPES)
    np.testing.assert_array_equal(truth_to_parameters(design, flipped)[1], truth_to_parameters(design, TRUTH)[1])


def test_missing_correlations_are_zero_and_uncorrelated_groups_take_one_sd_table():
    design = design_of(SLOPES)
    truth = copy.deepcopy(TRUTH)
    del truth["re"]["subject"]["corr"]
    assert truth_to_parameters(design, truth)[1][1] == 0.0
    split = design_of("y ~ 1 + time + (1 + time || subject)")
    truth["re"]["subject"]["corr"] = {"time:(Intercept)": 0.0}
    _, theta, _ = truth_to_parameters(split, truth)
    np.testing.assert_allclose(theta, [24.7 / 25.6, 5.9 / 25.6], rtol=1e-15)


def test_zero_sd_gives_zero_row_of_lambda_and_nan_correlation():
    design = design_of(SLOPES)
    truth = copy.deepcopy(TRUTH)
    truth["re"]["subject"]["sd"]["time"] = 0.0
    beta, theta, sigma = truth_to_parameters(design, truth)
    assert theta[1] == 0.0 and theta[2] == 0.0
    values = dict(zip(parameter_names(design), parameter_values(design, beta, theta, sigma)))
    assert math.isnan(values["corr[subject:(Intercept),time]"])
    assert parameters_to_truth(design, beta, theta, sigma)["re"]["subject"]["corr"] == {"(Intercept):time": 0.0}


def _assert_truth_close(actual, expected):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_truth_close(actual[key], value)
        else:
            assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def _without_undefined_correlations(truth):
    """The truth with the correlations of zero-SD effects set to 0, as `parameters_to_truth` gives them."""
    out = copy.deepcopy(truth)
    for entry in out["re"].values():
        for key in entry.get("corr", {}):
            a, b = key.split(":")
            if entry["sd"][a] == 0 or entry["sd"][b] == 0:
                entry["corr"][key] = 0.0
    return out


@given(models())
def test_truth_round_trip(model):
    """parameters_to_truth(truth_to_parameters(t)) == t, up to correlations a zero SD leaves undefined."""
    back = parameters_to_truth(model.design, *truth_to_parameters(model.design, model.truth))
    _assert_truth_close(back, _without_undefined_correlations(model.truth))


@given(models(zero_sd=False), st.data())
def test_theta_round_trip(model, data):
    """θ with a positive diagonal → truth → θ, and σ²λλ' is the same on both sides."""
    design = model.design
    _, row, col = design.theta_map()
    diagonal = st.floats(0.1, 3.0)
    off = st.floats(-2.0, 2.0, allow_subnormal=False)
    theta = np.array([data.draw(diagonal if r == c else off) for r, c in zip(row, col)])
    beta = np.arange(design.p, dtype=float)
    sigma = data.draw(st.floats(0.1, 10.0))
    again = truth_to_parameters(design, parameters_to_truth(design, beta, theta, sigma))
    np.testing.assert_array_equal(again[0], beta)
    np.testing.assert_allclose(again[1], theta, rtol=1e-9, atol=1e-12)
    assert again[2] == sigma


@given(models())
def test_variance_and_sd_scales_agree(model):
    """sd² = var, corr·sdₐ·sdᵦ = cov, and both scales match the truth and σ²λλ'."""
    design = model.design
    beta, theta, sigma = truth_to_parameters(design, model.truth)
    values = dict(zip(parameter_names(design), parameter_values(design, beta, theta, sigma)))
    assert len(values) == len(parameter_names(design))
    for name, b in zip(design.fixef_names, beta):
        assert values[f"beta[{name}]"] == b
    assert values["var[Residual]"] == pytest.approx(sigma**2, rel=1e-15) and values["sd[Residual]"] == sigma
    for term, cov, lam in zip(design.terms, term_covariances(design, theta, sigma), term_lambdas(design, theta)):
        np.testing.assert_allclose(cov, sigma**2 * (lam @ lam.T), rtol=1e-15)
        entry = model.truth["re"][term.group]
        for i, a in enumerate(term.names):
            var, sd = values[f"var[{term.group}:{a}]"], values[f"sd[{term.group}:{a}]"]
            assert var == pytest.approx(cov[i, i], rel=1e-15, abs=0)
            assert sd == pytest.approx(math.sqrt(var), rel=1e-15, abs=0)
            assert sd == pytest.approx(entry["sd"][a], rel=1e-12, abs=1e-300)
            for j in range(i + 1, term.q):
                b = term.names[j]
                covariance = values[f"cov[{term.group}:{a},{b}]"]
                corr = values[f"corr[{term.group}:{a},{b}]"]
                assert covariance == pytest.approx(cov[j, i], rel=1e-15, abs=0)
                if sd == 0 or values[f"sd[{term.group}:{b}]"] == 0:
                    assert math.isnan(corr) and covariance == 0
                else:
                    assert corr * sd * values[f"sd[{term.group}:{b}]"] == pytest.approx(covariance, rel=1e-12, abs=1e-300)
                    assert corr == pytest.approx(entry["corr"][f"{a}:{b}"], rel=1e-9, abs=1e-12)


def _truth(**changes):
    """The example truth with some keys replaced; a value None deletes the key. Keys are paths joined by "/"."""
    truth = copy.deepcopy(TRUTH)
    for path, value in changes.items():
        *parents, last = path.split("/")
        table = truth
        for key in parents:
            table = table[key]
        if value is None:
            del table[last]
        else:
            table[last] = value
    return truth


SUBJECT = "re/subject"
MESSAGES = [
    (SLOPES, _truth(**{"beta/time": None}), "truth.beta.time: missing (the formula has this fixed effect)"),
    (SLOPES, _truth(**{"beta/(Intercept)": None}), 'truth.beta."(Intercept)": missing (the formula has this fixed effect)'),
    (SLOPES, _truth(**{"beta/age": 1.0}), "truth.beta.age: unknown fixed effect (the formula has: (Intercept), time)"),
    (SLOPES, _truth(**{"beta/time": "ten"}), 'truth.beta.time: must be a finite number, got "ten"'),
    (SLOPES, _truth(**{"beta/time": math.nan}), "truth.beta.time: must be a finite number, got nan"),
    (SLOPES, _truth(beta=None), "truth.beta: missing (the formula has fixed effects)"),
    (SLOPES, _truth(beta=3), "truth.beta: must be a table, got 3"),
    (SLOPES, _truth(sigma=None), "truth.sigma: missing (the residual standard deviation)"),
    (SLOPES, _truth(sigma=0), "truth.sigma: must be a positive number, got 0"),
    (SLOPES, _truth(sigma=-2.5), "truth.sigma: must be a positive number, got -2.5"),
    (SLOPES, _truth(sigma=True), "truth.sigma: must be a positive number, got true"),
    (SLOPES, _truth(re=None), "truth.re: missing (the formula has random effects)"),
    (SLOPES, _truth(seed=1), "truth.seed: unknown key (expected one of: beta, sigma, re, residual)"),
    (SLOPES, _truth(**{"re/subject": None}), "truth.re.subject: missing (the formula has this random-effect group)"),
    (SLOPES, _truth(**{"re/patient": {"sd": {}}}), "truth.re.patient: unknown group (the formula has: subject)"),
    (SLOPES, _truth(**{f"{SUBJECT}/sds": {}}), "truth.re.subject.sds: unknown key (expected one of: sd, corr, distribution)"),
    (SLOPES, _truth(**{f"{SUBJECT}/sd": None}), "truth.re.subject.sd: missing (the standard deviations of the group's effects)"),
    (SLOPES, _truth(**{f"{SUBJECT}/sd/time": None}), "truth.re.subject.sd.time: missing (the formula has this random effect)"),
    (SLOPES, _truth(**{f"{SUBJECT}/sd/time": -1.5}), "truth.re.subject.sd.time: must be a non-negative number, got -1.5"),
    (SLOPES, _truth(**{f"{SUBJECT}/sd/age": 1.0}), "truth.re.subject.sd.age: unknown effect (group subject has: (Intercept), time)"),
    (SLOPES, _truth(**{f"{SUBJECT}/corr": {"(Intercept):time": 1.2}}), 'truth.re.subject.corr."(Intercept):time": must be a number in [-1, 1], got 1.2'),
    (SLOPES, _truth(**{f"{SUBJECT}/corr": {"(Intercept):time": -1.0001}}), 'truth.re.subject.corr."(Intercept):time": must be a number in [-1, 1], got -1.0001'),
    (
        SLOPES,
        _truth(**{f"{SUBJECT}/corr": {"(Intercept):age": 0.5}}),
        "truth.re.subject.corr.\"(Intercept):age\": unknown pair, expected 'a:b' with two different effects of group subject ((Intercept), time)",
    ),
    (
        SLOPES,
        _truth(**{f"{SUBJECT}/corr": {"time:time": 0.5}}),
        "truth.re.subject.corr.\"time:time\": unknown pair, expected 'a:b' with two different effects of group subject ((Intercept), time)",
    ),
    (
        SLOPES,
        _truth(**{f"{SUBJECT}/corr": {"(Intercept):time": 0.1, "time:(Intercept)": 0.1}}),
        'truth.re.subject.corr."time:(Intercept)": given twice (also as (Intercept):time)',
    ),
    (SLOPES, _truth(**{f"{SUBJECT}/corr": [0.1]}), "truth.re.subject.corr: must be a table, got [0.1]"),
    (
        "y ~ 1 + x + (1 + time + x | subject)",
        _truth(
            beta={"(Intercept)": 1, "x": 2},
            re={"subject": {"sd": {"(Intercept)": 1, "time": 1, "x": 1}, "corr": {"(Intercept):time": 0.9, "(Intercept):x": 0.9, "time:x": -0.9}}},
        ),
        "truth.re.subject.corr: is not a valid correlation matrix (not positive semi-definite)",
    ),
    (
        "y ~ 1 + time + (1 + time || subject)",
        _truth(**{f"{SUBJECT}/corr": {"(Intercept):time": 0.07}}),
        'truth.re.subject.corr."(Intercept):time": must be 0: (Intercept) and time are in separate (uncorrelated) terms of the formula',
    ),
    (
        "y ~ 1 + time + (1 | state/city)",
        _truth(re={"state": {"sd": {"(Intercept)": 1.0}}}),
        'truth.re."state:city": missing (the formula has this random-effect group)',
    ),
    (SLOPES, [1, 2], "truth: must be a table, got [1, 2]"),
]


@pytest.mark.parametrize(("formula", "truth", "message"), MESSAGES, ids=[m[2].split(":")[0] for m in MESSAGES])
def test_truth_error_messages(formula, truth, message):
    with pytest.raises(TruthError) as info:
        truth_to_parameters(design_of(formula), truth)
    assert str(info.value) == message
    assert isinstance(info.value, WorkbenchError) and "\n" not in message


def test_error_prefix_names_the_key_path_of_the_truth():
    with pytest.raises(TruthError, match=r'^grid\.truth\.sigma: must be a positive number, got -1$'):
        truth_to_parameters(design_of(SLOPES), _truth(sigma=-1), prefix="grid.truth")


def test_parameters_of_the_wrong_length_are_refused():
    design = design_of(SLOPES)
    with pytest.raises(WorkbenchError, match=r"^theta: expected 3 values, got 2$"):
        parameter_values(design, [1.0, 2.0], [1.0, 0.0], 1.0)
    with pytest.raises(WorkbenchError, match=r"^beta: expected 2 values \(one per fixed effect\), got 1$"):
        parameters_to_truth(design, [1.0], [1.0, 0.0, 1.0], 1.0)


@pytest.mark.parametrize("rho", [1.0, -1.0])
def test_a_correlation_of_one_is_a_singular_covariance(rho):
    """|corr| = 1 is valid for the study file's check and for the design's (they agree)."""
    truth = _truth(**{f"{SUBJECT}/corr": {"(Intercept):time": rho}})
    validate_truth(truth)
    design = design_of(SLOPES)
    beta, theta, sigma = truth_to_parameters(design, truth)
    cov = term_covariances(design, theta, sigma)[0]
    sd = np.sqrt(np.diag(cov))
    assert cov[0, 1] == pytest.approx(rho * sd[0] * sd[1], rel=1e-12)
    assert abs(np.linalg.det(cov)) < 1e-9 * cov[0, 0] * cov[1, 1]
    assert term_lambdas(design, theta)[0][1, 1] == 0.0


@given(st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_semidefinite_cholesky_reproduces_the_matrix(q, seed):
    """LL' = A for random PSD A of any rank (a brute-force twin: the product itself)."""
    rng = np.random.default_rng(seed)
    factor = rng.standard_normal((q, rng.integers(1, q + 1)))
    matrix = factor @ factor.T
    lower = semidefinite_cholesky(matrix, tolerance=1e-10)
    assert lower is not None and np.allclose(np.triu(lower, 1), 0.0)
    np.testing.assert_allclose(lower @ lower.T, matrix, atol=1e-8)


def test_semidefinite_cholesky_refuses_an_indefinite_matrix():
    assert semidefinite_cholesky(np.array([[1.0, 2.0], [2.0, 1.0]])) is None
    assert semidefinite_cholesky(np.array([[0.0, 1.0], [1.0, 1.0]])) is None


def test_parameter_labels_name_kind_group_effect_and_scale():
    design = design_of(SLOPES)
    labels = parameter_labels(design)
    assert [label.name for label in labels] == parameter_names(design)
    by_name = {label.name: label for label in labels}
    assert by_name["beta[time]"][1:] == ("fixed", "", "time", "value")
    assert by_name["var[subject:time]"][1:] == ("variance", "subject", "time", "variance")
    assert by_name["cov[subject:(Intercept),time]"][1:] == ("covariance", "subject", "(Intercept),time", "variance")
    assert by_name["sd[subject:(Intercept)]"][1:] == ("sd", "subject", "(Intercept)", "sd")
    assert by_name["corr[subject:(Intercept),time]"][1:] == ("corr", "subject", "(Intercept),time", "sd")
    assert by_name["var[Residual]"][1:] == ("residual", "Residual", "", "variance")
    assert by_name["sd[Residual]"][1:] == ("residual", "Residual", "", "sd")
