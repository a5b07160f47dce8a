"""Responses and marginal covariance of a linear mixed model from level codes and z columns.

Term k's random effects are stored level-major, effect-minor: level l's q effects start at
`term_offset[k] + l * term_q[k]`. Terms are padded to `qmax` columns (z) and qmax×qmax (λ).
"""

import numpy as np

from workbench.kernels.options import jit


@jit
def simulate_responses(xbeta, codes, z, term_q, term_offset, lam, sigma, normals, out):
    """Write into `out[r]` the response y = Xβ + σ(Σₖ Zₖλₖuₖ + ε) drawn from `normals[r]` = [u, ε].

    Parameters
    ----------
    xbeta : (n,) Xβ.
    codes : (K, n) int64, level of each row for each term.
    z : (K, n, qmax) each term's model-matrix columns, zero-padded.
    term_q : (K,) int64, effects per level of each term.
    term_offset : (K,) int64, position of each term's first u in a row of `normals`.
    lam : (K, qmax, qmax) lower-triangular λₖ (relative to σ), zero-padded.
    sigma : residual standard deviation.
    normals : (nsim, q_total + n) standard normals, the q_total u first, then the n ε.
    out : (nsim, n) written.
    """
    nsim, size = normals.shape
    n = xbeta.shape[0]
    nterms = term_q.shape[0]
    q_total = size - n
    # λu of every level, computed once per level rather than once per row
    b = np.empty(q_total)
    for r in range(nsim):
        for k in range(nterms):
            q = term_q[k]
            stop = term_offset[k + 1] if k + 1 < nterms else q_total
            for base in range(term_offset[k], stop, q):
                for i in range(q):
                    acc = 0.0
                    for j in range(i + 1):
                        acc += lam[k, i, j] * normals[r, base + j]
                    b[base + i] = acc
        for i in range(n):
            acc = normals[r, q_total + i]
            for k in range(nterms):
                q = term_q[k]
                base = term_offset[k] + codes[k, i] * q
                for j in range(q):
                    acc += z[k, i, j] * b[base + j]
            out[r, i] = xbeta[i] + sigma * acc


@jit
def marginal_covariance(codes, z, term_q, cov, residual_var, out):
    """Write into `out` (n, n) the covariance σ²I + Σₖ Zₖ(I ⊗ covₖ)Zₖ' of y.

    `cov[k]` (qmax, qmax) is the covariance σ²λₖλₖ' of one level of term k; rows i and j
    share term k's level exactly when their codes agree.
    """
    nterms, n = codes.shape
    for i in range(n):
        for j in range(i + 1):
            acc = residual_var if i == j else 0.0
            for k in range(nterms):
                if codes[k, i] != codes[k, j]:
                    continue
                q = term_q[k]
                for a in range(q):
                    row = 0.0
                    for c in range(q):
                        row += cov[k, a, c] * z[k, j, c]
                    acc += z[k, i, a] * row
            out[i, j] = acc
            out[j, i] = acc
