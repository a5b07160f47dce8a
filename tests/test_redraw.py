"""Studies whose data sets differ in their rows: layouts redrawn per replicate and dropout on the response.

The seed contract: the data of replicate r of point p come from SeedSequence(seed, (p, r)),
its redrawn layout and dropout from SeedSequence(seed, (p, r, 1)); results are the same bit
for bit whatever the chunking and the threads, and `replicate_data` rebuilds each data set.
"""

import numpy as np
import pytest

import workbench as wb
from studies import slopes_study
from workbench.errors import StudyError
from workbench.kernels.status import FAILED
from workbench.model.design import build_design
from workbench.model.truth import truth_mechanism, truth_to_parameters
from workbench.run import main
from workbench.simulation.layout import prepare_layout
from workbench.simulation.simulate import draw_plan, layout_generator, simulate_design
from workbench.study.plan import check_study
from workbench.study.spec import parse_study
from workbench.study.store import ReplicateStore

FORMULA = "y ~ 1 + time + treat + (1 + time | subject)"

STUDY = """
[study]
name = "varying"
seed = 424242
replicates = 8
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + time + treat + (1 + time | subject)"

[layout]
kind = "longitudinal"
subjects = 14
times = [0, 1, 2, 3, 4]
redraw = false
dropout = 0.0

[layout.covariates.treat]
dist = "binary"
level = "subject"

[truth]
beta = { "(Intercept)" = 1.0, time = 0.5, treat = 1.0 }
sigma = 1.0
[truth.re.subject]
sd = { "(Intercept)" = 1.0, time = 0.4 }
corr = { "(Intercept):time" = 0.2 }
distribution = { family = "laplace" }
[truth.residual]
distribution = { family = "t", df = 6 }
sd_by = { column = "treat", sd = { "0" = 1.0, "1" = 1.5 } }

[grid]
"layout.redraw" = [false, true]
"layout.dropout" = [0.0, { intercept = -1.5, slope = 0.4 }]

[execution]
chunk_size = CHUNK
"""

FIELDS = ("estimate", "std_error", "objective", "converged", "singular", "n_evals", "status")


def run_study(tmp_path, text, name, *extra):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    out = tmp_path / name
    assert main([str(path), "--out", str(out), "--quiet", "--no-report", *extra]) == 0
    return path, ReplicateStore(out).open().load()


@pytest.fixture(scope="module")
def varying(tmp_path_factory):
    folder = tmp_path_factory.mktemp("varying")
    return run_study(folder, STUDY.replace("CHUNK", "3"), "chunks3", "--workers", "1")


def test_points_cover_every_way_rows_vary(varying):
    _, data = varying
    assert data["redraw"].attrs["path"] == "layout.redraw"
    assert [str(v) for v in data["redraw"].values] == ["false", "false", "true", "true"]
    assert data.done.all() and (data.status == 0).mean() > 0.9
    # a data set that lost too many rows to its dropout is a failed fit, the others have estimates
    failed = (data.status == FAILED).values
    assert np.array_equal(np.isnan(data.estimate.sel(param="beta[treat]").values), failed)


def test_results_do_not_depend_on_chunking_or_threads(varying, tmp_path):
    _, data = varying
    _, again = run_study(tmp_path, STUDY.replace("CHUNK", "8"), "chunks8", "--workers", "2")
    for name in FIELDS:
        np.testing.assert_array_equal(again[name].values, data[name].values, err_msg=name)


def test_replicate_data_is_each_replicates_own_data_set(varying):
    path, data = varying
    study = parse_study(path.read_text(), path.parent)
    points = study.points()
    for point in (1, 2, 3):
        frames = [wb.replicate_data(path, point, r) for r in range(3)]
        assert not frames[0].equals(frames[1])
        for replicate, frame in enumerate(frames):
            for analysis in ("ML", "REML"):
                # a one-off fit may polish θ̂ past the study's stopping point: the criterion, flat at
                # the optimum, agrees to 1e-9, the estimates to a thousandth of their SE
                fit = wb.fit(FORMULA, frame, reml=analysis == "REML")
                stored = data.sel(point=point, replicate=replicate, analysis=analysis)
                assert float(stored.objective) == pytest.approx(fit.objective, rel=1e-9)
                for name, value in fit.fixef.items():
                    estimate = float(stored.estimate.sel(param=f"beta[{name}]"))
                    assert estimate == pytest.approx(value, abs=1e-3 * fit.fixef_se[name])
    # by hand: layout stream (p, r, 1), data stream (p, r), then the dropout's uniforms
    point, replicate = 3, 5
    layout = prepare_layout(points[point].layout)
    rng = layout_generator(study.seed, point, replicate)
    rows = layout.make(rng)
    truth = points[point].truth
    design = build_design(FORMULA, rows, response_required=False)
    parameters = truth_to_parameters(design, truth)
    mechanism = truth_mechanism(design, truth)
    plan = draw_plan(design, mechanism, mechanism.residuals.scale(rows, parameters[2]))
    y = simulate_design(design, *parameters, [replicate], study.seed, point, plan)[0]
    keep = layout.dropout.keep(rows, y, rng)
    frame = wb.replicate_data(path, point, replicate)
    assert 0 < len(frame) < len(rows)
    np.testing.assert_array_equal(frame["y"].to_numpy(), y[keep])
    np.testing.assert_array_equal(frame["treat"].to_numpy(), rows["treat"].to_numpy()[keep])


def test_a_fixed_layout_is_the_same_in_every_replicate_and_a_redrawn_one_is_not(varying):
    path, _ = varying
    for point, same in ((0, True), (1, True), (2, False)):
        first, second = (wb.replicate_data(path, point, r) for r in (0, 1))
        treat = [frame.groupby("subject")["treat"].first().to_numpy() for frame in (first, second)]
        assert np.array_equal(*treat) == same


def test_redraw_false_and_normal_families_leave_a_study_unchanged(tmp_path):
    """Naming the defaults (a fixed layout, normal effects and residuals) changes no bit of the results."""
    plain = slopes_study(name="plain", replicates=6)
    named = plain.replace('times = [0, 1, 2, 3, 4]', 'times = [0, 1, 2, 3, 4]\nredraw = false\nmissing = 0.0').replace(
        "corr = { \"(Intercept):time\" = 0.3 }",
        "corr = { \"(Intercept):time\" = 0.3 }\ndistribution = { family = \"normal\" }\n[truth.residual]\ndistribution = { family = \"normal\" }",
    )
    assert named != plain
    _, first = run_study(tmp_path, plain, "plain")
    _, second = run_study(tmp_path, named, "named")
    for name in FIELDS:
        np.testing.assert_array_equal(first[name].values, second[name].values, err_msg=name)


UNFITTABLE = """
[study]
name = "sparse"
seed = SEED
replicates = 16
methods = ["REML"]

[model]
formula = "y ~ 1 + (1 | g)"

[layout]
kind = "nested"
levels = { g = 3 }
size = { poisson = 2, min = 1 }
missing = 0.4
redraw = true

[truth]
beta = { "(Intercept)" = 0.0 }
sigma = 1.0
[truth.re.g]
sd = { "(Intercept)" = 1.0 }

[execution]
chunk_size = 16
"""


def test_a_replicate_that_cannot_be_fitted_is_a_failed_fit(tmp_path):
    """With this seed replicate 0's data set has 3 rows for 3 levels: a later one is the template."""
    path, data = run_study(tmp_path, UNFITTABLE.replace("SEED", "3"), "sparse")
    failed = np.flatnonzero(data.status.sel(point=0, analysis="REML").values == FAILED)
    assert 0 < len(failed) < 16 and failed[0] == 0
    for replicate in failed:
        assert np.isnan(data.estimate.sel(point=0, replicate=replicate)).all()
        assert not bool(data.converged.sel(point=0, replicate=replicate, analysis="REML"))
        try:
            frame = wb.replicate_data(path, 0, int(replicate))
        except wb.WorkbenchError:
            continue  # every row missing: not even a data set
        with pytest.raises(wb.WorkbenchError):
            wb.fit("y ~ 1 + (1 | g)", frame)


def test_a_point_none_of_whose_first_data_sets_can_be_fitted_is_refused(tmp_path):
    text = UNFITTABLE.replace("SEED", "3").replace("size = { poisson = 2, min = 1 }", "size = 1").replace("missing = 0.4", "missing = 0.0")
    message = r"^model\.formula: grouping factor 'g' has 3 levels for 3 observations; .* \(in each of the first 10 data sets\)$"
    with pytest.raises(StudyError, match=message):
        check_study(parse_study(text, tmp_path))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"layout.redraw" = [false, true]', '"layout.redraw" = [false, "yes"]', 'layout.redraw: must be true or false, got "yes" (grid point 2)'),
        ("intercept = -1.5, slope = 0.4", "intercept = -1.5", "layout.dropout.slope: required key is missing (grid point 1)"),
        ("dropout = 0.0", "dropout = 0.0\nmissing = 1.5", "layout.missing: must be a number in [0, 1), got 1.5"),
        ('distribution = { family = "laplace" }', 'distribution = { family = "t", df = 1 }', "truth.re.subject.distribution.df: must be a number greater than 2, got 1"),
        ('column = "treat"', 'column = "arm"', 'truth.residual.sd_by.column: no column "arm" in the layout (subject, time, treat)'),
    ],
)
def test_mistakes_in_the_new_keys_are_one_line(tmp_path, old, new, message):
    text = STUDY.replace("CHUNK", "4").replace(old, new, 1)
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(StudyError) as info:
        check_study(parse_study(text, tmp_path))
    assert str(info.value).startswith(message)
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 2
    assert not (tmp_path / "out").exists()


STACKED_CASES = [
    (
        "y ~ 1 + x + arm + x:arm + (1 + x | school) + (1 | school:class)",
        {"kind": "nested", "levels": {"school": 4, "class": 3}, "size": {"poisson": 3, "min": 1}, "missing": 0.2,
         "covariates": {"x": {"dist": "normal"}, "arm": {"dist": "categorical", "levels": ["a", "b", "c"], "level": "school"}}},
    ),
    (
        "y ~ 1 + time + (1 + time || subject)",
        {"kind": "longitudinal", "subjects": 5, "times": [0, 1, 2, 3], "visits": {"poisson": 3, "min": 2}},
    ),
    (
        "y ~ 1 + w + (1 | sender) + (1 + w | receiver)",
        {"kind": "crossed", "factors": {"sender": 4, "receiver": 6}, "fraction": 0.6, "covariates": {"w": {"dist": "uniform"}}},
    ),
]


@pytest.mark.parametrize(("formula", "spec"), STACKED_CASES)
def test_designs_built_together_equal_designs_built_alone(formula, spec):
    from workbench.study.stacked import build_designs

    layout = prepare_layout(spec)
    frames = [layout.make(np.random.default_rng(seed)) for seed in range(6)]
    frames = [frame.assign(y=np.random.default_rng(i).normal(size=len(frame))) for i, frame in enumerate(frames)]
    for fitted in (False, True):
        together = build_designs(formula, frames, response_required=True, fitted=fitted)
        for frame, design in zip(frames, together):
            try:
                alone = build_design(formula, frame, fitted=fitted)
            except wb.WorkbenchError as exc:
                assert isinstance(design, wb.WorkbenchError) and str(design) == str(exc)
                continue
            np.testing.assert_array_equal(design.x, alone.x)
            np.testing.assert_array_equal(design.y, alone.y)
            assert design.fixef_names == alone.fixef_names and design.n_dropped == 0
            assert [(t.group, t.names) for t in design.terms] == [(t.group, t.names) for t in alone.terms]
            for mine, theirs in zip(design.terms, alone.terms):
                np.testing.assert_array_equal(mine.codes, theirs.codes)
                np.testing.assert_array_equal(mine.levels, theirs.levels)
                np.testing.assert_array_equal(mine.z, theirs.z)


@pytest.mark.parametrize("name", ["maas_hox", "robust_effects", "dropout_mar"])
def test_the_example_studies_are_valid_and_their_points_plan(name):
    from pathlib import Path

    from workbench.study.spec import load_study

    study = load_study(Path(__file__).parent.parent / "simulations" / f"{name}.toml")
    outline = check_study(study)
    assert outline.truth.shape[0] == len(study.points()) and np.isfinite(outline.truth[:, 0]).all()
