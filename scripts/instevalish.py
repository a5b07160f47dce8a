"""A crossed data set the size of lme4's InstEval: 73,421 ratings of 1,128 lecturers by 2,972 students."""

import numpy as np
import pandas as pd


def instevalish(seed: int = 1) -> pd.DataFrame:
    """Students rate about 25 distinct lecturers each; lecturers belong to one of 14 departments."""
    rng = np.random.default_rng(seed)
    students, lecturers, depts, target = 2972, 1128, 14, 73421
    dept_of = rng.integers(0, depts, lecturers)
    per_student = rng.multinomial(target - students, np.full(students, 1 / students)) + 1
    per_student = np.minimum(per_student, lecturers)
    s = np.repeat(np.arange(students), per_student)
    d = np.concatenate([rng.choice(lecturers, k, replace=False) for k in per_student])
    n = len(s)
    service = rng.integers(0, 2, n)
    lectage = rng.integers(1, 7, n)
    studage = rng.choice([2, 4, 6, 8], n)
    y = (
        3.2
        + 0.3 * rng.standard_normal(students)[s]
        + 0.5 * rng.standard_normal(lecturers)[d]
        + 0.1 * rng.standard_normal(depts)[dept_of[d]]
        - 0.07 * service
        + 0.05 * (lectage - 3)
        + 1.18 * rng.standard_normal(n)
    )
    return pd.DataFrame(
        {
            "y": np.round(y, 6),
            "s": s,
            "d": d,
            "dept": dept_of[d],
            "service": service,
            "lectage": pd.Categorical(lectage),
            "studage": pd.Categorical(studage),
        }
    )
