"""Checks of the arguments of the public functions: each failure is one `WorkbenchError` naming the argument."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

MAX_SEED = 2**64 - 1  # numpy.random.SeedSequence takes seeds of up to 64 bits (and more, but studies store 64)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (pd.DataFrame, np.ndarray)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def boolean(value: Any, name: str) -> bool:
    """`value` if it is True or False (NumPy booleans too)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise WorkbenchError(f"{name}: must be True or False, got {_shown(value)}")


def integer(value: Any, name: str, low: int, high: int | None = None) -> int:
    """`value` if it is an integer in [low, high] (booleans are not integers here)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        if value >= low and (high is None or value <= high):
            return int(value)
    if high is not None:
        wanted = f"an integer from {low} to {high}"
    else:
        wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer of at least {low}")
    raise WorkbenchError(f"{name}: must be {wanted}, got {_shown(value)}")


def seed(value: Any, name: str = "seed") -> int:
    """A seed: an integer from 0 to 2⁶⁴ − 1."""
    return integer(value, name, 0, MAX_SEED)


def frame(value: Any, name: str) -> pd.DataFrame:
    """`value` if it is a pandas DataFrame."""
    if not isinstance(value, pd.DataFrame):
        raise WorkbenchError(f"{name}: expected a pandas DataFrame, got {type(value).__name__}")
    return value


def mapping(value: Any, name: str) -> Mapping:
    """`value` if it is a mapping (a dict)."""
    if not isinstance(value, Mapping):
        raise WorkbenchError(f"{name}: expected a mapping such as a dict, got {type(value).__name__}")
    return value


def text(value: Any, name: str) -> str:
    """`value` if it is a non-empty string."""
    if not (isinstance(value, str) and value.strip()):
        raise WorkbenchError(f"{name}: must be a non-empty string, got {_shown(value)}")
    return value


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    """`value` if it is one of `options`."""
    if not (isinstance(value, str) and value in options):
        raise WorkbenchError(f"{name}: must be one of {', '.join(map(repr, options))}, got {_shown(value)}")
    return value
