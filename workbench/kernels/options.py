"""Jit options in one place: every kernel is compiled the same way."""

import numba

# cache: compiled kernels are reused across processes. Numba invalidates a cached function
# when its own file changes, not when a callee in another file does: after editing a kernel,
# delete the caches (find workbench -name "*.nb[ic]" -delete) or callers keep the old code.
# fastmath stays off so results are reproducible bit for bit and NaN checks keep working.
jit = numba.njit(cache=True, nogil=True, error_model="numpy")
jit_parallel = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
# Small helpers called once per front: inlined, as a call costs more than their arithmetic.
jit_inline = numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
