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
