"""Simulate and fit linear mixed models, and run Monte Carlo studies of their estimators.

The public functions are imported on first use, so that the command-line tools start at once.
"""

from importlib import import_module

from workbench.errors import WorkbenchError

__version__ = "0.1.0"

# public name: the module that defines it
_PUBLIC = {
    "FitResult": "workbench.fitting.result",
    "LRTResult": "workbench.fitting.lrt",
    "fit": "workbench.fitting.fit",
    "lrt": "workbench.fitting.lrt",
    "marginal_cov": "workbench.simulation.simulate",
    "replicate_data": "workbench.study.replicate",
    "simulate": "workbench.simulation.simulate",
}

__all__ = ["WorkbenchError", "__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
