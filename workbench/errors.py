"""Errors raised for user mistakes: each carries one short line naming the offending thing."""


class WorkbenchError(ValueError):
    """A user mistake (bad formula, data, truth, layout or study file)."""


class FormulaError(WorkbenchError):
    """The model formula cannot be understood or does not fit the data."""


class DataError(WorkbenchError):
    """The data set cannot be used with the formula."""


class TruthError(WorkbenchError):
    """The true parameter values do not match the model."""


class LayoutError(WorkbenchError):
    """A layout specification is invalid."""


class StudyError(WorkbenchError):
    """A study file is invalid; the message starts with the key path."""


class ClusterError(Exception):
    """The cluster cannot run the study; one line, and the exit status of the command."""

    exit_status = 2


class RunStopped(ClusterError):
    """The cluster stopped the run part-way (lost scheduler, unit killing workers); units written are kept."""

    exit_status = 3
