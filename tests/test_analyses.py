"""Studies that fit analysis models other than the generating one, and the data sets they share."""

import ast
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.data import main as data_main
from workbench.model.parameters import ParameterLabel
from workbench.run import main
from workbench.study.plan import truth_of
from workbench.study.spec import parse_study
from workbench.study.store import ReplicateStore

CROSSED = """
[study]
name = "barr-small"
seed = 2013
replicates = 6
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)"

[layout]
kind = "crossed"
factors = { subj = 8, item = 8 }
size = 2

[layout.covariates.cond]
dist = "grid"
values = [-0.5, 0.5]

[truth]
beta = { "(Intercept)" = 0.0, cond = 0.0 }
sigma = 1.0
[truth.re.subj]
sd = { "(Intercept)" = 0.8, cond = 0.4 }
corr = { "(Intercept):cond" = 0.3 }
[truth.re.item]
sd = { "(Intercept)" = 0.6, cond = 0.3 }

[grid]
"truth.beta.cond" = [0.0, 0.4]

[execution]
chunk_size = 4

[[analysis]]
name = "maximal"
methods = ["ML", "REML"]

[[analysis]]
name = "intercepts"
formula = "y ~ 1 + cond + (1 | subj) + (1 | item)"
methods = ["REML"]

[[analysis]]
name = "byitem"
formula = "y ~ 1 + (1 + cond | item) + (1 | subj:item)"
methods = ["ML"]
"""


@pytest.fixture(scope="module")
def crossed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyses")
    path = folder / "study.toml"
    path.write_text(CROSSED)
    out = folder / "out"
    assert main([str(path), "--out", str(out), "--quiet", "--no-report"]) == 0
    return path, out, ReplicateStore(out).open().load()


def test_fits_are_named_analysis_colon_method_with_model_and_estimator_coordinates(crossed):
    _, _, data = crossed
    assert list(data["analysis"].values) == ["maximal:ML", "maximal:REML", "intercepts:REML", "byitem:ML"]
    assert list(data["analysis_model"].values) == ["maximal", "maximal", "intercepts", "byitem"]
    assert list(data["estimator"].values) == ["ML", "REML", "REML", "ML"]
    # the name `analysis` is not an xarray keyword: sel works and selects one
    assert data.estimate.sel(analysis="intercepts:REML").dims == ("point", "replicate", "param")
    assert data.sel(analysis="maximal:REML").sizes["point"] == 2


def test_parameters_are_the_union_with_labels(crossed):
    _, _, data = crossed
    params = list(data["param"].values)
    assert params[:2] == ["beta[(Intercept)]", "beta[cond]"]
    assert "var[subj:item:(Intercept)]" in params and "var[item:cond]" in params
    label = dict(zip(params, zip(data["kind"].values, data["group"].values, data["effect"].values, data["scale"].values)))
    assert label["cov[subj:(Intercept),cond]"] == ("covariance", "subj", "(Intercept),cond", "variance")
    assert label["sd[Residual]"] == ("residual", "Residual", "", "sd")
    # an analysis lacks the parameters of the others: NaN there, finite where it has them
    intercepts = data.estimate.sel(analysis="intercepts:REML")
    assert np.isnan(intercepts.sel(param="var[subj:cond]")).all()
    assert np.isfinite(intercepts.sel(param="var[subj:(Intercept)]")).all()
    byitem = data.estimate.sel(analysis="byitem:ML")
    assert np.isnan(byitem.sel(param="beta[cond]")).all() and np.isfinite(byitem.sel(param="var[item:cond]")).all()


def test_truth_follows_the_estimand_rules(crossed):
    _, _, data = crossed
    truth = data.truth.isel(point=1)
    assert float(truth.sel(param="beta[cond]")) == 0.4
    assert float(truth.sel(param="var[subj:cond]")) == pytest.approx(0.16)
    assert float(truth.sel(param="cov[subj:(Intercept),cond]")) == pytest.approx(0.3 * 0.8 * 0.4)
    # the generating model has no subj:item factor: its variance is truly 0
    assert float(truth.sel(param="var[subj:item:(Intercept)]")) == 0.0
    assert float(truth.sel(param="sd[subj:item:(Intercept)]")) == 0.0
    assert float(truth.sel(param="var[Residual]")) == 1.0


def test_truth_rules_for_parameters_the_generating_model_lacks():
    generating = {"beta[x]": 2.0, "var[g:(Intercept)]": 4.0, "corr[g:(Intercept),x]": 0.5}

    def label(name, kind):
        return ParameterLabel(name, kind, "g", "", "")

    assert truth_of(label("beta[x]", "fixed"), generating) == 2.0
    assert truth_of(label("beta[z]", "fixed"), generating) == 0.0
    assert truth_of(label("var[g:z]", "variance"), generating) == 0.0
    assert truth_of(label("cov[g:(Intercept),z]", "covariance"), generating) == 0.0
    assert truth_of(label("sd[h:(Intercept)]", "sd"), generating) == 0.0
    assert math.isnan(truth_of(label("corr[g:(Intercept),z]", "corr"), generating))
    assert truth_of(label("corr[g:(Intercept),x]", "corr"), generating) == 0.5


def test_every_analysis_fits_the_same_data_set_the_one_replicate_data_rebuilds(crossed):
    path, _, data = crossed
    point, replicate = 1, 5
    frame = wb.replicate_data(path, point, replicate)
    assert list(frame.columns) == ["subj", "item", "cond", "y"] and len(frame) == 128
    again = wb.replicate_data(str(path), point, replicate)
    assert np.array_equal(frame["y"].to_numpy(), again["y"].to_numpy())
    study = parse_study(CROSSED, path.parent)
    for analysis, method, label in study.fits:
        fit = wb.fit(analysis.formula, frame, reml=method == "REML")
        stored = data.sel(point=point, replicate=replicate, analysis=label)
        assert float(stored.objective) == pytest.approx(fit.objective, rel=1e-9)
        for name, value in fit.fixef.items():
            assert float(stored.estimate.sel(param=f"beta[{name}]")) == pytest.approx(value, rel=1e-6, abs=1e-8)


def test_the_data_command_writes_the_replicate_as_csv(crossed, tmp_path, capsys):
    path, _, _ = crossed
    out = tmp_path / "replicate.csv"
    assert data_main([str(path), "--point", "1", "--replicate", "2", "--out", str(out)]) == 0
    written = pd.read_csv(out)
    expected = wb.replicate_data(path, 1, 2)
    np.testing.assert_array_equal(written["y"].to_numpy(), expected["y"].to_numpy())  # full precision
    assert data_main([str(path), "--point", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: point: must be an integer from 0 to 1, got 2"


def test_replicate_data_checks_its_arguments(crossed):
    path, _, _ = crossed
    with pytest.raises(wb.WorkbenchError, match=r"^replicate: must be an integer from 0 to 5, got 6$"):
        wb.replicate_data(path, 0, 6)
    with pytest.raises(wb.WorkbenchError, match="no such file"):
        wb.replicate_data(path.parent / "missing.toml", 0, 0)


BAD_ANALYSES = [
    ('[[analysis]]\nname = "a"\n[[analysis]]\nname = "a"\n', 'analysis.a.name: "a" names two analyses'),
    ('[[analysis]]\nname = "a b"\n', "analysis[0].name: must be a word of letters, digits, '_', '.' and '-', got \"a b\""),
    ('[[analysis]]\nformula = "y ~ 1 + (1 | subject)"\n', "analysis[0].name: required key is missing"),
    ('[[analysis]]\nname = "a"\nformula = 3\n', 'analysis.a.formula: must be a formula such as "y ~ 1 + (1 | g)", got 3'),
    ('[[analysis]]\nname = "a"\nmethods = ["OLS"]\n', 'analysis.a.methods: must be a non-empty list of "ML" and "REML", got ["OLS"]'),
    ('[[analysis]]\nname = "a"\nestimator = "ML"\n', "analysis.a.estimator: unknown key (expected one of: name, formula, methods, tests, intervals)"),
    ("analysis = 3\n", 'analysis: must be one or more [[analysis]] tables (name = "...", formula = "...")'),
]

BASE = """
[study]
name = "s"
seed = 1
replicates = 2

[model]
formula = "y ~ 1 + time + (1 + time | subject)"

[layout]
kind = "longitudinal"
subjects = 6
times = [0, 1, 2, 3]

[truth]
beta = { "(Intercept)" = 1.0, time = 0.5 }
sigma = 1.0
[truth.re.subject]
sd = { "(Intercept)" = 1.0, time = 0.2 }
"""


@pytest.mark.parametrize(("extra", "message"), BAD_ANALYSES)
def test_bad_analysis_tables_are_one_line(extra, message):
    with pytest.raises(wb.WorkbenchError) as failure:
        # a bare key belongs to the table above it: put it at the top of the file
        parse_study(extra + BASE if extra.startswith("analysis =") else BASE + extra, Path("."))
    assert str(failure.value) == message


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ 1 + age + (1 | subject)", "analysis.a.formula: no column named 'age' (in the layout)"),
        ("z ~ 1 + (1 | subject)", "analysis.a.formula: the response must be 'y', the generating model's (got 'z')"),
        ("y ~ 1 + (1 | time:subject)", "analysis.a.formula: grouping factor 'time:subject' has 24 levels for 24 observations; it must have fewer levels than observations"),
    ],
)
def test_analysis_formulas_are_checked_against_the_layout(tmp_path, formula, message, capsys):
    path = tmp_path / "study.toml"
    path.write_text(BASE + f'[[analysis]]\nname = "a"\nformula = "{formula}"\n')
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not (tmp_path / "out").exists()


def test_a_study_without_analyses_fits_the_generating_model_by_its_methods(tmp_path):
    study = parse_study(BASE, tmp_path)
    assert [label for _, _, label in study.fits] == ["ML", "REML"]
    assert [analysis.formula for analysis, _, _ in study.fits] == [study.formula] * 2


def test_the_generating_model_need_not_be_fittable_when_only_analyses_are_fitted(tmp_path):
    """One observation per subject and time level: defined, simulated, not fitted; the analysis is."""
    text = BASE.replace('"y ~ 1 + time + (1 + time | subject)"', '"y ~ 1 + time + (1 | subject) + (1 | subject:time)"')
    text = text.replace('[truth.re.subject]\nsd = { "(Intercept)" = 1.0, time = 0.2 }', '[truth.re.subject]\nsd = { "(Intercept)" = 1.0 }\n[truth.re."subject:time"]\nsd = { "(Intercept)" = 0.5 }')
    path = tmp_path / "study.toml"
    path.write_text(text + '[[analysis]]\nname = "simple"\nformula = "y ~ 1 + time + (1 | subject)"\n')
    assert main([str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 0
    data = ReplicateStore(tmp_path / "out").open().load()
    assert list(data["analysis"].values) == ["simple:ML", "simple:REML"]
    # the residual of the simple model absorbs the omitted subject:time variance: truth stays σ² = 1
    assert float(data.truth.sel(param="var[Residual]").values[0]) == 1.0


def test_kernels_import_nothing_above_themselves():
    """Numba kernels take arrays and scalars; they never reach up into the Python layers."""
    kernels = Path(wb.__file__).parent / "kernels"
    for source in kernels.glob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.startswith("workbench"):
                    assert name.startswith("workbench.kernels"), f"{source.name} imports {name}"


def test_replicates_of_the_barr_study_refitted_in_lme4_agree():
    """Five data sets rebuilt by replicate_data, fitted by lme4 1.1-31 (tests/data/barr_lme4.json):
    our criterion equals lme4's to 1e-6 relative or is lower."""
    folder = Path(__file__).parent / "data"
    reference = json.loads((folder / "barr_lme4.json").read_text())
    assert len(reference["fits"]) == 15
    for entry in reference["fits"]:
        point, replicate = (int(v) for v in re.findall(r"\d+", entry["file"]))
        frame = wb.replicate_data(folder / "barr_maximal.toml", point, replicate)
        fit = wb.fit(entry["formula"], frame, reml=entry["method"] == "REML")
        lme4 = entry["criterion"]
        assert fit.objective <= lme4 + 1e-6 * abs(lme4), (entry["file"], entry["formula"], entry["method"])
        assert fit.objective >= lme4 - 1e-6 * abs(lme4)  # lower by more would be lme4 stopping early: look
        assert fit.fixef["cond"] == pytest.approx(entry["fixef"]["cond"], rel=1e-5, abs=1e-7)
