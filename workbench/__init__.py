"""Simulate and fit linear mixed models, and run Monte Carlo studies of their estimators."""

from workbench.errors import WorkbenchError
from workbench.fitting.fit import fit
from workbench.fitting.lrt import LRTResult, lrt
from workbench.fitting.result import FitResult
from workbench.simulation.simulate import marginal_cov, simulate

__version__ = "0.1.0"

__all__ = ["FitResult", "LRTResult", "WorkbenchError", "__version__", "fit", "lrt", "marginal_cov", "simulate"]
