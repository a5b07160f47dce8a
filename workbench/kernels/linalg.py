"""Small dense linear algebra on lower triangles, in place, for fronts and the trailing block."""

import numpy as np

from workbench.kernels.options import jit


@jit
def cholesky_lower(a, m):
    """Factor the leading m × m block of `a` in place (lower triangle); False if not positive definite."""
    for j in range(m):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, m):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@jit
def invert_lower(l, m, out):
    """out[:m, :m] = inverse of the lower-triangular l[:m, :m]."""
    for j in range(m):
        for i in range(m):
            out[i, j] = 0.0
    for j in range(m):
        out[j, j] = 1.0 / l[j, j]
        for i in range(j + 1, m):
            s = 0.0
            for k in range(j, i):
                s -= l[i, k] * out[k, j]
            out[i, j] = s / l[i, i]
