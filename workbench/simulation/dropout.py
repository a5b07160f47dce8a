"""Missing observations: MCAR per observation, and dropout that depends on the previous response.

``missing = p`` (any layout kind) removes each row independently with probability p, after
the rows and covariates are drawn (so a unit-level covariate keeps its value in the rows
that remain).

A longitudinal layout's ``dropout = { intercept = a, slope = b }`` is missing at random
(MAR): a subject still in the study at visit j − 1 leaves before visit j (j ≥ 1) with
probability logistic(a + b·y_{j−1}), its previous — observed — response, and misses every
later visit (monotone dropout). Likelihood-based estimates stay consistent under it, while
analyses of the observed means do not. The response does not exist when the layout is made,
so the dropout is applied to each simulated data set: its uniforms come from the replicate's
layout stream (`workbench.simulation.simulate`), one per row of the complete layout in row
order, after the layout's own draws. It cannot be combined with ``visits`` or ``missing``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["ResponseDropout", "drop_missing"]


@dataclass(frozen=True)
class ResponseDropout:
    """MAR dropout on the previous response (module docstring)."""

    intercept: float
    slope: float
    subject: str  # the column identifying subjects, whose rows are consecutive in time order

    def keep(self, frame: pd.DataFrame, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which rows of the complete data set (``frame``, responses ``y``) are observed."""
        n = len(frame)
        uniforms = rng.random(n)
        subject = frame[self.subject].to_numpy()
        first = np.ones(n, dtype=bool)
        first[1:] = subject[1:] != subject[:-1]
        previous = np.concatenate([[0.0], y[:-1]])
        leaves = ~first & (uniforms < expit(self.intercept + self.slope * previous))
        # a subject stays until its first leave: no leave so far in its own rows
        count = np.cumsum(leaves)
        starts = np.flatnonzero(first)
        before = (count - leaves)[starts]
        lengths = np.diff(np.append(starts, n))
        return count - np.repeat(before, lengths) == 0


def drop_missing(frame: pd.DataFrame, missing: float, rng: np.random.Generator) -> pd.DataFrame:
    """``frame`` without the rows an MCAR draw removes (probability ``missing`` each); no draw for 0."""
    if missing == 0:
        return frame
    keep = rng.random(len(frame)) >= missing
    return frame.loc[keep].reset_index(drop=True)
