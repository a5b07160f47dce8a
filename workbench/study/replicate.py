"""Rebuild one data set of a study, exactly as its fits saw it: the layout's rows and the simulated response."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from workbench import arguments
from workbench.errors import StudyError
from workbench.study.plan import plan_point
from workbench.study.spec import load_study
from workbench.study.units import unit_responses

__all__ = ["replicate_data"]


def replicate_data(study_file: str | os.PathLike, point: int, replicate: int) -> pd.DataFrame:
    """Replicate `replicate` of design point `point` of the study in `study_file`, as a DataFrame.

    The columns are the layout's (grouping factors and covariates) and the response of the
    generating model, bit for bit the data set every analysis of the study fitted (the draw
    contract `SeedSequence(seed, spawn_key=(point, replicate))`), so that any replicate can be
    refitted elsewhere, e.g. in lme4. When the layout is redrawn per replicate (or a dropout
    depends on the response), the rows are that replicate's own: its layout from
    `SeedSequence(seed, spawn_key=(point, replicate, 1))` and only the observations left
    after its dropout.
    """
    if not isinstance(study_file, (str, os.PathLike)):
        raise StudyError(f"study_file: expected the path of a study file, got {type(study_file).__name__}")
    study = load_study(study_file)
    points = study.points()
    point = arguments.integer(point, "point", 0, len(points) - 1)
    replicate = arguments.integer(replicate, "replicate", 0, study.replicates - 1)
    plan = plan_point(study, points[point])
    if plan.varying:
        return plan.source.data_set(replicate).frame
    y = unit_responses(study, plan, point, np.array([replicate], dtype=np.int64))[0]
    frame = plan.layout.reset_index(drop=True).copy()
    frame[plan.design.formula.response] = y
    return frame
