"""LAPACK (through SciPy) for the large dense trailing block, callable from cached nopython code.

The routines are registered as named symbols at import, so compiled kernels refer to them by
name and can be cached. Arrays are C-ordered: a C lower triangle is LAPACK's upper triangle.
"""

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

from workbench.kernels.options import jit

_ptr = types.voidptr
for _name in ("dpotrf", "dtrtri", "dlauum"):
    llvm.add_symbol(f"workbench_{_name}", get_cython_function_address("scipy.linalg.cython_lapack", _name))
_dpotrf = types.ExternalFunction("workbench_dpotrf", types.void(_ptr, _ptr, _ptr, _ptr, _ptr))
_dtrtri = types.ExternalFunction("workbench_dtrtri", types.void(_ptr, _ptr, _ptr, _ptr, _ptr, _ptr))
_dlauum = types.ExternalFunction("workbench_dlauum", types.void(_ptr, _ptr, _ptr, _ptr, _ptr))

# Below this size the plain loops win: a LAPACK call has a fixed cost.
LAPACK_MIN_SIZE = 64


@jit
def cholesky_lower_lapack(a):
    """Factor the C-ordered square `a` in place (its lower triangle); False if not positive definite."""
    uplo = np.array([ord("U")], np.uint8)
    n = np.array([a.shape[0]], np.int32)
    info = np.zeros(1, np.int32)
    _dpotrf(uplo.ctypes.data, n.ctypes.data, a.ctypes.data, n.ctypes.data, info.ctypes.data)
    return info[0] == 0


@jit
def invert_lower_lapack(a):
    """Invert the lower triangle of the C-ordered square `a` in place."""
    uplo = np.array([ord("U")], np.uint8)
    diag = np.array([ord("N")], np.uint8)
    n = np.array([a.shape[0]], np.int32)
    info = np.zeros(1, np.int32)
    _dtrtri(uplo.ctypes.data, diag.ctypes.data, n.ctypes.data, a.ctypes.data, n.ctypes.data, info.ctypes.data)


@jit
def gram_lower_lapack(a):
    """Overwrite the lower triangle M of the C-ordered square `a` with that of M'M."""
    uplo = np.array([ord("U")], np.uint8)
    n = np.array([a.shape[0]], np.int32)
    info = np.zeros(1, np.int32)
    _dlauum(uplo.ctypes.data, n.ctypes.data, a.ctypes.data, n.ctypes.data, info.ctypes.data)
