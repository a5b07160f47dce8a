"""Small dense linear algebra on lower triangles, in place, on flat row-major storage.

Matrices are 1-D arrays with an offset and a row stride: fronts live in flat buffers, and
a slice in a loop over fronts costs more than a small front's arithmetic (each view is
reference-counted).
"""

import numpy as np

from workbench.kernels.options import jit_inline


@jit_inline
def cholesky_lower(a, offset, stride, m):
    """Factor the m × m block at a[offset:] in place (lower triangle); False if not positive definite."""
    for j in range(m):
        rj = offset + j * stride
        s = a[rj + j]
        for k in range(j):
            s -= a[rj + k] ** 2
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        a[rj + j] = d
        for i in range(j + 1, m):
            ri = offset + i * stride
            s = a[ri + j]
            for k in range(j):
                s -= a[ri + k] * a[rj + k]
            a[ri + j] = s / d
    return True


@jit_inline
def invert_lower(l, offset, stride, m, out, out_stride):
    """out[:m, :m] = inverse of the lower-triangular m × m block at l[offset:] (upper part set to 0)."""
    for i in range(m):
        for j in range(m):
            out[i * out_stride + j] = 0.0
    for j in range(m):
        out[j * out_stride + j] = 1.0 / l[offset + j * stride + j]
        for i in range(j + 1, m):
            s = 0.0
            for k in range(j, i):
                s -= l[offset + i * stride + k] * out[k * out_stride + j]
            out[i * out_stride + j] = s / l[offset + i * stride + i]
