"""Layout generators: row counts, structure, determinism, covariates and every validation message."""

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import LayoutError
from workbench.simulation.layout import MAX_ROWS, make_layout, validate_layout

DATA = Path(__file__).parent / "data"

LONGITUDINAL = {"kind": "longitudinal", "subjects": 4, "times": [0, 1, 2]}
NESTED = {"kind": "nested", "levels": {"state": 3, "city": 4, "hood": 2}, "size": 5}
CROSSED = {"kind": "crossed", "factors": {"sender": 6, "receiver": 6}}
TABLE = {"kind": "table", "path": "sleepstudy.csv"}


def make(spec, seed=0, base_dir=None):
    return make_layout(spec, np.random.default_rng(seed), base_dir=base_dir)


def with_(spec, **changes):
    result = copy.deepcopy(spec)
    result.update(changes)
    return result


def visits_per_subject(frame):
    return frame.groupby("subject").size().to_numpy()


# --- longitudinal ---------------------------------------------------------------------


def test_longitudinal_balanced_rows_are_every_subject_at_every_time():
    frame = make(LONGITUDINAL)
    assert list(frame.columns) == ["subject", "time"]
    assert len(frame) == 12
    assert frame["subject"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert frame["time"].tolist() == [0, 1, 2] * 4


def test_longitudinal_column_names_and_float_times():
    frame = make(with_(LONGITUDINAL, subject="id", time="week", times=[0, 0.5, 2]))
    assert list(frame.columns) == ["id", "week"]
    assert frame["week"].dtype == np.float64
    assert frame["week"].tolist()[:3] == [0.0, 0.5, 2.0]


@pytest.mark.parametrize("rule", [{"visits": {"min": 2}}, {"dropout": 0.3}])
def test_longitudinal_unbalanced_keeps_first_visits_sorted(rule):
    times = [0, 1, 2, 3, 4, 5]
    frame = make(with_(LONGITUDINAL, subjects=200, times=times, **rule), seed=3)
    counts = visits_per_subject(frame)
    assert len(counts) == 200
    assert counts.min() >= rule.get("visits", {"min": 1})["min"]
    assert counts.max() == len(times)
    assert len(set(counts)) > 1
    for _, visits in frame.groupby("subject"):
        assert visits["time"].tolist() == times[: len(visits)]
    pd.testing.assert_frame_equal(frame, frame.sort_values(["subject", "time"]))


def test_longitudinal_visits_min_spans_min_to_all():
    frame = make(with_(LONGITUDINAL, subjects=300, times=list(range(5)), visits={"min": 3}), seed=1)
    assert set(visits_per_subject(frame)) == {3, 4, 5}


def test_longitudinal_dropout_extremes():
    assert len(make(with_(LONGITUDINAL, dropout=0.0))) == 12
    assert set(visits_per_subject(make(with_(LONGITUDINAL, dropout=1.0)))) == {1}


def test_longitudinal_dropout_rate_matches_geometric_mean():
    # With two times, a subject keeps its second visit with probability 1 - dropout.
    frame = make(with_(LONGITUDINAL, subjects=20_000, times=[0, 1], dropout=0.25), seed=5)
    assert abs(len(frame) / 20_000 - 1.75) < 0.02


@pytest.mark.parametrize(
    "spec",
    [
        with_(LONGITUDINAL, subjects=50, visits={"min": 1}),
        with_(LONGITUDINAL, subjects=50, dropout=0.4),
        with_(NESTED, size={"min": 1, "max": 9}),
        with_(CROSSED, fraction=0.5),
    ],
)
def test_random_layouts_are_determined_by_the_seed(spec):
    pd.testing.assert_frame_equal(make(spec, seed=11), make(spec, seed=11))
    assert not make(spec, seed=11).equals(make(spec, seed=12))


# --- nested ---------------------------------------------------------------------------


def test_nested_balanced_counts_and_labels_within_parents():
    frame = make(NESTED)
    assert list(frame.columns) == ["state", "city", "hood"]
    assert len(frame) == 3 * 4 * 2 * 5
    assert (frame.groupby(["state", "city", "hood"]).size() == 5).all()
    for _, cities in frame.groupby("state"):
        assert sorted(cities["city"].unique()) == [1, 2, 3, 4]
    for _, hoods in frame.groupby(["state", "city"]):
        assert sorted(hoods["hood"].unique()) == [1, 2]
    pd.testing.assert_frame_equal(frame, frame.sort_values(["state", "city", "hood"]))


def test_nested_size_defaults_to_one():
    frame = make({"kind": "nested", "levels": {"school": 3, "class": 2}})
    assert len(frame) == 6


def test_nested_random_sizes_stay_in_range():
    frame = make(with_(NESTED, size={"min": 2, "max": 4}), seed=2)
    sizes = frame.groupby(["state", "city", "hood"]).size()
    assert len(sizes) == 24
    assert set(sizes) == {2, 3, 4}


@given(
    counts=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    size=st.integers(1, 3),
)
def test_nested_rows_are_product_of_levels_times_size(counts, size):
    levels = {f"f{i}": count for i, count in enumerate(counts)}
    frame = make({"kind": "nested", "levels": levels, "size": size})
    assert len(frame) == math.prod(counts) * size
    assert frame.drop_duplicates().shape[0] == math.prod(counts)


# --- crossed --------------------------------------------------------------------------


def test_crossed_full_has_every_cell_size_times():
    frame = make(with_(CROSSED, size=2))
    assert len(frame) == 6 * 6 * 2
    assert (frame.groupby(["sender", "receiver"]).size() == 2).all()
    assert frame.drop_duplicates().shape[0] == 36


def test_crossed_exclude_equal_drops_the_diagonal():
    frame = make(with_(CROSSED, exclude_equal=True))
    assert len(frame) == 6 * 5
    assert not (frame["sender"] == frame["receiver"]).any()


def test_crossed_exclude_equal_with_three_factors_drops_only_all_equal():
    frame = make({"kind": "crossed", "factors": {"a": 3, "b": 3, "c": 3}, "exclude_equal": True})
    assert len(frame) == 27 - 3
    assert ((frame["a"] == frame["b"]) & (frame["b"] == frame["c"])).sum() == 0


def test_crossed_fraction_keeps_a_subset_of_cells():
    spec = {"kind": "crossed", "factors": {"sender": 40, "receiver": 40}, "fraction": 0.3}
    frame = make(spec, seed=4)
    assert frame.drop_duplicates().shape[0] == len(frame)
    assert 0.25 < len(frame) / 1600 < 0.35
    assert frame["sender"].between(1, 40).all() and frame["receiver"].between(1, 40).all()


def test_crossed_fraction_that_keeps_no_cell_is_an_error():
    spec = {"kind": "crossed", "factors": {"a": 1, "b": 1}, "fraction": 1e-9}
    with pytest.raises(LayoutError, match=r"^layout\.fraction: kept no cell this time \(fraction 1e-09\)"):
        make(spec)


@given(counts=st.lists(st.integers(1, 5), min_size=2, max_size=3), size=st.integers(1, 3))
def test_crossed_rows_are_product_of_factors_times_size(counts, size):
    factors = {f"f{i}": count for i, count in enumerate(counts)}
    frame = make({"kind": "crossed", "factors": factors, "size": size})
    assert len(frame) == math.prod(counts) * size


# --- table ----------------------------------------------------------------------------


def test_table_reads_the_rows_as_they_are():
    frame = make(TABLE, base_dir=DATA)
    expected = pd.read_csv(DATA / "sleepstudy.csv")
    pd.testing.assert_frame_equal(frame, expected)


def test_table_keeps_the_listed_columns_in_order():
    frame = make(with_(TABLE, columns=["Subject", "Days"]), base_dir=DATA)
    assert list(frame.columns) == ["Subject", "Days"]
    assert len(frame) == 180


def test_table_path_is_relative_to_the_working_folder_without_base_dir(monkeypatch):
    monkeypatch.chdir(DATA)
    assert len(make(TABLE)) == 180


def test_table_errors(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(LayoutError) as error:
        validate_layout({"kind": "table", "path": "none.csv"}, tmp_path)
    assert str(error.value) == f"layout.path: no such file: {missing}"

    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n1,2,3,4\n")
    with pytest.raises(LayoutError, match=r"^layout\.path: cannot read .*ragged\.csv as CSV: .+$"):
        validate_layout({"kind": "table", "path": "ragged.csv"}, tmp_path)

    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LayoutError, match=r"^layout\.path: cannot read .*empty\.csv as CSV: .+$"):
        validate_layout({"kind": "table", "path": "empty.csv"}, tmp_path)

    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(LayoutError) as error:
        validate_layout({"kind": "table", "path": "header.csv"}, tmp_path)
    assert str(error.value) == f"layout.path: {tmp_path / 'header.csv'} has no rows"

    with pytest.raises(LayoutError) as error:
        validate_layout({"kind": "table", "path": "."}, tmp_path)
    assert str(error.value) == f"layout.path: no such file: {tmp_path}"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (["Days", "Age"], 'layout.columns: unknown column "Age" (the file has: Reaction, Days, Subject)'),
        (["Days", "Days"], 'layout.columns: column "Days" is listed twice'),
        ([], "layout.columns: must be a non-empty list of column names, got []"),
        ("Days", 'layout.columns: must be a non-empty list of column names, got "Days"'),
    ],
)
def test_table_column_errors(columns, message):
    with pytest.raises(LayoutError) as error:
        validate_layout(with_(TABLE, columns=columns), DATA)
    assert str(error.value) == message


# --- covariates -----------------------------------------------------------------------


def test_observation_covariates_have_the_requested_distributions():
    covariates = {
        "x": {"dist": "normal", "mean": 10.0, "sd": 2.0},
        "u": {"dist": "uniform", "low": -1, "high": 1},
        "b": {"dist": "binary", "p": 0.25},
        "c": {"dist": "categorical", "levels": ["lo", "mid", "hi"], "probs": [0.5, 0.5, 0.0]},
        "z": {"dist": "normal", "sd": 0},
    }
    frame = make(with_(LONGITUDINAL, subjects=2000, covariates=covariates), seed=8)
    assert list(frame.columns) == ["subject", "time", "x", "u", "b", "c", "z"]
    assert abs(frame["x"].mean() - 10) < 0.1 and abs(frame["x"].std() - 2) < 0.1
    assert frame["u"].between(-1, 1).all()
    assert set(frame["b"]) == {0, 1} and abs(frame["b"].mean() - 0.25) < 0.02
    assert frame["c"].dtype == "category"
    assert list(frame["c"].cat.categories) == ["lo", "mid", "hi"]
    assert set(frame["c"]) == {"lo", "mid"}
    assert (frame["z"] == 0).all()


def test_group_level_covariate_is_constant_within_each_group():
    covariates = {"treated": {"dist": "binary", "level": "subject"}, "age": {"dist": "normal", "level": "subject"}}
    frame = make(with_(LONGITUDINAL, subjects=50, covariates=covariates), seed=9)
    per_subject = frame.groupby("subject")[["treated", "age"]].nunique()
    assert (per_subject == 1).all().all()
    assert frame.groupby("subject")["age"].first().nunique() == 50


def test_nested_level_covariate_is_drawn_per_unit_not_per_label():
    covariates = {"income": {"dist": "normal", "level": "city"}}
    frame = make(with_(NESTED, covariates=covariates), seed=10)
    per_city = frame.groupby(["state", "city"])["income"]
    assert (per_city.nunique() == 1).all()
    # City 1 of each state is a different city, with its own value.
    assert per_city.first().nunique() == 3 * 4


def test_grid_covariate_cycles_within_each_innermost_group():
    covariates = {"dose": {"dist": "grid", "values": [0, 10]}}
    frame = make(with_(LONGITUDINAL, subjects=30, dropout=0.5, covariates=covariates), seed=6)
    for _, visits in frame.groupby("subject"):
        assert visits["dose"].tolist() == [0, 10, 0, 10][: len(visits)]


def test_grid_covariate_at_a_factor_level_alternates_over_units_within_parents():
    covariates = {
        "arm": {"dist": "grid", "values": ["control", "treated"], "level": "city"},
        "wave": {"dist": "grid", "values": [1, 2, 3], "level": "state"},
    }
    frame = make(with_(NESTED, covariates=covariates))
    cities = frame.groupby(["state", "city"])["arm"].first()
    assert cities.tolist() == ["control", "treated"] * 6
    assert frame.groupby("state")["wave"].first().tolist() == [1, 2, 3]


def test_grid_covariate_on_a_table_runs_through_all_rows():
    covariates = {"k": {"dist": "grid", "values": [1, 2, 3]}}
    frame = make(with_(TABLE, covariates=covariates), base_dir=DATA)
    assert frame["k"].tolist() == [1, 2, 3] * 60


def test_crossed_factor_level_covariate():
    covariates = {"sender_age": {"dist": "uniform", "level": "sender"}}
    frame = make(with_(CROSSED, covariates=covariates))
    assert (frame.groupby("sender")["sender_age"].nunique() == 1).all()
    assert frame.groupby("receiver")["sender_age"].nunique().min() == 6


def test_covariates_are_determined_by_the_seed():
    covariates = {"x": {"dist": "normal"}, "g": {"dist": "categorical", "levels": [1, 2, 3], "level": "state"}}
    spec = with_(NESTED, covariates=covariates)
    pd.testing.assert_frame_equal(make(spec, seed=1), make(spec, seed=1))


def test_make_layout_needs_a_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        make_layout(LONGITUDINAL, 0)


def test_validate_layout_uses_the_prefix():
    with pytest.raises(LayoutError) as error:
        validate_layout(with_(LONGITUDINAL, subjects=0), prefix="point.layout")
    assert str(error.value) == "point.layout.subjects: must be a positive integer, got 0"


def test_a_too_large_layout_is_refused_before_generating():
    spec = {"kind": "crossed", "factors": {"a": 10_000, "b": 10_001}}
    with pytest.raises(LayoutError) as error:
        validate_layout(spec)
    assert str(error.value) == f"layout: would have up to 100,010,000 rows, more than {MAX_ROWS:,}"


# --- validation messages --------------------------------------------------------------

KIND_LIST = "longitudinal | nested | crossed | table"
SIZES = "a positive integer, a table {min, max} or {poisson, min}, or a list of positive integers"
LONGITUDINAL_KEYS = "kind, subjects, times, subject, time, visits, dropout, covariates, missing, redraw"

BAD_SPECS = [
    (3, "layout: must be a table, got 3"),
    ({"subjects": 3}, "layout.kind: required key is missing (one of: longitudinal, nested, crossed, table)"),
    ({"kind": "panel"}, f'layout.kind: must be one of {KIND_LIST}, got "panel"'),
    (with_(LONGITUDINAL, subjects=-3), "layout.subjects: must be a positive integer, got -3"),
    (with_(LONGITUDINAL, subjects=2.0), "layout.subjects: must be a positive integer, got 2.0"),
    (with_(LONGITUDINAL, subjects=True), "layout.subjects: must be a positive integer, got true"),
    (with_(LONGITUDINAL, subjetcs=3), f"layout.subjetcs: unknown key (expected one of: {LONGITUDINAL_KEYS})"),
    ({"kind": "longitudinal", "times": [1]}, "layout.subjects: required key is missing"),
    (with_(LONGITUDINAL, times=[]), "layout.times: must be a non-empty list of numbers, got []"),
    (with_(LONGITUDINAL, times=[0, "1"]), 'layout.times: must be a non-empty list of numbers, got [0, "1"]'),
    (with_(LONGITUDINAL, times=[0, float("nan")]), "layout.times: must be a non-empty list of numbers, got [0, nan]"),
    (with_(LONGITUDINAL, times=[0, 2, 1]), "layout.times: must be increasing, got [0, 2, 1]"),
    (with_(LONGITUDINAL, times=[0, 1, 1]), "layout.times: must be increasing, got [0, 1, 1]"),
    (with_(LONGITUDINAL, subject=""), 'layout.subject: must be a non-empty string, got ""'),
    (with_(LONGITUDINAL, time="subject"), "layout.time: same column name as layout.subject"),
    (with_(LONGITUDINAL, visits=3), "layout.visits: must be a table like {min = 3} or a list of visit counts, got 3"),
    (with_(LONGITUDINAL, visits={"min": 4}), "layout.visits.min: must be an integer from 1 to 3, got 4"),
    (with_(LONGITUDINAL, visits={"min": 0}), "layout.visits.min: must be an integer from 1 to 3, got 0"),
    (with_(LONGITUDINAL, visits={}), "layout.visits.min: required key is missing"),
    (with_(LONGITUDINAL, visits={"min": 1, "mode": 2}), "layout.visits.mode: unknown key (expected one of: min, max)"),
    (with_(LONGITUDINAL, dropout=1.5), "layout.dropout: must be a number in [0, 1], got 1.5"),
    (with_(LONGITUDINAL, dropout="0.2"), 'layout.dropout: must be a number in [0, 1], got "0.2"'),
    (with_(LONGITUDINAL, dropout=0.2, visits={"min": 2}), "layout.dropout: cannot be combined with layout.visits"),
    (with_(NESTED, levels={}), "layout.levels: must be a table like {state = 10, ...}, got {}"),
    (with_(NESTED, levels=[20, 5]), "layout.levels: must be a table like {state = 10, ...}, got [20, 5]"),
    (with_(NESTED, levels={"state": 2, "city": 0}), "layout.levels.city: must be a positive integer, got 0"),
    (with_(NESTED, levels={"state": 2, "": 3}), 'layout.levels."": a factor needs a non-empty name'),
    (with_(NESTED, size=0), f"layout.size: must be {SIZES}, got 0"),
    (with_(NESTED, size="5"), f'layout.size: must be {SIZES}, got "5"'),
    (with_(NESTED, size={"min": 4, "max": 2}), "layout.size.max: must be at least layout.size.min (4), got 2"),
    (with_(NESTED, size={"min": 0, "max": 2}), "layout.size.min: must be a positive integer, got 0"),
    (with_(NESTED, size={"min": 1}), "layout.size.max: required key is missing"),
    (with_(NESTED, balanced=True), "layout.balanced: unknown key (expected one of: kind, levels, size, covariates, missing, redraw)"),
    ({"kind": "nested"}, "layout.levels: required key is missing"),
    (with_(CROSSED, factors={"sender": 3}), "layout.factors: must be a table of at least 2 entries like {sender = 10, ...}, got {sender = 3}"),
    (with_(CROSSED, factors={"a": 3, "b": -1}), "layout.factors.b: must be a positive integer, got -1"),
    (with_(CROSSED, size=0), "layout.size: must be a positive integer, got 0"),
    (with_(CROSSED, fraction=0), "layout.fraction: must be a number in (0, 1], got 0"),
    (with_(CROSSED, fraction=1.2), "layout.fraction: must be a number in (0, 1], got 1.2"),
    (with_(CROSSED, exclude_equal=1), "layout.exclude_equal: must be true or false, got 1"),
    (with_(CROSSED, factors={"a": 3, "b": 4}, exclude_equal=True), "layout.exclude_equal: needs factors with equal numbers of levels, got {a = 3, b = 4}"),
    (with_(CROSSED, factors={"a": 1, "b": 1}, exclude_equal=True), "layout.exclude_equal: leaves no cell when every factor has one level"),
    ({"kind": "table"}, "layout.path: required key is missing"),
    ({"kind": "table", "path": ""}, 'layout.path: must be a non-empty string, got ""'),
    (with_(LONGITUDINAL, covariates=[1]), "layout.covariates: must be a table, got [1]"),
    (with_(LONGITUDINAL, covariates={"x": 1}), "layout.covariates.x: must be a table, got 1"),
    (with_(LONGITUDINAL, covariates={"x": {}}), "layout.covariates.x.dist: required key is missing (one of: normal, uniform, binary, categorical, grid)"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "gamma"}}), 'layout.covariates.x.dist: must be one of normal | uniform | binary | categorical | grid, got "gamma"'),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "normal", "p": 0.5}}), "layout.covariates.x.p: unknown key (expected one of: dist, mean, sd, level)"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "normal", "sd": -1}}), "layout.covariates.x.sd: must be a non-negative number, got -1"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "normal", "mean": "a"}}), 'layout.covariates.x.mean: must be a finite number, got "a"'),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "uniform", "low": 1, "high": 1}}), "layout.covariates.x.high: must be greater than layout.covariates.x.low (1), got 1"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "binary", "p": 2}}), "layout.covariates.x.p: must be a number in [0, 1], got 2"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical"}}), "layout.covariates.x.levels: required key is missing"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical", "levels": []}}), "layout.covariates.x.levels: must be a non-empty list of strings or of numbers, got []"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical", "levels": ["a", 1]}}), 'layout.covariates.x.levels: must be a non-empty list of strings or of numbers, got ["a", 1]'),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical", "levels": ["a", "a"]}}), 'layout.covariates.x.levels: lists "a" twice'),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical", "levels": ["a", "b"], "probs": [0.5, 0.6]}}), "layout.covariates.x.probs: must be 2 non-negative numbers (one per level) summing to 1, got [0.5, 0.6]"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "categorical", "levels": ["a", "b"], "probs": [1.0]}}), "layout.covariates.x.probs: must be 2 non-negative numbers (one per level) summing to 1, got [1.0]"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "grid"}}), "layout.covariates.x.values: required key is missing"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "grid", "values": [True]}}), "layout.covariates.x.values: must be a non-empty list of strings or of numbers, got [true]"),
    (with_(LONGITUDINAL, covariates={"x": {"dist": "normal", "level": "patient"}}), 'layout.covariates.x.level: must be "observation" or a column of the layout (subject, time), got "patient"'),
    (with_(LONGITUDINAL, covariates={"subject": {"dist": "normal"}}), "layout.covariates.subject: name clashes with an existing column of the layout"),
    (with_(LONGITUDINAL, covariates={"": {"dist": "normal"}}), 'layout.covariates."": a covariate needs a non-empty name'),
    (with_(LONGITUDINAL, covariates={"x y": {"dist": "grid", "values": []}}), 'layout.covariates."x y".values: must be a non-empty list of strings or of numbers, got []'),
]


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS)
def test_validation_messages(spec, message):
    with pytest.raises(LayoutError) as error:
        validate_layout(spec, DATA)
    assert str(error.value) == message
    assert "\n" not in message
    with pytest.raises(LayoutError):
        make_layout(spec, np.random.default_rng(0), DATA)


def test_table_covariate_clash_and_levels_use_kept_columns():
    spec = with_(TABLE, columns=["Days"], covariates={"Subject": {"dist": "normal", "level": "Days"}})
    assert list(make(spec, base_dir=DATA).columns) == ["Days", "Subject"]
    spec = with_(TABLE, covariates={"Days": {"dist": "normal"}})
    with pytest.raises(LayoutError, match=r"^layout\.covariates\.Days: name clashes"):
        validate_layout(spec, DATA)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(LayoutError) as error:
        validate_layout(with_(LONGITUDINAL, times=list(range(100, 0, -1))))
    message = str(error.value)
    assert message.startswith("layout.times: must be increasing, got [100, 99, ")
    assert message.endswith("...") and len(message) < 120
