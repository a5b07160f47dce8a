"""The tests of a design point: which fit tests which fixed effect, and how two analyses are compared.

Tests are stored along one ``test`` dimension: first the fixed-effect tests, analysis by
analysis, method by method, in the order of the analysis's ``tests`` and its fixed effects,
named ``"<analysis>:<method>:<ddf>:<effect>"`` (``"<method>:<ddf>:<effect>"`` for the
generating model fitted without ``[[analysis]]``); then the ``[[lrt]]`` tables, named
``"lrt:<smaller><<larger>:<method>:<null>"``. Kenward–Roger tests are made on REML fits only.

A likelihood-ratio test is checked here as `workbench.lrt` checks two fits (nested models,
REML only with the same fixed effects, the nulls' conditions), each refusal one line naming
its ``[[lrt]]`` key. The exact null of a test depends on the design only, so it is simulated
once per design point, from ``SeedSequence(study seed, spawn_key=(point, EXACT_NULL_KEY + k))``
for the k-th ``[[lrt]]`` (replicate streams use (point, replicate), replicate < 2³¹).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.errors import StudyError, WorkbenchError
from workbench.fitting.lrt import _tested_term, null_sample, variance_names
from workbench.kernels.replicate_tests import DDF_CODES
from workbench.model.design import Design, Term
from workbench.study.inference import LikelihoodRatioTest

__all__ = ["InferencePlan", "LRTPlan", "TestLabel", "plan_inference"]

EXACT_NULL_KEY = 2**31


@dataclass(frozen=True)
class TestLabel:
    """One test's coordinates: its name, kind ("fixed" or "lrt"), fit, effect and null (ddf or null)."""

    name: str
    kind: str
    analysis: str
    effect: str
    null: str


@dataclass(frozen=True, eq=False)
class LRTPlan:
    """One likelihood-ratio test at one point: the fits it compares, its df and (exact null) its draws."""

    test: LikelihoodRatioTest
    index: int  # position on the test dimension
    smaller_fit: int
    larger_fit: int
    df: int
    design: Design | None = None  # for the exact null: the larger design and the tested term
    term: Term | None = None
    q: int = 0  # fixed effects the larger model adds
    seed: int = 0
    _draws: dict = field(default_factory=dict)

    def null_draws(self) -> np.ndarray:
        """The exact null's draws (simulated on first use)."""
        if "draws" not in self._draws:
            ml = self.test.method == "ML"
            self._draws["draws"] = np.sort(null_sample(self.design, self.term, ml, self.q, self.test.nsim, self.seed))
        return self._draws["draws"]


@dataclass(frozen=True, eq=False)
class InferencePlan:
    """The tests and intervals of a design point."""

    labels: tuple[TestLabel, ...]
    requests: tuple[np.ndarray, ...]  # per analysis (methods, T, 2): ddf code and coefficient, −1 padding
    slots: tuple[np.ndarray, ...]  # per analysis (methods, T): position on the test dimension, −1 padding
    lrts: tuple[LRTPlan, ...]
    intervals: tuple[str, ...]  # the interval methods of any analysis, in order of first appearance
    interval_fits: np.ndarray  # (fits, intervals) whether a fit asked for a method

    @property
    def ntests(self) -> int:
        return len(self.labels)


def plan_inference(study, point: int, designs: list[Design]) -> InferencePlan:
    """The tests and intervals of `study` over the analyses' `designs` at one point; refusals name the key."""
    labels: list[TestLabel] = []
    requests, slots = [], []
    fit_labels = [label for _, _, label in study.fits]
    first = {}
    offset = 0
    for analysis, design in zip(study.analyses, designs):
        first[analysis.name] = offset
        where = f"analysis.{analysis.name}.tests" if analysis.name else "tests"
        rows_per_method = []
        for method, fit_label in zip(analysis.methods, analysis.labels()):
            rows = []
            for test in analysis.tests:
                if test.ddf == "kenward-roger" and method != "REML":
                    continue
                for effect in test.effects or design.fixef_names:
                    if effect not in design.fixef_names:
                        raise StudyError(
                            f"{where}: no fixed effect {effect!r} in the analysis (it has: {', '.join(design.fixef_names) or 'none'})"
                        )
                    rows.append((DDF_CODES[test.ddf], design.fixef_names.index(effect), len(labels)))
                    labels.append(TestLabel(f"{fit_label}:{test.ddf}:{effect}", "fixed", fit_label, effect, test.ddf))
            rows_per_method.append(rows)
        width = max((len(rows) for rows in rows_per_method), default=0)
        request = np.full((len(analysis.methods), width, 2), -1, np.int64)
        slot = np.full((len(analysis.methods), width), -1, np.int64)
        for j, rows in enumerate(rows_per_method):
            for t, (code, column, index) in enumerate(rows):
                request[j, t] = code, column
                slot[j, t] = index
        requests.append(request)
        slots.append(slot)
        offset += len(analysis.methods)
    by_name = {analysis.name: (analysis, design) for analysis, design in zip(study.analyses, designs)}
    lrts = []
    for k, test in enumerate(study.lrts):
        small_analysis, small = by_name[test.smaller]
        large_analysis, large = by_name[test.larger]
        smaller_fit = first[test.smaller] + small_analysis.methods.index(test.method)
        larger_fit = first[test.larger] + large_analysis.methods.index(test.method)
        added, extra = _lrt_checks(test, small, large)
        seed = int(np.random.SeedSequence(study.seed, spawn_key=(point, EXACT_NULL_KEY + k)).generate_state(1)[0])
        lrts.append(
            LRTPlan(
                test, len(labels), smaller_fit, larger_fit, (large.p + large.ntheta) - (small.p + small.ntheta),
                seed=seed, **extra,
            )
        )
        labels.append(TestLabel(test.label, "lrt", fit_labels[larger_fit], ",".join(added), test.null))
    intervals: list[str] = []
    for analysis in study.analyses:
        intervals.extend(m for m in analysis.intervals if m not in intervals)
    interval_fits = np.array(
        [[method in analysis.intervals for method in intervals] for analysis, _, _ in study.fits], dtype=bool
    ).reshape(len(study.fits), len(intervals))
    return InferencePlan(tuple(labels), tuple(requests), tuple(slots), tuple(lrts), tuple(intervals), interval_fits)


def _lrt_checks(test: LikelihoodRatioTest, small: Design, large: Design) -> tuple[list[str], dict]:
    """The parameters the larger model adds, and what the exact null needs; refusals name the test's key."""
    where = test.where
    fixed_s, fixed_l = [f"beta[{n}]" for n in small.fixef_names], [f"beta[{n}]" for n in large.fixef_names]
    var_s, var_l = variance_names(small), variance_names(large)
    larger = set(fixed_l + var_l)
    missing = [name for name in fixed_s + var_s if name not in larger]
    if missing:
        raise StudyError(f"{where}.smaller: the models are not nested: {test.smaller!r} has {missing[0]}, {test.larger!r} does not")
    added = [name for name in fixed_l + var_l if name not in set(fixed_s + var_s)]
    if not added:
        raise StudyError(f"{where}.larger: the models have the same parameters; there is nothing to test")
    if test.method == "REML" and fixed_s != fixed_l:
        raise StudyError(f"{where}.method: REML criteria of models with different fixed effects are not comparable; use ML")
    if test.null == "chi2":
        return added, {}
    added_sd = [name for name in added if name.startswith("sd[")]
    if len(added_sd) != 1:
        raise StudyError(
            f"{where}.null: {test.null!r} is for a test of one variance component; the larger model adds {len(added_sd)} variances"
        )
    if test.null == "mixture":
        return added, {}
    try:
        term = _tested_term(large, added_sd[0], [name for name in var_l if name not in var_s])
    except WorkbenchError as exc:
        raise StudyError(f"{where}.null: {str(exc).removeprefix('lrt: ')}") from None
    if test.method == "ML" and small.terms:
        raise StudyError(
            f"{where}.method: the exact null of an ML test needs a smaller model without random effects; use REML"
        )
    return added, {"design": large, "term": term, "q": large.p - small.p}
