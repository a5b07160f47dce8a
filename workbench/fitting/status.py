"""`FitStatus`: the named codes of `workbench.kernels.status`, with the meanings stores record."""

from enum import IntEnum

from workbench.kernels import status as _codes


class FitStatus(IntEnum):
    """How a fit ended; `CONVERGED` is the only status whose fit is at an optimum."""

    NOT_RUN = _codes.NOT_RUN
    CONVERGED = _codes.CONVERGED
    STALLED = _codes.STALLED
    ITERATION_LIMIT = _codes.ITERATION_LIMIT
    FAILED = _codes.FAILED

    @property
    def meaning(self) -> str:
        return self.name.lower().replace("_", " ")


def flag_values() -> list[int]:
    """The codes, as CF `flag_values`."""
    return [int(s) for s in FitStatus]


def flag_meanings() -> str:
    """The codes' names, as CF `flag_meanings` (space-separated, in `flag_values` order)."""
    return " ".join(s.name.lower() for s in FitStatus)


def status_codes_text() -> str:
    """One line describing every code, e.g. for a store's attributes."""
    return ", ".join(f"{int(s)} {s.meaning}" for s in FitStatus)
