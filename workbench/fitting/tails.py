"""Upper tail probabilities of the normal, t and χ² distributions, as scipy.stats computes them.

scipy.stats's distributions call these same functions of scipy.special; importing scipy.stats
costs most of a second, which every run of a study would pay before its first replicate.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def normal_sf(x):
    """P(Z > x) for a standard normal Z (scipy.stats.norm.sf)."""
    return special.ndtr(-np.asarray(x, float))


def t_sf(x, df):
    """P(T > x) for Student's t with `df` degrees of freedom (scipy.stats.t.sf; NaN where df ≤ 0)."""
    x, df = np.asarray(x, float), np.asarray(df, float)
    return np.where(df > 0, special.stdtr(np.where(df > 0, df, 1.0), -x), np.nan)


def chi2_sf(x, df):
    """P(X > x) for χ² with `df` degrees of freedom (scipy.stats.chi2.sf: 1 below 0, 0 at ∞, NaN where df ≤ 0)."""
    x, df = np.asarray(x, float), np.asarray(df, float)
    tail = special.chdtrc(np.where(df > 0, df, 1.0), np.where(x < 0, 0.0, x))
    tail = np.where(x < 0, 1.0, np.where(x == np.inf, 0.0, tail))
    return np.where(df > 0, tail, np.nan)
