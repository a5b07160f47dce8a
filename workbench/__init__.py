"""Simulate and fit linear mixed models, and run Monte Carlo studies of their estimators."""

from workbench.errors import WorkbenchError

__version__ = "0.1.0"

__all__ = ["WorkbenchError", "__version__"]
