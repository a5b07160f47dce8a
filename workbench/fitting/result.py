"""The record of one fit, its variance components and its printed summary (lme4's layout)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.fitting.problem import Problem
from workbench.model.design import Design
from workbench.model.truth import term_lambdas


@dataclass(frozen=True, eq=False)
class FitResult:
    """An immutable fit result; fields follow lme4's accessors."""

    formula: str
    reml: bool
    objective: float  # REML criterion or deviance (−2 log-likelihood), lme4's scale
    loglik: float
    sigma: float
    theta: np.ndarray
    fixef: pd.Series
    fixef_se: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame  # grp, var1, var2, vcov, sdcor (lme4's as.data.frame(VarCorr))
    ranef: dict
    converged: bool
    singular: bool
    n_evals: int
    gradient_norm: float
    return_code: int
    n_obs: int
    n_levels: dict
    problem: Problem  # the design, factor structure and cross-products of the fit (refits, predictions, inference)

    def __str__(self) -> str:
        return format_fit(self)

    def __repr__(self) -> str:
        return format_fit(self)

    def confint(self, method: str = "wald", level: float = 0.95, nsim: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Confidence intervals (columns lower, upper) by "wald", "profile" or "bootstrap".

        See `workbench.fitting.intervals`; `nsim` and `seed` are the bootstrap's.
        """
        from workbench.fitting.intervals import confint  # the intervals module imports this one

        return confint(self, method=method, level=level, nsim=nsim, seed=seed)


def varcorr_frame(design: Design, theta: np.ndarray, sigma: float) -> pd.DataFrame:
    """Variances, SDs, covariances and correlations of every term, then the residual."""
    rows = []
    for term, lam in zip(design.terms, term_lambdas(design, theta)):
        cov = sigma**2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        for i, name in enumerate(term.names):
            rows.append((term.group, name, "", cov[i, i], sd[i]))
        for i in range(term.q):
            for j in range(i + 1, term.q):
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                rows.append((term.group, term.names[i], term.names[j], cov[i, j], corr))
    rows.append(("Residual", "", "", sigma**2, sigma))
    return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])


def format_fit(result: FitResult) -> str:
    """A summary like lme4's print of a merMod."""
    method = "REML" if result.reml else "maximum likelihood"
    crit = "REML criterion" if result.reml else "deviance"
    lines = [
        f"Linear mixed model fit by {method}",
        f"Formula: {result.formula}",
        f"{crit} at convergence: {result.objective:.4f}  (log-likelihood {result.loglik:.4f})",
        "",
        "Random effects:",
    ]
    vc = result.varcorr
    table = []
    for _, row in vc[vc["var2"] == ""].iterrows():
        corr = vc[(vc["grp"] == row["grp"]) & (vc["var2"] == row["var1"]) & (vc["var1"] != "")]
        corr_text = " ".join(f"{c:6.3f}" for c in corr["sdcor"])
        table.append((row["grp"], row["var1"], f"{row['vcov']:.4g}", f"{row['sdcor']:.4g}", corr_text))
    widths = [max(len(r[i]) for r in table + [("Groups", "Name", "Variance", "Std.Dev.", "Corr")]) for i in range(5)]
    header = ("Groups", "Name", "Variance", "Std.Dev.", "Corr")
    previous = None
    for row in [header, *table]:
        group = "" if row[0] == previous and row is not header else row[0]
        previous = row[0]
        lines.append(
            f" {group:<{widths[0]}} {row[1]:<{widths[1]}} {row[2]:>{widths[2]}} {row[3]:>{widths[3]}} {row[4]}".rstrip()
        )
    groups = ", ".join(f"{g}, {n}" for g, n in result.n_levels.items())
    lines += [f"Number of obs: {result.n_obs}, groups: {groups}", "", "Fixed effects:"]
    fixed = pd.DataFrame(
        {
            "Estimate": result.fixef,
            "Std. Error": result.fixef_se,
            "t value": result.fixef / result.fixef_se,
        }
    )
    lines.append(fixed.to_string(float_format=lambda v: f"{v:.4f}"))
    status = "converged" if result.converged else f"did not converge (code {result.return_code})"
    lines.append("")
    lines.append(f"Optimiser: {status} after {result.n_evals} evaluations, |projected gradient| {result.gradient_norm:.1e}")
    if result.singular:
        lines.append("boundary (singular) fit: a variance component is estimated as zero")
    return "\n".join(lines)
