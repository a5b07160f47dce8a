"""Layout keys for unequal group sizes and missing data: sizes from distributions, MCAR, MAR dropout."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import expit

from workbench.errors import LayoutError
from workbench.simulation.layout import make_layout, prepare_layout, validate_layout

LONGITUDINAL = {"kind": "longitudinal", "subjects": 4, "times": [0, 1, 2]}
NESTED = {"kind": "nested", "levels": {"school": 3, "class": 4}, "size": 5}
CROSSED = {"kind": "crossed", "factors": {"sender": 6, "receiver": 6}}
BOUND = 5.0  # standard errors


def make(spec, seed=0):
    return make_layout(spec, np.random.default_rng(seed))


def with_(spec, **changes):
    result = copy.deepcopy(spec)
    result.update(changes)
    return result


def sizes(frame, keys):
    return frame.groupby(keys, sort=False).size().to_numpy()


# --- group sizes ----------------------------------------------------------------------


def test_nested_poisson_sizes_have_the_shifted_poisson_mean_and_variance():
    """min + Poisson(mean − min): mean 6, variance 4, never below 2."""
    frame = make(with_(NESTED, levels={"school": 100, "class": 100}, size={"poisson": 6, "min": 2}), seed=3)
    counts = sizes(frame, ["school", "class"])
    assert len(counts) == 10_000 and counts.min() >= 2
    assert abs(counts.mean() - 6.0) <= BOUND * math.sqrt(4.0 / counts.size)
    # Var of the sample variance of a Poisson(λ): (λ + 2λ²)/N for its fourth central moment λ + 3λ²
    assert abs(counts.var() - 4.0) <= BOUND * math.sqrt((4.0 + 2 * 16.0) / counts.size)


def test_nested_size_list_cycles_over_the_units():
    frame = make(with_(NESTED, size=[2, 3, 5]))
    assert sizes(frame, ["school", "class"]).tolist() == [2, 3, 5] * 4


def test_longitudinal_visits_from_a_list_a_range_or_poisson():
    times = list(range(6))
    frame = make(with_(LONGITUDINAL, subjects=5, times=times, visits=[6, 2]))
    assert sizes(frame, ["subject"]).tolist() == [6, 2, 6, 2, 6]
    frame = make(with_(LONGITUDINAL, subjects=400, times=times, visits={"min": 2, "max": 4}), seed=1)
    assert set(sizes(frame, ["subject"])) == {2, 3, 4}
    frame = make(with_(LONGITUDINAL, subjects=4000, times=times, visits={"poisson": 3, "min": 1}), seed=2)
    counts = sizes(frame, ["subject"])
    assert counts.min() >= 1 and counts.max() == 6  # capped at the number of times
    # E min(1 + Poisson(2), 6), from the Poisson probabilities
    k = np.arange(0, 60)
    pmf = np.exp(k * math.log(2.0) - 2.0 - np.array([math.lgamma(v + 1) for v in k]))
    capped = np.minimum(1 + k, 6)
    mean, var = (pmf * capped).sum(), (pmf * capped**2).sum() - (pmf * capped).sum() ** 2
    assert abs(counts.mean() - mean) <= BOUND * math.sqrt(var / counts.size)
    for _, visits in frame.groupby("subject"):
        assert visits["time"].tolist() == times[: len(visits)]


# --- MCAR ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [LONGITUDINAL, NESTED, CROSSED])
def test_missing_removes_each_observation_with_its_probability(spec):
    big = {"longitudinal": {"subjects": 3000}, "nested": {"levels": {"school": 60, "class": 50}}, "crossed": {"factors": {"sender": 100, "receiver": 100}}}
    spec = with_(spec, **big[spec["kind"]], missing=0.3)
    complete = make(with_(spec, missing=0.0), seed=4)
    frame = make(spec, seed=4)
    n = len(complete)
    assert abs(len(frame) / n - 0.7) <= BOUND * math.sqrt(0.21 / n)
    # these balanced layouts draw nothing else: the missing draw is the stream's first
    keep = np.random.default_rng(4).random(n) >= 0.3
    pd.testing.assert_frame_equal(frame, complete.loc[keep].reset_index(drop=True))


def test_missing_keeps_unit_covariates_constant_and_zero_missing_draws_nothing():
    covariates = {"age": {"dist": "normal", "level": "subject"}, "x": {"dist": "normal"}}
    spec = with_(LONGITUDINAL, subjects=50, covariates=covariates)
    pd.testing.assert_frame_equal(make(with_(spec, missing=0), seed=9), make(spec, seed=9))
    frame = make(with_(spec, missing=0.5), seed=9)
    assert (frame.groupby("subject")["age"].nunique() == 1).all()
    complete = make(spec, seed=9)
    assert set(frame["x"]) <= set(complete["x"])


def test_missing_that_removes_every_row_is_an_error():
    with pytest.raises(LayoutError, match=r"^layout\.missing: removed every row this time \(missing 0\.999\)$"):
        make(with_(LONGITUDINAL, subjects=1, times=[0], missing=0.999))


# --- MAR dropout ----------------------------------------------------------------------

MAR = with_(LONGITUDINAL, subjects=3000, times=[0, 1, 2, 3, 4], dropout={"intercept": -2.0, "slope": 0.8})


def twin_keep(frame, y, intercept, slope, uniforms):
    """Subject by subject: visit j ≥ 1 is observed if the subject was at j − 1 and did not leave."""
    keep = np.zeros(len(frame), dtype=bool)
    for _, rows in frame.groupby("subject", sort=False).indices.items():
        keep[rows[0]] = True
        for previous, row in zip(rows, rows[1:]):
            if not keep[previous] or uniforms[row] < expit(intercept + slope * y[previous]):
                break
            keep[row] = True
    return keep


@given(st.integers(0, 2**32 - 1), st.floats(-3, 1), st.floats(-2, 2))
def test_mar_dropout_matches_its_numpy_twin(seed, intercept, slope):
    spec = with_(MAR, subjects=30, dropout={"intercept": intercept, "slope": slope})
    layout = prepare_layout(spec)
    frame = layout.make(np.random.default_rng(seed))
    y = np.random.default_rng(seed + 1).normal(size=len(frame))
    keep = layout.dropout.keep(frame, y, np.random.default_rng(seed + 2))
    uniforms = np.random.default_rng(seed + 2).random(len(frame))
    np.testing.assert_array_equal(keep, twin_keep(frame, y, intercept, slope, uniforms))


def test_mar_dropout_follows_the_logistic_model_of_the_previous_response():
    """Over the visits at risk (the subject was seen at j − 1), leave − p has mean 0 given y_{j−1}:
    Σ(leave − p) and Σ(leave − p)·y_{j−1} are sums of independent centred terms of known variance."""
    layout = prepare_layout(MAR)
    frame = layout.make(np.random.default_rng(1))
    y = np.random.default_rng(2).normal(0.5, 1.5, size=len(frame))
    keep = layout.dropout.keep(frame, y, np.random.default_rng(3))
    first = frame["subject"].ne(frame["subject"].shift()).to_numpy()
    at_risk = np.flatnonzero(~first & np.roll(keep, 1))
    p = expit(-2.0 + 0.8 * y[at_risk - 1])
    leave = ~keep[at_risk]
    for weight in (np.ones_like(p), y[at_risk - 1]):
        residual = (leave - p) * weight
        assert abs(residual.sum()) <= BOUND * math.sqrt((p * (1 - p) * weight**2).sum())
    # monotone: once a visit is missing, so are the later ones of the subject
    for _, kept in pd.Series(keep).groupby(frame["subject"].to_numpy()):
        values = kept.to_numpy()
        assert values[0] and np.all(np.diff(values.astype(int)) <= 0)


# --- validation -----------------------------------------------------------------------

BAD = [
    (with_(LONGITUDINAL, missing=1), "layout.missing: must be a number in [0, 1), got 1"),
    (with_(NESTED, missing=-0.1), "layout.missing: must be a number in [0, 1), got -0.1"),
    (with_(CROSSED, redraw="yes"), 'layout.redraw: must be true or false, got "yes"'),
    (with_(LONGITUDINAL, dropout={"intercept": -1}), "layout.dropout.slope: required key is missing"),
    (with_(LONGITUDINAL, dropout={"intercept": -1, "slope": 1, "on": "y"}), "layout.dropout.on: unknown key (expected one of: intercept, slope)"),
    (with_(LONGITUDINAL, dropout={"intercept": "a", "slope": 1}), 'layout.dropout.intercept: must be a finite number, got "a"'),
    (with_(LONGITUDINAL, dropout={"intercept": -1, "slope": 1}, missing=0.1), "layout.missing: cannot be combined with a response-dependent layout.dropout"),
    (with_(LONGITUDINAL, dropout={"intercept": -1, "slope": 1}, visits={"min": 2}), "layout.dropout: cannot be combined with layout.visits"),
    (with_(LONGITUDINAL, visits=[1, 4]), "layout.visits: must be a non-empty list of integers from 1 to 3, got [1, 4]"),
    (with_(LONGITUDINAL, visits=[]), "layout.visits: must be a non-empty list of integers from 1 to 3, got []"),
    (with_(LONGITUDINAL, visits={"min": 2, "max": 1}), "layout.visits.max: must be an integer from 2 to 3, got 1"),
    (with_(LONGITUDINAL, visits={"poisson": 0.5}), "layout.visits.poisson: must be a number of at least layout.visits.min (1), got 0.5"),
    (with_(LONGITUDINAL, visits={"poisson": 2, "max": 3}), "layout.visits.max: unknown key (expected one of: poisson, min)"),
    (with_(NESTED, size={"poisson": 3, "min": 0}), "layout.size.min: must be a positive integer, got 0"),
    (with_(NESTED, size={"poisson": "3"}), 'layout.size.poisson: must be a number of at least layout.size.min (1), got "3"'),
    (with_(NESTED, size=[3, 0]), "layout.size: must be a non-empty list of positive integers, got [3, 0]"),
    (with_(NESTED, size=[2.5]), "layout.size: must be a non-empty list of positive integers, got [2.5]"),
]


@pytest.mark.parametrize(("spec", "message"), BAD)
def test_validation_messages(spec, message):
    with pytest.raises(LayoutError) as error:
        validate_layout(spec)
    assert str(error.value) == message


def test_the_prepared_spec_says_what_varies():
    assert not prepare_layout(LONGITUDINAL).redraw and prepare_layout(LONGITUDINAL).dropout is None
    assert prepare_layout(with_(NESTED, redraw=True)).redraw
    dropout = prepare_layout(MAR).dropout
    assert (dropout.intercept, dropout.slope, dropout.subject) == (-2.0, 0.8, "subject")
