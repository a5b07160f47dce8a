"""The study file: parsing, defaults, grid expansion, and every validation message."""

import dataclasses
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.errors import StudyError, TruthError, WorkbenchError
from workbench.study.spec import DesignPoint, Execution, Study, load_study, parse_study, validate_truth

DATA = Path(__file__).parent / "data"

# The example of DESIGN.md §5.
EXAMPLE = """\
[study]
name = "slopes-ml-vs-reml"
seed = 20261125
replicates = 1000
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + time + (1 + time | subject)"

[layout]                      # one data set's rows
kind = "longitudinal"         # longitudinal | nested | crossed | table (a CSV's rows, for a parametric bootstrap)
subjects = 50
times = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]

[truth]
beta = { "(Intercept)" = 250.0, time = 10.0 }
sigma = 25.6
[truth.re.subject]
sd = { "(Intercept)" = 24.7, time = 5.9 }
corr = { "(Intercept):time" = 0.07 }

[grid]                        # dotted paths into this file; full factorial of design points
"layout.subjects" = [10, 20, 50]
"truth.re.subject.sd.time" = [0.0, 5.9]
"""

NO_GRID = EXAMPLE[: EXAMPLE.index("[grid]")]


def with_layout(block):
    """The example without its grid, with ``block`` as its [layout] table."""
    blocks = NO_GRID.split("\n\n")
    return "\n\n".join(block if part.startswith("[layout]") else part for part in blocks)


def parse(text, base_dir=DATA):
    return parse_study(text, base_dir)


def edit(text, old, new):
    """Replace the first ``old`` in ``text`` by ``new``; append ``new`` if ``old`` is empty."""
    if not old:
        return text + new
    assert old in text, old
    return text.replace(old, new, 1)


def message_of(text, base_dir=DATA):
    with pytest.raises(StudyError) as error:
        parse(text, base_dir)
    message = str(error.value)
    assert "\n" not in message
    return message


# --- the example ----------------------------------------------------------------------


def test_example_parses():
    study = parse(EXAMPLE)
    assert study.name == "slopes-ml-vs-reml"
    assert study.seed == 20261125
    assert study.replicates == 1000
    assert study.methods == ("ML", "REML")
    assert study.formula == "y ~ 1 + time + (1 + time | subject)"
    assert study.layout == {"kind": "longitudinal", "subjects": 50, "times": list(range(10))}
    assert study.truth == {
        "beta": {"(Intercept)": 250.0, "time": 10.0},
        "sigma": 25.6,
        "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9}, "corr": {"(Intercept):time": 0.07}}},
    }
    assert study.grid == {"layout.subjects": (10, 20, 50), "truth.re.subject.sd.time": (0.0, 5.9)}
    assert study.level == 0.95
    assert study.execution.chunk_size == 64 and study.execution.scheduler is None
    assert study.execution.workers >= 1
    assert study.text == EXAMPLE
    assert study.base_dir == DATA


def test_example_points_are_the_full_factorial_first_key_slowest():
    points = parse(EXAMPLE).points()
    assert [point.index for point in points] == list(range(6))
    assert [tuple(point.factors.values()) for point in points] == list(
        itertools.product([10, 20, 50], [0.0, 5.9])
    )
    for point in points:
        assert point.layout["subjects"] == point.factors["layout.subjects"]
        assert point.truth["re"]["subject"]["sd"]["time"] == point.factors["truth.re.subject.sd.time"]
        assert point.layout["times"] == list(range(10))
        assert point.truth["sigma"] == 25.6


def test_substituted_values_keep_their_toml_types():
    text = edit(EXAMPLE, '"truth.re.subject.sd.time" = [0.0, 5.9]', '"truth.re.subject.sd.time" = [0, 5.9]')
    sds = [point.truth["re"]["subject"]["sd"]["time"] for point in parse(text).points()]
    assert [type(sd) for sd in sds[:2]] == [int, float]
    assert all(type(point.layout["subjects"]) is int for point in parse(text).points())


def test_points_share_no_mutable_values():
    study = parse(EXAMPLE)
    first, second = study.points()[:2]
    first.layout["times"].append(99)
    first.truth["beta"]["time"] = -1.0
    assert second.layout["times"] == list(range(10))
    assert second.truth["beta"]["time"] == 10.0
    assert study.layout["times"] == list(range(10))
    assert study.truth["beta"]["time"] == 10.0
    assert study.points()[0].layout["times"] == list(range(10))


def test_grid_values_may_be_tables():
    text = NO_GRID + '[grid]\n"layout.visits" = [{min = 2}, {min = 5}]\n'
    text = edit(text, "subjects = 50", "subjects = 50\nvisits = {min = 3}")
    points = parse(text).points()
    assert [point.layout["visits"] for point in points] == [{"min": 2}, {"min": 5}]


def test_grid_path_may_quote_a_key():
    text = NO_GRID + "[grid]\n'truth.beta.\"(Intercept)\"' = [1.0, 2.0]\n"
    points = parse(text).points()
    assert [point.truth["beta"]["(Intercept)"] for point in points] == [1.0, 2.0]
    assert list(points[0].factors) == ['truth.beta."(Intercept)"']


def test_grid_path_may_name_a_key_with_parentheses_unquoted():
    text = NO_GRID + '[grid]\n"truth.beta.(Intercept)" = [1.0, 2.0]\n'
    assert [p.truth["beta"]["(Intercept)"] for p in parse(text).points()] == [1.0, 2.0]


@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_number_of_points_is_the_product_of_grid_lengths(sizes):
    keys = ['"layout.subjects"', '"truth.sigma"', '"truth.beta.time"']
    lines = [f"{key} = [{', '.join(str(v + 1) for v in range(size))}]" for key, size in zip(keys, sizes)]
    study = parse(NO_GRID + "[grid]\n" + "\n".join(lines) + "\n")
    points = study.points()
    assert len(points) == len(list(itertools.product(*[range(s) for s in sizes])))
    assert len({tuple(point.factors.values()) for point in points}) == len(points)


def test_without_a_grid_there_is_one_point_with_no_factors():
    study = parse(NO_GRID)
    assert study.grid == {}
    (point,) = study.points()
    assert point == DesignPoint(0, {}, study.layout, study.truth)
    assert point.layout is not study.layout


def test_study_and_points_are_frozen():
    study = parse(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.points()[0].index = 3


def test_defaults_and_optional_tables():
    text = edit(NO_GRID, 'methods = ["ML", "REML"]\n', "")
    study = parse(text)
    assert study.methods == ("ML", "REML")
    text = NO_GRID + '[execution]\nworkers = 3\nchunk_size = 10\nscheduler = "tcp://head:8786"\n[summary]\nlevel = 0.9\n'
    study = parse(edit(text, 'methods = ["ML", "REML"]', 'methods = ["REML"]'))
    assert study.methods == ("REML",)
    assert study.execution == Execution(workers=3, chunk_size=10, scheduler="tcp://head:8786")
    assert study.level == 0.9


def test_layouts_with_covariates_parse():
    nested = with_layout(
        '[layout]\nkind = "nested"\nlevels = { state = 20, city = 5, hood = 4 }\nsize = { min = 2, max = 8 }\n'
        '[layout.covariates.time]\ndist = "uniform"\n[layout.covariates.urban]\ndist = "binary"\nlevel = "city"'
    )
    assert list(parse(nested).layout["levels"]) == ["state", "city", "hood"]
    crossed = with_layout('[layout]\nkind = "crossed"\nfactors = { sender = 30, receiver = 30 }\nfraction = 0.5')
    assert parse(crossed).layout["fraction"] == 0.5
    bad = with_layout('[layout]\nkind = "crossed"\nfactors = { sender = 30, receiver = 30 }\n'
                      '[layout.covariates.x]\ndist = "normal"\nlevel = "subject"')
    assert message_of(bad).startswith('layout.covariates.x.level: must be "observation" or a column')


# --- files ----------------------------------------------------------------------------


def test_load_study_reads_the_file_and_uses_its_folder(tmp_path):
    (tmp_path / "rows.csv").write_text("g,x\n1,0.5\n2,1.5\n")
    text = with_layout('[layout]\nkind = "table"\npath = "rows.csv"')
    file = tmp_path / "study.toml"
    file.write_text(text)
    study = load_study(file)
    assert study.base_dir == tmp_path.resolve()
    assert study.layout == {"kind": "table", "path": "rows.csv"}
    assert study.text == text
    with pytest.raises(StudyError, match=r"^layout\.path: no such file: .*rows\.csv$"):
        parse_study(text, tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("", "the file is empty"),
        ("  \n# only a comment\n", "the file is empty"),
        ("[study\nname = 1", "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 7)"),
        ("[study]\nname = 'a'\nname = 'b'\n", "not valid TOML: Cannot overwrite a value (at line 3, column 11)"),
        (b"\xff\xfe[study]", "not a UTF-8 text file"),
    ],
)
def test_file_errors_name_the_file(tmp_path, content, problem):
    file = tmp_path / "study.toml"
    if isinstance(content, str):
        file.write_text(content)
    elif content is not None:
        file.write_bytes(content)
    with pytest.raises(StudyError) as error:
        load_study(file)
    assert str(error.value) == f"{file}: {problem}"


def test_a_folder_is_not_a_study_file(tmp_path):
    with pytest.raises(StudyError, match=rf"^{re.escape(str(tmp_path))}: cannot read: "):
        load_study(tmp_path)


def test_parse_study_names_its_source():
    with pytest.raises(StudyError, match=r"^studies/a\.toml: the file is empty$"):
        parse_study("", DATA, source="studies/a.toml")
    with pytest.raises(StudyError, match=r"^study file: not valid TOML: "):
        parse_study("x = ", DATA)


# --- validation messages --------------------------------------------------------------

TABLES = "study, model, layout, truth, analysis, grid, execution, summary, tests, intervals, lrt"
FORMULA = 'formula = "y ~ 1 + time + (1 + time | subject)"'
BETA = 'beta = { "(Intercept)" = 250.0, time = 10.0 }'
SD = 'sd = { "(Intercept)" = 24.7, time = 5.9 }'
CORR = 'corr = { "(Intercept):time" = 0.07 }'
NAME_RULE = "must be a folder name of letters, digits, '_', '.' and '-'"
METHOD_RULE = 'must be a non-empty list of "ML" and "REML"'
FORMULA_RULE = 'must be a formula such as "y ~ 1 + (1 | g)"'
PAIR_RULE = 'must name two different terms of truth.re.subject.sd as "a:b"'
SCHEDULER_RULE = 'must be an address like "tcp://host:8786"'
ROOT_RULE = "only keys under layout and truth can vary over the grid"

# Edits of the example without its grid: (old text, new text, expected message);
# an empty old text appends the new text.
FILE_EDITS = [
    ("[model]", "[modle]", f"modle: unknown table (expected one of: {TABLES})"),
    ("", "[grids]\nx = 1\n", f"grids: unknown table (expected one of: {TABLES})"),
    ('name = "slopes-ml-vs-reml"', 'name = "a b"', f"study.name: {NAME_RULE}, got \"a b\""),
    ('name = "slopes-ml-vs-reml"', 'name = ".."', f"study.name: {NAME_RULE}, got \"..\""),
    ('name = "slopes-ml-vs-reml"', "name = 3", f"study.name: {NAME_RULE}, got 3"),
    ('name = "slopes-ml-vs-reml"\n', "", "study.name: required key is missing"),
    ("seed = 20261125", "seed = -1", "study.seed: must be an integer from 0 to 18446744073709551615, got -1"),
    ("seed = 20261125", "seed = 1.5", "study.seed: must be an integer from 0 to 18446744073709551615, got 1.5"),
    ("seed = 20261125\n", "", "study.seed: required key is missing"),
    ("replicates = 1000", "replicates = 0", "study.replicates: must be a positive integer, got 0"),
    ("replicates = 1000", "replicates = 1000\nreplicate = 5", "study.replicate: unknown key (expected one of: name, seed, replicates, methods)"),
    ('methods = ["ML", "REML"]', "methods = []", f"study.methods: {METHOD_RULE}, got []"),
    ('methods = ["ML", "REML"]', 'methods = ["ML", "reml"]', f'study.methods: {METHOD_RULE}, got ["ML", "reml"]'),
    ('methods = ["ML", "REML"]', 'methods = "ML"', f'study.methods: {METHOD_RULE}, got "ML"'),
    ('methods = ["ML", "REML"]', 'methods = ["ML", "ML"]', 'study.methods: lists "ML" twice'),
    (FORMULA, 'formula = "y = time"', f'model.formula: {FORMULA_RULE}, got "y = time"'),
    (FORMULA, 'formula = ""', f'model.formula: {FORMULA_RULE}, got ""'),
    (FORMULA, f"{FORMULA}\nfamily = 1", "model.family: unknown key (expected one of: formula)"),
    ("subjects = 50", "subjects = -3", "layout.subjects: must be a positive integer, got -3"),
    ("subjects = 50", "subjetcs = 50", "layout.subjetcs: unknown key (expected one of: kind, subjects, times, subject, time, visits, dropout, covariates, missing, redraw)"),
    ("sigma = 25.6", "sigma = 0", "truth.sigma: must be a positive number, got 0"),
    ("sigma = 25.6\n", "", "truth.sigma: required key is missing"),
    ("sigma = 25.6", "sigma = 25.6\ntheta = [1.0]", "truth.theta: unknown key (expected one of: beta, sigma, re, residual)"),
    (BETA, 'beta = { "(Intercept)" = "250", time = 10.0 }', 'truth.beta."(Intercept)": must be a finite number, got "250"'),
    (BETA, "beta = [250.0, 10.0]", "truth.beta: must be a table, got [250.0, 10.0]"),
    (SD, 'sd = { "(Intercept)" = 24.7, time = -5.9 }', "truth.re.subject.sd.time: must be a non-negative number, got -5.9"),
    (SD, "sd = {}", "truth.re.subject.sd: must give the SD of at least one term"),
    (SD + "\n", "", "truth.re.subject.sd: required key is missing"),
    (CORR, 'corr = { "(Intercept):time" = 1.5 }', 'truth.re.subject.corr."(Intercept):time": must be a number in [-1, 1], got 1.5'),
    (CORR, 'corr = { "(Intercept):tme" = 0.07 }', f'truth.re.subject.corr."(Intercept):tme": {PAIR_RULE}'),
    (CORR, 'corr = { "time:time" = 0.07 }', f'truth.re.subject.corr."time:time": {PAIR_RULE}'),
    (CORR, 'corr = { "(Intercept):time" = 0.07, "time:(Intercept)" = 0.07 }', 'truth.re.subject.corr."time:(Intercept)": repeats a correlation given before'),
    (CORR, f"{CORR}\ncov = {{}}", "truth.re.subject.cov: unknown key (expected one of: sd, corr, distribution)"),
    ("[truth.re.subject]", "[truth.re]\nsubject = 3\n[truth.re.other]", "truth.re.subject: must be a table, got 3"),
    ("", "[execution]\nworkers = 0\n", "execution.workers: must be a positive integer, got 0"),
    ("", "[execution]\nchunk_size = 2.5\n", "execution.chunk_size: must be a positive integer, got 2.5"),
    ("", '[execution]\nscheduler = "host:8786"\n', f'execution.scheduler: {SCHEDULER_RULE}, got "host:8786"'),
    ("", '[execution]\nscheduler = "tcp://"\n', f'execution.scheduler: {SCHEDULER_RULE}, got "tcp://"'),
    ("", "[execution]\nthreads = 2\n", "execution.threads: unknown key (expected one of: workers, chunk_size, scheduler)"),
    ("", "[summary]\nlevel = 1.0\n", "summary.level: must be a number in (0, 1), got 1.0"),
    ("", "[summary]\nlevel = 95\n", "summary.level: must be a number in (0, 1), got 95"),
    ("", "[summary]\nalfa = 0.05\n", "summary.alfa: unknown key (expected one of: level, alpha)"),
    ("", "[summary]\nalpha = 1.5\n", "summary.alpha: must be a number in (0, 1), got 1.5"),
    ("", "[summary]\nalpha = [0.05, 0.05]\n", "summary.alpha: lists a level twice"),
    ("[study]", "summary = 0.95\n[study]", "summary: must be a table, got 0.95"),
]

# Edits of the grid of the example.
GRID_EDITS = [
    ('"layout.subject" = [10, 20, 50]', 'grid."layout.subject": no such key in the study file'),
    ('"layout.subjects.n" = [10, 20, 50]', 'grid."layout.subjects.n": no such key in the study file'),
    ('"study.seed" = [1, 2]', f'grid."study.seed": {ROOT_RULE}'),
    ('"model.formula" = ["y ~ 1 + (1 | subject)"]', f'grid."model.formula": {ROOT_RULE}'),
    ('"layout.subjects" = []', 'grid."layout.subjects": must be a non-empty list of values, got []'),
    ('"layout.subjects" = 10', 'grid."layout.subjects": must be a non-empty list of values, got 10'),
    (
        "layout.subjects = [10, 20, 50]",
        'grid.layout: must be a non-empty list of values, got {subjects = [10, 20, 50]} (quote dotted paths: "layout.subjects" = [...])',
    ),
    ('"layout..subjects" = [10]', 'grid."layout..subjects": is not a valid dotted key path'),
    ("'layout.\"subjects' = [10]", 'grid."layout.\\"subjects": is not a valid dotted key path'),
    ("'layout = 1' = [10]", 'grid."layout = 1": no such key in the study file'),
    ("'layout.\"sub\"jects' = [10]", 'grid."layout.\\"sub\\"jects": is not a valid dotted key path'),
    ("'layout. .subjects' = [10]", 'grid."layout. .subjects": is not a valid dotted key path'),
    ("'layout.\"\\q\"' = [10]", 'grid."layout.\\"\\\\q\\"": is not a valid dotted key path'),
    ('"truth.re.subject.sd" = [{ time = 1.0 }]', 'grid."truth.re.subject.sd.time": overlaps grid."truth.re.subject.sd"'),
    ("'truth.re.subject.sd.\"time\"' = [1.0]", 'grid."truth.re.subject.sd.time": overlaps grid."truth.re.subject.sd.\\"time\\""'),
]


@pytest.mark.parametrize(("old", "new", "message"), FILE_EDITS)
def test_validation_messages(old, new, message):
    assert message_of(edit(NO_GRID, old, new)) == message


@pytest.mark.parametrize(("line", "message"), GRID_EDITS)
def test_grid_validation_messages(line, message):
    text = edit(EXAMPLE, '"layout.subjects" = [10, 20, 50]', line)
    assert message_of(text) == message


@pytest.mark.parametrize("table", ["study", "model", "layout", "truth"])
def test_missing_tables(table):
    blocks = NO_GRID.split("\n\n")
    text = "\n\n".join(block for block in blocks if not block.startswith(f"[{table}]"))
    assert message_of(text) == f"{table}: required table is missing"


# --- errors at design points ----------------------------------------------------------


def test_a_bad_grid_value_names_the_point():
    text = edit(EXAMPLE, '"layout.subjects" = [10, 20, 50]', '"layout.subjects" = [10, -3, 50]')
    assert message_of(text) == "layout.subjects: must be a positive integer, got -3 (grid point 2)"


def test_a_bad_grid_value_in_truth_names_the_point():
    text = edit(EXAMPLE, '"truth.re.subject.sd.time" = [0.0, 5.9]', '"truth.re.subject.sd.time" = [0.0, -1]')
    assert message_of(text) == "truth.re.subject.sd.time: must be a non-negative number, got -1 (grid point 1)"


def test_a_grid_value_causing_a_cross_key_error_names_the_point():
    text = edit(NO_GRID, "subjects = 50", "subjects = 50\nvisits = { min = 3 }")
    text += '[grid]\n"layout.times" = [[0, 1, 2, 3], [0, 1]]\n'
    assert message_of(text) == "layout.visits.min: must be an integer from 1 to 2, got 3 (grid point 1)"


def test_a_mistake_outside_the_grid_does_not_name_a_point():
    text = edit(EXAMPLE, "sigma = 25.6", "sigma = -1")
    assert message_of(text) == "truth.sigma: must be a positive number, got -1"


def test_a_single_point_grid_still_names_the_point():
    text = NO_GRID + '[grid]\n"layout.subjects" = [0]\n'
    assert message_of(text) == "layout.subjects: must be a positive integer, got 0 (grid point 0)"


def test_file_values_replaced_by_the_grid_are_not_checked():
    text = edit(EXAMPLE, "subjects = 50", 'subjects = "set by the grid"')
    assert [point.layout["subjects"] for point in parse(text).points()] == [10, 10, 20, 20, 50, 50]


def test_a_grid_value_of_the_wrong_shape_names_the_point():
    text = edit(EXAMPLE, '"layout.subjects" = [10, 20, 50]', '"layout.subjects" = [10, { n = 20 }]')
    assert message_of(text) == "layout.subjects: must be a positive integer, got {n = 20} (grid point 2)"


# --- the hook for model-level checks --------------------------------------------------


def test_check_points_calls_the_check_for_every_point_in_order():
    study = parse(EXAMPLE)
    seen = []
    study.check_points(seen.append)
    assert seen == study.points()


def test_check_points_turns_errors_into_study_errors_naming_the_point():
    study = parse(EXAMPLE)

    def no_zero_slope_sd(point):
        if point.truth["re"]["subject"]["sd"]["time"] == 0:
            raise TruthError("truth.re.subject.sd.time: the slope needs a positive SD")

    with pytest.raises(StudyError) as error:
        study.check_points(no_zero_slope_sd)
    assert str(error.value) == "truth.re.subject.sd.time: the slope needs a positive SD (grid point 0)"
    assert isinstance(error.value.__cause__, TruthError)


def test_check_points_does_not_name_a_point_for_a_mistake_in_the_file():
    study = parse(EXAMPLE)

    def unknown_beta(point):
        raise TruthError('truth.beta.time: "time" is not a fixed effect of the formula')

    with pytest.raises(StudyError) as error:
        study.check_points(unknown_beta)
    assert str(error.value) == 'truth.beta.time: "time" is not a fixed effect of the formula'


def test_check_points_lets_other_exceptions_through():
    def broken(point):
        raise KeyError("x")

    with pytest.raises(KeyError):
        parse(NO_GRID).check_points(broken)


def test_check_points_without_grid_names_no_point():
    def refuse(point):
        raise WorkbenchError("model.formula: no random-effect term")

    with pytest.raises(StudyError) as error:
        parse(NO_GRID).check_points(refuse)
    assert str(error.value) == "model.formula: no random-effect term"


# --- truth ----------------------------------------------------------------------------


def test_validate_truth_accepts_the_api_example():
    validate_truth(
        {
            "beta": {"(Intercept)": 250, "time": 10},
            "sigma": 25.6,
            "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9}, "corr": {"(Intercept):time": 0.07}}},
        }
    )


def test_validate_truth_allows_colons_in_term_names():
    truth = {"beta": {}, "sigma": 1.0, "re": {"g": {"sd": {"a": 1.0, "x:z": 1.0}, "corr": {"a:x:z": 0.5}}}}
    validate_truth(truth)


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ([], "truth: must be a table, got []"),
        ({"beta": {}}, "truth.sigma: required key is missing"),
        ({"beta": {"x": True}, "sigma": 1}, "truth.beta.x: must be a finite number, got true"),
        ({"beta": {}, "sigma": float("inf")}, "truth.sigma: must be a positive number, got inf"),
        ({"beta": {}, "sigma": 1, "re": []}, "truth.re: must be a table, got []"),
        (
            {"beta": {}, "sigma": 1, "re": {"g": {"sd": {"a": 1, "b": 1, "c": 1}, "corr": {"a:b": 0.9, "a:c": 0.9, "b:c": -0.9}}}},
            "truth.re.g.corr: is not a valid correlation matrix (not positive semi-definite)",
        ),
    ],
)
def test_validate_truth_messages(truth, message):
    with pytest.raises(TruthError) as error:
        validate_truth(truth, prefix="truth")
    assert str(error.value) == message


def test_validate_truth_allows_perfect_correlation():
    validate_truth({"beta": {}, "sigma": 1, "re": {"g": {"sd": {"a": 1, "b": 2}, "corr": {"a:b": -1.0}}}})


def test_study_is_a_frozen_dataclass_with_the_contract_fields():
    names = [field.name for field in dataclasses.fields(Study)]
    assert names == [
        "name", "seed", "replicates", "methods", "formula", "analyses", "layout", "truth",
        "grid", "execution", "level", "text", "base_dir", "lrts", "alpha", "bootstrap_nsim",
    ]
    assert [field.name for field in dataclasses.fields(DesignPoint)] == ["index", "factors", "layout", "truth"]


def test_a_study_without_tests_or_profiles_runs_the_plain_kernel(monkeypatch):
    """Only studies that ask for tests or profile limits run (and so compile) the inference kernel."""
    from studies import slopes_study
    from workbench.study import units
    from workbench.study.plan import plan_point
    from workbench.study.spec import parse_study

    def refuse(*args):
        raise AssertionError("the inference kernel ran")

    monkeypatch.setattr(units, "fit_chunk_inference", refuse)
    study = parse_study(slopes_study(replicates=4, chunk_size=4), Path("."))
    results = units.compute_unit(study, plan_point(study, study.points()[0]), 0, 0, 4)
    assert np.isfinite(results["objective"]).all()
    tested = slopes_study(replicates=4, chunk_size=4) + '\n[[analysis]]\nname = "slopes"\ntests = ["asymptotic"]\n'
    asking = parse_study(tested, Path("."))
    with pytest.raises(AssertionError, match="the inference kernel ran"):
        units.compute_unit(asking, plan_point(asking, asking.points()[0]), 0, 0, 4)
