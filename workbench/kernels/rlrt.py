"""The exact finite-sample null of the (restricted) likelihood-ratio test of one variance component.

For y = Xβ + Zb + ε, b ~ N(0, σ_b² I), ε ~ N(0, σ² I) and H₀: σ_b² = 0, Crainiceanu & Ruppert
(2004, JRSS B 66:165) show

    RLRT = sup_{λ≥0} [(n − p) log(1 + N(λ)/D(λ)) − Σₛ log(1 + λμₛ)],
    N(λ) = Σₛ λμₛ/(1 + λμₛ) wₛ²,   D(λ) = Σₛ wₛ²/(1 + λμₛ) + Σ_{s>K} wₛ²,

in distribution, with μₛ the eigenvalues of Z'P₀Z (P₀ = I − X(X'X)⁻¹X'), and n − p independent
standard normal wₛ in all. The ML statistic, with q fixed effects also 0 under H₀, is

    LRT = sup_{λ≥0} [n log(1 + N(λ)/D(λ)) − Σₛ log(1 + λξₛ)] + n log(1 + w₀²/Σₛ wₛ²),

ξₛ the eigenvalues of Z'Z and w₀² a χ²(q) variable (0 when q = 0). Equal eigenvalues share one
χ² variable with their multiplicity as degrees of freedom (the sum of their wₛ²), so a balanced
design costs a few terms per λ whatever its size. The supremum is taken over a log-spaced grid
of λ (RLRsim's, after scaling the eigenvalues to a largest of 1), scanned until a bound shows
that no larger λ can do better, then refined around the best grid point by golden-section
search on log λ; RLRsim stops at the first grid point where the function decreases (the first
local maximum) and does not refine.
"""

import numpy as np
from numba import prange

from workbench.kernels.options import jit, jit_parallel

GOLDEN = 0.6180339887498949
REFINE_STEPS = 25  # golden-section steps: the bracket (a grid step each side of the best point) shrinks 1.7e5-fold,
# to ~1e-6 in log λ, where the function is flat to ~1e-12 of its curvature


@jit
def ratio_objective(lam, n0, mu, chi_mu, rest, xi, xi_counts):
    """n0·log(1 + N(λ)/D(λ)) − Σ cₕ log(1 + λξₕ) for one draw (χ² sums `chi_mu` per eigenvalue)."""
    numerator = 0.0
    denominator = rest
    for g in range(mu.shape[0]):
        scaled = lam * mu[g]
        numerator += scaled / (1.0 + scaled) * chi_mu[g]
        denominator += chi_mu[g] / (1.0 + scaled)
    penalty = 0.0
    for h in range(xi.shape[0]):
        penalty += xi_counts[h] * np.log1p(lam * xi[h])
    return n0 * np.log1p(numerator / denominator) - penalty


@jit
def grid_tables(mu, xi, xi_counts, grid):
    """λμ/(1 + λμ) and 1/(1 + λμ) for every grid point and eigenvalue, and Σ cₕ log(1 + λξₕ) per point."""
    numerator = np.empty((grid.shape[0], mu.shape[0]))
    denominator = np.empty((grid.shape[0], mu.shape[0]))
    penalty = np.zeros(grid.shape[0])
    for g in range(grid.shape[0]):
        for s in range(mu.shape[0]):
            scaled = grid[g] * mu[s]
            numerator[g, s] = scaled / (1.0 + scaled)
            denominator[g, s] = 1.0 / (1.0 + scaled)
        for h in range(xi.shape[0]):
            penalty[g] += xi_counts[h] * np.log1p(grid[g] * xi[h])
    return numerator, denominator, penalty


@jit
def supremum(n0, mu, chi_mu, rest, xi, xi_counts, grid, tables):
    """sup over λ ≥ 0 of `ratio_objective`: the grid (grid[0] = 0), then golden-section refinement."""
    numerator, denominator, penalty = tables
    best = 0.0
    at = 0
    # N/D increases with λ towards Σ wₛ² (μₛ > 0) over the rest, and the penalty increases: past
    # the grid point where that bound less the penalty falls below the best value, none is higher
    total = 0.0
    for s in range(mu.shape[0]):
        total += chi_mu[s]
    ceiling = n0 * np.log1p(total / rest) if rest > 0.0 else np.inf
    for g in range(1, grid.shape[0]):
        if ceiling - penalty[g] <= best:
            break
        top = 0.0
        bottom = rest
        for s in range(mu.shape[0]):
            top += numerator[g, s] * chi_mu[s]
            bottom += denominator[g, s] * chi_mu[s]
        value = n0 * np.log1p(top / bottom) - penalty[g]
        if value > best:
            best = value
            at = g
    if at == 0:
        return 0.0
    low = np.log(grid[at - 1]) if at > 1 else np.log(grid[1]) - (np.log(grid[2]) - np.log(grid[1]))
    high = np.log(grid[at + 1]) if at + 1 < grid.shape[0] else np.log(grid[at]) + 2.0
    a = high - GOLDEN * (high - low)
    b = low + GOLDEN * (high - low)
    fa = ratio_objective(np.exp(a), n0, mu, chi_mu, rest, xi, xi_counts)
    fb = ratio_objective(np.exp(b), n0, mu, chi_mu, rest, xi, xi_counts)
    for _ in range(REFINE_STEPS):
        if fa > fb:
            high, b, fb = b, a, fa
            a = high - GOLDEN * (high - low)
            fa = ratio_objective(np.exp(a), n0, mu, chi_mu, rest, xi, xi_counts)
        else:
            low, a, fa = a, b, fb
            b = low + GOLDEN * (high - low)
            fb = ratio_objective(np.exp(b), n0, mu, chi_mu, rest, xi, xi_counts)
    return max(best, fa, fb)


@jit_parallel
def null_statistics(n0, mu, chi_mu, chi_rest, xi, xi_counts, chi_fixed, n, grid, out):
    """The statistic of each draw r into out[r].

    chi_mu (R, G): the χ² sums of the G distinct eigenvalues `mu`; chi_rest (R,): the χ² of the
    residual directions (eigenvalue 0 and beyond K); chi_fixed (R,): χ²(q) for the ML term
    (zeros for the RLRT, or when q = 0); n the number of observations of that term.
    """
    tables = grid_tables(mu, xi, xi_counts, grid)
    for r in prange(out.shape[0]):
        value = supremum(n0, mu, chi_mu[r], chi_rest[r], xi, xi_counts, grid, tables)
        if chi_fixed[r] > 0.0:
            total = chi_rest[r]
            for g in range(mu.shape[0]):
                total += chi_mu[r, g]
            value += n * np.log1p(chi_fixed[r] / total)
        out[r] = value
