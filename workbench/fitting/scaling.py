"""Fits on a well-scaled copy of the data, mapped back exactly to the data's units.

The criterion of a shifted response y + Xa or of a rescaled column is known in closed form,
so `wb.fit` works with a copy where all of them are of order one (data already near unit
scale, `well_scaled`, are fitted as they are):

- every fixed-effect column and every random-effect column is divided by a power of two near
  its root mean square (powers of two: the division and its inverse are exact);
- the response has its least-squares fit on X (in those scaled columns) subtracted and is
  divided by a power of two near the residual SD.

With y = Xc + s·y′, X′ = X·diag(1/x_scale) and Z′ = Z·diag(1/z_scale) per term, the fit of
(X′, Z′, y′) gives the fit of (X, Z, y) through

    β = (c′ + s·β′′) / x_scale,  Var β = s²·diag(1/x_scale)·V′′·diag(1/x_scale),
    σ = s·σ′,  λ = diag(1/z_scale)·λ′  (ZΛ = Z′Λ′),  b = s·b′/z_scale,
    ML deviance d = d′ + 2n·log s,  REML criterion d = d′ + 2(n−p)·log s + 2·Σⱼ log x_scaleⱼ,

where c′ are the least-squares coefficients on X′ and β′′ the fit's. log|L_Z|² is unchanged
(it depends on ZΛ only), r² scales by s², and R_X′ = R_X·diag(1/x_scale).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from workbench.errors import DataError
from workbench.model.design import Design

SQRT_HALF = math.sqrt(0.5)
WELL_SCALED = 10  # see `well_scaled`
EXACT_FIT = 1e-13  # residual RMS below this share of max |y|: rounding of an exact fit


@dataclass(frozen=True, eq=False)
class Scaling:
    """How a design was scaled: y = X′·shift + y_scale·y′, X′ = X/x_scale, Z′ = Z/z_scale."""

    x_scale: np.ndarray  # (p,) powers of two
    z_scale: tuple[np.ndarray, ...]  # per term (q,), powers of two
    shift: np.ndarray  # (p,) least-squares coefficients of y on X′
    y_scale: float  # a power of two

    def criterion(self, scaled: float, n: int, reml: bool) -> float:
        """The criterion on the data's scale from the scaled problem's."""
        if reml:
            p = len(self.x_scale)
            return scaled + 2.0 * (n - p) * np.log(self.y_scale) + 2.0 * float(np.log(self.x_scale).sum())
        return scaled + 2.0 * n * np.log(self.y_scale)

    def theta(self, design: Design, scaled_theta: np.ndarray) -> np.ndarray:
        """θ on the data's scale: row r of each λ divided by its column's scale."""
        term, row, _ = design.theta_map()
        divisor = np.array([self.z_scale[k][r] for k, r in zip(term, row)])
        return np.asarray(scaled_theta, float) / divisor if len(divisor) else np.zeros(0)

    def fixef(self, scaled_beta: np.ndarray) -> np.ndarray:
        return (self.shift + self.y_scale * np.asarray(scaled_beta, float)) / self.x_scale

    def vcov(self, scaled_vcov: np.ndarray) -> np.ndarray:
        inverse = 1.0 / self.x_scale
        return self.y_scale**2 * inverse[:, None] * np.asarray(scaled_vcov, float) * inverse[None, :]

    def ranef(self, k: int, scaled_effects: np.ndarray) -> np.ndarray:
        """Conditional modes (levels, q) of term k on the data's scale."""
        return self.y_scale * np.asarray(scaled_effects, float) / self.z_scale[k][None, :]


def power_of_two(value: np.ndarray) -> np.ndarray:
    """The power of two nearest each positive value on a log scale (1 where a value is 0 or not finite)."""
    value = np.asarray(value, float)
    good = np.isfinite(value) & (value > 0)
    return np.where(good, _nearest_power(np.where(good, value, 1.0)), 1.0)


def _nearest_power(value: np.ndarray) -> np.ndarray:
    """`power_of_two` of positive finite values."""
    mantissa, exponent = np.frexp(value)  # value = mantissa·2^exponent, mantissa in [0.5, 1)
    return np.ldexp(1.0, exponent - (mantissa < SQRT_HALF))


def _scalar_power_of_two(value: float) -> float:
    """`power_of_two` of one number."""
    if not (math.isfinite(value) and value > 0):
        return 1.0
    mantissa, exponent = math.frexp(value)
    return math.ldexp(1.0, exponent - (mantissa < SQRT_HALF))


def column_scales(columns: np.ndarray) -> np.ndarray:
    """Powers of two near the root mean square of each column."""
    if columns.shape[1] == 0:
        return np.ones(0)
    squares = np.einsum("ij,ij->j", columns, columns)
    if not (np.all(squares < 1e300) and np.all(squares > 1e-300)):
        # the squares over- or underflow (or a column is zero): divide by the largest entry first
        largest = power_of_two(np.max(np.abs(columns), axis=0))
        scaled = columns / largest
        return power_of_two(largest * np.sqrt(np.einsum("ij,ij->j", scaled, scaled) / columns.shape[0]))
    return _nearest_power(np.sqrt(squares / columns.shape[0]))


def well_scaled(design: Design) -> bool:
    """Whether the design can be fitted as it is: every column's RMS within 2^±WELL_SCALED,
    the response's least-squares residual SD too and its largest value within 2^WELL_SCALED
    of that SD.

    Such a design loses no more to rounding than its scaled copy would; skipping the copy
    keeps the common fit as cheap as it was. Like `scale_design`, refuses a response the
    fixed effects fit exactly.
    """
    limit = 2.0**WELL_SCALED
    largest = float(np.max(np.abs(design.y)))
    if not 0.0 < largest <= limit**2:  # a response this large is rescaled anyway (its squares may overflow)
        return False
    unit = _scalar_power_of_two(largest)
    # one QR of [X y]: the norm of column j of X is that of column j of R, and the residual
    # norm of y on X is R's last diagonal entry
    r = np.linalg.qr(np.column_stack([design.x, design.y / unit]), mode="r")
    _refuse_exact_fit(design, abs(r[-1, -1]), largest / unit)
    residual_sd = abs(r[-1, -1]) * unit / np.sqrt(max(design.n - design.p, 1))
    if not (1.0 / limit <= residual_sd <= limit and largest <= limit * residual_sd):
        return False
    x_rms = np.linalg.norm(r[:, :-1], axis=0) / np.sqrt(design.n)
    scales = [x_rms, *(column_scales(term.z) for term in design.terms)]
    return all(np.all((scale >= 1.0 / limit) & (scale <= limit)) for scale in scales)


def least_squares_residual(design: Design, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and residual of y on the columns x, refusing a response they fit exactly.

    `y` must be of order one (max |y| near 1): an exact fit leaves residuals of rounding size.
    """
    if design.p:
        q, r = np.linalg.qr(x)  # X has full column rank (`build_design` dropped dependent columns)
        shift = np.linalg.solve(r, q.T @ y)
        residual = y - x @ shift
    else:
        shift, residual = np.zeros(0), y.copy()
    _refuse_exact_fit(design, float(np.sqrt(residual @ residual)), float(np.max(np.abs(y))))
    return shift, residual


def _refuse_exact_fit(design: Design, residual_norm: float, largest: float) -> None:
    """One line for a response of order one whose least-squares residual is rounding."""
    if residual_norm / np.sqrt(design.n) <= EXACT_FIT * largest:
        raise DataError(
            f"data: the fixed effects fit the response {design.formula.response!r} exactly (residual SD 0);"
            " there is no variance to estimate"
        )


def scale_design(design: Design) -> tuple[Design, Scaling]:
    """The well-scaled copy of `design` and the map back (see the module docstring)."""
    x_scale = column_scales(design.x)
    x = design.x / x_scale
    unit = _scalar_power_of_two(float(np.max(np.abs(design.y))))  # first to order one: no overflow below
    shift, residual = least_squares_residual(design, x, design.y / unit)
    rest = _scalar_power_of_two(float(np.sqrt(residual @ residual / max(design.n - design.p, 1))))
    terms, z_scale = [], []
    for term in design.terms:
        scale = column_scales(term.z)
        z_scale.append(scale)
        terms.append(dataclasses.replace(term, z=term.z / scale))
    scaled = dataclasses.replace(design, x=x, y=residual / rest, terms=tuple(terms))
    return scaled, Scaling(x_scale, tuple(z_scale), shift * unit, unit * rest)
