"""True parameter values: the data-scale truth of a study file and lme4's (β, θ, σ).

A truth is a mapping of the shape of a study file's ``[truth]`` table::

    {"beta": {"(Intercept)": 250, "time": 10},
     "sigma": 25.6,
     "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9},
                        "corr": {"(Intercept):time": 0.07},
                        "distribution": {"family": "t", "df": 5}}},
     "residual": {"distribution": {"family": "laplace"},
                  "sd_by": {"column": "treat", "sd": {"0": 20.0, "1": 30.0}}}}

``re`` has one table per grouping factor as written in the formula (``"state:city"`` for
the inner term of ``(1 | state/city)``). A group's ``sd`` covers every effect of the
group, also when the uncorrelated syntax ``(1 + x || g)`` splits it into several terms;
``corr`` is optional, its keys are ``"a:b"`` in either order and pairs it leaves out are
uncorrelated. Effects in different terms of one group are uncorrelated by the model, so a
non-zero correlation between them is an error.

The data-generating mechanism beyond (β, θ, σ) is optional: a group's ``distribution``
(the family of its standardised effects, the same for every term of the group; see
`workbench.simulation.distributions`) and ``residual`` (the residuals' family and
heteroscedastic SDs, ``sd_by`` or ``sd_power``; see `workbench.simulation.residuals`).
Without them, effects and residuals are normal and homoscedastic. `truth_mechanism`
returns them per term; they leave (β, θ, σ) and so the study's true parameter values
unchanged.

The conversions to and from θ are those of `workbench.model.parameters` (a correlation of
±1 is allowed: a singular covariance, as lme4 may estimate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from workbench.checks import is_number as _is_number
from workbench.checks import key_path as _key
from workbench.checks import show as _show
from workbench.model.design import Design
from workbench.model.parameters import check_parameters, correlation, lambda_of, pairs, term_covariances, theta_of
from workbench.errors import TruthError
from workbench.simulation.distributions import NORMAL, Family, parse_distribution
from workbench.simulation.residuals import Residuals, parse_residuals

__all__ = ["Mechanism", "parameters_to_truth", "truth_mechanism", "truth_to_parameters"]


class Mechanism(NamedTuple):
    """How the standardised draws are made: the family of every term (design order) and the residuals."""

    families: tuple[Family, ...]
    residuals: Residuals

    @property
    def normal(self) -> bool:
        """Normal effects and normal homoscedastic residuals: the draws of the original contract."""
        return all(f.normal for f in self.families) and self.residuals.family.normal and self.residuals.homoscedastic


def truth_to_parameters(design: Design, truth: Mapping, prefix: str = "truth") -> tuple[np.ndarray, np.ndarray, float]:
    """Check a data-scale truth against the design and return (β, θ, σ) in lme4's parameterisation.

    Parameters
    ----------
    design : the design whose fixed effects and random-effect terms the truth must cover.
    truth : the mapping described in the module docstring.
    prefix : the key path of `truth` in error messages (``"truth"`` in a study file).

    Raises
    ------
    TruthError : one line starting with the key path of the first problem found.
    """
    _table(truth, prefix)
    _known_keys(truth, prefix, ("beta", "sigma", "re", "residual"))
    # a model without fixed effects (y ~ 0 + ...) needs no beta table
    if design.p == 0:
        beta_table = truth.get("beta", {})
    else:
        beta_table = _required(truth, "beta", prefix, "the formula has fixed effects")
    beta = _beta(design, beta_table, _key(prefix, "beta"))
    sigma = _required(truth, "sigma", prefix, "the residual standard deviation")
    if not (_is_number(sigma) and sigma > 0):
        raise TruthError(f"{_key(prefix, 'sigma')}: must be a positive number, got {_show(sigma)}")
    sigma = float(sigma)
    re_path = _key(prefix, "re")
    re_table = _table(_required(truth, "re", prefix, "the formula has random effects"), re_path)
    groups = _groups(design)
    for group in re_table:
        if group not in groups:
            raise TruthError(f"{_key(re_path, str(group))}: unknown group (the formula has: {', '.join(groups)})")
    lambdas = {}
    for group, terms in groups.items():
        if group not in re_table:
            raise TruthError(f"{_key(re_path, group)}: missing (the formula has this random-effect group)")
        lambdas.update(zip(terms, _group_lambdas(terms, re_table[group], sigma, _key(re_path, group))))
    if "residual" in truth:
        parse_residuals(truth["residual"], _key(prefix, "residual"))
    return beta, theta_of(design, [lambdas[term] for term in design.terms]), sigma


def truth_mechanism(design: Design, truth: Mapping, prefix: str = "truth") -> Mechanism:
    """The family of each term's effects (design order) and the residuals of a truth.

    The truth is checked as by `truth_to_parameters` first.
    """
    truth_to_parameters(design, truth, prefix)
    re_path = _key(prefix, "re")
    families = []
    for term in design.terms:
        table = truth["re"][term.group]
        if "distribution" in table:
            families.append(parse_distribution(table["distribution"], _key(_key(re_path, term.group), "distribution")))
        else:
            families.append(NORMAL)
    residual_path = _key(prefix, "residual")
    residuals = parse_residuals(truth["residual"], residual_path) if "residual" in truth else Residuals(path=residual_path)
    return Mechanism(tuple(families), residuals)


def parameters_to_truth(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> dict:
    """The data-scale truth of (β, θ, σ): the inverse of `truth_to_parameters`.

    Every within-term pair gets a correlation (0 where one of its SDs is 0, where it is not
    defined); a group with no such pair has no ``corr`` table. Values are Python floats.
    """
    beta, theta, sigma = check_parameters(design, beta, theta, sigma)
    re_table: dict[str, dict] = {}
    for term, cov in zip(design.terms, term_covariances(design, theta, sigma)):
        sd = np.sqrt(np.diag(cov))
        entry = re_table.setdefault(term.group, {"sd": {}})
        for name, value in zip(term.names, sd):
            entry["sd"][name] = float(value)
        for a, b in pairs(term.q):
            corr = correlation(cov[b, a], sd[a], sd[b])
            entry.setdefault("corr", {})[f"{term.names[a]}:{term.names[b]}"] = 0.0 if math.isnan(corr) else corr
    return {
        "beta": {name: float(value) for name, value in zip(design.fixef_names, beta)},
        "sigma": float(sigma),
        "re": re_table,
    }


def _groups(design: Design) -> dict[str, list]:
    """The terms of each grouping factor, groups in design order."""
    groups: dict[str, list] = {}
    for term in design.terms:
        groups.setdefault(term.group, []).append(term)
    return groups


def _beta(design: Design, table, path: str) -> np.ndarray:
    _table(table, path)
    for name, value in table.items():
        if name not in design.fixef_names:
            known = ", ".join(design.fixef_names) or "none"
            raise TruthError(f"{_key(path, str(name))}: unknown fixed effect (the formula has: {known})")
        if not _is_number(value):
            raise TruthError(f"{_key(path, str(name))}: must be a finite number, got {_show(value)}")
    for name in design.fixef_names:
        if name not in table:
            raise TruthError(f"{_key(path, str(name))}: missing (the formula has this fixed effect)")
    return np.array([float(table[name]) for name in design.fixef_names], dtype=float)


def _group_lambdas(terms: list, table, sigma: float, path: str) -> list[np.ndarray]:
    """λ of each term of one group from its `sd` and `corr` tables."""
    _table(table, path)
    _known_keys(table, path, ("sd", "corr", "distribution"))
    if "distribution" in table:
        parse_distribution(table["distribution"], _key(path, "distribution"))
    names = [name for term in terms for name in term.names]
    sd_path = _key(path, "sd")
    sd_table = _table(_required(table, "sd", path, "the standard deviations of the group's effects"), sd_path)
    for name, value in sd_table.items():
        if name not in names:
            known = ", ".join(names)
            raise TruthError(f"{_key(sd_path, str(name))}: unknown effect (group {terms[0].group} has: {known})")
        if not (_is_number(value) and value >= 0):
            raise TruthError(f"{_key(sd_path, str(name))}: must be a non-negative number, got {_show(value)}")
    for name in names:
        if name not in sd_table:
            raise TruthError(f"{_key(sd_path, str(name))}: missing (the formula has this random effect)")
    corr_path = _key(path, "corr")
    corr = _correlations(terms, _table(table.get("corr", {}), corr_path), corr_path)
    lambdas = []
    for term in terms:
        r = np.eye(term.q)
        for (a, b), value in corr.items():
            if a in term.names:
                i, j = term.names.index(a), term.names.index(b)
                r[i, j] = r[j, i] = value
        lam = lambda_of(np.array([float(sd_table[name]) for name in term.names]), r, sigma)
        if lam is None:
            raise TruthError(f"{corr_path}: is not a valid correlation matrix (not positive semi-definite)")
        lambdas.append(lam)
    return lambdas


def _correlations(terms: list, table: Mapping, path: str) -> dict[tuple[str, str], float]:
    """The within-term correlations of a group, keyed by (a, b) in λ's order."""
    term_of = {name: k for k, term in enumerate(terms) for name in term.names}
    order = [name for term in terms for name in term.names]
    seen: dict[tuple[str, str], str] = {}
    out = {}
    for key, value in table.items():
        key_path = _key(path, str(key))
        a, b = _split_pair(key, order, terms[0].group, key_path)
        if order.index(a) > order.index(b):
            a, b = b, a
        if (a, b) in seen:
            raise TruthError(f"{key_path}: given twice (also as {seen[(a, b)]})")
        seen[(a, b)] = key
        if not (_is_number(value) and -1 <= value <= 1):
            raise TruthError(f"{key_path}: must be a number in [-1, 1], got {_show(value)}")
        if term_of[a] != term_of[b]:
            if value != 0:
                raise TruthError(
                    f"{key_path}: must be 0: {a} and {b} are in separate (uncorrelated) terms of the formula"
                )
            continue
        out[(a, b)] = float(value)
    return out


def _split_pair(key, names: list[str], group: str, key_path: str) -> tuple[str, str]:
    """Split "a:b" into two effect names of the group (names may contain ':' themselves)."""
    wanted = f"expected 'a:b' with two different effects of group {group} ({', '.join(names)})"
    if not isinstance(key, str):
        raise TruthError(f"{key_path}: {wanted}")
    splits = []
    for i, char in enumerate(key):
        if char == ":" and key[:i] in names and key[i + 1 :] in names and key[:i] != key[i + 1 :]:
            splits.append((key[:i], key[i + 1 :]))
    if len(splits) != 1:
        problem = "ambiguous" if splits else "unknown pair"
        raise TruthError(f"{key_path}: {problem}, {wanted}")
    return splits[0]


def _table(value, path: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise TruthError(f"{path}: must be a table, got {_show(value)}")
    return value


def _required(table: Mapping, key: str, path: str, why: str):
    if key not in table:
        raise TruthError(f"{_key(path, key)}: missing ({why})")
    return table[key]


def _known_keys(table: Mapping, path: str, allowed: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise TruthError(f"{_key(path, str(key))}: unknown key (expected one of: {', '.join(allowed)})")
