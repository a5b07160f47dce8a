"""Likelihood-ratio tests of nested fits: χ², the χ̄² boundary mixture, and the exact (R)LRT null.

The statistic is the drop in the fits' criterion from the smaller to the larger model: ML
deviances, or REML criteria of fits with the same fixed effects (lme4's `anova(..., refit =
FALSE)`), cut at 0 as `anova` does. Its df is the number of parameters the larger model adds.
Nulls:

- ``"chi2"``: χ²(df).
- ``"mixture"``: when the larger model adds one variance component (one SD, with its
  correlations, and possibly fixed effects), whose null value 0 is on the boundary: the 50:50
  mixture of χ²(df − 1) and χ²(df) (Self & Liang 1987, JASA 82:605; Stram & Lee 1994,
  Biometrics 50:1171); for a single variance, ½χ²₀ + ½χ²₁.
- ``"exact"``: the finite-sample null of the restricted LRT of one variance component by
  simulation of its spectral representation (Crainiceanu & Ruppert 2004; RLRsim's `exactRLRT`),
  or for ML fits of the LRT (`exactLRT`), see `workbench.kernels.rlrt`. The larger model adds one
  term with one effect. For REML fits, when both models have other random effects, the null is
  the one of the model with only the tested term (Greven, Crainiceanu, Küchenhoff & Peters 2008,
  JCGS 17:870; `exactRLRT(m, mA, m0)`), an approximation; ML fits need a smaller model without
  random effects (exactLRT's case), where it is exact, fixed effects dropped too. The p-value
  is the share of `nsim` draws at or above the statistic (1 when it is 0), with its Monte Carlo
  SE; draws come from ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from workbench.fitting.tails import chi2_sf

from workbench import arguments
from workbench.errors import WorkbenchError
from workbench.fitting.result import FitResult
from workbench.kernels.rlrt import null_statistics
from workbench.model.design import Design, Term

NULLS = ("chi2", "mixture", "exact")
GRID_SIZE = 200  # RLRsim's grid of λ: 0 and 199 points from e⁻¹⁰ to e⁸ (eigenvalues scaled to max 1)
CHUNK = 20000  # draws simulated at once
_SAME_EIGENVALUE = 1e-9  # relative gap below which eigenvalues share one χ² variable


@dataclass(frozen=True)
class LRTResult:
    """A likelihood-ratio test of two nested fits."""

    statistic: float
    df: int
    p_value: float
    null: str
    method: str  # "ML" or "REML": the criterion compared
    smaller: str
    larger: str
    objectives: tuple[float, float]  # the criterion of the smaller and of the larger fit
    npar: tuple[int, int]  # parameters of each (β, θ and σ), as anova's npar
    nsim: int = 0  # draws of the exact null (0 for the others)
    p_value_se: float = 0.0  # Monte Carlo SE of an exact p-value
    note: str = ""

    def __str__(self) -> str:
        crit = "deviance" if self.method == "ML" else "REML crit."
        rows = [("", "npar", "logLik", crit, "Chisq", "Df", "Pr(>Chisq)")]
        rows.append(("smaller", str(self.npar[0]), f"{-0.5 * self.objectives[0]:.3f}", f"{self.objectives[0]:.3f}", "", "", ""))
        rows.append(
            (
                "larger",
                str(self.npar[1]),
                f"{-0.5 * self.objectives[1]:.3f}",
                f"{self.objectives[1]:.3f}",
                f"{self.statistic:.4f}",
                str(self.df),
                f"<{1 / self.nsim:.1g}" if self.null == "exact" and self.p_value == 0 else f"{self.p_value:.4g}",
            )
        )
        widths = [max(len(r[c]) for r in rows) for c in range(7)]
        table = [" ".join(cell.rjust(w) if c else cell.ljust(w) for c, (cell, w) in enumerate(zip(r, widths))) for r in rows]
        null = {
            "chi2": f"chi-square({self.df})",
            "mixture": f"50:50 mixture of chi-square({self.df - 1}) and chi-square({self.df})",
            "exact": f"exact finite-sample null, {self.nsim} draws (Monte Carlo SE of p {self.p_value_se:.2g})",
        }[self.null]
        lines = [
            f"Likelihood-ratio test of nested models fitted by {self.method}",
            f"smaller: {self.smaller}",
            f"larger:  {self.larger}",
            *table,
            f"null: {null}",
        ]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)

    __repr__ = __str__


def variance_names(design: Design) -> list[str]:
    """The SD and correlation names of the design's random-effect terms."""
    names = []
    for term in design.terms:
        names.extend(f"sd[{term.group}:{name}]" for name in term.names)
        names.extend(
            f"corr[{term.group}:{term.names[a]},{term.names[b]}]" for a in range(term.q) for b in range(a + 1, term.q)
        )
    return names


def lrt(smaller: FitResult, larger: FitResult, null: str = "chi2", nsim: int = 10000, seed: int = 0) -> LRTResult:
    """Test `smaller` against the `larger` model it is nested in (see the module docstring)."""
    for value, name in ((smaller, "smaller"), (larger, "larger")):
        if not isinstance(value, FitResult):
            raise WorkbenchError(f"{name}: expected a fit from workbench.fit, got {type(value).__name__}")
    null = arguments.choice(null, "null", NULLS)
    nsim = arguments.integer(nsim, "nsim", 1)
    seed = arguments.seed(seed)
    small, large = smaller.problem.design, larger.problem.design
    _check_comparable(smaller, larger, small, large)
    fixed_s, fixed_l = [f"beta[{n}]" for n in small.fixef_names], [f"beta[{n}]" for n in large.fixef_names]
    var_s, var_l = variance_names(small), variance_names(large)
    missing = [name for name in fixed_s + var_s if name not in set(fixed_l + var_l)]
    if missing:
        raise WorkbenchError(
            f"lrt: the models are not nested: the smaller has {missing[0]}, the larger does not"
            " (pass the smaller model first)"
        )
    npar = (small.p + small.ntheta + 1, large.p + large.ntheta + 1)
    df = npar[1] - npar[0]
    if df == 0:
        raise WorkbenchError("lrt: the models have the same parameters; there is nothing to test")
    if smaller.reml and fixed_s != fixed_l:
        raise WorkbenchError(
            "lrt: REML criteria of models with different fixed effects are not comparable; fit both by ML (reml=False)"
        )
    method = "REML" if smaller.reml else "ML"
    statistic = max(0.0, smaller.objective - larger.objective)
    common = dict(
        statistic=statistic,
        df=df,
        null=null,
        method=method,
        smaller=small.formula.text,
        larger=large.formula.text,
        objectives=(smaller.objective, larger.objective),
        npar=npar,
    )
    added_sd = [name for name in var_l if name.startswith("sd[") and name not in var_s]
    if null == "chi2":
        return LRTResult(p_value=float(chi2_sf(statistic, df)), **common)
    if len(added_sd) != 1:
        raise WorkbenchError(
            f"lrt: null {null!r} is for a test of one variance component on its boundary;"
            f" the larger model adds {len(added_sd)} variances"
        )
    if null == "mixture":
        lower = float(statistic <= 0) if df == 1 else float(chi2_sf(statistic, df - 1))
        return LRTResult(p_value=0.5 * lower + 0.5 * float(chi2_sf(statistic, df)), **common)
    tested = _tested_term(large, added_sd[0], [name for name in var_l if name not in var_s])
    note = ""
    if smaller.reml:
        if small.terms:
            note = (
                "null: that of the model with only the tested term (Greven et al. 2008), an approximation"
                " when the models have other random effects"
            )
    elif small.terms:
        raise WorkbenchError(
            "lrt: the exact null of an ML test needs a smaller model without random effects (exactLRT's case);"
            " fit both by REML for the restricted test"
        )
    p_value, se = exact_p_value(large, tested, statistic, not smaller.reml, large.p - small.p, nsim, seed)
    return LRTResult(p_value=p_value, nsim=nsim, p_value_se=se, note=note, **common)


def _check_comparable(smaller: FitResult, larger: FitResult, small: Design, large: Design) -> None:
    if smaller.reml != larger.reml:
        raise WorkbenchError("lrt: one fit is by ML and the other by REML; fit both by the same method")
    if small.formula.response != large.formula.response:
        raise WorkbenchError(
            f"lrt: the models have different responses ({small.formula.response} and {large.formula.response})"
        )
    if small.n != large.n:
        raise WorkbenchError(f"lrt: the fits are of different data ({small.n} and {large.n} rows)")
    if not np.array_equal(small.y, large.y):
        raise WorkbenchError(f"lrt: the fits are of different data (the values of {small.formula.response} differ)")
    for j, name in enumerate(small.fixef_names):
        if name in large.fixef_names and not np.array_equal(small.x[:, j], large.x[:, large.fixef_names.index(name)]):
            raise WorkbenchError(f"lrt: the fits are of different data (column {name} differs)")
    labels = {t.group: t.levels[t.codes] for t in large.terms}
    for term in small.terms:
        if term.group in labels and not np.array_equal(term.levels[term.codes], labels[term.group]):
            raise WorkbenchError(f"lrt: the fits are of different data (grouping factor {term.group} differs)")


def _tested_term(design: Design, sd_name: str, added: list[str]) -> Term:
    """The one-effect term the larger model adds, or a one-line refusal."""
    for term in design.terms:
        if term.q == 1 and f"sd[{term.group}:{term.names[0]}]" == sd_name and added == [sd_name]:
            return term
    raise WorkbenchError(
        "lrt: null 'exact' is for one variance component: the larger model must add one term with one effect,"
        f" it adds {', '.join(added)}"
    )


def spectral_weights(design: Design, term: Term) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues of Z'P₀Z and of Z'Z for the term's Z (one column per level) and the design's X."""
    z = np.zeros((design.n, term.nlevels))
    z[np.arange(design.n), term.codes] = term.z[:, 0]
    ztz = z.T @ z
    if design.p:
        zx = z.T @ design.x
        projected = ztz - zx @ np.linalg.solve(design.x.T @ design.x, zx.T)
    else:
        projected = ztz
    mu = np.linalg.eigvalsh(0.5 * (projected + projected.T))
    xi = np.linalg.eigvalsh(ztz)
    return np.clip(mu, 0.0, None), np.clip(xi, 0.0, None)


def _groups(values: np.ndarray, largest: float) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-zero eigenvalues (relative to `largest`) and their multiplicities."""
    kept = np.sort(values[values > 1e-10 * largest]) / largest
    if kept.size == 0:
        return np.zeros(0), np.zeros(0)
    starts = np.concatenate([[True], np.diff(kept) > _SAME_EIGENVALUE * np.maximum(kept[1:], 1e-300)])
    index = np.cumsum(starts) - 1
    counts = np.bincount(index).astype(float)
    return np.bincount(index, weights=kept) / counts, counts


def exact_p_value(
    design: Design, term: Term, statistic: float, ml: bool, q: int, nsim: int, seed: int
) -> tuple[float, float]:
    """P(T ≥ statistic) under the exact null (1 for a statistic of 0) and its Monte Carlo SE."""
    if statistic <= 0.0:
        return 1.0, 0.0
    sample = null_sample(design, term, ml, q, nsim, seed)
    p = float(np.mean(sample >= statistic))
    return p, float(np.sqrt(p * (1.0 - p) / nsim))


def null_sample(design: Design, term: Term, ml: bool, q: int, nsim: int, seed: int) -> np.ndarray:
    """`nsim` draws of the (R)LRT's exact null for testing `term`'s variance in `design`."""
    mu_all, xi_all = spectral_weights(design, term)
    largest = max(mu_all.max(), xi_all.max()) if ml else mu_all.max()
    if not largest > 0:
        raise WorkbenchError(f"lrt: the term of {term.group} is confounded with the fixed effects; nothing to test")
    mu, mu_counts = _groups(mu_all, largest)
    xi, xi_counts = _groups(xi_all, largest) if ml else (mu, mu_counts)
    residual_df = design.n - design.p - int(mu_counts.sum())
    n0 = float(design.n if ml else design.n - design.p)
    grid = np.concatenate([[0.0], np.exp(np.linspace(-10.0, 8.0, GRID_SIZE - 1))])
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    out = np.empty(nsim)
    for first in range(0, nsim, CHUNK):
        size = min(CHUNK, nsim - first)
        chi_mu = rng.chisquare(np.broadcast_to(mu_counts, (size, mu_counts.size)))
        chi_rest = rng.chisquare(residual_df, size) if residual_df > 0 else np.zeros(size)
        chi_fixed = rng.chisquare(q, size) if ml and q > 0 else np.zeros(size)
        null_statistics(
            n0, mu, np.ascontiguousarray(chi_mu), chi_rest, xi, xi_counts, chi_fixed, float(design.n), grid,
            out[first : first + size],
        )
    return out
