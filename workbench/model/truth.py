"""True parameter values: the data-scale truth of a study file and lme4's (β, θ, σ).

A truth is a mapping of the shape of a study file's ``[truth]`` table::

    {"beta": {"(Intercept)": 250, "time": 10},
     "sigma": 25.6,
     "re": {"subject": {"sd": {"(Intercept)": 24.7, "time": 5.9},
                        "corr": {"(Intercept):time": 0.07}}}}

``re`` has one table per grouping factor as written in the formula (``"state:city"`` for
the inner term of ``(1 | state/city)``). A group's ``sd`` covers every effect of the
group, also when the uncorrelated syntax ``(1 + x || g)`` splits it into several terms;
``corr`` is optional, its keys are ``"a:b"`` in either order and pairs it leaves out are
uncorrelated. Effects in different terms of one group are uncorrelated by the model, so a
non-zero correlation between them is an error.

For a term with standard deviations s and correlation matrix R, λ = diag(s)·chol(R)/σ,
so that Var(b) = σ²λλ' = diag(s) R diag(s); θ lists the lower triangle of each λ,
column-major, term by term (lme4's order, `Design.theta_map`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from workbench.checks import is_number as _is_number
from workbench.checks import key_path as _key
from workbench.checks import show as _show
from workbench.model.design import Design
from workbench.errors import TruthError, WorkbenchError

__all__ = [
    "parameter_names",
    "parameter_values",
    "parameters_to_truth",
    "term_covariances",
    "term_lambdas",
    "truth_to_parameters",
]


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
    _known_keys(truth, prefix, ("beta", "sigma", "re"))
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
    return beta, _theta(design, [lambdas[term] for term in design.terms]), sigma


def parameters_to_truth(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> dict:
    """The data-scale truth of (β, θ, σ): the inverse of `truth_to_parameters`.

    Every within-term pair gets a correlation (0 where one of its SDs is 0, where it is not
    defined); a group with no such pair has no ``corr`` table. Values are Python floats.
    """
    beta, theta, sigma = _check_parameters(design, beta, theta, sigma)
    re_table: dict[str, dict] = {}
    for term, cov in zip(design.terms, term_covariances(design, theta, sigma)):
        sd = np.sqrt(np.diag(cov))
        entry = re_table.setdefault(term.group, {"sd": {}})
        for name, value in zip(term.names, sd):
            entry["sd"][name] = float(value)
        for a, b in _pairs(term.q):
            corr = _correlation(cov[b, a], sd[a], sd[b])
            entry.setdefault("corr", {})[f"{term.names[a]}:{term.names[b]}"] = 0.0 if math.isnan(corr) else corr
    return {
        "beta": {name: float(value) for name, value in zip(design.fixef_names, beta)},
        "sigma": float(sigma),
        "re": re_table,
    }


def parameter_names(design: Design) -> list[str]:
    """The names of the parameter coordinates of a study, in the order of `parameter_values`.

    ``beta[<name>]`` for each fixed effect; then for each term in design order
    ``var[<group>:<name>]`` for each effect and ``cov[<group>:<a>,<b>]`` for each pair (a before
    b in λ's order); ``var[Residual]``; then the same on the SD scale: ``sd[<group>:<name>]``,
    ``corr[<group>:<a>,<b>]`` per term, and ``sd[Residual]``.
    """
    names = [f"beta[{name}]" for name in design.fixef_names]
    for scale, pair_scale, residual in (("var", "cov", "var[Residual]"), ("sd", "corr", "sd[Residual]")):
        for term in design.terms:
            names.extend(f"{scale}[{term.group}:{name}]" for name in term.names)
            names.extend(f"{pair_scale}[{term.group}:{term.names[a]},{term.names[b]}]" for a, b in _pairs(term.q))
        names.append(residual)
    return names


def parameter_values(design: Design, beta: np.ndarray, theta: np.ndarray, sigma: float) -> np.ndarray:
    """The values of the parameters named by `parameter_names`.

    var = σ²(λλ')ᵢᵢ, cov = σ²(λλ')ₐᵦ, var[Residual] = σ²; sd and sd[Residual] are their square
    roots; corr = cov/(sdₐ sdᵦ), clipped to [-1, 1] against rounding, NaN where an SD is 0.
    """
    beta, theta, sigma = _check_parameters(design, beta, theta, sigma)
    covs = term_covariances(design, theta, sigma)
    values = list(beta)
    for term, cov in zip(design.terms, covs):
        values.extend(np.diag(cov))
        values.extend(cov[b, a] for a, b in _pairs(term.q))
    values.append(sigma**2)
    for term, cov in zip(design.terms, covs):
        sd = np.sqrt(np.diag(cov))
        values.extend(sd)
        values.extend(_correlation(cov[b, a], sd[a], sd[b]) for a, b in _pairs(term.q))
    values.append(sigma)
    return np.array(values, dtype=float)


def term_lambdas(design: Design, theta: np.ndarray) -> list[np.ndarray]:
    """λₖ (q×q, lower triangular) of every term from θ, in design order."""
    theta = np.asarray(theta, dtype=float)
    lambdas = [np.zeros((t.q, t.q)) for t in design.terms]
    for value, k, row, col in zip(theta, *design.theta_map()):
        lambdas[k][row, col] = value
    return lambdas


def term_covariances(design: Design, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Var(bₖ) = σ²λₖλₖ' of one level of every term, in design order."""
    return [sigma**2 * (lam @ lam.T) for lam in term_lambdas(design, theta)]


def _pairs(q: int) -> list[tuple[int, int]]:
    """Index pairs (a, b), a < b, in the order of λ's lower triangle, column-major."""
    return [(a, b) for a in range(q) for b in range(a + 1, q)]


def _correlation(cov: float, sd_a: float, sd_b: float) -> float:
    if sd_a == 0 or sd_b == 0:
        return math.nan
    return float(min(1.0, max(-1.0, cov / (sd_a * sd_b))))


def _theta(design: Design, lambdas: list[np.ndarray]) -> np.ndarray:
    """θ from the λ of every term: lower triangles, column-major, term by term."""
    return np.array([lambdas[k][r, c] for k, r, c in zip(*design.theta_map())], dtype=float)


def _check_parameters(design: Design, beta, theta, sigma) -> tuple[np.ndarray, np.ndarray, float]:
    beta = np.asarray(beta, dtype=float).reshape(-1)
    theta = np.asarray(theta, dtype=float).reshape(-1)
    if beta.shape[0] != design.p:
        raise WorkbenchError(f"beta: expected {design.p} values (one per fixed effect), got {beta.shape[0]}")
    if theta.shape[0] != design.ntheta:
        raise WorkbenchError(f"theta: expected {design.ntheta} values, got {theta.shape[0]}")
    if not (math.isfinite(sigma) and sigma > 0):
        raise WorkbenchError(f"sigma: must be a positive number, got {sigma!r}")
    return beta, theta, float(sigma)


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
    _known_keys(table, path, ("sd", "corr"))
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
        try:
            chol = np.linalg.cholesky(r)
        except np.linalg.LinAlgError:
            chol = None
        if chol is None or not np.all(np.diag(chol) > 0):
            raise TruthError(f"{corr_path}: the correlation matrix is not positive definite")
        sd = np.array([float(sd_table[name]) for name in term.names])
        lambdas.append(sd[:, None] * chol / sigma)
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
