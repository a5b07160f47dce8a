"""Small dense linear algebra on lower triangles, in place, on flat row-major storage.

Matrices are 1-D arrays with an offset and a row stride: fronts live at offsets of flat
buffers, which is cheaper than slicing or reshaping them (either costs more than a small
front's arithmetic).
"""

import numpy as np

from workbench.kernels.options import jit_inline

# Unsigned offsets: a signed index is checked for wrapping around from the end, which stops
# loops from vectorising.
U = np.uint64


@jit_inline
def cholesky_lower(a, off, stride, m):
    """Factor the m × m block of `a` from offset `off` in place (lower triangle); False if not positive definite."""
    for j in range(m):
        s = a[off + j * stride + j]
        for k in range(j):
            s -= a[off + j * stride + k] ** 2
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        a[off + j * stride + j] = d
        for i in range(j + 1, m):
            s = a[off + i * stride + j]
            for k in range(j):
                s -= a[off + i * stride + k] * a[off + j * stride + k]
            a[off + i * stride + j] = s / d
    return True


@jit_inline
def invert_lower(l, off, stride, m, out, out_stride):
    """out[:m, :m] = inverse of the lower-triangular m × m block of l from offset `off` (upper part set to 0).

    Row by row: row i of the inverse is −(Σ_k l[i, k] out[k, :]) / l[i, i] over the rows
    k < i already done, accumulated as axpys (in the order of k, as a dot product per entry
    would), with unsigned offsets so that they vectorise.
    """
    for i in range(m):
        for j in range(m):
            out[i * out_stride + j] = 0.0
    for i in range(m):
        row = U(i * out_stride)
        for k in range(i):
            lik = l[off + i * stride + k]
            above = U(k * out_stride)
            for j in range(U(k + 1)):
                out[row + j] -= lik * out[above + j]
        diagonal = l[off + i * stride + i]
        for j in range(U(i)):
            out[row + j] = out[row + j] / diagonal
        out[i * out_stride + i] = 1.0 / diagonal
