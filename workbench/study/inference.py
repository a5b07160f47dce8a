"""What a study infers besides estimates: fixed-effect tests, intervals, likelihood-ratio tests, α.

Keys (each mistake is one `StudyError` line naming its key):

- ``[[analysis]] tests = [...]``: t (or z) tests of fixed effects, each a ddf method
  (``"asymptotic"`` z, ``"residual"`` n − p, ``"satterthwaite"``, ``"kenward-roger"``, REML fits
  only) applied to every fixed effect, or a table ``{ ddf = "...", effects = ["x", ...] }``
  naming the effects. ``[tests] ddf = [...]`` (and optionally ``effects = [...]``) is the
  default of every analysis without its own ``tests``.
- ``[[analysis]] intervals = [...]``: interval methods; ``"wald"`` (estimate ± z·SE on every
  parameter's scale) and ``"profile"`` (profile likelihood, as lme4's, of the SDs, variances
  and σ; computed in the replicate loop) and ``"bootstrap"`` (parametric bootstrap, percentile,
  of every parameter: ``nsim`` refits per fit of every replicate, so it multiplies the cost of
  a study by about ``nsim``). ``[intervals] methods = [...]`` is the default; ``[intervals]
  nsim`` the bootstrap's number of draws (default 200).
- ``[[lrt]]``: ``smaller`` and ``larger`` (analysis names), ``null`` (``"chi2"``,
  ``"mixture"``, ``"exact"``), ``method`` (``"ML"`` or ``"REML"``; default ML; both analyses
  fit it), ``nsim`` (draws of the exact null, default 10000).
- ``[summary] alpha``: a number or a list (default 0.05); ``level`` of the intervals.

Whether the effects exist, the models nest and a null applies needs the designs:
`workbench.study.tests_plan` checks those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.checks import Checker, key_path, show
from workbench.errors import StudyError

__all__ = ["DDF", "INTERVALS", "NULLS", "FixedTest", "LikelihoodRatioTest", "parse_alpha", "parse_lrts"]

DDF = ("asymptotic", "residual", "satterthwaite", "kenward-roger")
INTERVALS = ("wald", "profile", "bootstrap")
NULLS = ("chi2", "mixture", "exact")
DEFAULT_ALPHA = (0.05,)
DEFAULT_NSIM = 10000
DEFAULT_BOOTSTRAP_NSIM = 200

_check = Checker(StudyError)


@dataclass(frozen=True)
class FixedTest:
    """t (or z) tests by one ddf method of the named fixed effects (empty: every one)."""

    ddf: str
    effects: tuple[str, ...] = ()


@dataclass(frozen=True)
class LikelihoodRatioTest:
    """A likelihood-ratio test of the analysis `smaller` against `larger`, both fitted by `method`."""

    smaller: str
    larger: str
    null: str
    method: str
    nsim: int
    where: str  # the key path of its table, for messages

    @property
    def label(self) -> str:
        return f"lrt:{self.smaller}<{self.larger}:{self.method}:{self.null}"


def parse_tests(value: Any, path: str) -> tuple[FixedTest, ...]:
    """A ``tests`` list: ddf names or ``{ddf, effects}`` tables."""
    if not isinstance(value, list):
        _check.fail(path, f"must be a list of ddf methods ({', '.join(DDF)}) or {{ ddf, effects }} tables, got {show(value)}")
    tests = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(item, Mapping):
            _check.keys(item, where, ("ddf",), ("effects",))
            ddf, effects = item["ddf"], item.get("effects", [])
            if not (isinstance(effects, list) and effects and all(isinstance(e, str) for e in effects)):
                _check.fail(key_path(where, "effects"), f"must be a non-empty list of fixed-effect names, got {show(effects)}")
        else:
            ddf, effects = item, []
        if ddf not in DDF:
            _check.fail(where, f"must be one of {', '.join(DDF)}, got {show(ddf)}")
        test = FixedTest(ddf, tuple(effects))
        if test in tests:
            _check.fail(where, f"repeats the test {show(ddf)}")
        tests.append(test)
    return tuple(tests)


def parse_intervals(value: Any, path: str) -> tuple[str, ...]:
    """An ``intervals`` list of interval methods."""
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        _check.fail(path, f"must be a list of interval methods ({', '.join(INTERVALS)}), got {show(value)}")
    for index, method in enumerate(value):
        if method not in INTERVALS:
            _check.fail(f"{path}[{index}]", f"must be one of {', '.join(INTERVALS)}, got {show(method)}")
        if method in value[:index]:
            _check.fail(f"{path}[{index}]", f"lists {show(method)} twice")
    return tuple(value)


def default_tests(document: Mapping) -> tuple[FixedTest, ...]:
    """The ``[tests]`` table: the tests of every analysis that names none."""
    if "tests" not in document:
        return ()
    table = _check.table(document["tests"], "tests")
    _check.keys(table, "tests", ("ddf",), ("effects",))
    ddf = table["ddf"]
    if not isinstance(ddf, list):
        _check.fail("tests.ddf", f"must be a list of ddf methods ({', '.join(DDF)}), got {show(ddf)}")
    if "effects" not in table:
        return parse_tests(ddf, "tests.ddf")
    effects = table["effects"]
    if not (isinstance(effects, list) and effects and all(isinstance(e, str) for e in effects)):
        _check.fail("tests.effects", f"must be a non-empty list of fixed-effect names, got {show(effects)}")
    return parse_tests([{"ddf": d, "effects": effects} if isinstance(d, str) else d for d in ddf], "tests.ddf")


def default_intervals(document: Mapping) -> tuple[str, ...]:
    """The ``[intervals]`` table: the interval methods of every analysis that names none."""
    if "intervals" not in document:
        return ()
    table = _check.table(document["intervals"], "intervals")
    _check.keys(table, "intervals", (), ("methods", "nsim"))
    return parse_intervals(table.get("methods", []), "intervals.methods")


def parse_bootstrap_nsim(document: Mapping) -> int:
    """``[intervals] nsim``: draws of each parametric bootstrap (default 200)."""
    table = document.get("intervals", {})
    if not isinstance(table, Mapping) or "nsim" not in table:
        return DEFAULT_BOOTSTRAP_NSIM
    return _check.integer(table["nsim"], "intervals.nsim", 10, 1_000_000)


def parse_lrts(value: Any, analyses: Mapping[str, tuple[str, ...]]) -> tuple[LikelihoodRatioTest, ...]:
    """The ``[[lrt]]`` tables; `analyses` maps each analysis name to its methods."""
    if value is None:
        return ()
    if not (isinstance(value, list) and value and all(isinstance(t, Mapping) for t in value)):
        _check.fail("lrt", 'must be one or more [[lrt]] tables (smaller = "...", larger = "...")')
    tests: list[LikelihoodRatioTest] = []
    for index, table in enumerate(value):
        where = f"lrt[{index}]"
        _check.keys(table, where, ("smaller", "larger"), ("null", "method", "nsim"))
        for key in ("smaller", "larger"):
            name = table[key]
            if not (isinstance(name, str) and name and name in analyses):
                known = ", ".join(n for n in analyses if n) or "none"
                _check.fail(key_path(where, key), f"must name an [[analysis]] ({known}), got {show(name)}")
        if table["smaller"] == table["larger"]:
            _check.fail(key_path(where, "larger"), "names the same analysis as smaller")
        null = table.get("null", "chi2")
        if null not in NULLS:
            _check.fail(key_path(where, "null"), f"must be one of {', '.join(NULLS)}, got {show(null)}")
        method = table.get("method", "ML")
        if method not in ("ML", "REML"):
            _check.fail(key_path(where, "method"), f'must be "ML" or "REML", got {show(method)}')
        for key in ("smaller", "larger"):
            if method not in analyses[table[key]]:
                _check.fail(key_path(where, "method"), f"{method} is not among the methods of analysis {table[key]!r}")
        if "nsim" in table and null != "exact":
            _check.fail(key_path(where, "nsim"), 'applies to null = "exact" only')
        nsim = _check.integer(table.get("nsim", DEFAULT_NSIM), key_path(where, "nsim"), 1)
        test = LikelihoodRatioTest(table["smaller"], table["larger"], null, method, nsim, where)
        if any(other.label == test.label for other in tests):
            _check.fail(where, "repeats an earlier [[lrt]]")
        tests.append(test)
    return tuple(tests)


def parse_alpha(table: Mapping) -> tuple[float, ...]:
    """``[summary] alpha``: a number or a non-empty list of numbers in (0, 1)."""
    if "alpha" not in table:
        return DEFAULT_ALPHA
    value = table["alpha"]
    values = value if isinstance(value, list) else [value]
    if not values:
        _check.fail("summary.alpha", "must be a number or a non-empty list of numbers between 0 and 1")
    out = []
    for index, item in enumerate(values):
        where = f"summary.alpha[{index}]" if isinstance(value, list) else "summary.alpha"
        out.append(float(_check.number_in(item, where, (0, 1), "neither")))
    if len(set(out)) != len(out):
        _check.fail("summary.alpha", "lists a level twice")
    return tuple(out)
