"""Families of standardised draws z (mean 0, variance 1) for the random effects and the residuals.

A distribution is a table ``{family = "<name>", <parameters>}``, given as
``truth.re.<group>.distribution`` (the group's random effects) or
``truth.residual.distribution`` (the residuals); without one, a family is ``normal``.

=============== ============================== ============================================
family          parameters                     the draw z (standardised to mean 0, var 1)
=============== ============================== ============================================
``normal``      none                           standard normal
``t``           ``df`` > 2                     Student t with df degrees of freedom
``laplace``     none                           double exponential
``uniform``     none                           uniform on [−√3, √3]
``chisq``       ``df`` > 0                     centred χ²: (χ²_df − df)/√(2 df), right-skewed
``skew_normal`` ``shape`` (α, any number)      Azzalini's skew-normal; α > 0 skews right
``mixture``     ``weights`` = [w₁, w₂],        two normal components of equal SD whose
                ``separation`` = d ≥ 0         means are d component SDs apart; weight w₂
                                               on the upper one
``two_point``   ``p`` in (0, 1) [0.5]          two values, the upper one with probability p
                                               (p = 0.5: ±1)
=============== ============================== ============================================

The SDs and correlations of the truth keep their meaning whatever the family: a term's
effects are b = L z with L the Cholesky factor of its covariance and z independent draws
of the family. For q > 1 correlated effects, the marginal of each effect is therefore a
linear mixture of draws of the family (the first effect of a term has the family's shape;
the others, mixing several draws, are closer to normal — e.g. their skewness is
Σⱼ Lᵢⱼ³ κ₃ / (Σⱼ Lᵢⱼ²)^{3/2} with κ₃ the family's).

Draws (part of the draw contract of `workbench.simulation.simulate`), for m values from
a generator ``rng``: normal ``standard_normal(m)``; t ``standard_t(df, m)``; laplace
``laplace(0, 1/√2, m)``; uniform ``uniform(−√3, √3, m)``; chisq ``chisquare(df, m)``;
skew_normal ``standard_normal((2, m))`` → δ|w₀| + √(1−δ²) w₁ with δ = α/√(1+α²);
mixture ``random(m) < w₂`` then ``standard_normal(m)``; two_point ``random(m) < p``; each
then shifted and scaled by its closed-form mean and SD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.checks import Checker, is_number, key_path, show
from workbench.errors import TruthError

__all__ = ["FAMILIES", "NORMAL", "Family", "parse_distribution"]

#: Family names and their parameters (required ones first, then optional with defaults).
FAMILIES: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "normal": ((), {}),
    "t": (("df",), {}),
    "laplace": ((), {}),
    "uniform": ((), {}),
    "chisq": (("df",), {}),
    "skew_normal": (("shape",), {}),
    "mixture": (("weights", "separation"), {}),
    "two_point": ((), {"p": 0.5}),
}
# Mixture weights must sum to 1 up to rounding of the values a user types.
_WEIGHTS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Family:
    """A family of standardised draws with its parameters (validated by `parse_distribution`)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def normal(self) -> bool:
        return self.name == "normal"

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent standardised draws from ``rng``, in the order of the module docstring."""
        name, params = self.name, self.params
        if name == "normal":
            return rng.standard_normal(size)
        if name == "t":
            df = params["df"]
            return rng.standard_t(df, size) * math.sqrt((df - 2.0) / df)
        if name == "laplace":
            return rng.laplace(0.0, 1.0 / math.sqrt(2.0), size)
        if name == "uniform":
            return rng.uniform(-math.sqrt(3.0), math.sqrt(3.0), size)
        if name == "chisq":
            df = params["df"]
            return (rng.chisquare(df, size) - df) / math.sqrt(2.0 * df)
        if name == "skew_normal":
            delta = _delta(params["shape"])
            w = rng.standard_normal((2, size))
            x = delta * np.abs(w[0]) + math.sqrt(1.0 - delta**2) * w[1]
            mean = delta * math.sqrt(2.0 / math.pi)
            return (x - mean) / math.sqrt(1.0 - mean**2)
        if name == "mixture":
            upper, separation = params["weights"][1], params["separation"]
            high = rng.random(size) < upper
            x = separation * (high - upper) + rng.standard_normal(size)
            return x / math.sqrt(1.0 + separation**2 * upper * (1.0 - upper))
        p = params["p"]  # two_point
        return ((rng.random(size) < p) - p) / math.sqrt(p * (1.0 - p))

    def skewness(self) -> float:
        """E z³, the standardised third cumulant (NaN where it does not exist: t with df ≤ 3)."""
        name, params = self.name, self.params
        if name in ("normal", "laplace", "uniform"):
            return 0.0
        if name == "t":
            return 0.0 if params["df"] > 3 else math.nan
        if name == "chisq":
            return math.sqrt(8.0 / params["df"])
        if name == "skew_normal":
            mean = _delta(params["shape"]) * math.sqrt(2.0 / math.pi)
            return (4.0 - math.pi) / 2.0 * mean**3 / (1.0 - mean**2) ** 1.5
        if name == "mixture":
            d, (k2, k3, _) = self.params["separation"], _bernoulli_cumulants(params["weights"][1])
            return d**3 * k3 / (1.0 + d**2 * k2) ** 1.5
        k2, k3, _ = _bernoulli_cumulants(params["p"])
        return k3 / k2**1.5

    def excess_kurtosis(self) -> float:
        """E z⁴ − 3, the standardised fourth cumulant (inf for t with df ≤ 4)."""
        name, params = self.name, self.params
        if name == "normal":
            return 0.0
        if name == "t":
            return 6.0 / (params["df"] - 4.0) if params["df"] > 4 else math.inf
        if name == "laplace":
            return 3.0
        if name == "uniform":
            return -1.2
        if name == "chisq":
            return 12.0 / params["df"]
        if name == "skew_normal":
            mean = _delta(params["shape"]) * math.sqrt(2.0 / math.pi)
            return 2.0 * (math.pi - 3.0) * mean**4 / (1.0 - mean**2) ** 2
        if name == "mixture":
            d, (k2, _, k4) = params["separation"], _bernoulli_cumulants(params["weights"][1])
            return d**4 * k4 / (1.0 + d**2 * k2) ** 2
        k2, _, k4 = _bernoulli_cumulants(params["p"])
        return k4 / k2**2


NORMAL = Family("normal")


def _delta(shape: float) -> float:
    return shape / math.sqrt(1.0 + shape**2)


def _bernoulli_cumulants(p: float) -> tuple[float, float, float]:
    """κ₂, κ₃, κ₄ of a Bernoulli(p) variable (those of a two-point variable before scaling)."""
    k2 = p * (1.0 - p)
    return k2, k2 * (1.0 - 2.0 * p), k2 * (1.0 - 6.0 * k2)


def parse_distribution(value: Any, path: str, error: type = TruthError) -> Family:
    """Check a distribution table and return its `Family`; raise ``error`` naming the key."""
    check = Checker(error)
    table = check.table(value, path)
    family_path = key_path(path, "family")
    if "family" not in table:
        check.fail(family_path, f"required key is missing (one of: {', '.join(FAMILIES)})")
    name = table["family"]
    if name not in FAMILIES:
        check.fail(family_path, f"must be one of {' | '.join(FAMILIES)}, got {show(name)}")
    required, optional = FAMILIES[name]
    check.keys(table, path, ("family", *required), tuple(optional))
    params = {**optional, **{key: table[key] for key in table if key != "family"}}
    _PARAMETER_CHECKS.get(name, lambda *_: None)(check, params, path)
    return Family(name, params)


def _check_df(check: Checker, params: dict, path: str, low: float) -> None:
    df = params["df"]
    if not (is_number(df) and df > low):
        check.fail(key_path(path, "df"), f"must be a number greater than {low:g}, got {show(df)}")
    params["df"] = float(df)


def _check_shape(check: Checker, params: dict, path: str) -> None:
    params["shape"] = float(check.number(params["shape"], key_path(path, "shape")))


def _check_mixture(check: Checker, params: dict, path: str) -> None:
    weights_path = key_path(path, "weights")
    weights = params["weights"]
    if not (
        isinstance(weights, list)
        and len(weights) == 2
        and all(is_number(w) and w >= 0 for w in weights)
        and abs(sum(weights) - 1.0) <= _WEIGHTS_TOLERANCE
    ):
        check.fail(weights_path, f"must be two non-negative numbers summing to 1, got {show(weights)}")
    params["weights"] = [float(w) for w in weights]
    params["separation"] = float(check.non_negative_number(params["separation"], key_path(path, "separation")))


def _check_two_point(check: Checker, params: dict, path: str) -> None:
    params["p"] = float(check.number_in(params["p"], key_path(path, "p"), (0, 1), "neither"))


_PARAMETER_CHECKS = {
    "t": lambda check, params, path: _check_df(check, params, path, 2),
    "chisq": lambda check, params, path: _check_df(check, params, path, 0),
    "skew_normal": _check_shape,
    "mixture": _check_mixture,
    "two_point": _check_two_point,
}

