"""The record of one fit, its variance components and its printed summary (lme4's layout)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from workbench.fitting import inference
from workbench.fitting.condvar import conditional_covariances
from workbench.fitting.predict import predict as _predict
from workbench.fitting.status import FitStatus
from workbench.fitting.problem import Problem
from workbench.model.design import Design
from workbench.model.parameters import term_lambdas


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
    deviance: float  # −2 log-likelihood at the estimates (for REML, the ML deviance at the REML θ̂)

    def __str__(self) -> str:
        return format_fit(self)

    def __repr__(self) -> str:
        return format_fit(self)

    # -- lme4's and statsmodels' accessors: information criteria, predictions, new responses --

    @property
    def nobs(self) -> int:
        """Number of observations used (rows with missing values dropped)."""
        return self.n_obs

    @property
    def n_parameters(self) -> int:
        """Fixed effects + θ + σ: the parameter count of lme4's AIC, BIC and residual df."""
        return len(self.fixef) + len(self.theta) + 1

    @property
    def df_resid(self) -> int:
        """nobs − number of parameters (lme4's `df.residual`)."""
        return self.n_obs - self.n_parameters

    @property
    def aic(self) -> float:
        """−2·loglik + 2·parameters, from the REML log-likelihood for a REML fit (as lme4)."""
        return -2.0 * self.loglik + 2.0 * self.n_parameters

    @property
    def bic(self) -> float:
        """−2·loglik + log(nobs)·parameters, from the REML log-likelihood for a REML fit (as lme4)."""
        return -2.0 * self.loglik + np.log(self.n_obs) * self.n_parameters

    @property
    def fitted(self) -> pd.Series:
        """Conditional fitted values Xβ̂ + Zb̂, indexed by the labels of the data rows used."""
        return _predict(self).rename("fitted")

    @property
    def resid(self) -> pd.Series:
        """Residuals y − Xβ̂ − Zb̂, indexed by the labels of the data rows used."""
        fitted = self.fitted
        return pd.Series(self.problem.design.y - fitted.to_numpy(), index=fitted.index, name="resid")

    def predict(self, newdata: pd.DataFrame | None = None, re_form: str | None = None) -> pd.Series:
        """Predictions on `newdata` (default: the fit's rows), indexed as `newdata`.

        `re_form=None` conditions on every random effect, ``"~0"`` leaves them out (population
        level). A level of a grouping factor the fit did not see contributes 0 (lme4's
        ``allow.new.levels = TRUE``); categorical covariates are coded with the fit's levels and
        contrasts; a row with a missing value in a needed column is predicted as NaN.
        """
        return _predict(self, newdata, re_form)

    @cached_property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """{group: (levels, q, q)} conditional covariance of each level's effects (lme4's postVar).

        Levels in the order of ``ranef[group].index``, effects in the order of its columns; see
        `workbench.fitting.condvar` for a factor with several terms.
        """
        return conditional_covariances(self.problem, self.theta, self.sigma)

    def simulate(self, nsim: int = 1, seed: int = 0) -> np.ndarray:
        """`nsim` responses (nsim, n) from the fitted model; replicate r from SeedSequence(seed, spawn_key=(0, r))."""
        from workbench.fitting import refit  # refit builds FitResults: imported when used

        return refit.simulate(self, nsim, seed)

    def refit(self, y) -> "FitResult":
        """The same model fitted by the same method to a new response `y` (one value per row used)."""
        from workbench.fitting import refit

        return refit.refit(self, y, self._response_update)

    @cached_property
    def _response_update(self):
        """The packed level codes and columns a refit reads, built at the first refit."""
        from workbench.fitting import refit

        return refit.ResponseUpdate.of(self.problem)

    def summary(self) -> str:
        """The printed summary (lme4's layout), as text."""
        return format_fit(self)

    # Inference (workbench.fitting.inference)

    @property
    def params(self) -> pd.Series:
        """Every parameter's estimate, named as studies name them (`model.parameters.parameter_names`)."""
        return inference.parameters(self)[0]

    @property
    def params_se(self) -> pd.Series:
        """The standard errors of `params`, as a study computes them."""
        return inference.parameters(self)[1]

    def coef_table(self, ddf: str = "asymptotic") -> pd.DataFrame:
        """t tests of the fixed effects: estimate, std_error, df, statistic, p_value.

        ddf: "asymptotic" (z), "residual" (n − p), "satterthwaite" or "kenward-roger" (REML only).
        """
        return inference.coef_table(self, ddf)

    def contrast_test(self, contrast, ddf: str = "asymptotic") -> pd.Series:
        """The t test of L'β = 0 for one contrast vector L, with the df of `ddf` (as `coef_table`)."""
        return inference.contrast_test(self, contrast, ddf)

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
    columns = ("grp", "var1", "var2", "vcov", "sdcor")
    return pd.DataFrame(dict(zip(columns, map(list, zip(*rows)))))  # by column: faster than by row


def format_fit(result: FitResult) -> str:
    """A summary like lme4's print of a merMod."""
    method = "REML" if result.reml else "maximum likelihood"
    crit = "REML criterion" if result.reml else "deviance"
    lines = [
        f"Linear mixed model fit by {method}",
        f"Formula: {result.formula}",
        f"{crit} at convergence: {result.objective:.4f}  (log-likelihood {result.loglik:.4f})",
        *_criteria_table(result),
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
    status = "converged" if result.converged else f"did not converge ({FitStatus(result.return_code).meaning})"
    lines.append("")
    lines.append(f"Optimiser: {status} after {result.n_evals} evaluations, |projected gradient| {result.gradient_norm:.1e}")
    if result.singular:
        lines.append("boundary (singular) fit: a variance component is estimated as zero")
    return "\n".join(lines)


def _criteria_table(result: FitResult) -> list[str]:
    """lme4's line of AIC, BIC, logLik (deviance for an ML fit) and residual df."""
    columns = {"AIC": f"{result.aic:.4f}", "BIC": f"{result.bic:.4f}", "logLik": f"{result.loglik:.4f}"}
    if not result.reml:
        columns["deviance"] = f"{result.deviance:.4f}"
    columns["df.resid"] = str(result.df_resid)
    widths = [max(len(k), len(v)) for k, v in columns.items()]
    return [
        " ".join(f"{k:>{w}}" for k, w in zip(columns, widths)),
        " ".join(f"{v:>{w}}" for v, w in zip(columns.values(), widths)),
    ]
