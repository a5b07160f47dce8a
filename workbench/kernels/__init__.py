"""Numba kernels: they take arrays and scalars only, never validate, and allocate nothing from Python objects."""
