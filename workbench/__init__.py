"""Simulate and fit linear mixed models, and run Monte Carlo studies of their estimators."""

from workbench.errors import WorkbenchError
from workbench.fit import fit
from workbench.result import FitResult

__version__ = "0.1.0"

__all__ = ["FitResult", "WorkbenchError", "__version__", "fit"]
