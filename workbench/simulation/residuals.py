"""The residuals of a truth: their family and their standard deviation row by row.

``[truth.residual]`` (``truth["residual"]`` in Python) is optional and takes

- ``distribution = {family = ..., ...}``: the family of the standardised residuals
  (`workbench.simulation.distributions`; default normal);
- ``sd_by = { column = "treat", sd = { "0" = 1.0, "1" = 2.0 } }``: heteroscedastic
  residuals, the residual SD of the rows at each level of a layout column. Levels are
  matched as they print (``"0"``, ``"1"`` for integers; the label of a string or
  categorical level); every level in the data needs an SD, levels absent from the data
  are ignored (a redrawn layout may lack one);
- ``sd_power = { column = "x", power = 0.5 }``: the residual SD σ·|x|^power of a numeric
  layout column x.

At most one of ``sd_by`` and ``sd_power``. ``sigma`` remains the reference SD: the
random-effect SDs enter lme4's θ relative to it, and the true ``var[Residual]`` and
``sd[Residual]`` of a study are σ² and σ, what the fitted (homoscedastic) model's σ̂ is
compared with. With heteroscedastic residuals choose σ as the value that comparison is
meant to be against (e.g. the root mean residual variance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.checks import Checker, is_number, key_path, show
from workbench.errors import TruthError
from workbench.simulation.distributions import NORMAL, Family, parse_distribution

__all__ = ["Residuals", "parse_residuals"]


@dataclass(frozen=True)
class Residuals:
    """The residual family and, for heteroscedastic residuals, how their SD varies by row."""

    family: Family = NORMAL
    column: str | None = None  # the layout column the SD depends on (None: σ for every row)
    sd_by: dict[str, float] | None = None  # level → residual SD
    power: float | None = None  # SD σ·|x|^power
    path: str = "truth.residual"

    @property
    def homoscedastic(self) -> bool:
        return self.column is None

    def scale(self, frame: pd.DataFrame, sigma: float) -> np.ndarray | None:
        """The residual SD of each row of ``frame`` relative to σ (None when it is 1 for every row).

        Raises `TruthError` naming the key when the column is not in ``frame``, a level has
        no SD, or a power gives a non-finite SD.
        """
        if self.column is None:
            return None
        check = Checker(TruthError)
        which = "sd_by" if self.sd_by is not None else "sd_power"
        column_path = key_path(key_path(self.path, which), "column")
        if self.column not in frame.columns:
            check.fail(column_path, f"no column {show(self.column)} in the layout ({', '.join(map(str, frame.columns))})")
        values = frame[self.column]
        if values.isna().any():
            check.fail(column_path, f"column {show(self.column)} has missing values")
        if self.sd_by is not None:
            labels = values.astype(str).to_numpy()
            levels, codes = np.unique(labels, return_inverse=True)
            for level in levels:
                if level not in self.sd_by:
                    sd_path = key_path(key_path(self.path, "sd_by"), "sd")
                    check.fail(sd_path, f"no SD for level {show(str(level))} of column {show(self.column)}")
            return np.array([self.sd_by[level] for level in levels], dtype=float)[codes.reshape(-1)] / sigma
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            check.fail(column_path, f"column {show(self.column)} must be numeric for sd_power, got {values.dtype}")
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            scale = np.abs(values.to_numpy(dtype=float)) ** self.power
        if not np.isfinite(scale).all():
            power_path = key_path(key_path(self.path, "sd_power"), "power")
            check.fail(power_path, f"gives a non-finite SD for some rows (|{self.column}|^{self.power:g}; a zero value?)")
        return scale


def parse_residuals(value: Any, path: str = "truth.residual", error: type = TruthError) -> Residuals:
    """Check a ``[truth.residual]`` table; raise ``error`` naming the key."""
    check = Checker(error)
    table = check.table(value, path)
    check.keys(table, path, (), ("distribution", "sd_by", "sd_power"))
    if "sd_by" in table and "sd_power" in table:
        check.fail(key_path(path, "sd_power"), f"cannot be combined with {key_path(path, 'sd_by')}")
    family = parse_distribution(table["distribution"], key_path(path, "distribution"), error) if "distribution" in table else NORMAL
    if "sd_by" in table:
        by_path = key_path(path, "sd_by")
        by = check.table(table["sd_by"], by_path)
        check.keys(by, by_path, ("column", "sd"))
        column = check.string(by["column"], key_path(by_path, "column"))
        sd_path = key_path(by_path, "sd")
        sd = check.table(by["sd"], sd_path)
        if not sd:
            check.fail(sd_path, 'must give the residual SD of at least one level, like {"0" = 1.0, "1" = 2.0}')
        for level, value in sd.items():
            check.positive_number(value, key_path(sd_path, str(level)))
        return Residuals(family, column, {str(k): float(v) for k, v in sd.items()}, None, path)
    if "sd_power" in table:
        power_path = key_path(path, "sd_power")
        spec = check.table(table["sd_power"], power_path)
        check.keys(spec, power_path, ("column", "power"))
        column = check.string(spec["column"], key_path(power_path, "column"))
        power = spec["power"]
        if not is_number(power):
            check.fail(key_path(power_path, "power"), f"must be a finite number, got {show(power)}")
        return Residuals(family, column, None, float(power), path)
    return Residuals(family, path=path)
